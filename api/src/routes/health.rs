//! `/healthz` (liveness: the process answers, no backend involved, so a load balancer never
//! restarts a healthy API because storage hiccuped) and `/readyz` (readiness: each backend answers
//! a cheap round trip within a bound).

use std::{future::Future, time::Duration};

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::RETRY_AFTER_SECONDS, state::AppState};

/// The longest a readiness probe waits for one backend.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`: the process is up.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Is the process up? Touches no backend.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": [
    {"name": "jobs", "ok": true, "millis": 2},
    {"name": "queue", "ok": true, "millis": 3, "visible": 0, "in_flight": 1},
    {"name": "blobs", "ok": true, "millis": 1},
    {"name": "disk", "ok": true, "millis": 0, "free_bytes": 52613349376_u64}]}))]
pub struct Readiness {
    /// `ready` when every check passed, else `unavailable`.
    status: &'static str,
    checks: Vec<Check>,
}

/// One dependency's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `jobs` (the job store), `queue`, `blobs` (object storage) or `disk` (where uploads are
    /// staged: ready while it has more than the server keeps free).
    name: &'static str,
    ok: bool,
    /// How long the round trip took (or until it was given up).
    millis: u64,
    /// What failed, in words safe to serve to anyone (this route needs no key): a timeout,
    /// the disk's free bytes against the reserve, or "failed (the server's log says why)"; the
    /// cause itself (hosts, paths, the backend's message) is only in the server's log.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Queue only: messages waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    visible: Option<u64>,
    /// Queue only: messages being worked on.
    #[serde(skip_serializing_if = "Option::is_none")]
    in_flight: Option<u64>,
    /// Disk only: bytes free for uploads.
    #[serde(skip_serializing_if = "Option::is_none")]
    free_bytes: Option<u64>,
}

/// Runs one check under [`CHECK_TIMEOUT`].
async fn check<T>(
    name: &'static str,
    probe: impl Future<Output = minimoto_common::Result<T>>,
) -> (Check, Option<T>) {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, probe).await;
    let millis = started.elapsed().as_millis() as u64;
    let (value, error) = match outcome {
        Ok(Ok(v)) => (Some(v), None),
        Ok(Err(e)) => {
            tracing::warn!(check = name, error = %e, "readiness check failed");
            let public = match e {
                // Our own words: how much room is left against what the server keeps free.
                minimoto_common::Error::StorageFull { message, .. } if name == "disk" => message,
                _ => "failed (the server's log says why)".to_owned(),
            };
            (None, Some(public))
        }
        Err(_) => {
            let e = format!("no answer within {CHECK_TIMEOUT:?}");
            tracing::warn!(check = name, error = %e, "readiness check failed");
            (None, Some(e))
        }
    };
    let check = Check {
        name,
        ok: error.is_none(),
        millis,
        error,
        visible: None,
        in_flight: None,
        free_bytes: None,
    };
    (check, value)
}

/// Can this API serve requests now? Checks the job store, the queue and object storage.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Every backend answers", body = Readiness),
        (status = 503, description = "A backend does not answer (see `checks`); `Retry-After` says when to look again", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ((jobs, _), (mut queue, depth), (blobs, _), (mut disk, free)) = tokio::join!(
        check("jobs", state.jobs.ready()),
        check("queue", state.queue.depth()),
        check("blobs", state.blobs.ready()),
        check("disk", crate::ingest::staging_room(&state.config)),
    );
    if let Some(d) = depth {
        (queue.visible, queue.in_flight) = (Some(d.visible), Some(d.in_flight));
    }
    disk.free_bytes = free;
    let checks = vec![jobs, queue, blobs, disk];
    let ready = checks.iter().all(|c| c.ok);
    let body = Json(Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks,
    });
    if ready {
        (StatusCode::OK, body).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())],
            body,
        )
            .into_response()
    }
}
