//! [`EventQueue`] on SQLite: the `events` table of the shared database, with the receive,
//! visibility and ack of SQS, so a consumer written for the embedded backend
//! (`minimoto events`) behaves as one on SQS would.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{TransactionBehavior, params};

use crate::db::{Db, duration_ms, now_ms};
use minimoto_common::{
    error::Result,
    ports::{EventMessage, EventQueue, check_event_size},
};

/// How often a long poll looks again for a message another process published.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct SqliteEvents {
    db: Db,
}

impl SqliteEvents {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    async fn try_receive(&self, max: usize, visibility: Duration) -> Result<Vec<EventMessage>> {
        let max = i64::try_from(max.clamp(1, 10)).unwrap_or(10);
        let vis_ms = duration_ms(visibility);
        self.db
            .call(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let rows = {
                    let mut select = tx.prepare(
                        "SELECT seq, body FROM events WHERE visible_at_ms <= ?1
                         ORDER BY visible_at_ms, seq LIMIT ?2",
                    )?;
                    select
                        .query_map(params![now, max], |r| {
                            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?
                };
                let mut found = Vec::with_capacity(rows.len());
                for (seq, body) in rows {
                    let receipt = format!("{seq}.{}", uuid::Uuid::new_v4().simple());
                    tx.execute(
                        "UPDATE events SET receipt = ?2, visible_at_ms = ?3 WHERE seq = ?1",
                        params![seq, receipt, now + vis_ms],
                    )?;
                    found.push(EventMessage { receipt, body });
                }
                tx.commit()?;
                Ok(found)
            })
            .await
    }

    /// Messages on the queue, received or not (for tests and the operator).
    pub async fn len(&self) -> Result<u64> {
        self.db
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?))
            .await
    }
}

#[async_trait]
impl EventQueue for SqliteEvents {
    async fn publish(&self, event: &str, body: &str) -> Result<()> {
        check_event_size(body)?;
        let (event, body) = (event.to_owned(), body.to_owned());
        self.db
            .call(move |c| {
                let now = now_ms();
                c.execute(
                    "INSERT INTO events (event, body, sent_at_ms, visible_at_ms) VALUES (?1, ?2, ?3, ?3)",
                    params![event, body, now],
                )?;
                Ok(())
            })
            .await
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<EventMessage>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let found = self.try_receive(max, visibility).await?;
            let now = tokio::time::Instant::now();
            if !found.is_empty() || now >= deadline {
                return Ok(found);
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        let receipt = receipt.to_owned();
        self.db
            .call(move |c| {
                // As on SQS, a receipt that is gone (acked already) is no error.
                c.execute("DELETE FROM events WHERE receipt = ?1", [receipt])?;
                Ok(())
            })
            .await
    }

    async fn ready(&self) -> Result<()> {
        self.db.probe_write().await
    }
}
