//! `/files/{key}`: the embedded backend's signed, expiring downloads (what S3 presigned URLs are
//! in production). Served with HTTP Range and conditional requests, so browsers can seek.

use axum::{
    body::Body,
    extract::{Path, Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use minimoto_common::local::signing::UrlRefusal;
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;
use utoipa::IntoParams;

use crate::{
    error::{ApiError, ApiResult},
    state::AppState,
};

#[derive(Debug, Deserialize, IntoParams)]
pub struct Signature {
    /// Unix time after which the link is refused.
    expires: i64,
    /// Hex HMAC-SHA256 over the key and the expiry.
    signature: String,
}

/// Download a stored file through a signed link handed out by the job (embedded backend only).
#[utoipa::path(
    get, path = "/files/{key}", tag = "downloads",
    params(("key" = String, Path, description = "The file's key"), Signature),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 206, description = "The requested byte range"),
        (status = 403, description = "The link's signature is not valid", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Not a file key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The link has expired, or the file was deleted", body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn download(
    State(state): State<AppState>,
    Path(key): Path<String>,
    sig: Result<Query<Signature>, axum::extract::rejection::QueryRejection>,
    request: Request,
) -> ApiResult<Response> {
    // A link without a well-formed signature is as invalid as one with a wrong signature.
    let Query(sig) = sig.map_err(|_| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "bad-signature",
            UrlRefusal::BadSignature.to_string(),
        )
    })?;
    let store = state
        .local_files
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server stores files elsewhere"))?;
    store
        .signer()
        .verify(&key, sig.expires, &sig.signature, Utc::now())
        .map_err(|r| match r {
            UrlRefusal::BadSignature => {
                ApiError::new(StatusCode::FORBIDDEN, "bad-signature", r.to_string())
            }
            UrlRefusal::Expired => ApiError::new(StatusCode::GONE, "link-expired", r.to_string()),
        })?;
    let path = store
        .path_of(&key)
        .map_err(|_| ApiError::not_found(format!("file {key}")))?;
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::new(
            StatusCode::GONE,
            "expired",
            format!("file {key} no longer exists"),
        ));
    }
    let res = ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(ApiError::internal)?;
    Ok(res.map(Body::new).into_response())
}
