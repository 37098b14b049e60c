//! The settings every role shares, as command-line flags that are also environment variables.

use std::path::PathBuf;

use clap::Args;
use minimoto_common::limits::Limits;

use crate::backend::BackendArgs;

/// Where data lives, how many attempts a job gets, and the input limits.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Where the local backend keeps jobs, the queue, photos and videos; scratch space for both.
    #[arg(long, env = "MINIMOTO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Attempts at a job before it is failed for good.
    #[arg(long, env = "MINIMOTO_MAX_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Most photos in one job.
    #[arg(long, env = "MINIMOTO_MAX_IMAGES", default_value_t = Limits::default().max_images)]
    pub max_images: u32,
    /// Largest photo file, in bytes.
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_BYTES", default_value_t = Limits::default().max_image_bytes)]
    pub max_image_bytes: u64,
    /// Largest upload (all photos), in bytes.
    #[arg(long, env = "MINIMOTO_MAX_TOTAL_BYTES", default_value_t = Limits::default().max_total_bytes)]
    pub max_total_bytes: u64,
    /// Largest photo in pixels (width × height).
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_PIXELS", default_value_t = Limits::default().max_image_pixels)]
    pub max_image_pixels: u64,
    /// Longest video, in seconds.
    #[arg(long, env = "MINIMOTO_MAX_VIDEO_SECONDS", default_value_t = Limits::default().max_video_seconds)]
    pub max_video_seconds: f64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_images: self.max_images,
            max_image_bytes: self.max_image_bytes,
            max_total_bytes: self.max_total_bytes,
            max_image_pixels: self.max_image_pixels,
            max_video_seconds: self.max_video_seconds,
        }
    }
}
