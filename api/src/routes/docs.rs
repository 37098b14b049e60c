//! `/openapi.json`: the API's OpenAPI document, served by the API itself (the same document as
//! `openapi/openapi.json` and `minimoto openapi`), so clients and code generators can fetch the
//! contract of the very server they talk to.

use std::sync::LazyLock;

use axum::{
    http::header,
    response::{IntoResponse, Response},
};

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
