//! `/openapi.json`: the API's OpenAPI document, served by the API itself (the same document as
//! `openapi/openapi.json` and `minimoto openapi`), so clients and code generators can fetch the
//! contract of the very server they talk to; `/docs`: the same document as interactive pages
//! (Swagger UI), whose files are embedded in the binary from the `utoipa-swagger-ui` package, so
//! the page works on a machine with no internet.

use std::sync::{Arc, LazyLock};

use axum::{
    extract::Path,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use utoipa_swagger_ui::Config;

use crate::ApiError;

/// Rendered once: the document is fixed for a build.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    crate::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"the document did not serialise: {e}\"}}"))
});

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get, path = "/openapi.json", tag = "docs",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The page's own HTML: Swagger UI's files are linked relative to `/docs` (`docs/…`), so the page
/// also works behind a proxy that serves the API under a path prefix.
const PAGE: &str = include_str!("docs.html");

/// What the page may load: only this server's files (and the data URIs of Swagger UI's icons).
/// Besides hardening the page, it makes "works with no internet" a rule the browser enforces.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Swagger UI's settings: the document beside the page (relative, for the same prefix reason),
/// and no online validator (its badge would be fetched from swagger.io).
static UI_CONFIG: LazyLock<Arc<Config<'static>>> = LazyLock::new(|| {
    Arc::new(
        Config::new(["openapi.json"])
            .validator_url("none")
            .try_it_out_enabled(true)
            .persist_authorization(false),
    )
});

/// Interactive documentation of this API (Swagger UI), served from files embedded in the binary.
#[utoipa::path(
    get, path = "/docs", tag = "docs",
    responses((status = 200, description = "The documentation page (HTML)", content_type = "text/html"))
)]
pub async fn docs_page() -> Response {
    with_policy(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response())
}

/// One of the documentation page's files (scripts, styles, icons).
#[utoipa::path(
    get, path = "/docs/{file}", tag = "docs",
    params(("file" = String, Path, description = "A file of the page, as the page links it", example = "swagger-ui.css")),
    responses(
        (status = 200, description = "The file, typed by its extension", content(
            ("text/css"), ("text/javascript"), ("application/javascript"), ("image/png"),
            ("text/html"), ("application/json"), ("application/octet-stream")
        )),
        (status = 404, description = "No such file", body = crate::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn docs_file(Path(file): Path<String>) -> Response {
    match utoipa_swagger_ui::serve(&file, UI_CONFIG.clone()) {
        // `serve` answers the index for an empty name; the page is `/docs` itself.
        Ok(Some(found)) if !file.is_empty() && file != "index.html" => with_policy(
            (
                [(header::CONTENT_TYPE, found.content_type)],
                found.bytes.into_owned(),
            )
                .into_response(),
        ),
        Ok(_) => ApiError::not_found("no such file of the documentation page").into_response(),
        Err(e) => {
            ApiError::internal(format!("the documentation page's settings: {e}")).into_response()
        }
    }
}

fn with_policy(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}
