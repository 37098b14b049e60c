//! The minimoto HTTP API.
//!
//! [`router`] builds the whole axum app from an [`AppState`] (tests drive it without a socket);
//! [`openapi`] is the OpenAPI document, generated from the same route declarations so a route
//! cannot exist without its spec entry.

pub mod accept;
pub mod error;
pub mod ingest;
pub mod routes;
pub mod state;
pub mod view;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

pub use error::{ApiError, Problem};
pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    // The download route takes a multi-segment key (`{*key}` in axum), so it is routed by hand
    // in `router` and listed here.
    paths(routes::files::download),
    info(
        title = "minimoto",
        description = "Photos in, video out. Submit photos as multipart/form-data, poll the job, download the video from an expiring URL.",
        license(name = "MIT OR Apache-2.0")
    ),
    tags(
        (name = "jobs", description = "Submit photos, follow a render, fetch the video"),
        (name = "downloads", description = "Signed, expiring file downloads (embedded backend)"),
        (name = "health", description = "Liveness"),
    )
)]
struct ApiDoc;

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Uploads are streamed to disk under the per-image and total limits of `ingest`, so the
        // default 2 MB body cap must not apply here.
        .routes(routes!(routes::jobs::create_job).layer(DefaultBodyLimit::disable()))
        .routes(routes!(routes::jobs::get_job))
        .routes(routes!(routes::jobs::get_video))
        .routes(routes!(routes::health::healthz))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

/// The whole app.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    // The JSON routes negotiate; signed downloads serve whatever file they name.
    let router = router.layer(axum::middleware::from_fn(accept::require_json));
    router
        .route("/files/{*key}", axum::routing::get(routes::files::download))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// axum answers a wrong method (405) with an empty body; give it the same problem+json as every
/// other error.
async fn problem_for_bare_errors(res: Response) -> Response {
    if res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::CONTENT_TYPE)
    {
        let allow = res.headers().get(header::ALLOW).cloned();
        let mut out = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
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
