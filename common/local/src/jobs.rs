//! [`JobStore`] on SQLite: the record as JSON, with the columns queries need beside it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::db::Db;
use minimoto_common::{
    error::{Error, Result},
    ids::JobId,
    job::{Job, Status},
    ports::{JobQuery, JobStore, KeyClaim},
    record,
};

/// The `hook_due_ms` column of a job: when its next announcement (webhook or queued event) is
/// due, if one is.
fn hook_due_ms(job: &Job) -> Option<i64> {
    job.announcement_due().map(|t| t.timestamp_millis())
}

/// The `sweep_due_ms` column of a job: when retention has something to delete, if ever.
fn sweep_due_ms(job: &Job) -> Option<i64> {
    job.sweep_due().map(|t| t.timestamp_millis())
}

#[derive(Debug, Clone)]
pub struct SqliteJobStore {
    db: Db,
}

impl SqliteJobStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Jobs that retention has something to delete from by `now` (files, then the record),
    /// those due longest first; at most `limit`.
    pub async fn due_sweeps(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JobId>> {
        self.ids_due("sweep_due_ms", now, limit).await
    }

    /// The ids of the jobs whose time column `column` is at or before `now`, earliest first.
    async fn ids_due(
        &self,
        column: &'static str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<JobId>> {
        let (now, limit) = (
            now.timestamp_millis(),
            i64::try_from(limit).unwrap_or(i64::MAX),
        );
        let ids: Vec<String> = self
            .db
            .read(move |c| {
                let mut statement = c.prepare_cached(&format!(
                    "SELECT id FROM jobs WHERE {column} IS NOT NULL AND {column} <= ?1
                     ORDER BY {column}, id LIMIT ?2"
                ))?;
                let rows = statement
                    .query_map(params![now, limit], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        ids.into_iter()
            .map(|id| {
                id.parse()
                    .map_err(|e| Error::Invalid(format!("stored job id {id:?}: {e}")))
            })
            .collect()
    }
}

#[async_trait]
impl JobStore for SqliteJobStore {
    async fn create(&self, job: &Job) -> Result<()> {
        let record = record::encode(job)?;
        let (id, status, version, created, tenant, due) = (
            job.id.to_string(),
            job.status.as_str(),
            job.version,
            job.created_at.to_rfc3339(),
            job.tenant.clone(),
            (hook_due_ms(job), sweep_due_ms(job)),
        );
        self.db
            .call(move |c| {
                let n = c.execute(
                    "INSERT INTO jobs (id, status, version, created_at, record, tenant, hook_due_ms, sweep_due_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (id) DO NOTHING",
                    params![id, status, version, created, record, tenant, due.0, due.1],
                )?;
                if n == 0 {
                    return Err(Error::Conflict(format!("job {id} already exists")).into());
                }
                Ok(())
            })
            .await
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        let key = id.to_string();
        let record: Option<String> = self
            .db
            .read(move |c| {
                Ok(
                    c.query_row("SELECT record FROM jobs WHERE id = ?1", [key], |r| r.get(0))
                        .optional()?,
                )
            })
            .await?;
        record.map(|r| record::decode(id, &r)).transpose()
    }

    async fn replace(&self, job: &Job) -> Result<Job> {
        let mut next = job.clone();
        next.version += 1;
        let record = record::encode(&next)?;
        let (id, status, expected, version, due) = (
            job.id.to_string(),
            next.status.as_str(),
            job.version,
            next.version,
            (hook_due_ms(&next), sweep_due_ms(&next)),
        );
        self.db
            .call(move |c| {
                let n = c.execute(
                    "UPDATE jobs SET status = ?2, version = ?3, record = ?4, hook_due_ms = ?6, sweep_due_ms = ?7
                     WHERE id = ?1 AND version = ?5",
                    params![id, status, version, record, expected, due.0, due.1],
                )?;
                if n == 0 {
                    return Err(Error::Conflict(format!("job {id} changed since version {expected}")).into());
                }
                Ok(())
            })
            .await?;
        Ok(next)
    }

    async fn delete(&self, id: JobId) -> Result<bool> {
        let key = id.to_string();
        self.db
            .call(move |c| Ok(c.execute("DELETE FROM jobs WHERE id = ?1", [key])? > 0))
            .await
    }

    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>> {
        let (tenant, status, before) = (
            query.tenant.clone(),
            query.status.map(Status::as_str),
            query.before.map(|id| id.to_string()),
        );
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String)> = self
            .db
            .read(move |c| {
                let mut statement = c.prepare_cached(
                    "SELECT id, record FROM jobs
                     WHERE tenant = ?1 AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR id < ?3)
                     ORDER BY id DESC LIMIT ?4",
                )?;
                let rows = statement
                    .query_map(params![tenant, status, before, limit], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, record)| {
                let id = id
                    .parse()
                    .map_err(|e| Error::Invalid(format!("stored job id {id:?}: {e}")))?;
                record::decode(id, &record)
            })
            .collect()
    }

    async fn count_active(&self, tenant: &str) -> Result<u64> {
        let tenant = tenant.to_owned();
        let n: i64 = self
            .db
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM jobs WHERE tenant = ?1 AND status IN (?2, ?3)",
                    params![tenant, Status::Queued.as_str(), Status::Running.as_str()],
                    |r| r.get(0),
                )?)
            })
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_by_status(&self) -> Result<Option<Vec<(Status, u64)>>> {
        let rows: Vec<(String, i64)> = self
            .db
            .read(|c| {
                let mut statement =
                    c.prepare_cached("SELECT status, count(*) FROM jobs GROUP BY status")?;
                let rows = statement
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        let counts = Status::ALL
            .into_iter()
            .map(|status| {
                let n = rows
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0));
                (status, n)
            })
            .collect();
        Ok(Some(counts))
    }

    async fn due_announcements(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JobId>> {
        self.ids_due("hook_due_ms", now, limit).await
    }

    async fn claim_key(
        &self,
        tenant: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<Option<KeyClaim>> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        let (job, fingerprint) = (claim.job.to_string(), claim.fingerprint.clone());
        let held: Option<(String, String)> = self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let n = tx.execute(
                    "INSERT INTO idempotency (tenant, key, job_id, fingerprint) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (tenant, key) DO NOTHING",
                    params![tenant, key, job, fingerprint],
                )?;
                let held = if n == 0 {
                    Some(tx.query_row(
                        "SELECT job_id, fingerprint FROM idempotency WHERE tenant = ?1 AND key = ?2",
                        params![tenant, key],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )?)
                } else {
                    None
                };
                tx.commit()?;
                Ok(held)
            })
            .await?;
        held.map(|(job, fingerprint)| {
            Ok(KeyClaim {
                job: job
                    .parse()
                    .map_err(|e| Error::Invalid(format!("stored job id {job:?}: {e}")))?,
                fingerprint,
            })
        })
        .transpose()
    }

    async fn replace_key(
        &self,
        tenant: &str,
        key: &str,
        old: &KeyClaim,
        new: &KeyClaim,
    ) -> Result<bool> {
        let (tenant, key) = (tenant.to_owned(), key.to_owned());
        let (old, job, fingerprint) = (
            old.job.to_string(),
            new.job.to_string(),
            new.fingerprint.clone(),
        );
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE idempotency SET job_id = ?3, fingerprint = ?4
                     WHERE tenant = ?1 AND key = ?2 AND job_id = ?5",
                    params![tenant, key, job, fingerprint, old],
                )? > 0)
            })
            .await
    }

    async fn release_key(&self, tenant: &str, key: &str, job: JobId) -> Result<()> {
        let (tenant, key, job) = (tenant.to_owned(), key.to_owned(), job.to_string());
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM idempotency WHERE tenant = ?1 AND key = ?2 AND job_id = ?3",
                    params![tenant, key, job],
                )?;
                Ok(())
            })
            .await
    }

    async fn ready(&self) -> Result<()> {
        self.db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM jobs WHERE 0", [], |_| Ok(()))?))
            .await?;
        // Reads go on while another process holds the write lock: ready means writable too.
        self.db.probe_write().await
    }
}
