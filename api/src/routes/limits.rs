//! `/v1/limits`: the limits in force for the caller's key, so a client can check a job before
//! sending hundreds of megabytes that would be refused.

use axum::{Extension, Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use minimoto_common::limits::Limits;

use crate::{auth::Caller, state::AppState};

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"max_images": 500, "max_image_bytes": 52428800,
    "max_audio_bytes": 104857600, "max_total_bytes": 2_147_483_648_u64, "max_image_pixels": 100000000,
    "max_video_seconds": 3600.0, "max_megapixel_frames": 40000, "max_uploads_in_flight": 16,
    "upload_stall_seconds": 60, "upload_min_bytes_per_second": 1024, "url_ttl_seconds": 3600,
    "tenant": "acme", "rate_per_minute": 600, "max_active_jobs": 20}))]
pub struct LimitsView {
    /// The input limits, as every part of the service checks them.
    #[serde(flatten)]
    pub limits: Limits,
    /// Uploads the server receives at once, from all clients (503 `server-busy` beyond).
    pub max_uploads_in_flight: usize,
    /// An upload that sends nothing for this long is cut off (408 `upload-stalled`).
    pub upload_stall_seconds: u64,
    /// Slowest upload accepted, in bytes a second over the stall window (408 `upload-too-slow`).
    pub upload_min_bytes_per_second: u64,
    /// How long the download links in a job stay valid.
    pub url_ttl_seconds: u64,
    /// The tenant the key acts for (`default` on a server without keys).
    pub tenant: String,
    /// Requests a minute the key may send (429 `rate-limited` beyond); null without keys.
    pub rate_per_minute: Option<u32>,
    /// Jobs the tenant may have queued or running at once (429 `quota-exceeded` at submit
    /// beyond); null without keys.
    pub max_active_jobs: Option<u32>,
}

/// The limits in force for this key.
#[utoipa::path(
    get, path = "/v1/limits", tag = "jobs",
    responses((status = 200, description = "The limits in force", body = LimitsView))
)]
pub async fn get_limits(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Json<LimitsView> {
    let c = &state.config;
    Json(LimitsView {
        limits: c.limits.clone(),
        max_uploads_in_flight: c.max_uploads,
        upload_stall_seconds: c.upload_stall.as_secs(),
        upload_min_bytes_per_second: c.upload_min_rate,
        url_ttl_seconds: c.url_ttl.as_secs(),
        tenant: caller.tenant,
        rate_per_minute: caller.rate_per_minute,
        max_active_jobs: caller.max_active_jobs,
    })
}
