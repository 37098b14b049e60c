//! Input limits, checked before any expensive work (decoding, storing, rendering).
//!
//! Every limit is configuration with a default sized for a self-hosted service; errors that
//! enforce them name the limit and its value.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Most photos in one job.
    pub max_images: u32,
    /// Largest single photo file, in bytes.
    pub max_image_bytes: u64,
    /// Largest whole upload (all photos together), in bytes.
    pub max_total_bytes: u64,
    /// Largest photo in pixels (width × height), read from the header before decoding.
    pub max_image_pixels: u64,
    /// Longest video, in seconds.
    pub max_video_seconds: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_images: 500,
            max_image_bytes: 50 * 1024 * 1024,
            max_total_bytes: 2 * 1024 * 1024 * 1024,
            max_image_pixels: 100_000_000,
            max_video_seconds: 3600.0,
        }
    }
}
