//! [`WorkerRegistry`] on SQLite: one row per worker (its last beat as JSON, and the scaler's drain
//! request in a column of its own, so a beat can never overwrite it), and the scaler's last
//! decisions.

use async_trait::async_trait;
use rusqlite::params;

use crate::db::Db;
use minimoto_common::{
    error::{Error, Result},
    fleet::{Beat, DECISIONS_KEPT, DecisionRecord, Directive, WorkerRecord},
    ports::WorkerRegistry,
};

#[derive(Debug, Clone)]
pub struct SqliteRegistry {
    db: Db,
}

impl SqliteRegistry {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

fn json_error(e: serde_json::Error) -> Error {
    Error::backend(
        "sqlite",
        format!("a worker registry row does not decode: {e}"),
    )
}

#[async_trait]
impl WorkerRegistry for SqliteRegistry {
    async fn beat(&self, beat: &Beat) -> Result<Directive> {
        let (id, record) = (
            beat.id.clone(),
            serde_json::to_string(beat).map_err(json_error)?,
        );
        let drain = self
            .db
            .call(move |c| {
                Ok(c.query_row(
                    "INSERT INTO workers (id, beat, drain) VALUES (?1, ?2, 0)
                     ON CONFLICT (id) DO UPDATE SET beat = excluded.beat
                     RETURNING drain",
                    params![id, record],
                    |r| r.get::<_, bool>(0),
                )?)
            })
            .await?;
        Ok(Directive { drain })
    }

    async fn list(&self) -> Result<Vec<WorkerRecord>> {
        let rows: Vec<(String, bool)> = self
            .db
            .read(|c| {
                let mut stmt = c.prepare("SELECT beat, drain FROM workers")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(beat, drain_requested)| {
                Ok(WorkerRecord {
                    beat: serde_json::from_str(&beat).map_err(json_error)?,
                    drain_requested,
                })
            })
            .collect()
    }

    async fn request_drain(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.db
            .call(move |c| Ok(c.execute("UPDATE workers SET drain = 1 WHERE id = ?1", [id])? > 0))
            .await
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.db
            .call(move |c| {
                c.execute("DELETE FROM workers WHERE id = ?1", [id])?;
                Ok(())
            })
            .await
    }

    async fn record_decision(&self, decision: &DecisionRecord) -> Result<()> {
        let (at, body) = (
            decision.at.to_rfc3339(),
            serde_json::to_string(&decision.decision).map_err(json_error)?,
        );
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT INTO decisions (at, decision) VALUES (?1, ?2)",
                    params![at, body],
                )?;
                tx.execute(
                    "DELETE FROM decisions WHERE seq NOT IN
                     (SELECT seq FROM decisions ORDER BY seq DESC LIMIT ?1)",
                    [DECISIONS_KEPT as i64],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn decisions(&self) -> Result<Vec<DecisionRecord>> {
        let rows: Vec<(String, String)> = self
            .db
            .read(|c| {
                let mut stmt = c.prepare("SELECT at, decision FROM decisions ORDER BY seq DESC")?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(at, body)| {
                let at = chrono::DateTime::parse_from_rfc3339(&at)
                    .map_err(|e| Error::backend("sqlite", format!("a decision's time: {e}")))?
                    .to_utc();
                Ok(DecisionRecord {
                    at,
                    decision: serde_json::from_str(&body).map_err(json_error)?,
                })
            })
            .collect()
    }
}
