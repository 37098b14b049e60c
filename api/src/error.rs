//! The one error type of the API: every failure leaves as `application/problem+json` (RFC 9457)
//! with a stable kebab-case `code` that clients can branch on, and a `detail` for people that
//! names what was wrong and the limit broken. Internal causes are logged, never sent.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
pub use minimoto_common::problem::Problem;
use minimoto_common::spec::Violation;
use minimoto_photo::PhotoError;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<Violation>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn too_large(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, detail)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", what)
    }

    pub fn invalid_options(errors: Vec<Violation>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} render options are not valid (see errors)", errors.len()),
        };
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid-options",
            detail,
            errors,
        }
    }

    /// A photo that cannot be accepted; `index` is 1-based, as a person counts.
    pub fn photo(index: usize, name: Option<&str>, e: &PhotoError) -> Self {
        let status = match e.code() {
            "image-unsupported" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "image-too-large" => StatusCode::PAYLOAD_TOO_LARGE,
            "image-corrupt" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(e);
        }
        let which = name.map_or_else(
            || format!("image {index}"),
            |n| format!("image {index} ({n})"),
        );
        Self::new(status, e.code(), format!("{which}: {e}"))
    }

    /// A failure of ours or of a backend: logged in full, reported without internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request",
        )
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "backend unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "backend-unavailable",
            "a storage backend is unavailable; try again shortly",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem::new(self.status.as_u16(), self.code, &self.detail).with_errors(self.errors.clone())
    }
}

impl From<minimoto_common::Error> for ApiError {
    fn from(e: minimoto_common::Error) -> Self {
        match e {
            minimoto_common::Error::NotFound(what) => Self::not_found(what),
            minimoto_common::Error::Backend { .. } => Self::unavailable(e),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
