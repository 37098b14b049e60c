//! The ports: the only ways the services reach storage.
//!
//! Each trait is shaped by what minimoto needs, not by an SDK, so the embedded adapters
//! (`minimoto-local`) and the cloud ones are interchangeable. Every adapter of a port passes the
//! same contract suite (`crate::contract`, feature `contract`).

use std::{path::Path, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{
    error::{Error, Result},
    fleet::{Beat, DecisionRecord, Directive, WorkerRecord},
    ids::JobId,
    job::{Job, Refusal, Status},
};

/// Object storage for photos and rendered outputs.
#[async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug {
    /// Stores the file at `path` under `key`, replacing what was there (so re-runs are idempotent).
    /// Returns the stored size in bytes.
    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> Result<u64>;
    /// Copies the object to a local file; `NotFound` if there is none.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64>;
    /// The object's size, or `None` if it does not exist.
    async fn size(&self, key: &str) -> Result<Option<u64>>;
    /// Deletes every object whose key starts with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;
    /// The names of the folders directly under `prefix` (which ends in `/`), in the order S3
    /// lists them (ascending by `name/`), after `start_after` when given, at most `limit` of them:
    /// under [`crate::layout::INPUTS`], the ids of the jobs that have photos stored.
    async fn folders(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>>;
    /// Removes what writes cut short by a crash left behind, once older than `older_than` (the
    /// temporary files of a store that writes by rename); returns how many. A store whose
    /// writes are atomic has none (S3's incomplete multipart uploads are its lifecycle rule's).
    async fn remove_debris(&self, older_than: Duration) -> Result<u64>;
    /// An expiring URL anyone can `GET` the object from (with HTTP Range support).
    async fn url(&self, key: &str, ttl: Duration) -> Result<SignedUrl>;
    /// One cheap round trip proving the store can serve now (for readiness checks).
    async fn ready(&self) -> Result<()>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedUrl {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The job records: the truth about every job.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Stores a new job; `Conflict` if the id exists.
    async fn create(&self, job: &Job) -> Result<()>;
    async fn get(&self, id: JobId) -> Result<Option<Job>>;
    /// Compare-and-set: stores `job` with its version bumped, only if the stored version still
    /// equals `job.version`; `Conflict` otherwise. Returns what was stored.
    async fn replace(&self, job: &Job) -> Result<Job>;
    /// Removes a job record (a submission that could not be queued, or retention); true if it existed.
    async fn delete(&self, id: JobId) -> Result<bool>;
    /// One page of a tenant's jobs, newest first (see [`JobQuery`]). Stores that list from an
    /// index updated after the write (DynamoDB) may miss a job written a moment ago.
    async fn list(&self, query: &JobQuery) -> Result<Vec<Job>>;
    /// How many of the tenant's jobs are queued or running (for its quota; as [`JobStore::list`],
    /// possibly a moment behind).
    async fn count_active(&self, tenant: &str) -> Result<u64>;
    /// How many jobs are in each status, over all tenants, for the metrics; `None` from a store
    /// that cannot count without reading every record (DynamoDB: a scan of the whole table).
    async fn count_by_status(&self) -> Result<Option<Vec<(Status, u64)>>> {
        Ok(None)
    }
    /// Jobs whose webhook is due by `now` (see [`crate::webhook`]), oldest due first, at most
    /// `limit`. As [`JobStore::list`], an index may be a moment behind: callers re-read the job.
    async fn due_announcements(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<JobId>>;
    /// Takes the idempotency key `key` of `tenant` for `claim`, unless it is taken: then returns
    /// the claim that holds it (and changes nothing).
    async fn claim_key(
        &self,
        tenant: &str,
        key: &str,
        claim: &KeyClaim,
    ) -> Result<Option<KeyClaim>>;
    /// Moves the key from `old` (a submission that died before its job existed) to `new`; false
    /// when it no longer holds `old` (someone else moved it first).
    async fn replace_key(
        &self,
        tenant: &str,
        key: &str,
        old: &KeyClaim,
        new: &KeyClaim,
    ) -> Result<bool>;
    /// Lets the key go if it still names `job` (its submission failed).
    async fn release_key(&self, tenant: &str, key: &str, job: JobId) -> Result<()>;
    /// One cheap round trip proving the store can serve now (for readiness checks).
    async fn ready(&self) -> Result<()>;
}

/// What an `Idempotency-Key` stands for: the job its first request made, and that request's
/// fingerprint (so a retry with another body is told apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    pub job: JobId,
    pub fingerprint: String,
}

/// Which of a tenant's jobs [`JobStore::list`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    pub tenant: String,
    /// Only jobs in this status.
    pub status: Option<Status>,
    /// Only jobs made before this one (ids sort by creation): the last id of the previous page.
    pub before: Option<JobId>,
    /// At most this many.
    pub limit: usize,
}

/// What came of [`update_job`].
#[derive(Debug)]
pub enum Update {
    Done(Job),
    /// The status machine or the lease refused the change; `Job` is the current record.
    Refused(Refusal, Job),
}

/// Reads a job, applies `change` (a [`Job`] transition) and writes it back with a compare-and-set,
/// re-reading and re-deciding when another writer got there first.
pub async fn update_job(
    store: &dyn JobStore,
    id: JobId,
    change: impl Fn(&mut Job) -> std::result::Result<(), Refusal> + Send,
) -> Result<Update> {
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        let mut job = store
            .get(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("job {id}")))?;
        if let Err(refusal) = change(&mut job) {
            return Ok(Update::Refused(refusal, job));
        }
        match store.replace(&job).await {
            Ok(stored) => return Ok(Update::Done(stored)),
            Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "job {id} kept changing under {ATTEMPTS} attempts to update it"
    )))
}

/// A message handed to a consumer; it stays invisible to others until its visibility timeout
/// passes, unless acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub job_id: JobId,
    /// Names this one receipt of the message; acks and extensions need it.
    pub receipt: String,
    /// How many times the message has been received, this time included (1 the first time).
    pub receive_count: u32,
}

/// How many messages are where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Depth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and not yet acknowledged.
    pub in_flight: u64,
    /// Moved to the dead-letter queue after too many receives.
    pub dead: u64,
}

/// The queue's receive limit (its dead-letter threshold) for jobs allowed `max_attempts` attempts.
///
/// Attempts are counted on the job record; receives run higher (a message that outruns its record,
/// a bounce off a live lease, the over-limit delivery on which a worker fails the job), so the
/// queue keeps a margin: dead-lettering is the last resort, after a worker had its chances to
/// write the job's final state.
pub fn receive_limit(max_attempts: u32) -> u32 {
    max_attempts.saturating_add(5)
}

/// The work queue: at-least-once delivery of job ids (SQS semantics).
#[async_trait]
pub trait JobQueue: Send + Sync + std::fmt::Debug {
    async fn send(&self, job: JobId) -> Result<()>;
    /// Waits up to `wait` for a message, then hides it from other consumers for `visibility`.
    /// A message already received as many times as the queue's receive limit (see [`receive_limit`])
    /// goes to the dead-letter queue instead of being delivered again.
    async fn receive(&self, wait: Duration, visibility: Duration) -> Result<Option<Delivery>>;
    /// Keeps a received message hidden for `visibility` from now (the heartbeat of a long job).
    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()>;
    /// Deletes a received message: the work is done (or will never be done).
    async fn ack(&self, receipt: &str) -> Result<()>;
    /// Takes back the message of a submission that failed after its id was sent (its record
    /// could not be written); whether it was removed. A queue that deletes only by receipt (SQS)
    /// answers `false`: workers drop a message whose job has no record a couple of minutes after
    /// the id was made.
    async fn withdraw(&self, job: JobId) -> Result<bool>;
    async fn depth(&self) -> Result<Depth>;
    /// One cheap round trip proving the queue can serve now (for readiness checks).
    async fn ready(&self) -> Result<()> {
        self.depth().await.map(|_| ())
    }
}

/// The worker registry: each worker's heartbeat in, the fleet as the scaler sees it out.
#[async_trait]
pub trait WorkerRegistry: Send + Sync + std::fmt::Debug {
    /// Writes a worker's beat (creating its record on the first) and answers what the scaler asks
    /// of it. A beat never clears a drain request.
    async fn beat(&self, beat: &Beat) -> Result<Directive>;
    /// Every registered worker, in no particular order.
    async fn list(&self) -> Result<Vec<WorkerRecord>>;
    /// Asks a worker to drain; `false` when no such worker is registered.
    async fn request_drain(&self, id: &str) -> Result<bool>;
    /// Forgets a worker (it stopped, or was terminated as dead). Removing an unknown one is fine.
    async fn remove(&self, id: &str) -> Result<()>;
    /// Keeps a scaler decision; only the last [`crate::fleet::DECISIONS_KEPT`] are kept.
    async fn record_decision(&self, decision: &DecisionRecord) -> Result<()>;
    /// The kept decisions, newest first.
    async fn decisions(&self) -> Result<Vec<DecisionRecord>>;
}

/// Deletes what retention has expired, where storage does not expire it by itself (the
/// embedded backend; on AWS the bucket's lifecycle rules and the table's TTL do). See
/// [`crate::retention`].
#[async_trait]
pub trait Expiry: Send + Sync + std::fmt::Debug {
    /// Deletes the files of the jobs expired by `now`, then the records expired by `now`.
    async fn sweep(&self, now: DateTime<Utc>) -> Result<crate::retention::Expired>;
}

/// The events queue: the end state of every job, for systems that consume a queue instead of
/// receiving webhooks (SQS on AWS, a table of the database on the embedded backend). Delivery is
/// at least once: a consumer deduplicates on the message's `id`, the job id.
#[async_trait]
pub trait EventQueue: Send + Sync + std::fmt::Debug {
    /// Puts one message on the queue: `event` (`job.succeeded`, …) and the JSON `body`.
    async fn publish(&self, event: &str, body: &str) -> Result<()>;
    /// Waits up to `wait` for messages, at most `max`, and hides them from other consumers for
    /// `visibility`: a consumer that does not [`EventQueue::ack`] them gets them again after it.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<EventMessage>>;
    /// Deletes a received message: the consumer has it.
    async fn ack(&self, receipt: &str) -> Result<()>;
    /// One cheap round trip proving the queue can take messages now.
    async fn ready(&self) -> Result<()>;
}

/// A message received from the events queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    pub receipt: String,
    pub body: String,
}

/// The most an events queue message may hold (SQS's limit), checked before publishing.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Refuses an event over [`MAX_EVENT_BYTES`] before it is sent, as [`Error::Invalid`]: no retry
/// makes it fit. Every [`EventQueue`] checks with it, so both backends refuse the same events.
pub fn check_event_size(body: &str) -> Result<()> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(Error::Invalid(format!(
            "an event of {} bytes is over the events queue's {MAX_EVENT_BYTES}",
            body.len()
        )));
    }
    Ok(())
}
