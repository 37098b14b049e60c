//! Input limits, checked before any expensive work (decoding, storing, rendering).
//!
//! Every limit is configuration with a default sized for a self-hosted service; errors that
//! enforce them name the limit and its value.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Each limit's doc names the API's answer to a request beyond it (`GET /v1/limits` lists them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Limits {
    /// Most photos in one job (413 `too-many-images` beyond).
    pub max_images: u32,
    /// Largest single photo file, in bytes (413 `image-too-large`).
    pub max_image_bytes: u64,
    /// Largest soundtrack (the `audio` part), in bytes (413 `audio-too-large`).
    pub max_audio_bytes: u64,
    /// Largest whole upload (all photos and the soundtrack together), in bytes (413
    /// `upload-too-large`).
    pub max_total_bytes: u64,
    /// Largest photo in pixels (width × height), read from the header before decoding (413
    /// `image-too-large`).
    pub max_image_pixels: u64,
    /// Longest video, in seconds (422 `invalid-options`).
    pub max_video_seconds: f64,
    /// Most work in one job: frames × canvas pixels, in megapixel-frames (422 `invalid-options`).
    /// The length limit alone lets one job hold a worker for hours (an hour of 2160p at 60 fps);
    /// this bounds the encoder's work whatever the mix of length, size and frame rate.
    pub max_megapixel_frames: u64,
}

impl Limits {
    /// A job's work in megapixel-frames: `frames` of a `width` × `height` canvas.
    pub fn megapixel_frames(width: u32, height: u32, frames: u64) -> f64 {
        f64::from(width) * f64::from(height) * frames as f64 / 1e6
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_images: 500,
            max_image_bytes: 50 * 1024 * 1024,
            // Ten minutes of CD-quality WAV, hours of MP3.
            max_audio_bytes: 100 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_image_pixels: 100_000_000,
            max_video_seconds: 3600.0,
            // About 10 minutes of 1080p at 30 fps, 22 of 720p, 80 s of 2160p at 60 fps: a few
            // minutes of one worker at x264 `veryfast`.
            max_megapixel_frames: 40_000,
        }
    }
}
