//! The minimoto HTTP API.
//!
//! [`build`] makes the whole axum app from its settings and its ports (tests drive it without a
//! socket); [`cli`] runs it as a process (the `minimoto-api` binary, and `minimoto serve`);
//! [`openapi`] is the OpenAPI document, generated from the same route declarations so a route
//! cannot exist without its spec entry.

pub mod accept;
pub mod cli;
pub mod error;
pub mod ingest;
pub mod routes;
pub mod server;
pub mod state;
pub mod view;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use minimoto_common::ErrorCode;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

pub use error::{ApiError, Problem};
pub use state::{ApiConfig, AppState, Ports};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "minimoto",
        description = "Photos in, video out. Submit photos as multipart/form-data, poll the job, download the video from an expiring URL.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "jobs", description = "Submit photos, follow a render, fetch the video"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

/// Routes that answer in JSON (and negotiate it with `Accept`).
fn json_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Uploads are streamed to disk under the per-image and total limits of `ingest`, so the
        // default 2 MB body cap must not apply here (the whole-body cap in `router` does).
        .routes(routes!(routes::jobs::create_job).layer(DefaultBodyLimit::disable()))
        .routes(routes!(routes::jobs::get_job))
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
}

/// Routes whose success is a redirect to a file, whatever its type.
fn redirect_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(routes::jobs::get_video))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    json_routes().merge(redirect_routes()).split_for_parts().1
}

/// Room for multipart framing (boundaries, part headers) above the photos' own bytes.
const MULTIPART_OVERHEAD: u64 = 16 * 1024 * 1024;

/// The whole app. Download links (`video_url`, …) are opaque expiring URLs, served by S3 or by
/// the backend's own routes (`ports.backend_routes`), so they are not part of the document.
pub fn build(config: ApiConfig, ports: Ports) -> Router {
    let state = AppState::new(config, &ports);
    let (json, _) = json_routes().split_for_parts();
    let (redirects, _) = redirect_routes().split_for_parts();
    // Caps every request body, including what multer buffers while it looks for a part's end.
    let body_cap = usize::try_from(
        state
            .config
            .limits
            .max_total_bytes
            .saturating_add(MULTIPART_OVERHEAD),
    )
    .unwrap_or(usize::MAX);
    json.layer(axum::middleware::from_fn(accept::require_json))
        .merge(redirects)
        .with_state(state)
        .merge(ports.backend_routes)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(body_cap))
        .layer(TraceLayer::new_for_http())
}

fn is_problem(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json")
}

/// axum answers a wrong method (405) with an empty body and the body cap (413) in plain text;
/// give them the same problem+json as every other error.
async fn problem_for_bare_errors(res: Response) -> Response {
    if res.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_problem(&res) {
        return ApiError::new(
            ErrorCode::UploadTooLarge,
            "the request body is larger than this server accepts",
        )
        .into_response();
    }
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = res.headers().get(header::ALLOW).cloned();
        let mut out = ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take that method",
        )
        .into_response();
        if let Some(allow) = allow {
            out.headers_mut().insert(header::ALLOW, allow);
        }
        return out;
    }
    res
}
