//! Fleets: where workers run. One port, [`Fleet`], with two adapters: `local` (worker processes on
//! this machine) and `ec2` (instances from a launch template, feature `aws`). Both pass the same
//! contract suite ([`contract`]).
//!
//! A fleet only starts and stops machines or processes; the drain handshake (ask the worker to
//! drain through the registry, wait for it to report `stopped`, then terminate) is the
//! controller's, so no fleet ever decides to stop a busy worker.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Result;

pub mod contract;
#[cfg(feature = "aws")]
pub mod ec2;
pub mod local;

/// A worker the fleet runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The worker id the member was launched with; its registry record has the same id.
    pub worker_id: String,
    /// What the fleet calls it: a process id, or an EC2 instance id.
    pub handle: String,
    pub launched_at: DateTime<Utc>,
}

#[async_trait]
pub trait Fleet: Send + Sync + std::fmt::Debug {
    /// `local` or `ec2`, for logs and metrics.
    fn kind(&self) -> &'static str;
    /// Checks the fleet's settings against what exists (the launch template, the worker program)
    /// before the scaler starts; the error names the setting.
    async fn check(&self) -> Result<()>;
    /// Starts `count` workers, each with a new worker id.
    async fn launch(&self, count: u32) -> Result<Vec<Member>>;
    /// The members running or starting now; terminated ones are not listed.
    async fn list(&self) -> Result<Vec<Member>>;
    /// Stops a member for good. Terminating one that is gone (or was never there) is fine.
    async fn terminate(&self, worker_id: &str) -> Result<()>;
}

/// A new worker id: `w-` and 12 hex digits, short enough for a tag and a log line.
pub fn new_worker_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("w-{}", &id[..12])
}
