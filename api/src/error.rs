//! The one error type of the API: every failure leaves as `application/problem+json` (RFC 9457)
//! with a stable kebab-case `code` from [`ErrorCode`] that clients can branch on, and a `detail`
//! for people that names what was wrong and the limit broken. Internal causes are logged, never
//! sent. The HTTP status follows from the code alone, in [`status_of`].

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use minimoto_common::ErrorCode;
pub use minimoto_common::problem::Problem;
use minimoto_common::{problem::CONTENT_TYPE, spec::Violation};
use minimoto_photo::PhotoError;

/// How long a client should wait before retrying when a backend is down or the server busy.
pub const RETRY_AFTER_SECONDS: u32 = 5;
/// How long a client should wait before retrying when storage is full: an operator must act.
pub const RETRY_AFTER_FULL_SECONDS: u32 = 300;

#[derive(Debug, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<Violation>,
    /// Seconds for `Retry-After`, when the code's own default does not fit (a rate limit).
    pub retry_after: Option<u64>,
}

/// The one mapping from an error code to an HTTP status.
pub fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode as C;
    match code {
        C::BadMultipart
        | C::NoImages
        | C::UnexpectedPart
        | C::DuplicatePart
        | C::BadRequest
        | C::BadIdempotencyKey => StatusCode::BAD_REQUEST,
        C::Unauthorized => StatusCode::UNAUTHORIZED,
        C::BadSignature | C::KeyRevoked => StatusCode::FORBIDDEN,
        C::RateLimited | C::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        C::NotFound => StatusCode::NOT_FOUND,
        C::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        C::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
        C::UploadStalled | C::UploadTooSlow => StatusCode::REQUEST_TIMEOUT,
        C::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
        C::NotReady | C::NoVideo | C::IdempotencyInProgress => StatusCode::CONFLICT,
        C::Expired | C::LinkExpired => StatusCode::GONE,
        C::TooManyImages
        | C::UploadTooLarge
        | C::OptionsTooLarge
        | C::ImageTooLarge
        | C::AudioTooLarge
        | C::PartHeadersTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        C::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        C::UriTooLong => StatusCode::URI_TOO_LONG,
        C::NotMultipart | C::ImageUnsupported | C::AudioUnsupported => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        C::InvalidOptions
        | C::InvalidQuery
        | C::IdempotencyKeyReused
        | C::ImageCorrupt
        | C::AudioCorrupt => StatusCode::UNPROCESSABLE_ENTITY,
        C::BackendUnavailable | C::ServerBusy | C::RequestTimeout => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        C::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
        // Job failure codes: a request never ends with one, but if a bug made it so, it is ours.
        C::Internal
        | C::InputMissing
        | C::EncoderFailed
        | C::RenderTimeout
        | C::StorageFailed
        | C::ScratchFailed
        | C::NoSpace
        | C::InternalError
        | C::AttemptsExhausted => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// Tells the client when to try again.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, what)
    }

    pub fn invalid_options(errors: Vec<Violation>) -> Self {
        Self::invalid(ErrorCode::InvalidOptions, "render options", errors)
    }

    /// A 422 listing every broken rule (`errors`) of the `what` (plural), the detail naming the
    /// one when alone.
    pub fn invalid(code: ErrorCode, what: &str, errors: Vec<Violation>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => format!("{} {what} are not valid (see errors)", errors.len()),
        };
        Self {
            code,
            detail,
            errors,
            retry_after: None,
        }
    }

    /// A soundtrack that cannot be accepted.
    pub fn audio(name: Option<&str>, e: &minimoto_audio::AudioError) -> Self {
        use minimoto_audio::AudioError as A;
        let code = match e {
            A::Unsupported(_) => ErrorCode::AudioUnsupported,
            A::Corrupt(_) => ErrorCode::AudioCorrupt,
            A::Io(_) => return Self::internal(e),
        };
        let which = name.map_or_else(|| "audio".to_owned(), |n| format!("audio ({n})"));
        Self::new(code, format!("{which}: {e}"))
    }

    /// A photo that cannot be accepted; `index` is 1-based, as a person counts.
    pub fn photo(index: usize, name: Option<&str>, e: &PhotoError) -> Self {
        let code = match e {
            PhotoError::Unsupported(_) => ErrorCode::ImageUnsupported,
            PhotoError::TooLarge { .. } => ErrorCode::ImageTooLarge,
            PhotoError::Corrupt(_) => ErrorCode::ImageCorrupt,
            // Reading our own staged copy failed: not the client's fault.
            PhotoError::Io(_) => return Self::internal(e),
        };
        let which = name.map_or_else(
            || format!("image {index}"),
            |n| format!("image {index} ({n})"),
        );
        Self::new(code, format!("{which}: {e}"))
    }

    /// A failure of ours: logged in full, reported without internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            ErrorCode::Internal,
            "the server failed to handle the request",
        )
    }

    /// Staging an upload on local disk failed: full is the disk's fault and says so (507, nothing
    /// kept), anything else is ours.
    pub fn staging(e: std::io::Error) -> Self {
        if minimoto_common::error::is_storage_full(&e) {
            Self::storage_full(e)
        } else {
            Self::internal(e)
        }
    }

    /// Storage that is full: logged for the operators, reported as 507 with `Retry-After`.
    pub fn storage_full(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "storage full");
        Self::new(
            ErrorCode::StorageFull,
            "the server's storage is full; nothing of this request was kept; try again later",
        )
    }

    /// A backend that does not answer: logged, reported as 503 with `Retry-After`.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "backend unavailable");
        Self::new(
            ErrorCode::BackendUnavailable,
            "a storage backend is unavailable; try again shortly",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem::new(self.status().as_u16(), self.code.as_str(), &self.detail)
            .with_errors(self.errors.clone())
    }
}

impl From<minimoto_common::Error> for ApiError {
    fn from(e: minimoto_common::Error) -> Self {
        match e {
            minimoto_common::Error::NotFound(what) => Self::not_found(what),
            minimoto_common::Error::Backend { .. } => Self::unavailable(e),
            minimoto_common::Error::StorageFull { .. } => Self::storage_full(e),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status(), self.problem().to_json()).into_response();
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        let retry_after = match self.code {
            ErrorCode::BackendUnavailable | ErrorCode::ServerBusy | ErrorCode::RequestTimeout => {
                Some(u64::from(RETRY_AFTER_SECONDS))
            }
            ErrorCode::StorageFull => Some(u64::from(RETRY_AFTER_FULL_SECONDS)),
            _ => None,
        };
        if let Some(seconds) = self.retry_after.or(retry_after) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.code == ErrorCode::Unauthorized {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_request_codes_are_not_500() {
        for code in ErrorCode::ALL {
            let status = status_of(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
        for code in [
            ErrorCode::NoImages,
            ErrorCode::ImageCorrupt,
            ErrorCode::UploadStalled,
            ErrorCode::NotAcceptable,
        ] {
            assert!(status_of(code).is_client_error(), "{code}");
        }
        assert_eq!(
            status_of(ErrorCode::BackendUnavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn an_unavailable_backend_says_when_to_retry() {
        let res = ApiError::unavailable("injected").into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()),
            Some(RETRY_AFTER_SECONDS.to_string().as_bytes())
        );
    }
}
