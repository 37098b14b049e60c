//! [`JobStore`] on DynamoDB: one item per job, keyed by `id`, with the record as JSON beside the
//! attributes conditions need (`status`, `version`). Every write is conditional: creating requires
//! the id to be new, replacing requires the stored `version` to be the one read.
//!
//! Two global secondary indexes list a tenant's jobs newest first: [`BY_TENANT`] (partition
//! `tenant`) and [`BY_TENANT_STATUS`] (partition `tenant_status`, e.g. `acme#queued`), both
//! sorted by `id` (UUIDv7: by creation). A third, sparse one, [`BY_HOOK_DUE`], holds only the
//! jobs whose webhook is due (they alone carry [`HOOK_SHARD`] and [`HOOK_DUE`]), sorted by when.
//! `minimoto setup` makes them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnValue, Select},
};
use chrono::{DateTime, Utc};

use crate::{sdk_error, table::condition_failed};
use minimoto_common::{
    error::{Error, Result},
    ids::JobId,
    job::{Job, Status},
    ports::{JobQuery, JobStore, KeyClaim},
    record,
};

const SERVICE: &str = "dynamodb";

/// The index of a tenant's jobs: partition [`TENANT`], sort `id`.
pub const BY_TENANT: &str = "by-tenant";
/// The index of a tenant's jobs in one status: partition [`TENANT_STATUS`], sort `id`.
pub const BY_TENANT_STATUS: &str = "by-tenant-status";
/// The attribute of the job's tenant.
pub const TENANT: &str = "tenant";
/// The attribute `<tenant>#<status>`.
pub const TENANT_STATUS: &str = "tenant_status";
/// The sparse index of due webhooks: partition [`HOOK_SHARD`], sort [`HOOK_DUE`], keys only.
pub const BY_HOOK_DUE: &str = "by-hook-due";
/// The partition of [`BY_HOOK_DUE`]: one value, `due`, on the jobs with a webhook due. (One
/// partition is enough: only jobs that ended within the retry hour are in it.)
pub const HOOK_SHARD: &str = "hook_shard";
/// When the webhook is due, in epoch milliseconds (a number, so it sorts).
pub const HOOK_DUE: &str = "hook_due";
const DUE: &str = "due";
/// The attribute the table's TTL reads: when the job's record expires, in epoch seconds.
pub const EXPIRES: &str = "expires";

/// The item of an idempotency key, in the jobs table beside the jobs (outside both indexes: it
/// has no tenant attribute). A job id never holds `#`.
fn key_item_id(tenant: &str, key: &str) -> String {
    format!("idempotency#{tenant}#{key}")
}

/// The item of `claim` on key `key` of `tenant`.
fn key_item(tenant: &str, key: &str, claim: &KeyClaim) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("id".to_owned(), AttributeValue::S(key_item_id(tenant, key))),
        (
            "job_id".to_owned(),
            AttributeValue::S(claim.job.to_string()),
        ),
        (
            "fingerprint".to_owned(),
            AttributeValue::S(claim.fingerprint.clone()),
        ),
    ])
}

fn claim_of(item: &HashMap<String, AttributeValue>) -> Result<KeyClaim> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("an idempotency item has no {name}")))
    };
    Ok(KeyClaim {
        job: text("job_id")?
            .parse()
            .map_err(|e| Error::Invalid(format!("an idempotency item's job id: {e}")))?,
        fingerprint: text("fingerprint")?,
    })
}

fn tenant_status(tenant: &str, status: Status) -> String {
    format!("{tenant}#{}", status.as_str())
}

#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
        }
    }

    /// Fails with a message saying to run `minimoto setup` when the table, or one of the indexes
    /// the store queries, does not exist.
    pub async fn check(&self) -> Result<()> {
        let indexes = [BY_TENANT, BY_TENANT_STATUS, BY_HOOK_DUE];
        crate::table::check_table(&self.client, &self.table, &indexes, || {
            format!(
                "DynamoDB table `{}` is not set up for this version: run `minimoto setup` (it adds what is missing and keeps the jobs)",
                self.table
            )
        })
        .await
    }

    fn item(job: &Job, version: u64) -> Result<HashMap<String, AttributeValue>> {
        let mut stored = job.clone();
        stored.version = version;
        let record = record::encode(&stored)?;
        let mut item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(job.id.to_string())),
            (
                "status".to_owned(),
                AttributeValue::S(job.status.as_str().to_owned()),
            ),
            ("version".to_owned(), AttributeValue::N(version.to_string())),
            (TENANT.to_owned(), AttributeValue::S(job.tenant.clone())),
            (
                TENANT_STATUS.to_owned(),
                AttributeValue::S(tenant_status(&job.tenant, job.status)),
            ),
            (
                "created_at".to_owned(),
                AttributeValue::S(job.created_at.to_rfc3339()),
            ),
            ("record".to_owned(), AttributeValue::S(record)),
        ]);
        // The table's TTL deletes the item once its record expires (see `minimoto_common::retention`).
        if let Some(at) = job.record_expires_at {
            item.insert(
                EXPIRES.to_owned(),
                AttributeValue::N(at.timestamp().to_string()),
            );
        }
        // A put replaces the whole item: an announcement no longer due leaves the index by itself.
        if let Some(due) = job.announcement_due() {
            item.insert(HOOK_SHARD.to_owned(), AttributeValue::S(DUE.to_owned()));
            item.insert(
                HOOK_DUE.to_owned(),
                AttributeValue::N(due.timestamp_millis().to_string()),
            );
        }
        Ok(item)
    }
}

/// The job of an index item (its `id` read from the item).
fn parse_listed(item: &HashMap<String, AttributeValue>) -> Result<Job> {
    let id = item
        .get("id")
        .and_then(|v| v.as_s().ok())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Invalid("a listed job has no readable id".into()))?;
    parse(id, item)
}

fn parse(id: JobId, item: &HashMap<String, AttributeValue>) -> Result<Job> {
    let record = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Invalid(format!("stored job {id} has no record")))?;
    record::decode(id, record)
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job, job.version)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => {
                Err(Error::Conflict(format!("job {} already exists", job.id)))
            }
            Err(e) => Err(sdk_error(SERVICE, "put job", e)),
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "get job", e))?;
        out.item().map(|item| parse(id, item)).transpose()
    }

    async fn replace(&self, job: &Job) -> Result<Job> {
        let next_version = job.version + 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job, next_version)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(job.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                let mut next = job.clone();
                next.version = next_version;
                Ok(next)
            }
            Err(e) if condition_failed(&e) => Err(Error::Conflict(format!(
                "job {} changed since version {}",
                job.id, job.version
            ))),
            Err(e) => Err(sdk_error(SERVICE, "replace job", e)),
        }
    }

    async fn delete(&self, id: JobId) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "delete job", e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>> {
        let (index, key, value) = match query.status {
            Some(status) => (
                BY_TENANT_STATUS,
                TENANT_STATUS,
                tenant_status(&query.tenant, status),
            ),
            None => (BY_TENANT, TENANT, query.tenant.clone()),
        };
        let mut names = HashMap::from([("#k".to_owned(), key.to_owned())]);
        let mut values = HashMap::from([(":k".to_owned(), AttributeValue::S(value))]);
        let condition = match query.before {
            Some(before) => {
                names.insert("#id".to_owned(), "id".to_owned());
                values.insert(":before".to_owned(), AttributeValue::S(before.to_string()));
                "#k = :k AND #id < :before"
            }
            None => "#k = :k",
        };
        let mut jobs = Vec::with_capacity(query.limit.min(100));
        let mut start = None;
        // An index page holds at most 1 MB: keep reading until the page is full or the index ends.
        while jobs.len() < query.limit {
            let want = i32::try_from(query.limit - jobs.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(false)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "list jobs", e))?;
            for item in out.items() {
                jobs.push(parse_listed(item)?);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        jobs.truncate(query.limit);
        Ok(jobs)
    }

    async fn count_active(&self, tenant: &str) -> Result<u64> {
        let mut count = 0u64;
        for status in [Status::Queued, Status::Running] {
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(BY_TENANT_STATUS)
                    .key_condition_expression("#k = :k")
                    .expression_attribute_names("#k", TENANT_STATUS)
                    .expression_attribute_values(
                        ":k",
                        AttributeValue::S(tenant_status(tenant, status)),
                    )
                    .select(Select::Count)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "count jobs", e))?;
                count += u64::try_from(out.count).unwrap_or(0);
                match out.last_evaluated_key {
                    Some(last) if !last.is_empty() => start = Some(last),
                    _ => break,
                }
            }
        }
        Ok(count)
    }

    async fn due_announcements(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JobId>> {
        let mut ids = Vec::new();
        let mut start = None;
        while ids.len() < limit {
            let want = i32::try_from(limit - ids.len()).unwrap_or(i32::MAX);
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_HOOK_DUE)
                .key_condition_expression("#s = :s AND #d <= :now")
                .expression_attribute_names("#s", HOOK_SHARD)
                .expression_attribute_names("#d", HOOK_DUE)
                .expression_attribute_values(":s", AttributeValue::S(DUE.to_owned()))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now.timestamp_millis().to_string()),
                )
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(SERVICE, "find due webhooks", e))?;
            for item in out.items() {
                let id = item
                    .get("id")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        Error::Invalid("a due webhook's job has no readable id".into())
                    })?;
                ids.push(id);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        ids.truncate(limit);
        Ok(ids)
    }

    async fn claim_key(
        &self,
        tenant: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<Option<KeyClaim>> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_item(tenant, key, claim)))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(e) if condition_failed(&e) => {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(key_item_id(tenant, key)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error(SERVICE, "get idempotency key", e))?;
                match out.item() {
                    Some(item) => claim_of(item).map(Some),
                    // Released in between: the caller may try again.
                    None => Err(Error::Conflict(format!(
                        "idempotency key {key:?} changed while it was read"
                    ))),
                }
            }
            Err(e) => Err(sdk_error(SERVICE, "put idempotency key", e)),
        }
    }

    async fn replace_key(
        &self,
        tenant: &str,
        key: &str,
        old: &KeyClaim,
        new: &KeyClaim,
    ) -> Result<bool> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(key_item(tenant, key, new)))
            .condition_expression("job_id = :old")
            .expression_attribute_values(":old", AttributeValue::S(old.job.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error(SERVICE, "replace idempotency key", e)),
        }
    }

    async fn release_key(&self, tenant: &str, key: &str, job: JobId) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(key_item_id(tenant, key)))
            .condition_expression("job_id = :job")
            .expression_attribute_values(":job", AttributeValue::S(job.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(sdk_error(SERVICE, "release idempotency key", e)),
        }
    }

    async fn ready(&self) -> Result<()> {
        self.check().await
    }
}
