//! `/files/{key}`: the embedded backend's signed, expiring downloads (what S3 presigned URLs are
//! in production), served by whoever serves HTTP for this backend. With HTTP Range and
//! conditional requests, so browsers can seek.

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Path, Query, Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use minimoto_common::problem::{CONTENT_TYPE, Problem};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::{blob::LocalBlobStore, signing::UrlRefusal};

/// The download route, for the API to merge into its router.
pub fn router(store: Arc<LocalBlobStore>) -> Router {
    Router::new()
        .route("/files/{*key}", axum::routing::get(download))
        .with_state(store)
}

#[derive(Debug, Deserialize)]
struct Signature {
    /// Unix time after which the link is refused.
    expires: i64,
    /// Hex HMAC-SHA256 over the key and the expiry.
    signature: String,
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = Problem::new(status.as_u16(), code, detail).to_json();
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    res
}

/// `bytes=-0`: a valid range of the last zero bytes, which RFC 9110 §14.1.1 makes unsatisfiable
/// (the parser refuses it, so it would otherwise be ignored as malformed).
fn is_empty_suffix_range(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|spec| spec.trim().strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b == b'0'))
}

/// A 416 problem that says the file's size, as `ServeFile` answers a range past the end.
async fn unsatisfiable(path: &std::path::Path) -> Response {
    let size = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
    let mut res = problem(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
        "the range selects no bytes of the file (see Content-Range for its size)",
    );
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

/// Drops a `Range` header the server should ignore rather than refuse (RFC 9110 §14.2): one in
/// a unit other than bytes, one that does not parse, and one of several ranges (a multipart 206
/// is optional; the whole file with 200 is a correct answer). A single byte range goes on to
/// `ServeFile`, which clamps an end past the file and answers 416 only for a start past it.
fn ignore_unservable_range(headers: &mut axum::http::HeaderMap) {
    let servable = headers.get(header::RANGE).map(|v| {
        v.to_str().ok().is_some_and(|v| {
            http_range_header::parse_range_header(v).is_ok_and(|r| r.ranges.len() == 1)
        })
    });
    if servable == Some(false) {
        headers.remove(header::RANGE);
    }
}

async fn download(
    State(store): State<Arc<LocalBlobStore>>,
    Path(key): Path<String>,
    sig: Result<Query<Signature>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> Response {
    // A link without a well-formed signature is as invalid as one with a wrong signature.
    let Ok(Query(sig)) = sig else {
        let refusal = UrlRefusal::BadSignature.to_string();
        return problem(StatusCode::FORBIDDEN, "bad-signature", &refusal);
    };
    if let Err(r) = store
        .signer()
        .verify(&key, sig.expires, &sig.signature, Utc::now())
    {
        return match r {
            UrlRefusal::BadSignature => {
                problem(StatusCode::FORBIDDEN, "bad-signature", &r.to_string())
            }
            UrlRefusal::Expired => problem(StatusCode::GONE, "link-expired", &r.to_string()),
        };
    }
    let Ok(path) = store.path_of(&key) else {
        return problem(StatusCode::NOT_FOUND, "not-found", &format!("file {key}"));
    };
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => {}
        // A directory (a job's prefix) is never served, signed or not.
        Ok(_) => return problem(StatusCode::NOT_FOUND, "not-found", &format!("file {key}")),
        Err(_) => {
            let detail = format!("file {key} no longer exists");
            return problem(StatusCode::GONE, "expired", &detail);
        }
    }
    let mut request = request;
    if is_empty_suffix_range(request.headers()) {
        return unsatisfiable(&path).await;
    }
    ignore_unservable_range(request.headers_mut());
    match ServeFile::new(path).oneshot(request).await {
        Ok(res) => res.map(Body::new).into_response(),
        Err(e) => {
            tracing::error!(error = %e, %key, "serving a file failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed to handle the request",
            )
        }
    }
}
