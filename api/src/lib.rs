//! The minimoto HTTP API.
//!
//! [`build`] makes the whole axum app from its settings and its ports (tests drive it without a
//! socket); [`cli`] runs it as a process (the `minimoto-api` binary, and `minimoto serve`);
//! [`openapi`] is the OpenAPI document, generated from the same route declarations so a route
//! cannot exist without its spec entry.

pub mod accept;
pub mod auth;
pub mod cli;
pub mod decodes;
pub mod error;
pub mod head_errors;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod pace;
pub mod routes;
pub mod server;
pub mod state;
pub mod sweeper;
pub mod uploads;
pub mod view;
pub mod webhooks;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use minimoto_common::ErrorCode;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
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
        (name = "docs", description = "This document, and the same as interactive pages"),
    ),
    // Named by the events stream's description (its frames carry it as JSON text).
    components(schemas(routes::events::JobEvent))
)]
struct ApiDoc;

/// Every `/v1` operation takes the bearer key (when the server has keys) and may answer 401,
/// 403 or 429 for it; the answers are added here once rather than to each route.
struct KeysRequired;

impl utoipa::Modify for KeysRequired {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            ContentBuilder, Ref, ResponseBuilder,
            security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `minimoto keys add`. A server without keys (on a loopback address) takes requests without one.",
                    ))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    minimoto_common::problem::CONTENT_TYPE,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [&mut item.get, &mut item.post, &mut item.delete]
                .into_iter()
                .flatten()
            {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                let responses = &mut op.responses.responses;
                responses.insert(
                    "401".into(),
                    problem(
                        "No API key, or one this server does not know (`WWW-Authenticate: Bearer`)",
                    )
                    .into(),
                );
                responses.insert("403".into(), problem("The API key was revoked").into());
                responses.insert("429".into(), problem("The key is over its request rate (`rate-limited`), or at submit its tenant at its quota of active jobs (`quota-exceeded`); `Retry-After` says when to try again").into());
            }
        }
    }
}

/// The `/v1` routes that answer in JSON (and negotiate it with `Accept`): each needs a key when
/// the server has keys.
fn v1_json_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        // Uploads are streamed to disk under the per-image and total limits of `ingest`, so the
        // default 2 MB body cap must not apply here (the whole-body cap in `router` does).
        .routes(routes!(routes::jobs::create_job).layer(DefaultBodyLimit::disable()))
        .routes(routes!(routes::list::list_jobs))
        .routes(routes!(routes::jobs::get_job, routes::jobs::delete_job))
        .routes(routes!(routes::limits::get_limits))
}

/// The `/v1` routes that answer in another format than JSON: redirects to files (whatever their
/// type) and the event stream.
fn v1_other_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::events::job_events))
        .routes(routes!(routes::jobs::get_video))
        .routes(routes!(routes::jobs::get_poster))
        .routes(routes!(routes::jobs::get_preview))
        .routes(routes!(routes::jobs::get_thumbnail))
}

/// Routes anyone may call: health and this document.
fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(routes::health::healthz))
        .routes(routes!(routes::health::readyz))
        .routes(routes!(routes::docs::openapi_json))
}

/// Routes anyone may call that answer in another format than JSON: metrics and the
/// documentation page.
fn public_text_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics::get_metrics))
        .routes(routes!(routes::docs::docs_page))
        .routes(routes!(routes::docs::docs_file))
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = v1_json_routes()
        .merge(public_routes())
        .merge(public_text_routes())
        .merge(v1_other_routes())
        .split_for_parts()
        .1;
    utoipa::Modify::modify(&KeysRequired, &mut doc);
    doc
}

/// Room for multipart framing (boundaries, part headers) above the photos' own bytes.
const MULTIPART_OVERHEAD: u64 = 16 * 1024 * 1024;

/// The cap on every request body: the photos and soundtrack a job may have, and framing.
fn body_cap(limits: &minimoto_common::limits::Limits) -> u64 {
    limits.max_total_bytes.saturating_add(MULTIPART_OVERHEAD)
}

/// The 413 of a body over [`body_cap`], naming it.
pub(crate) fn body_too_large(limits: &minimoto_common::limits::Limits) -> ApiError {
    ApiError::new(
        ErrorCode::UploadTooLarge,
        format!(
            "the request body is larger than the {} bytes this server accepts ({} bytes of \
             photos and soundtrack, plus {} of multipart framing)",
            body_cap(limits),
            limits.max_total_bytes,
            MULTIPART_OVERHEAD
        ),
    )
}

/// The whole app. Download links (`video_url`, …) are opaque expiring URLs, served by S3 or by
/// the backend's own routes (`ports.backend_routes`), so they are not part of the document.
pub fn build(config: ApiConfig, ports: Ports) -> Router {
    let state = AppState::new(config, &ports);
    let (v1_json, _) = v1_json_routes().split_for_parts();
    let (v1_other, _) = v1_other_routes().split_for_parts();
    let (public, _) = public_routes().split_for_parts();
    let (public_text, _) = public_text_routes().split_for_parts();
    metrics::handle();
    // Caps every request body, including what multer buffers while it looks for a part's end.
    let cap = usize::try_from(body_cap(&state.config.limits)).unwrap_or(usize::MAX);
    let limits = state.config.limits.clone();
    let timeout = state.config.request_timeout;
    let auth = axum::middleware::from_fn_with_state(state.auth.clone(), auth::authenticate);
    let v1 = v1_json
        .layer(axum::middleware::from_fn(accept::require_json))
        .merge(v1_other)
        .layer(auth);
    v1.merge(public.layer(axum::middleware::from_fn(accept::require_json)))
        .merge(public_text)
        .with_state(state)
        .merge(ports.backend_routes)
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(timeout, deadline))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(cap))
        .layer(axum::middleware::from_fn(metrics::track))
        // Outside the body cap, so that its own 413 is rewritten too.
        .layer(axum::middleware::map_response_with_state(
            limits,
            every_answer,
        ))
        // Every request gets an id (the client's `X-Request-Id`, or a new UUID), carried by every
        // log line of its span and returned in the response's `X-Request-Id`, so a client's
        // report and the server's log meet.
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The request timeout, on every request but an upload (whose pace `ingest` watches instead: a
/// large upload on a slow link may rightly take minutes). It bounds the time to the response's
/// head; a download's body streams on after it.
async fn deadline(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let upload = request.method() == axum::http::Method::POST && request.uri().path() == "/v1/jobs";
    if upload {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs_f64(), "request timed out");
            ApiError::new(
                ErrorCode::RequestTimeout,
                format!(
                    "the server could not answer within its {} s request timeout; try again shortly",
                    limit.as_secs_f64()
                ),
            )
            .into_response()
        }
    }
}

/// The span of one request: its method, path and id.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %id,
        // Filled in by `auth::authenticate` when the request carries a key.
        key_id = tracing::field::Empty,
    )
}

/// An error body nobody shaped as JSON: none, the plain text axum writes, or the file type
/// `ServeFile` keeps on its 416. (An error in JSON is ours: a problem, or the readiness report.)
fn is_bare(res: &Response) -> bool {
    !res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.starts_with(b"application/json") || v.starts_with(b"application/problem+json")
    })
}

/// Largest body of a bare error that is kept as the problem's detail.
const BARE_DETAIL_BYTES: usize = 1024;

/// What every response gets: `nosniff` (a download is never run as something else), and for an
/// error that axum or tower-http answered themselves (a wrong method, the body cap, a path that
/// is not UTF-8, an unsatisfiable range) the same problem+json as every other error, with the same
/// status and the headers that matter (`Allow`, `Content-Range`).
async fn every_answer(
    axum::extract::State(limits): axum::extract::State<minimoto_common::limits::Limits>,
    res: Response,
) -> Response {
    let mut res =
        if (res.status().is_client_error() || res.status().is_server_error()) && is_bare(&res) {
            problem_for_bare(res, &limits).await
        } else {
            res
        };
    res.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    res
}

async fn problem_for_bare(res: Response, limits: &minimoto_common::limits::Limits) -> Response {
    let (parts, body) = res.into_parts();
    let status = parts.status;
    let text = match axum::body::to_bytes(body, BARE_DETAIL_BYTES).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => String::new(),
    };
    let (code, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            let e = body_too_large(limits);
            (e.code, e.detail)
        }
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this route does not take that method".to_owned(),
        ),
        StatusCode::RANGE_NOT_SATISFIABLE => (
            ErrorCode::RangeNotSatisfiable,
            "the range starts past the end of the file (see Content-Range for its size)".to_owned(),
        ),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_owned()),
        s if s.is_client_error() => (
            ErrorCode::BadRequest,
            if text.is_empty() {
                "the request could not be read".to_owned()
            } else {
                format!("the request could not be read: {text}")
            },
        ),
        _ => {
            tracing::error!(%status, body = %text, "a bare server error");
            (
                ErrorCode::Internal,
                "the server failed to handle the request".to_owned(),
            )
        }
    };
    let problem = Problem::new(status.as_u16(), code.as_str(), &detail);
    let mut out = (status, problem.to_json()).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(minimoto_common::problem::CONTENT_TYPE),
    );
    for name in [header::ALLOW, header::CONTENT_RANGE, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
