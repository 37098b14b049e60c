//! `GET /v1/jobs/{id}/events`: the job as Server-Sent Events until it ends.
//!
//! Each event is the job's whole state at one version of its record (`id:` is that version), so
//! a client never has to merge deltas: `event: job`, `data:` the job as `GET /v1/jobs/{id}`
//! shows it plus `eta_seconds`. The record is read every [`POLL`]; a change is sent, the end
//! state is the last event and closes the stream. A client that reconnects with
//! `Last-Event-ID` gets the next change after that version, or the current state at once if it
//! moved on meanwhile. A stream lasts at most [`MAX_STREAM`]; then the client reconnects.

use std::{convert::Infallible, time::Duration};

use axum::{
    Extension,
    extract::{Path, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use chrono::Utc;
use futures_util::stream::{self, Stream};
use minimoto_common::{
    codes::ErrorCode,
    job::{Job, Status},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    routes::jobs::load_job,
    state::AppState,
    view::JobView,
};

/// How often the record is read for a change.
pub const POLL: Duration = Duration::from_secs(1);
/// Longest one stream stays open.
pub const MAX_STREAM: Duration = Duration::from_secs(3600);

/// The data of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEvent {
    #[serde(flatten)]
    pub job: JobView,
    /// Seconds the render is expected to go on, from its progress so far; null unless running
    /// with some progress.
    pub eta_seconds: Option<f64>,
}

/// One event of the stream, as the OpenAPI document describes it (the stream writes it as the
/// `event:`, `id:` and `data:` lines of Server-Sent Events).
#[derive(Debug, ToSchema)]
#[expect(dead_code, reason = "documents the stream's events for OpenAPI")]
pub struct JobEventFrame {
    /// Always `job`.
    #[schema(pattern = "^job$")]
    event: String,
    /// The version of the job's record the event shows: send it back as `Last-Event-ID` to
    /// resume after it.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// A `JobEvent` as JSON.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The time left, if the job runs at the pace it has shown.
fn eta(job: &Job) -> Option<f64> {
    let started = job.started_at?;
    if job.status != Status::Running || job.progress <= 0.0 || job.progress >= 1.0 {
        return None;
    }
    let elapsed = (Utc::now() - started).to_std().ok()?.as_secs_f64();
    Some(elapsed * (1.0 - job.progress) / job.progress)
}

struct Follow {
    state: AppState,
    job: Job,
    /// The version last sent (or the client's `Last-Event-ID`).
    sent: Option<u64>,
    until: tokio::time::Instant,
    done: bool,
}

/// The client's `Last-Event-ID`, if it sent one: an id this stream sent (a record version).
fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let parsed = value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok());
    match parsed {
        Some(version) => Ok(Some(version)),
        None => Err(ApiError::new(
            ErrorCode::BadRequest,
            "Last-Event-ID must be the id of an event this stream sent: 1 to 19 digits",
        )),
    }
}

/// Follow a job: its status, stage, progress and ETA as Server-Sent Events until it ends.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(
        ("id" = minimoto_common::JobId, Path, description = "The job id"),
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{1,19}$", description = "The `id` of the last event received (digits): the stream resumes after it"),
    ),
    responses(
        (status = 200, description = "`text/event-stream` of `event: job` whose `data` is a JobEvent (JSON) and whose `id` is the record's version; the last one is the job's end state", body = JobEventFrame, content_type = "text/event-stream"),
        (status = 400, description = "A `Last-Event-ID` that is not an event id of this stream", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn job_events(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let sent = last_event_id(&headers)?;
    let job = load_job(&state, &caller, &id).await?;
    let follow = Follow {
        state,
        job,
        sent,
        until: tokio::time::Instant::now() + MAX_STREAM,
        done: false,
    };
    let events = stream::unfold(follow, |mut f| async move {
        loop {
            if f.done || tokio::time::Instant::now() >= f.until {
                return None;
            }
            let fresh = f.sent.is_none_or(|v| f.job.version > v);
            if fresh {
                f.sent = Some(f.job.version);
                f.done = f.job.status.is_terminal();
                let eta_seconds = eta(&f.job);
                let (version, job) = (f.job.version, f.job.clone());
                let view = JobView::of(job, f.state.blobs.as_ref(), f.state.config.url_ttl).await;
                let event = match view {
                    Ok(job) => Event::default()
                        .event("job")
                        .id(version.to_string())
                        .json_data(JobEvent { job, eta_seconds })
                        .unwrap_or_else(|_| Event::default().event("error")),
                    Err(e) => {
                        tracing::warn!(error = %e, "events: could not show the job");
                        f.sent = None;
                        f.done = false;
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                };
                return Some((Ok(event), f));
            }
            // A terminal job the client has seen the end of: nothing more will come.
            if f.job.status.is_terminal() {
                return None;
            }
            tokio::time::sleep(POLL).await;
            match f.state.jobs.get(f.job.id).await {
                Ok(Some(job)) => f.job = job,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(error = %e, "events: could not read the job; trying again")
                }
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
