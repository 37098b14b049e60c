//! Every error code minimoto reports, in one list: the `code` of an API problem and the
//! `error.code` of a failed job. Stable and kebab-case on the wire, so clients can branch on them;
//! a new failure needs a new entry here (and, for the API, a status in its one mapping).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    // A request the API refuses.
    /// The body is not `multipart/form-data`.
    NotMultipart,
    /// The multipart body is malformed.
    BadMultipart,
    /// The upload has no `images` part.
    NoImages,
    /// A part the API does not know.
    UnexpectedPart,
    /// A part that may appear once appeared again.
    DuplicatePart,
    /// More photos than the limit.
    TooManyImages,
    /// The whole upload is larger than the limit.
    UploadTooLarge,
    /// The `options` part is larger than the limit.
    OptionsTooLarge,
    /// The upload sent nothing for the stall timeout.
    UploadStalled,
    /// The upload arrived slower than the floor rate.
    UploadTooSlow,
    /// A multipart part's headers (or the preamble before the first part) are over the limit.
    PartHeadersTooLarge,
    /// A request the HTTP layer could not take apart (a path that is not UTF-8, a bad header).
    BadRequest,
    /// A request head over the server's limits: 100 header lines, 408 KiB (431).
    HeadersTooLarge,
    /// A request URI longer than the server reads (414).
    UriTooLong,
    /// A `Range` that starts past the end of the file.
    RangeNotSatisfiable,
    /// The server is at its limit of uploads in flight; try again after `Retry-After`.
    ServerBusy,
    /// The server could not answer within its request timeout; try again after `Retry-After`.
    RequestTimeout,
    /// The server's storage is full; nothing was kept. Try again after `Retry-After`.
    StorageFull,
    /// The render options break a rule (one entry per field in `errors`).
    InvalidOptions,
    /// A query parameter breaks a rule (one entry per parameter in `errors`).
    InvalidQuery,
    /// No API key, or one the server does not know (401).
    Unauthorized,
    /// The API key was revoked (403).
    KeyRevoked,
    /// The key sent more requests than its rate allows; try again after `Retry-After` (429).
    RateLimited,
    /// The key's tenant has as many jobs queued or running as its quota allows (429).
    QuotaExceeded,
    /// The `Idempotency-Key` header is empty, too long or not visible ASCII (400).
    BadIdempotencyKey,
    /// The `Idempotency-Key` was used before with another request (422).
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still being submitted; try again after
    /// `Retry-After` (409).
    IdempotencyInProgress,
    /// No such job or route.
    NotFound,
    /// The job has no video yet.
    NotReady,
    /// The job ended without a video.
    NoVideo,
    /// The route does not take that method.
    MethodNotAllowed,
    /// The `Accept` header excludes JSON.
    NotAcceptable,
    /// A storage backend does not answer; try again.
    BackendUnavailable,
    /// A failure of ours; the operators' log has the cause.
    Internal,
    /// A download link whose signature does not verify.
    BadSignature,
    /// A download link past its expiry.
    LinkExpired,
    /// The file or output no longer exists.
    Expired,

    // A photo that cannot be used: at submit (a 4xx) or at render (the job fails).
    /// Not an image, or a format minimoto does not decode.
    ImageUnsupported,
    /// A photo over the byte or pixel limit.
    ImageTooLarge,
    /// A photo that is truncated or damaged.
    ImageCorrupt,
    /// The `audio` part is not audio, or a container or codec minimoto does not decode.
    AudioUnsupported,
    /// The `audio` part is over the byte limit.
    AudioTooLarge,
    /// The `audio` part's sound does not decode.
    AudioCorrupt,

    // Why a job failed.
    /// A photo of the job is no longer in storage (deleted, or expired by retention).
    InputMissing,
    /// The video encoder failed, repeatedly.
    EncoderFailed,
    /// Rendering took longer than the per-attempt deadline, repeatedly.
    RenderTimeout,
    /// Storage failed, repeatedly.
    StorageFailed,
    /// The worker's scratch space failed, repeatedly.
    ScratchFailed,
    /// Storage (the worker's scratch disk or the backend) was full, for every attempt.
    NoSpace,
    /// The renderer hit an internal error.
    InternalError,
    /// The job was tried as often as allowed.
    AttemptsExhausted,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [Self; 51] = [
        Self::NotMultipart,
        Self::BadMultipart,
        Self::NoImages,
        Self::UnexpectedPart,
        Self::DuplicatePart,
        Self::TooManyImages,
        Self::UploadTooLarge,
        Self::OptionsTooLarge,
        Self::UploadStalled,
        Self::UploadTooSlow,
        Self::PartHeadersTooLarge,
        Self::BadRequest,
        Self::HeadersTooLarge,
        Self::UriTooLong,
        Self::RangeNotSatisfiable,
        Self::ServerBusy,
        Self::RequestTimeout,
        Self::StorageFull,
        Self::InvalidOptions,
        Self::InvalidQuery,
        Self::Unauthorized,
        Self::KeyRevoked,
        Self::RateLimited,
        Self::QuotaExceeded,
        Self::BadIdempotencyKey,
        Self::IdempotencyKeyReused,
        Self::IdempotencyInProgress,
        Self::NotFound,
        Self::NotReady,
        Self::NoVideo,
        Self::MethodNotAllowed,
        Self::NotAcceptable,
        Self::BackendUnavailable,
        Self::Internal,
        Self::BadSignature,
        Self::LinkExpired,
        Self::Expired,
        Self::ImageUnsupported,
        Self::ImageTooLarge,
        Self::ImageCorrupt,
        Self::AudioUnsupported,
        Self::AudioTooLarge,
        Self::AudioCorrupt,
        Self::InputMissing,
        Self::EncoderFailed,
        Self::RenderTimeout,
        Self::StorageFailed,
        Self::ScratchFailed,
        Self::NoSpace,
        Self::InternalError,
        Self::AttemptsExhausted,
    ];

    /// The wire form, e.g. `input-missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotMultipart => "not-multipart",
            Self::BadMultipart => "bad-multipart",
            Self::NoImages => "no-images",
            Self::UnexpectedPart => "unexpected-part",
            Self::DuplicatePart => "duplicate-part",
            Self::TooManyImages => "too-many-images",
            Self::UploadTooLarge => "upload-too-large",
            Self::OptionsTooLarge => "options-too-large",
            Self::UploadStalled => "upload-stalled",
            Self::UploadTooSlow => "upload-too-slow",
            Self::PartHeadersTooLarge => "part-headers-too-large",
            Self::BadRequest => "bad-request",
            Self::HeadersTooLarge => "headers-too-large",
            Self::UriTooLong => "uri-too-long",
            Self::RangeNotSatisfiable => "range-not-satisfiable",
            Self::ServerBusy => "server-busy",
            Self::RequestTimeout => "request-timeout",
            Self::StorageFull => "storage-full",
            Self::InvalidOptions => "invalid-options",
            Self::InvalidQuery => "invalid-query",
            Self::Unauthorized => "unauthorized",
            Self::KeyRevoked => "key-revoked",
            Self::RateLimited => "rate-limited",
            Self::QuotaExceeded => "quota-exceeded",
            Self::BadIdempotencyKey => "bad-idempotency-key",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::IdempotencyInProgress => "idempotency-in-progress",
            Self::NotFound => "not-found",
            Self::NotReady => "not-ready",
            Self::NoVideo => "no-video",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::NotAcceptable => "not-acceptable",
            Self::BackendUnavailable => "backend-unavailable",
            Self::Internal => "internal",
            Self::BadSignature => "bad-signature",
            Self::LinkExpired => "link-expired",
            Self::Expired => "expired",
            Self::ImageUnsupported => "image-unsupported",
            Self::ImageTooLarge => "image-too-large",
            Self::ImageCorrupt => "image-corrupt",
            Self::AudioUnsupported => "audio-unsupported",
            Self::AudioTooLarge => "audio-too-large",
            Self::AudioCorrupt => "audio-corrupt",
            Self::InputMissing => "input-missing",
            Self::EncoderFailed => "encoder-failed",
            Self::RenderTimeout => "render-timeout",
            Self::StorageFailed => "storage-failed",
            Self::ScratchFailed => "scratch-failed",
            Self::NoSpace => "no-space",
            Self::InternalError => "internal-error",
            Self::AttemptsExhausted => "attempts-exhausted",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_form_is_the_serde_form() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} is listed twice");
            let json = serde_json::to_string(&code).expect("serialize");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, code);
        }
    }
}
