//! `/healthz`: liveness plus a cheap check of each backend, for load balancers and humans.

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `degraded` when a backend does not answer.
    status: &'static str,
    /// Messages waiting in the queue.
    queue_visible: Option<u64>,
    /// Messages being worked on.
    queue_in_flight: Option<u64>,
}

/// Is the service up and can it reach its queue?
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 503, description = "A backend does not answer", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match state.queue.depth().await {
        Ok(d) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                queue_visible: Some(d.visible),
                queue_in_flight: Some(d.in_flight),
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: queue unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "degraded",
                    queue_visible: None,
                    queue_in_flight: None,
                }),
            )
        }
    }
}
