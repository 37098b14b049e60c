//! `GET /metrics`: Prometheus text of what the process did and what it sees — requests by route
//! and status with their durations, bytes ingested, jobs submitted and deleted, render seconds
//! (from the workers in the same process), and, read at each scrape, the queue's depth and the
//! jobs by status (where the job store counts them cheaply: SQLite; a DynamoDB table would have
//! to be scanned whole).
//!
//! One Prometheus recorder per process, installed by the first [`crate::build`]; everything
//! recorded through the `metrics` facade (the scaler's metrics too, under `serve --autoscale`)
//! ends up here.

use std::sync::OnceLock;

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::{error::ApiResult, state::AppState};

/// Buckets of the request and render durations, in seconds: from a cached read to a long render.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use. `None` if another recorder was installed
/// first (then `/metrics` answers 503).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

/// Counts every request by method, route (the route's pattern, never the raw path: ids would
/// make a series per job) and status, and its duration.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    counter!("minimoto_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    histogram!("minimoto_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Prometheus metrics of this process.
#[utoipa::path(
    get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format", body = String, content_type = "text/plain"),
        (status = 503, description = "Metrics are off in this process", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(handle) = handle() else {
        return Err(crate::ApiError::new(
            minimoto_common::ErrorCode::BackendUnavailable,
            "metrics are off in this process",
        ));
    };
    // What is read at the scrape: a failing backend leaves the last values and is logged.
    match state.queue.depth().await {
        Ok(d) => {
            gauge!("minimoto_queue_messages", "state" => "visible").set(d.visible as f64);
            gauge!("minimoto_queue_messages", "state" => "in_flight").set(d.in_flight as f64);
            gauge!("minimoto_queue_messages", "state" => "dead").set(d.dead as f64);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not read the queue depth"),
    }
    match state.jobs.count_by_status().await {
        Ok(Some(counts)) => {
            for (status, n) in counts {
                gauge!("minimoto_jobs", "status" => status.as_str()).set(n as f64);
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "metrics: could not count the jobs"),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response())
}
