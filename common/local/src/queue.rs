//! [`JobQueue`] on SQLite with SQS semantics: long-poll receive, per-receive visibility timeout,
//! receipt handles, receive counts, extend, ack, and a dead-letter state after too many receives.
//!
//! Several processes can share the queue: a receive is one `BEGIN IMMEDIATE` transaction, so two
//! consumers never get the same message at once. Long polls wake at once for messages sent by this
//! process and poll every `POLL_INTERVAL` for messages sent by others.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use tokio::sync::Notify;

use crate::db::{Db, duration_ms, now_ms};
use minimoto_common::{
    error::{Error, Result},
    ids::JobId,
    ports::{Delivery, Depth, JobQueue},
};

const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct SqliteQueue {
    db: Db,
    /// A message received this many times goes to the dead-letter state on its next receive.
    max_receives: u32,
    sent: Arc<Notify>,
}

impl SqliteQueue {
    pub fn new(db: Db, max_receives: u32) -> Self {
        Self {
            db,
            max_receives: max_receives.max(1),
            sent: Arc::new(Notify::new()),
        }
    }

    async fn try_receive(&self, visibility: Duration) -> Result<Option<Delivery>> {
        let max = self.max_receives;
        let vis_ms = duration_ms(visibility);
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let found = loop {
                    let row = tx
                        .query_row(
                            "SELECT seq, job_id, receive_count FROM queue
                             WHERE dead = 0 AND visible_at_ms <= ?1 ORDER BY visible_at_ms, seq LIMIT 1",
                            [now],
                            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, u32>(2)?)),
                        )
                        .optional()?;
                    let Some((seq, job_id, count)) = row else { break None };
                    if count >= max {
                        tx.execute("UPDATE queue SET dead = 1, receipt = NULL WHERE seq = ?1", [seq])?;
                        tracing::warn!(job_id, receives = count, "message dead-lettered");
                        continue;
                    }
                    let receipt = format!("{seq}.{}", uuid::Uuid::new_v4().simple());
                    tx.execute(
                        "UPDATE queue SET receive_count = receive_count + 1, receipt = ?2, visible_at_ms = ?3
                         WHERE seq = ?1",
                        params![seq, receipt, now + vis_ms],
                    )?;
                    let job_id = job_id
                        .parse::<JobId>()
                        .map_err(|e| Error::Invalid(format!("queued job id `{job_id}`: {e}")))?;
                    break Some(Delivery { job_id, receipt, receive_count: count + 1 });
                };
                tx.commit()?;
                Ok(found)
            })
            .await
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    async fn send(&self, job: JobId) -> Result<()> {
        let id = job.to_string();
        self.db
            .call(move |c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO queue (job_id, sent_at_ms, visible_at_ms) VALUES (?1, ?2, ?2)",
                    params![id, now],
                )?;
                Ok(())
            })
            .await?;
        self.sent.notify_waiters();
        Ok(())
    }

    async fn receive(&self, wait: Duration, visibility: Duration) -> Result<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.sent.notified();
            if let Some(d) = self.try_receive(visibility).await? {
                return Ok(Some(d));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = POLL_INTERVAL.min(deadline - now);
            let _ = tokio::time::timeout(nap, notified).await;
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        let receipt = receipt.to_owned();
        let vis_ms = duration_ms(visibility);
        self.db
            .call(move |c| {
                let n = c.execute(
                    "UPDATE queue SET visible_at_ms = ?2 WHERE receipt = ?1 AND dead = 0",
                    params![receipt, now_ms() + vis_ms],
                )?;
                if n == 0 {
                    return Err(Error::NotFound(format!("message with receipt {receipt}")).into());
                }
                Ok(())
            })
            .await
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        let receipt = receipt.to_owned();
        self.db
            .call(move |c| {
                // Like SQS, acking a receipt that is gone (already acked, or superseded by a later
                // receive) is not an error: the message is no longer ours either way.
                c.execute(
                    "DELETE FROM queue WHERE receipt = ?1 AND dead = 0",
                    [receipt],
                )?;
                Ok(())
            })
            .await
    }

    async fn withdraw(&self, job: JobId) -> Result<bool> {
        let id = job.to_string();
        self.db
            .call(move |c| {
                // A delete frees pages, so it succeeds on a database that is full.
                Ok(c.execute("DELETE FROM queue WHERE job_id = ?1 AND dead = 0", [id])? > 0)
            })
            .await
    }

    async fn depth(&self) -> Result<Depth> {
        self.db
            .read(|c| {
                let now = now_ms();
                let count =
                    |sql: &str| -> rusqlite::Result<u64> { c.query_row(sql, [now], |r| r.get(0)) };
                Ok(Depth {
                    visible: count(
                        "SELECT COUNT(*) FROM queue WHERE dead = 0 AND visible_at_ms <= ?1",
                    )?,
                    in_flight: count(
                        "SELECT COUNT(*) FROM queue WHERE dead = 0 AND visible_at_ms > ?1",
                    )?,
                    dead: count("SELECT COUNT(*) FROM queue WHERE dead = 1 AND ?1 = ?1")?,
                })
            })
            .await
    }
}
