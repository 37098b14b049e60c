//! `/v1/limits`: the limits this server enforces, so a client can check a job before sending
//! hundreds of megabytes that would be refused. (Per-key limits come with API keys.)

use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use minimoto_common::limits::Limits;

use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"max_images": 500, "max_image_bytes": 52428800,
    "max_audio_bytes": 104857600, "max_total_bytes": 2_147_483_648_u64, "max_image_pixels": 100000000,
    "max_video_seconds": 3600.0, "max_megapixel_frames": 40000, "max_uploads_in_flight": 16,
    "upload_stall_seconds": 60, "upload_min_bytes_per_second": 1024, "url_ttl_seconds": 3600}))]
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
}

/// The limits this server enforces on submissions.
#[utoipa::path(
    get, path = "/v1/limits", tag = "jobs",
    responses((status = 200, description = "The limits in force", body = LimitsView))
)]
pub async fn get_limits(State(state): State<AppState>) -> Json<LimitsView> {
    let c = &state.config;
    Json(LimitsView {
        limits: c.limits.clone(),
        max_uploads_in_flight: c.max_uploads,
        upload_stall_seconds: c.upload_stall.as_secs(),
        upload_min_bytes_per_second: c.upload_min_rate,
        url_ttl_seconds: c.url_ttl.as_secs(),
    })
}
