//! Content negotiation for the JSON routes: a client that says it cannot take JSON gets `406`
//! instead of a body it did not ask for.

use axum::{
    extract::Request,
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use minimoto_common::ErrorCode;

use crate::error::ApiError;

/// Whether an `Accept` header value admits `application/json` (or problem+json, which errors use).
pub fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        !refused
            && matches!(
                media.as_str(),
                "*/*" | "application/*" | "application/json" | "application/problem+json"
            )
    })
}

pub async fn require_json(request: Request, next: Next) -> Response {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match accept {
        Some(a) if !a.trim().is_empty() && !accepts_json(&a) => ApiError::new(
            ErrorCode::NotAcceptable,
            format!("this route answers in application/json, which `Accept: {a}` does not allow"),
        )
        .into_response(),
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::accepts_json;

    #[test]
    fn accept_headers() {
        for yes in [
            "*/*",
            "application/json",
            "text/html, application/json;q=0.9",
            "application/*",
            "APPLICATION/JSON",
        ] {
            assert!(accepts_json(yes), "{yes}");
        }
        for no in [
            "text/html",
            "image/png, text/plain",
            "application/json;q=0",
            "application/xml",
        ] {
            assert!(!accepts_json(no), "{no}");
        }
    }
}
