//! The job record and its status machine.
//!
//! ```text
//! queued ──claim──▶ running ──succeed──▶ succeeded
//!    │                 │ └────fail─────▶ failed
//!    └──cancel──▶ cancelled ◀──cancel──┘
//! ```
//!
//! Every change is a method here that checks the machine (and, while running, the lease owner), and
//! stores persist it with a compare-and-set on [`Job::version`]: two processes racing on one job
//! cannot both win. Terminal states never change.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    codes::ErrorCode, ids::JobId, retention::Retention, spec::RenderSpec, webhook::Webhook,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl Status {
    /// Every status, in the machine's order.
    pub const ALL: [Self; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// Whether the machine allows `self → next`.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Queued, Running)
                | (Running, Succeeded)
                | (Running, Failed)
                | (Queued | Running, Cancelled)
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What a running job is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Downloading,
    Rendering,
    Uploading,
}

/// Why a job failed: a stable kebab-case `code` for programs and a `message` for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    #[schema(example = "input-missing")]
    pub code: ErrorCode,
    #[schema(example = "photo 3 could not be decoded: the file is truncated")]
    pub message: String,
}

impl JobError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a succeeded job produced: where the files are (blob keys) and facts about the video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    pub video_key: String,
    pub poster_key: String,
    /// Thumbnails of the poster, in the order the options listed their sizes.
    #[serde(default)]
    pub thumbnails: Vec<Thumbnail>,
    /// The animated preview, when the options asked for one.
    #[serde(default)]
    pub preview_key: Option<String>,
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub size_bytes: u64,
}

/// One stored thumbnail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// The size asked for (the longest side).
    pub size: u32,
    pub key: String,
    /// Its actual size: `size` on the longest side, unless the video is smaller.
    pub width: u32,
    pub height: u32,
}

/// One photo as ingest found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"file_name": "IMG_2041.jpg", "format": "jpeg", "width": 3024,
    "height": 4032, "orientation": 6, "taken": "2024-05-17T09:30:00", "bytes": 2811904}))]
pub struct ImageReport {
    /// The name the client gave the part, if any.
    pub file_name: Option<String>,
    /// The format read from the content: `jpeg`, `png`, `webp`, `gif`, `bmp`, `tiff` or `heic`.
    pub format: String,
    /// Width as shown: after the EXIF orientation.
    pub width: u32,
    /// Height as shown: after the EXIF orientation.
    pub height: u32,
    /// The EXIF orientation applied to show it upright, 1–8 (1: none; 6: turned a quarter
    /// clockwise).
    pub orientation: u8,
    /// When it was taken (EXIF, the camera's local time), if it says.
    #[schema(value_type = Option<String>, example = "2024-05-17T09:30:00")]
    pub taken: Option<chrono::NaiveDateTime>,
    /// Its size as uploaded.
    pub bytes: u64,
}

/// The soundtrack as ingest found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"file_name": "song.mp3", "format": "mp3", "codec": "mp3",
    "sample_rate": 44100, "channels": 2, "duration_seconds": 183.4, "bytes": 4404019}))]
pub struct AudioReport {
    /// The name the client gave the part, if any.
    pub file_name: Option<String>,
    /// The container read from the content: `mp3`, `aac`, `m4a`, `wav`, `ogg` or `flac`.
    pub format: String,
    /// The codec: `mp3`, `aac`, `pcm_s16le` (and other PCM), `vorbis` or `flac`.
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u32,
    /// The whole track's length when known; the video cuts it or loops it to its own length.
    pub duration_seconds: Option<f64>,
    /// Its size as uploaded.
    pub bytes: u64,
}

/// A stored soundtrack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Soundtrack {
    pub key: String,
    pub report: AudioReport,
}

/// Which worker holds a running job, and when it last proved it is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub heartbeat_at: DateTime<Utc>,
}

/// The tenant of jobs submitted to a server that runs without API keys.
pub const OPEN_TENANT: &str = "default";

fn open_tenant() -> String {
    OPEN_TENANT.to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    /// Who submitted it (the tenant of the API key; [`OPEN_TENANT`] without keys): only that
    /// tenant sees it.
    #[serde(default = "open_tenant")]
    pub tenant: String,
    pub status: Status,
    pub stage: Option<Stage>,
    pub progress: f64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub options: RenderSpec,
    /// Blob keys of the photos, in order.
    pub inputs: Vec<String>,
    /// What ingest found in each photo, in the video's order (empty in records from before it
    /// was kept).
    #[serde(default)]
    pub images: Vec<ImageReport>,
    /// The soundtrack, when the job was given one.
    #[serde(default)]
    pub audio: Option<Soundtrack>,
    pub error: Option<JobError>,
    pub outputs: Option<Outputs>,
    pub lease: Option<Lease>,
    /// How many times a worker has claimed the job.
    pub attempts: u32,
    /// When the job's files (photos and outputs) were deleted, by `DELETE /v1/jobs/{id}`: the
    /// record stays, so the job still answers, and its outputs answer 410 Gone.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
    /// The announcement of the end state to `options.callback_url`: made by the transition that
    /// ends the job, in the same write (see [`crate::webhook`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// Whether its end state is published on the events queue, from the API that took it
    /// (`--publish-events`), so whichever process ends the job knows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_event: bool,
    /// The announcement of the end state on the events queue: made, like `webhook`, by the
    /// transition that ends a job with `publish_event`, and published by the API's deliverer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_event: Option<Webhook>,
    /// How long its files and record outlive it, from the API that took it (none: kept until
    /// deleted). See [`crate::retention`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// When its photos and outputs expire: set when it ends, by its `retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When its record expires: set when it ends, by its `retention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_expires_at: Option<DateTime<Utc>>,
    /// When an expiry sweep deleted its files (on storage that does not expire them itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_expired_at: Option<DateTime<Utc>>,
    /// Bumped by every store write; the compare-and-set token.
    pub version: u64,
}

/// Why a change was refused by the status machine or the lease.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("job is {0:?}, which cannot become {1:?}")]
    Status(Status, Status),
    #[error("job is leased by another worker")]
    NotOwner,
    #[error("job is held by a live worker")]
    Leased,
    #[error("the job's files are already deleted")]
    Purged,
    #[error("the job has no announcement due")]
    NotDue,
    #[error("the job's files are not due to expire")]
    NotExpired,
}

impl Job {
    pub fn new(id: JobId, options: RenderSpec, inputs: Vec<String>, now: DateTime<Utc>) -> Self {
        Self {
            id,
            tenant: open_tenant(),
            status: Status::Queued,
            stage: None,
            progress: 0.0,
            created_at: now,
            started_at: None,
            finished_at: None,
            options,
            inputs,
            images: Vec::new(),
            audio: None,
            error: None,
            outputs: None,
            lease: None,
            attempts: 0,
            purged_at: None,
            webhook: None,
            publish_event: false,
            queue_event: None,
            retention: None,
            expires_at: None,
            record_expires_at: None,
            files_expired_at: None,
            version: 0,
        }
    }

    fn become_(&mut self, next: Status) -> Result<(), Refusal> {
        if !self.status.can_become(next) {
            return Err(Refusal::Status(self.status, next));
        }
        self.status = next;
        Ok(())
    }

    fn check_owner(&self, worker: &str) -> Result<(), Refusal> {
        if self.status != Status::Running {
            return Err(Refusal::Status(self.status, Status::Running));
        }
        match &self.lease {
            Some(lease) if lease.owner == worker => Ok(()),
            _ => Err(Refusal::NotOwner),
        }
    }

    /// A worker takes the job: `queued → running`, or takes over a running job whose holder has
    /// not sent a heartbeat for `lease_ttl` (it crashed; the queue delivered the job again).
    pub fn claim(
        &mut self,
        worker: &str,
        now: DateTime<Utc>,
        lease_ttl: Duration,
    ) -> Result<(), Refusal> {
        match (&self.status, &self.lease) {
            (Status::Running, Some(lease))
                if lease.heartbeat_at + lease_ttl > now && lease.owner != worker =>
            {
                return Err(Refusal::Leased);
            }
            (Status::Running, _) => {}
            _ => self.become_(Status::Running)?,
        }
        self.started_at = Some(now);
        self.stage = Some(Stage::Downloading);
        self.progress = 0.0;
        self.lease = Some(Lease {
            owner: worker.into(),
            heartbeat_at: now,
        });
        self.attempts += 1;
        Ok(())
    }

    /// The holder reports it is alive, and where it is.
    pub fn heartbeat(
        &mut self,
        worker: &str,
        stage: Stage,
        progress: f64,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_owner(worker)?;
        self.stage = Some(stage);
        self.progress = progress.clamp(0.0, 1.0);
        self.lease = Some(Lease {
            owner: worker.into(),
            heartbeat_at: now,
        });
        Ok(())
    }

    /// The holder gives the job back without finishing it (a retryable failure, or shutdown): it
    /// stays `running` with no lease, so the next delivery of its message can claim it at once.
    pub fn release(&mut self, worker: &str) -> Result<(), Refusal> {
        self.check_owner(worker)?;
        self.lease = None;
        self.stage = None;
        self.progress = 0.0;
        Ok(())
    }

    /// The holder gives the job back because its machine is going away (a Spot interruption):
    /// as [`Job::release`], and the attempt does not count against the job.
    pub fn hand_back(&mut self, worker: &str) -> Result<(), Refusal> {
        self.release(worker)?;
        self.attempts = self.attempts.saturating_sub(1);
        Ok(())
    }

    pub fn succeed(
        &mut self,
        worker: &str,
        outputs: Outputs,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_owner(worker)?;
        self.become_(Status::Succeeded)?;
        self.outputs = Some(outputs);
        self.progress = 1.0;
        self.finish(now);
        Ok(())
    }

    pub fn fail(
        &mut self,
        worker: &str,
        error: JobError,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        self.check_owner(worker)?;
        self.become_(Status::Failed)?;
        self.error = Some(error);
        self.finish(now);
        Ok(())
    }

    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        self.become_(Status::Cancelled)?;
        self.finish(now);
        Ok(())
    }

    /// The client deletes the job: a queued or running job is cancelled (its worker sees that
    /// at its next look and stops), and the job is marked as having no files, which the caller
    /// then deletes. Refused only when that was done already.
    pub fn delete(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        if self.purged_at.is_some() {
            return Err(Refusal::Purged);
        }
        if !self.status.is_terminal() {
            self.cancel(now)?;
        }
        self.purged_at = Some(now);
        Ok(())
    }

    /// Whether the job's files are of no more use: it was cancelled or deleted. (The files of a
    /// job that ended otherwise stay until deleted or expired.)
    pub fn is_discarded(&self) -> bool {
        self.status == Status::Cancelled || self.purged_at.is_some()
    }

    fn finish(&mut self, now: DateTime<Utc>) {
        self.finished_at = Some(now);
        self.stage = None;
        self.lease = None;
        if self.options.callback_url.is_some() {
            self.webhook = Some(Webhook::new(self.status, now));
        }
        if self.publish_event {
            self.queue_event = Some(Webhook::new(self.status, now));
        }
        if let Some(r) = self.retention {
            let after = |seconds: u64| {
                Duration::try_seconds(i64::try_from(seconds).ok()?)
                    .and_then(|d| now.checked_add_signed(d))
            };
            self.expires_at = after(r.files_seconds);
            self.record_expires_at = after(r.record_seconds.max(r.files_seconds));
        }
    }

    /// When its next announcement (the webhook, or the event on the events queue) is due, if
    /// any is: what the stores index for [`crate::ports::JobStore::due_announcements`].
    pub fn announcement_due(&self) -> Option<DateTime<Utc>> {
        let webhook = self.webhook.as_ref().and_then(Webhook::due_at);
        let event = self.queue_event.as_ref().and_then(Webhook::due_at);
        match (webhook, event) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether its photos and outputs have expired by `now` (they answer 410 from then on,
    /// whether or not storage has deleted them yet).
    pub fn files_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Whether its record has expired by `now`: it is as good as deleted (storage deletes it
    /// some time after: DynamoDB's TTL within days, the embedded sweep within its interval).
    pub fn record_expired(&self, now: DateTime<Utc>) -> bool {
        self.record_expires_at.is_some_and(|at| at <= now)
    }

    /// When an expiry sweep has something to do for this job: delete its files, then (once
    /// that is done) its record.
    pub fn sweep_due(&self) -> Option<DateTime<Utc>> {
        match self.files_expired_at {
            None => self.expires_at,
            Some(_) => self.record_expires_at,
        }
    }

    /// An expiry sweep has deleted its files.
    pub fn expire_files(&mut self, now: DateTime<Utc>) -> Result<(), Refusal> {
        if !self.files_expired(now) || self.files_expired_at.is_some() {
            return Err(Refusal::NotExpired);
        }
        self.files_expired_at = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::{Outcome, Schedule, Take};
    use Status::*;

    const ALL: [Status; 5] = Status::ALL;

    fn job() -> Job {
        Job::new(
            JobId::new(),
            RenderSpec::default(),
            vec!["a".into()],
            Utc::now(),
        )
    }

    fn outputs() -> Outputs {
        Outputs {
            video_key: "v".into(),
            poster_key: "p".into(),
            thumbnails: Vec::new(),
            preview_key: None,
            duration_seconds: 3.0,
            width: 2,
            height: 2,
            frames: 90,
            size_bytes: 1,
        }
    }

    #[test]
    fn the_machine_allows_exactly_the_documented_edges() {
        let allowed: Vec<_> = ALL
            .iter()
            .flat_map(|a| ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Queued, Running),
                (Queued, Cancelled),
                (Running, Succeeded),
                (Running, Failed),
                (Running, Cancelled)
            ]
        );
        for s in [Succeeded, Failed, Cancelled] {
            assert!(s.is_terminal());
            assert!(ALL.iter().all(|n| !s.can_become(*n)), "{s:?} must be final");
        }
    }

    #[test]
    fn a_claimed_job_runs_to_success_under_its_owner_only() {
        let now = Utc::now();
        let ttl = Duration::seconds(30);
        let mut j = job();
        j.claim("w1", now, ttl).expect("claim");
        assert_eq!(
            (j.status, j.attempts, j.stage),
            (Running, 1, Some(Stage::Downloading))
        );
        assert_eq!(j.clone().claim("w2", now, ttl), Err(Refusal::Leased));
        assert_eq!(
            j.clone().heartbeat("w2", Stage::Rendering, 0.5, now),
            Err(Refusal::NotOwner)
        );
        j.heartbeat("w1", Stage::Rendering, 1.7, now)
            .expect("heartbeat");
        assert_eq!(j.progress, 1.0, "progress is clamped");
        assert_eq!(
            j.clone().succeed("w2", outputs(), now),
            Err(Refusal::NotOwner)
        );
        j.succeed("w1", outputs(), now).expect("succeed");
        assert_eq!(
            (j.status, j.lease.is_none(), j.finished_at),
            (Succeeded, true, Some(now))
        );
        assert!(j.clone().cancel(now).is_err());
        assert!(j.clone().claim("w1", now, ttl).is_err());
    }

    #[test]
    fn a_stale_lease_can_be_taken_over() {
        let t0 = Utc::now();
        let ttl = Duration::seconds(30);
        let mut j = job();
        j.claim("dead", t0, ttl).expect("claim");
        assert_eq!(
            j.clone().claim("w2", t0 + Duration::seconds(29), ttl),
            Err(Refusal::Leased)
        );
        j.claim("w2", t0 + Duration::seconds(31), ttl)
            .expect("takeover");
        assert_eq!(j.lease.as_ref().map(|l| l.owner.as_str()), Some("w2"));
        assert_eq!(j.attempts, 2);
        assert_eq!(
            j.clone()
                .fail("dead", JobError::new(ErrorCode::InternalError, "y"), t0),
            Err(Refusal::NotOwner)
        );
    }

    #[test]
    fn a_released_job_is_claimable_at_once() {
        let now = Utc::now();
        let ttl = Duration::seconds(30);
        let mut j = job();
        j.claim("w1", now, ttl).expect("claim");
        assert_eq!(j.clone().release("w2"), Err(Refusal::NotOwner));
        j.release("w1").expect("release");
        assert_eq!((j.status, j.lease.is_none()), (Running, true));
        j.claim("w2", now, ttl).expect("claim after release");
        assert_eq!(j.attempts, 2);
    }

    #[test]
    fn cancel_from_queued_or_running_only() {
        let now = Utc::now();
        let mut j = job();
        j.cancel(now).expect("queued → cancelled");
        assert_eq!(j.status, Cancelled);
        let mut j = job();
        j.claim("w", now, Duration::seconds(1)).expect("claim");
        j.cancel(now).expect("running → cancelled");
        assert_eq!(
            j.clone().heartbeat("w", Stage::Rendering, 0.1, now),
            Err(Refusal::Status(Cancelled, Running))
        );
        let mut j = job();
        j.claim("w", now, Duration::seconds(1)).expect("claim");
        j.fail("w", JobError::new(ErrorCode::ImageCorrupt, "bad"), now)
            .expect("fail");
        assert_eq!(j.cancel(now), Err(Refusal::Status(Failed, Cancelled)));
    }

    #[test]
    fn delete_cancels_what_is_not_over_and_marks_the_files_gone_once() {
        let now = Utc::now();
        let ttl = Duration::seconds(30);
        let mut queued = job();
        queued.delete(now).expect("delete a queued job");
        assert_eq!((queued.status, queued.purged_at), (Cancelled, Some(now)));
        assert!(queued.is_discarded());
        assert_eq!(queued.delete(now), Err(Refusal::Purged));

        let mut running = job();
        running.claim("w", now, ttl).expect("claim");
        running.delete(now).expect("delete a running job");
        assert_eq!(running.status, Cancelled);
        assert_eq!(
            running.heartbeat("w", Stage::Rendering, 0.5, now),
            Err(Refusal::Status(Cancelled, Running)),
            "its worker is told to stop"
        );

        let mut done = job();
        done.claim("w", now, ttl).expect("claim");
        done.succeed("w", outputs(), now).expect("succeed");
        assert!(!done.is_discarded());
        done.delete(now).expect("delete a succeeded job");
        assert_eq!(
            (
                done.status,
                done.purged_at.is_some(),
                done.outputs.is_some()
            ),
            (Succeeded, true, true),
            "a finished job keeps its status and its record of what it made"
        );
        assert!(done.is_discarded());
    }

    #[test]
    fn retention_dates_the_files_and_the_record_from_the_end() {
        let t0 = Utc::now();
        let mut kept = job();
        kept.retention = Retention::days(7);
        kept.cancel(t0).expect("cancel");
        assert_eq!(kept.expires_at, Some(t0 + Duration::days(7)));
        assert_eq!(kept.record_expires_at, Some(t0 + Duration::days(37)));
        assert!(!kept.files_expired(t0 + Duration::days(7) - Duration::seconds(1)));
        assert!(kept.files_expired(t0 + Duration::days(7)));
        assert_eq!(kept.sweep_due(), kept.expires_at, "the files first");
        assert_eq!(
            kept.expire_files(t0 + Duration::days(6)),
            Err(Refusal::NotExpired),
            "not before they expire"
        );
        kept.expire_files(t0 + Duration::days(8)).expect("expire");
        assert_eq!(kept.sweep_due(), kept.record_expires_at, "then the record");
        assert_eq!(
            kept.expire_files(t0 + Duration::days(9)),
            Err(Refusal::NotExpired),
            "once"
        );

        let mut forever = job();
        forever.retention = Retention::days(0);
        forever.cancel(t0).expect("cancel");
        assert_eq!((forever.expires_at, forever.sweep_due()), (None, None));
        assert!(!forever.files_expired(t0 + Duration::days(100_000)));

        let mut running = job();
        running.retention = Retention::days(1);
        assert_eq!(running.sweep_due(), None, "nothing expires before the end");
    }

    #[test]
    fn only_a_job_stamped_to_publish_gets_a_queue_event_and_the_earlier_announcement_is_due() {
        let now = Utc::now();
        let mut quiet = job();
        quiet.cancel(now).expect("cancel");
        assert_eq!(
            (&quiet.queue_event, quiet.announcement_due()),
            (&None, None)
        );

        let mut both = Job {
            publish_event: true,
            ..job()
        };
        both.options.callback_url = Some("https://example.com/hook".into());
        both.cancel(now).expect("cancel");
        let event = both.queue_event.clone().expect("a queue event");
        assert_eq!(event.event_name(), "job.cancelled");
        assert_eq!(both.announcement_due(), Some(now));

        // The queue event published: the webhook, put off by a failed attempt, is what is due.
        let schedule = Schedule::default();
        let hook = both.webhook.as_mut().expect("a webhook");
        assert_eq!(
            hook.take(now, std::time::Duration::from_secs(30), &schedule),
            Take::Taken
        );
        hook.record(
            now,
            5,
            Outcome::Retry {
                status: Some(500),
                error: "500".into(),
            },
            &schedule,
            0.0,
            now,
        );
        let retry = hook.due_at().expect("due again");
        assert!(retry > now);
        let queued = both.queue_event.as_mut().expect("a queue event");
        assert_eq!(
            queued.take(now, std::time::Duration::from_secs(30), &schedule),
            Take::Taken
        );
        queued.record(
            now,
            1,
            Outcome::Delivered { status: None },
            &schedule,
            0.0,
            now,
        );
        assert_eq!(both.announcement_due(), Some(retry));
    }
}
