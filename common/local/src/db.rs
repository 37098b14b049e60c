//! One SQLite database file shared by every process of a local deployment.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

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
    record     TEXT NOT NULL,
    tenant     TEXT NOT NULL DEFAULT 'default',
    hook_due_ms INTEGER,
    sweep_due_ms INTEGER
);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant      TEXT NOT NULL,
    key         TEXT NOT NULL,
    job_id      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
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
CREATE TABLE IF NOT EXISTS events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event         TEXT NOT NULL,
    body          TEXT NOT NULL,
    sent_at_ms    INTEGER NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receipt       TEXT
);
CREATE INDEX IF NOT EXISTS events_ready ON events (visible_at_ms, seq);
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

/// Connections to the shared database; cheap to clone. Calls run on the blocking pool.
///
/// Writes go through one connection and reads through another: a write waiting up to the busy
/// timeout for another process's lock must not hold up every read of this one (in WAL mode a
/// reader never waits for a writer).
#[derive(Debug, Clone)]
pub struct Db {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    /// For [`Db::probe_write`] alone, with a short busy timeout, so a readiness probe neither
    /// queues behind the writer nor piles up while the database is stuck.
    probe: Arc<Mutex<Connection>>,
}

/// How long a write probe waits for the write lock: under the readiness check's bound.
const PROBE_WAIT: Duration = Duration::from_secs(2);

/// Indexes on columns a database made by an older version may lack until [`migrate`] adds them.
const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs (tenant, id);
CREATE INDEX IF NOT EXISTS jobs_by_tenant_status ON jobs (tenant, status, id);
CREATE INDEX IF NOT EXISTS jobs_hook_due ON jobs (hook_due_ms) WHERE hook_due_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_sweep_due ON jobs (sweep_due_ms) WHERE sweep_due_ms IS NOT NULL;
";

/// Columns added to `jobs` after its first version, with their definitions.
const ADDED_COLUMNS: [(&str, &str); 3] = [
    // Jobs from before tenants belong to the open tenant.
    ("tenant", "TEXT NOT NULL DEFAULT 'default'"),
    // When the job's webhook is due (epoch ms); none before webhooks.
    ("hook_due_ms", "INTEGER"),
    // When retention has something to delete (epoch ms); none before retention.
    ("sweep_due_ms", "INTEGER"),
];

/// Brings a database made by an older version up to [`SCHEMA`] (the [`ADDED_COLUMNS`] with
/// their defaults, and the indexes on them).
fn migrate(c: &mut Connection) -> Result<(), DbError> {
    // Under the write lock: two processes opening an old database at once must not both add one.
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for (column, definition) in ADDED_COLUMNS {
        let present: bool = tx.query_row(
            "SELECT count(*) FROM pragma_table_info('jobs') WHERE name = ?1",
            [column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !present {
            tx.execute_batch(&format!(
                "ALTER TABLE jobs ADD COLUMN {column} {definition}"
            ))?;
        }
    }
    tx.execute_batch(INDEXES)?;
    tx.commit()?;
    Ok(())
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
        let mut writer = Connection::open(path)?;
        writer.busy_timeout(Duration::from_secs(10))?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.execute_batch(SCHEMA)?;
        migrate(&mut writer)?;
        let reader = Connection::open(path)?;
        reader.busy_timeout(Duration::from_secs(10))?;
        let probe = Connection::open(path)?;
        probe.busy_timeout(PROBE_WAIT)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            probe: Arc::new(Mutex::new(probe)),
        })
    }

    /// Proves a write could start now: takes the write lock and lets it go, writing nothing.
    /// Fails when another process holds the lock past `PROBE_WAIT` (2 s), or while an earlier probe
    /// is still waiting.
    pub async fn probe_write(&self) -> Result<()> {
        let Ok(conn) = self.probe.clone().try_lock_owned() else {
            return Err(Error::backend(
                "sqlite",
                "an earlier probe is still waiting for the write lock",
            ));
        };
        tokio::task::spawn_blocking(move || {
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK")
                .map_err(|e| Error::backend("sqlite", format!("cannot take the write lock: {e}")))
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }

    /// Runs `f` with the writing connection on a blocking thread.
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T> {
        let conn = self.writer.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let mut conn = conn;
            f(&mut conn).map_err(Error::from)
        })
        .await
        .map_err(|e| Error::backend("sqlite", e))?
    }

    /// Runs `f`, which only reads, with the reading connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T> {
        let conn = self.reader.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || f(&conn).map_err(Error::from))
            .await
            .map_err(|e| Error::backend("sqlite", e))?
    }
}

/// Now, in the milliseconds since the epoch that the queue tables keep their times in.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ms)
}

/// A duration in the tables' milliseconds, saturating.
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before tenants: its jobs table lacks the column until opened.
    #[test]
    fn a_database_from_before_tenants_gets_the_column_and_its_jobs_the_open_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let old = Connection::open(&path).expect("old");
        old.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, version INTEGER NOT NULL,
                 created_at TEXT NOT NULL, record TEXT NOT NULL);
             INSERT INTO jobs VALUES ('j', 'queued', 0, 't', '{}');",
        )
        .expect("old schema");
        drop(old);
        let db = Db::open(&path).expect("open migrates");
        let tenant: String = tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(db.read(|c| {
                Ok(c.query_row("SELECT tenant FROM jobs WHERE id = 'j'", [], |r| r.get(0))?)
            }))
            .expect("read");
        assert_eq!(tenant, "default");
        Db::open(&path).expect("opening again changes nothing");
    }

    /// A database from between tenants and webhooks: it gains `hook_due_ms` (empty: no job of
    /// then has a webhook) and its index, and keeps its tenants.
    #[test]
    fn a_database_from_before_webhooks_gets_the_column_and_its_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let old = Connection::open(&path).expect("old");
        old.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, version INTEGER NOT NULL,
                 created_at TEXT NOT NULL, record TEXT NOT NULL,
                 tenant TEXT NOT NULL DEFAULT 'default');
             CREATE INDEX jobs_by_tenant ON jobs (tenant, id);
             INSERT INTO jobs VALUES ('j', 'succeeded', 3, 't', '{}', 'acme');",
        )
        .expect("old schema");
        drop(old);
        let db = Db::open(&path).expect("open migrates");
        let (tenant, due, index): (String, Option<i64>, i64) = tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(db.read(|c| {
                Ok(c.query_row(
                    "SELECT tenant, hook_due_ms,
                        (SELECT count(*) FROM sqlite_master WHERE name = 'jobs_hook_due')
                     FROM jobs WHERE id = 'j'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?)
            }))
            .expect("read");
        assert_eq!((tenant.as_str(), due, index), ("acme", None, 1));
    }

    /// Another process holds the write lock; a write of ours waits for it (up to the busy
    /// timeout). Reads must still answer meanwhile.
    #[tokio::test]
    async fn a_write_waiting_for_the_lock_does_not_hold_up_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let db = Db::open(&path).expect("open");
        let other = Connection::open(&path).expect("other process");
        other
            .execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");

        let writing = tokio::spawn({
            let db = db.clone();
            async move {
                db.call(|c| {
                    Ok(c.execute("INSERT INTO decisions (at, decision) VALUES ('t', 'd')", [])?)
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!writing.is_finished(), "the write waits for the lock");
        // Well inside the 10 s busy timeout the write is waiting out.
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            db.read(|c| {
                Ok(c.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get::<_, i64>(0))?)
            }),
        )
        .await
        .expect("the read answers while the write waits")
        .expect("read");
        assert_eq!(read, 0);
        // Readiness sees that writes are stuck, within its bound.
        let probe = db.probe_write().await.expect_err("the write lock is held");
        assert!(probe.to_string().contains("write lock"), "{probe}");
        other.execute_batch("COMMIT").expect("release");
        assert_eq!(writing.await.expect("join").expect("write"), 1);
        db.probe_write().await.expect("writable again");
    }
}
