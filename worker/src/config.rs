//! How a worker consumes the queue.

use std::{path::PathBuf, time::Duration};

use minimoto_common::limits::Limits;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names this worker in job leases and logs.
    pub id: String,
    /// Longest wait of one long-poll receive.
    pub poll_wait: Duration,
    /// How long a received message stays hidden; also how long a lease lives without a heartbeat.
    pub visibility: Duration,
    /// How often a running job extends its message and its lease (well under `visibility`).
    pub heartbeat_every: Duration,
    /// Claims of one job before it is failed for good (the queue dead-letters one receive later).
    pub max_attempts: u32,
    pub limits: Limits,
    /// Per-job scratch directories are made (and removed) here.
    pub scratch_dir: PathBuf,
}

impl WorkerConfig {
    /// A unique worker id: host, process and a random suffix (several workers share a process).
    pub fn new_id() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
        let rand = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &rand[..8])
    }
}
