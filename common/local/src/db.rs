//! One SQLite database file shared by every process of a local deployment.

use std::{path::Path, sync::Arc, time::Duration};

use rusqlite::Connection;
use tokio::sync::Mutex;

use minimoto_common::error::{Error, Result};

use crate::error::DbError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    record     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS queue (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id        TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    dead          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (dead, visible_at_ms, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue (receipt);
CREATE TABLE IF NOT EXISTS workers (
    id    TEXT PRIMARY KEY,
    beat  TEXT NOT NULL,
    drain INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS decisions (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    decision TEXT NOT NULL
);
";

/// A connection to the shared database; cheap to clone. Calls run on the blocking pool.
#[derive(Debug, Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) the database, in WAL mode so readers never block the writer,
    /// and with a busy timeout so processes queue up on the write lock instead of failing.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self::open_inner(path)?)
    }

    fn open_inner(path: &Path) -> Result<Self, DbError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let mut conn = conn;
            f(&mut conn).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }
}
