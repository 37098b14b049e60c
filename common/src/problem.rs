//! The body of every error the HTTP API sends: `application/problem+json` (RFC 9457) with a stable
//! `code`. Here, not in the API, so that whoever serves a backend's own routes (the embedded
//! backend's signed downloads) answers in the same shape.

use serde::Serialize;
use utoipa::ToSchema;

use crate::spec::Violation;

/// The media type of [`Problem`] bodies.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
    "code": "invalid-options", "detail": "the render options are not valid",
    "errors": [{"field": "fps", "message": "must be from 12 to 60, got 0"}]}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Stable, kebab-case: what went wrong, for programs.
    pub code: String,
    /// What went wrong, for people.
    pub detail: String,
    /// Each broken field, when the request body had several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<Violation>,
}

impl Problem {
    /// A problem of HTTP status `status`; the title is the status's reason phrase.
    pub fn new(status: u16, code: &str, detail: &str) -> Self {
        Self {
            type_: "about:blank".into(),
            title: reason(status).into(),
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<Violation>) -> Self {
        self.errors = errors;
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The reason phrases of the statuses minimoto answers with.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Error",
    }
}
