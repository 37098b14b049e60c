//! The webhook of a job: the announcement of its end state to the job's `callback_url`, kept on
//! the job record itself.
//!
//! The terminal transition that ends a job creates its [`Webhook`] in the same compare-and-set
//! write, so a delivery is never lost between "the job ended" and "someone must tell the client",
//! whatever process dies when. A deliverer finds the due ones through
//! [`crate::ports::JobStore::due_announcements`], takes one for a while ([`Webhook::take`], another
//! compare-and-set: two deliverers cannot both win it), sends it and writes the outcome
//! ([`Webhook::record`]), which schedules the next try with exponential backoff until the
//! schedule's deadline. Delivery is at least once: a deliverer that dies after the receiver
//! answered but before it wrote so sends it again; receivers deduplicate on the delivery id.
//!
//! The same record, with its own [`Schedule::events_queue`], is the job's announcement on the
//! events queue (`Job::queue_event`, see [`crate::ports::EventQueue`]).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::job::Status;

/// Attempts kept on the record: the schedule's hour needs fewer, and the record stays small.
pub const MAX_KEPT_ATTEMPTS: usize = 20;
/// Longest text kept of why an attempt failed.
pub const MAX_ERROR_CHARS: usize = 300;
/// How long past the schedule's deadline a webhook whose last attempt went unrecorded (the
/// deliverer died, or could not write the outcome) is still tried: after it, it is given up
/// instead of being sent again for ever. (One whose attempts were all recorded, or never made,
/// gets its last try whenever a deliverer comes to it.)
pub const DEADLINE_GRACE: std::time::Duration = std::time::Duration::from_secs(600);

/// Where a webhook stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HookState {
    /// Not delivered yet: sent at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// No more attempts: the schedule ran out, or the destination is refused.
    Failed,
}

/// One try at delivering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookAttempt {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why the attempt failed, when it did (a status outside 2xx, a timeout, a refused address).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub duration_ms: u64,
}

/// What came of an attempt, as the deliverer classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered: the receiver answered 2xx (its status), or the events queue took it (none).
    Delivered { status: Option<u16> },
    /// Worth trying again later (no answer, a timeout, any status outside 2xx).
    Retry { status: Option<u16>, error: String },
    /// Can never succeed (the destination is refused by policy): no more attempts.
    Abort { error: String },
}

/// When attempts are made: the first at once, then after `first_retry`, growing by `factor`
/// up to `max_delay`, for as long as `give_up_after` from the job's end; the last attempt falls
/// on that deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub first_retry: std::time::Duration,
    pub factor: f64,
    pub max_delay: std::time::Duration,
    pub give_up_after: std::time::Duration,
}

impl Default for Schedule {
    /// 10 s, 30 s, 1.5 min, 4.5 min, 13.5 min, then every 20 min, for an hour: 8 attempts.
    fn default() -> Self {
        Self {
            first_retry: std::time::Duration::from_secs(10),
            factor: 3.0,
            max_delay: std::time::Duration::from_secs(20 * 60),
            give_up_after: std::time::Duration::from_secs(3600),
        }
    }
}

impl Schedule {
    /// For the events queue: a queue that does not take a message is infrastructure trouble,
    /// not a receiver that is gone, so attempts go on for a day (5 s, 15 s, 45 s, then every
    /// 5 min), which outlasts any SQS incident.
    pub fn events_queue() -> Self {
        Self {
            first_retry: std::time::Duration::from_secs(5),
            factor: 3.0,
            max_delay: std::time::Duration::from_secs(300),
            give_up_after: std::time::Duration::from_secs(24 * 3600),
        }
    }

    /// The wait after the `n`-th failed attempt (1-based), spread by `jitter` in [-1, 1] by up
    /// to a fifth, so receivers that come back are not hit by every job at once.
    pub fn delay(&self, n: u32, jitter: f64) -> Duration {
        let exponent = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = (self.first_retry.as_secs_f64() * self.factor.powi(exponent))
            .min(self.max_delay.as_secs_f64());
        let spread = base * (1.0 + 0.2 * jitter.clamp(-1.0, 1.0));
        Duration::milliseconds((spread * 1000.0) as i64)
    }
}

/// What [`Webhook::take`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Taken for an attempt: send it.
    Taken,
    /// Not due (delivered, given up, taken by another, or later).
    NotDue,
    /// Past its deadline: given up, nothing to send.
    GaveUp,
}

/// The announcement of a job's end state, and its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    /// The end state announced (`job.succeeded`, `job.failed`, `job.cancelled`).
    pub event: Status,
    pub state: HookState,
    /// When the job ended, which starts the schedule.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (while pending; a deliverer that took it moves it on by its
    /// lease, so a deliverer that died is relieved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the attempt under way was started, while its outcome is not written yet (a
    /// deliverer that dies leaves it set: the attempt is made again, with backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_at: Option<DateTime<Utc>>,
    /// Attempts started, all of them, including any whose outcome was never written (the
    /// `attempts` list keeps the outcomes of the last 20: `MAX_KEPT_ATTEMPTS`).
    pub attempt_count: u32,
    pub attempts: Vec<HookAttempt>,
}

impl Webhook {
    /// The announcement of `event`, due at once.
    pub fn new(event: Status, now: DateTime<Utc>) -> Self {
        Self {
            event,
            state: HookState::Pending,
            created_at: now,
            next_attempt_at: Some(now),
            delivered_at: None,
            taken_at: None,
            attempt_count: 0,
            attempts: Vec::new(),
        }
    }

    /// The event's name in the `X-Minimoto-Event` header and the docs.
    pub fn event_name(&self) -> String {
        format!("job.{}", self.event.as_str())
    }

    /// When a deliverer should send it, if ever.
    pub fn due_at(&self) -> Option<DateTime<Utc>> {
        match self.state {
            HookState::Pending => self.next_attempt_at,
            _ => None,
        }
    }

    /// A deliverer takes the due webhook for `lease` (the longest an attempt takes): until then
    /// it is not due for anyone else, and the attempt is counted. When the attempt taken before
    /// went unrecorded, this one waits its backoff like a failure (not just the lease), and past
    /// the schedule's deadline and [`DEADLINE_GRACE`] the webhook is given up instead.
    pub fn take(
        &mut self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        schedule: &Schedule,
    ) -> Take {
        if self.due_at().is_none_or(|due| due > now) {
            return Take::NotDue;
        }
        let unrecorded = self.taken_at.is_some();
        let grace = Duration::from_std(DEADLINE_GRACE).unwrap_or_else(|_| Duration::minutes(10));
        if unrecorded && now > self.deadline(schedule) + grace {
            self.give_up();
            return Take::GaveUp;
        }
        self.attempt_count = self.attempt_count.saturating_add(1);
        self.taken_at = Some(now);
        let lease = Duration::from_std(lease).unwrap_or_else(|_| Duration::seconds(60));
        let wait = if unrecorded {
            lease.max(schedule.delay(self.attempt_count, 0.0))
        } else {
            lease
        };
        self.next_attempt_at = Some(now + wait);
        Take::Taken
    }

    /// The last moment an attempt is scheduled for.
    fn deadline(&self, schedule: &Schedule) -> DateTime<Utc> {
        self.created_at
            + Duration::from_std(schedule.give_up_after).unwrap_or_else(|_| Duration::hours(1))
    }

    /// Writes down the outcome of the attempt taken last and what follows from it: delivered,
    /// given up, or the next try. `jitter` in [-1, 1] spreads the next try (see
    /// [`Schedule::delay`]).
    pub fn record(
        &mut self,
        at: DateTime<Utc>,
        duration_ms: u64,
        outcome: Outcome,
        schedule: &Schedule,
        jitter: f64,
        now: DateTime<Utc>,
    ) {
        if self.state != HookState::Pending {
            // A slower deliverer's late report of an attempt after the webhook was settled.
            return;
        }
        self.taken_at = None;
        let (status, error) = match &outcome {
            Outcome::Delivered { status } => (*status, None),
            Outcome::Retry { status, error } => (*status, Some(error.clone())),
            Outcome::Abort { error } => (None, Some(error.clone())),
        };
        self.attempts.push(HookAttempt {
            at,
            status,
            error: error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect()),
            duration_ms,
        });
        if self.attempts.len() > MAX_KEPT_ATTEMPTS {
            self.attempts.remove(0);
        }
        let deadline = self.deadline(schedule);
        match outcome {
            Outcome::Delivered { .. } => {
                self.state = HookState::Delivered;
                self.delivered_at = Some(now);
                self.next_attempt_at = None;
            }
            Outcome::Abort { .. } => self.give_up(),
            Outcome::Retry { .. } if now >= deadline => self.give_up(),
            Outcome::Retry { .. } => {
                let next = now + schedule.delay(self.attempt_count, jitter);
                self.next_attempt_at = Some(next.min(deadline));
            }
        }
    }

    fn give_up(&mut self) {
        self.state = HookState::Failed;
        self.next_attempt_at = None;
        self.taken_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("time")
    }

    fn fail() -> Outcome {
        Outcome::Retry {
            status: Some(503),
            error: "503 Service Unavailable".into(),
        }
    }

    #[test]
    fn the_default_schedule_backs_off_and_ends_on_the_hour() {
        let schedule = Schedule::default();
        let mut hook = Webhook::new(Status::Succeeded, at(0));
        let mut times = Vec::new();
        while let Some(due) = hook.due_at() {
            let now = due;
            times.push((now - at(0)).num_seconds());
            assert_eq!(hook.take(now, LEASE, &schedule), Take::Taken);
            assert_eq!(hook.take(now, LEASE, &schedule), Take::NotDue, "taken once");
            hook.record(now, 5, fail(), &schedule, 0.0, now);
        }
        assert_eq!(times, [0, 10, 40, 130, 400, 1210, 2410, 3600]);
        assert_eq!(hook.state, HookState::Failed);
        assert_eq!(hook.attempt_count, 8);
        assert_eq!(hook.attempts.len(), 8);
        assert_eq!(hook.attempts[0].status, Some(503));
    }

    #[test]
    fn jitter_spreads_a_delay_by_at_most_a_fifth() {
        let schedule = Schedule::default();
        assert_eq!(schedule.delay(1, -1.0), Duration::seconds(8));
        assert_eq!(schedule.delay(1, 1.0), Duration::seconds(12));
        assert_eq!(schedule.delay(2, 0.5), Duration::seconds(33));
        assert_eq!(schedule.delay(40, 0.0), Duration::seconds(1200), "capped");
    }

    #[test]
    fn a_delivery_or_a_refusal_ends_it_and_late_reports_change_nothing() {
        let schedule = Schedule::default();
        let mut hook = Webhook::new(Status::Failed, at(0));
        assert_eq!(hook.take(at(0), LEASE, &schedule), Take::Taken);
        hook.record(at(0), 3, fail(), &schedule, 0.0, at(1));
        assert_eq!(hook.due_at(), Some(at(11)));
        assert_eq!(
            hook.take(at(5), LEASE, &schedule),
            Take::NotDue,
            "not due yet"
        );
        assert_eq!(hook.take(at(11), LEASE, &schedule), Take::Taken);
        hook.record(
            at(11),
            3,
            Outcome::Delivered { status: Some(204) },
            &schedule,
            0.0,
            at(12),
        );
        assert_eq!(hook.state, HookState::Delivered);
        assert_eq!(hook.delivered_at, Some(at(12)));
        assert_eq!(hook.due_at(), None);
        hook.record(at(13), 3, fail(), &schedule, 0.0, at(13));
        assert_eq!(hook.attempt_count, 2, "a late report is ignored");

        let mut refused = Webhook::new(Status::Cancelled, at(0));
        assert_eq!(refused.take(at(0), LEASE, &schedule), Take::Taken);
        refused.record(
            at(0),
            0,
            Outcome::Abort {
                error: "x".repeat(1000),
            },
            &schedule,
            0.0,
            at(0),
        );
        assert_eq!(refused.state, HookState::Failed);
        assert_eq!(
            refused.attempts[0].error.as_ref().map(String::len),
            Some(MAX_ERROR_CHARS)
        );
        assert_eq!(refused.event_name(), "job.cancelled");
    }

    #[test]
    fn only_the_last_attempts_are_kept() {
        let schedule = Schedule {
            give_up_after: std::time::Duration::from_secs(1_000_000),
            ..Schedule::default()
        };
        let mut hook = Webhook::new(Status::Succeeded, at(0));
        for i in 0..30 {
            let now = hook.due_at().expect("due");
            assert_eq!(hook.take(now, LEASE, &schedule), Take::Taken);
            hook.record(now, 1, fail(), &schedule, 0.0, now);
            if i == 0 {
                assert_eq!(hook.attempts[0].at, now);
            }
        }
        assert_eq!(hook.attempt_count, 30);
        assert_eq!(hook.attempts.len(), MAX_KEPT_ATTEMPTS);
        assert_eq!(hook.attempts.last().map(|a| a.error.is_some()), Some(true));
    }

    #[test]
    fn attempts_that_are_never_recorded_back_off_and_end_after_the_deadline() {
        // A deliverer that sends but can never write the outcome: each take counts an attempt
        // and waits its backoff, and past the deadline and its grace the webhook is given up,
        // not sent for ever.
        let schedule = Schedule::default();
        let mut hook = Webhook::new(Status::Succeeded, at(0));
        let mut times = Vec::new();
        let mut now = at(0);
        loop {
            match hook.take(now, LEASE, &schedule) {
                Take::Taken => times.push((now - at(0)).num_seconds()),
                Take::GaveUp => break,
                Take::NotDue => panic!("due again once the wait is over"),
            }
            now = hook.due_at().expect("due again");
        }
        assert_eq!(hook.state, HookState::Failed);
        assert_eq!(hook.attempt_count as usize, times.len());
        // The lease (30 s) first, then the schedule's waits (30 s, 90 s, 270 s, 810 s, 1200 s).
        assert_eq!(times[..5], [0, 30, 60, 150, 420]);
        let last = 3600 + DEADLINE_GRACE.as_secs() as i64;
        assert!(*times.last().expect("times") <= last, "{times:?}");
        assert!(times.len() <= 10, "{times:?}");

        // A webhook whose attempts were recorded gets its last try however late it comes.
        let mut late = Webhook::new(Status::Failed, at(0));
        assert_eq!(late.take(at(0), LEASE, &schedule), Take::Taken);
        late.record(at(0), 2, fail(), &schedule, 0.0, at(0));
        assert_eq!(
            late.take(at(9000), LEASE, &schedule),
            Take::Taken,
            "after downtime"
        );
        late.record(at(9000), 2, fail(), &schedule, 0.0, at(9000));
        assert_eq!(
            late.state,
            HookState::Failed,
            "and given up after that one try"
        );
        assert_eq!((late.attempt_count, late.taken_at), (2, None));
    }
}
