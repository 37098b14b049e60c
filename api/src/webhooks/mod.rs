//! Webhooks: when a job with a `callback_url` ends, the API POSTs the job (as `GET
//! /v1/jobs/{id}` shows it, download URLs included) to that URL, signed with the tenant's secret
//! ([`signature`]), from a public address only ([`destination`]).
//!
//! The pending deliveries are the job records' [`Webhook`]s (made by the transition that ended the
//! job, in the same write), so they survive any restart. [`Deliverer::run`] finds the due ones, takes each
//! for an attempt, sends it and writes the outcome, which schedules the next try with backoff
//! ([`minimoto_common::webhook::Schedule`]). Every API process runs it; the take is a
//! compare-and-set, so one process sends each attempt. The same loop publishes the jobs'
//! `queue_event`s on the events queue ([`Deliverer::with_events`], `--publish-events`).

pub mod destination;
pub mod signature;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::StreamExt;
use minimoto_common::{
    JobId,
    error::Error,
    job::{Job, Refusal},
    ports::{BlobStore, EventQueue, JobStore, Update, update_job},
    spec::{RenderSpec, Violation},
    webhook::{Outcome, Schedule, Take, Webhook},
};
use tokio_util::sync::CancellationToken;

use crate::{keys::KeyRing, view::JobView};

/// How webhooks are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Send to private, loopback and link-local addresses too (a receiver inside the network).
    pub allow_private: bool,
    /// When attempts are made, and for how long.
    pub schedule: Schedule,
    /// The longest one attempt may take, connecting included.
    pub timeout: Duration,
    /// How often the due webhooks are looked for.
    pub poll: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            allow_private: false,
            schedule: Schedule::default(),
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// Due webhooks looked at per poll, and sent at once.
const BATCH: usize = 32;
const CONCURRENT: usize = 8;

/// The checks of a job's `callback_url` at submit, before any photo is inspected: its form, its
/// destination, and a secret to sign with.
pub fn check_callback(
    spec: &RenderSpec,
    tenant: &str,
    keys: Option<&KeyRing>,
    settings: &Settings,
) -> Vec<Violation> {
    let Some(url) = &spec.callback_url else {
        return Vec::new();
    };
    let violation = |message: String| {
        vec![Violation {
            field: "callback_url".into(),
            message,
        }]
    };
    if let Err(message) = destination::check_url(url, settings.allow_private) {
        return violation(message);
    }
    if keys.and_then(|k| k.webhook_secret(tenant)).is_none() {
        return violation(format!(
            "tenant {tenant} has no webhook secret to sign with: its operator makes one with `minimoto keys secret --tenant {tenant}`"
        ));
    }
    Vec::new()
}

/// What a deliverer needs.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub jobs: Arc<dyn JobStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub keys: Option<Arc<KeyRing>>,
    /// How long the download URLs in a delivered job stay valid.
    pub url_ttl: Duration,
    pub settings: Settings,
    /// Where the jobs' `queue_event`s are published (`--publish-events`).
    events: Option<Arc<dyn EventQueue>>,
    client: reqwest::Client,
}

/// The two announcements of a job's end, sent by the same loop from the same outbox record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// `Job::webhook`, POSTed to the job's `callback_url`.
    Webhook,
    /// `Job::queue_event`, published on the events queue.
    Queue,
}

impl Channel {
    fn get(self, job: &Job) -> Option<&Webhook> {
        match self {
            Self::Webhook => job.webhook.as_ref(),
            Self::Queue => job.queue_event.as_ref(),
        }
    }

    fn slot(self, job: &mut Job) -> Option<&mut Webhook> {
        match self {
            Self::Webhook => job.webhook.as_mut(),
            Self::Queue => job.queue_event.as_mut(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Queue => "queue event",
        }
    }
}

impl Deliverer {
    pub fn new(
        jobs: Arc<dyn JobStore>,
        blobs: Arc<dyn BlobStore>,
        keys: Option<Arc<KeyRing>>,
        url_ttl: Duration,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("minimoto-webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(destination::resolver(settings.allow_private))
            // A redirect could lead anywhere, a proxy would resolve the name itself: neither.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()?;
        Ok(Self {
            jobs,
            blobs,
            keys,
            url_ttl,
            settings,
            events: None,
            client,
        })
    }

    /// Publishes the jobs' `queue_event`s on `events` too. Without a queue, a due event is put
    /// off with backoff (an API process started with `--publish-events` may take it).
    #[must_use]
    pub fn with_events(mut self, events: Option<Arc<dyn EventQueue>>) -> Self {
        self.events = events;
        self
    }

    fn schedule(&self, channel: Channel) -> Schedule {
        match channel {
            Channel::Webhook => self.settings.schedule,
            Channel::Queue => Schedule::events_queue(),
        }
    }

    /// Sends the due announcements until `shutdown`: the attempts under way are finished, and no new
    /// one is started.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.jobs.due_announcements(Utc::now(), BATCH).await {
                Ok(due) => {
                    futures_util::stream::iter(due)
                        .take_until(shutdown.cancelled())
                        .for_each_concurrent(CONCURRENT, |id| self.attempt(id))
                        .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look for due announcements; trying again")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// One attempt at each of job `id`'s announcements that is still due and that this
    /// deliverer takes: the queue event first (it is cheap), then the webhook.
    async fn attempt(&self, id: JobId) {
        for channel in [Channel::Queue, Channel::Webhook] {
            self.attempt_on(id, channel).await;
        }
    }

    async fn attempt_on(&self, id: JobId, channel: Channel) {
        // Longer than an attempt can take: a deliverer that dies mid-attempt is relieved after it.
        let lease = self.settings.timeout + Duration::from_secs(20);
        let now = Utc::now();
        let schedule = self.schedule(channel);
        let what = channel.name();
        let taken = update_job(self.jobs.as_ref(), id, |job| {
            match channel.slot(job).map(|h| h.take(now, lease, &schedule)) {
                Some(Take::Taken | Take::GaveUp) => Ok(()),
                Some(Take::NotDue) | None => Err(Refusal::NotDue),
            }
        })
        .await;
        let job = match taken {
            // Given up by the take: past its deadline, nothing to send.
            Ok(Update::Done(job)) if channel.get(&job).is_some_and(|h| h.due_at().is_none()) => {
                tracing::warn!(job = %id, what, "announcement given up: its deadline passed with its last attempts unrecorded");
                self.count(channel, "expired");
                return;
            }
            Ok(Update::Done(job)) => job,
            // Another deliverer took it, or it was settled meanwhile, or it is not due.
            Ok(Update::Refused(..)) => return,
            Err(e) => {
                tracing::warn!(job = %id, what, error = %e, "cannot take a due announcement");
                return;
            }
        };
        let started = std::time::Instant::now();
        let at = Utc::now();
        let outcome = match channel {
            Channel::Webhook => self.send(&job).await,
            Channel::Queue => self.publish(&job).await,
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let label = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Abort { .. } => "refused",
        };
        self.count(channel, label);
        match &outcome {
            Outcome::Delivered { status } => {
                tracing::info!(job = %id, what, status, duration_ms, "announcement delivered");
            }
            Outcome::Retry { error, .. } | Outcome::Abort { error } => {
                tracing::warn!(job = %id, what, error, duration_ms, outcome = label, "announcement not delivered");
            }
        }
        let jitter = f64::from(getrandom::u32().unwrap_or(0)) / f64::from(u32::MAX) * 2.0 - 1.0;
        let recorded = update_job(self.jobs.as_ref(), id, |job| {
            let hook = channel.slot(job).ok_or(Refusal::NotDue)?;
            hook.record(
                at,
                duration_ms,
                outcome.clone(),
                &schedule,
                jitter,
                Utc::now(),
            );
            Ok(())
        })
        .await;
        if let Err(e) = recorded {
            // The take's lease makes it due again: the attempt is repeated, not lost.
            tracing::warn!(job = %id, what, error = %e, "cannot record an announcement attempt; it will be made again");
        }
    }

    fn count(&self, channel: Channel, outcome: &'static str) {
        let name = match channel {
            Channel::Webhook => "minimoto_webhook_attempts_total",
            Channel::Queue => "minimoto_event_publishes_total",
        };
        metrics::counter!(name, "outcome" => outcome).increment(1);
    }

    /// Publishes the job's end on the events queue: `{"type": "job.<status>", "id": <job id>,
    /// "job": <the job as GET /v1/jobs/{id} shows it>}`.
    async fn publish(&self, job: &Job) -> Outcome {
        let Some(events) = &self.events else {
            return Outcome::Retry {
                status: None,
                error:
                    "this API process publishes no events (it was started without --publish-events)"
                        .into(),
            };
        };
        let Some(hook) = &job.queue_event else {
            return Outcome::Abort {
                error: "the job has no queue event".into(),
            };
        };
        let event = hook.event_name();
        let view = match JobView::of(job.clone(), self.blobs.as_ref(), self.url_ttl).await {
            Ok(view) => view,
            Err(e) => {
                return Outcome::Retry {
                    status: None,
                    error: format!("the job's download links could not be made: {e}"),
                };
            }
        };
        let envelope = serde_json::json!({ "type": event, "id": job.id, "job": view });
        match events.publish(&event, &envelope.to_string()).await {
            Ok(()) => Outcome::Delivered { status: None },
            // Too large for the queue: it will never fit.
            Err(e @ Error::Invalid(_)) => Outcome::Abort {
                error: e.to_string(),
            },
            Err(e) => Outcome::Retry {
                status: None,
                error: format!("the events queue did not take it: {e}"),
            },
        }
    }

    /// Sends the job to its callback and classifies what came of it.
    async fn send(&self, job: &Job) -> Outcome {
        let (Some(url), Some(hook)) = (&job.options.callback_url, &job.webhook) else {
            return Outcome::Abort {
                error: "the job has no callback_url".into(),
            };
        };
        let url = match destination::check_url(url, self.settings.allow_private) {
            Ok(url) => url,
            Err(message) => {
                return Outcome::Abort {
                    error: format!("callback_url {message}"),
                };
            }
        };
        let Some(secret) = self
            .keys
            .as_ref()
            .and_then(|k| k.webhook_secret(&job.tenant))
        else {
            return Outcome::Abort {
                error: format!("tenant {} has no webhook secret to sign with", job.tenant),
            };
        };
        let view = match JobView::of(job.clone(), self.blobs.as_ref(), self.url_ttl).await {
            Ok(view) => view,
            Err(e) => {
                return Outcome::Retry {
                    status: None,
                    error: format!("the job's download links could not be made: {e}"),
                };
            }
        };
        let body = match serde_json::to_vec(&view) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::Abort {
                    error: format!("the job did not serialise: {e}"),
                };
            }
        };
        let timestamp = Utc::now().timestamp();
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("x-minimoto-event", hook.event_name())
            .header("x-minimoto-delivery", job.id.to_string())
            .header("x-minimoto-attempt", hook.attempt_count.to_string())
            .header(
                signature::HEADER,
                signature::sign(&secret, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => Outcome::Delivered {
                status: Some(response.status().as_u16()),
            },
            Ok(response) => Outcome::Retry {
                status: Some(response.status().as_u16()),
                error: format!("the receiver answered {}", response.status()),
            },
            // The URL stays out of the message, which goes to the logs too (it may carry the
            // receiver's token).
            Err(e) => {
                let e = e.without_url();
                match destination::refusal_in(&e) {
                    Some(refusal) => Outcome::Abort { error: refusal },
                    None if e.is_timeout() => Outcome::Retry {
                        status: None,
                        error: format!(
                            "no answer within {} s",
                            self.settings.timeout.as_secs_f64()
                        ),
                    },
                    None => Outcome::Retry {
                        status: None,
                        error: format!("could not reach the receiver: {}", chain(&e)),
                    },
                }
            }
        }
    }
}

/// An error and its causes on one line (reqwest's own message is only the outermost).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
