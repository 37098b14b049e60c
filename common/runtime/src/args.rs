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

impl CommonArgs {
    /// These settings as the environment variables a child process reads them from (the local
    /// fleet starts workers with them, so they use the same data, backend and limits).
    pub fn to_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("MINIMOTO_DATA_DIR", self.data_dir.display().to_string()),
            ("MINIMOTO_MAX_ATTEMPTS", self.max_attempts.to_string()),
            ("MINIMOTO_MAX_IMAGES", self.limits.max_images.to_string()),
            (
                "MINIMOTO_MAX_IMAGE_BYTES",
                self.limits.max_image_bytes.to_string(),
            ),
            (
                "MINIMOTO_MAX_AUDIO_BYTES",
                self.limits.max_audio_bytes.to_string(),
            ),
            (
                "MINIMOTO_MAX_TOTAL_BYTES",
                self.limits.max_total_bytes.to_string(),
            ),
            (
                "MINIMOTO_MAX_IMAGE_PIXELS",
                self.limits.max_image_pixels.to_string(),
            ),
            (
                "MINIMOTO_MAX_VIDEO_SECONDS",
                self.limits.max_video_seconds.to_string(),
            ),
            (
                "MINIMOTO_MAX_MEGAPIXEL_FRAMES",
                self.limits.max_megapixel_frames.to_string(),
            ),
        ];
        env.extend(self.backend.to_env());
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Most photos in one job.
    #[arg(long, env = "MINIMOTO_MAX_IMAGES", default_value_t = Limits::default().max_images)]
    pub max_images: u32,
    /// Largest photo file, in bytes.
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_BYTES", default_value_t = Limits::default().max_image_bytes)]
    pub max_image_bytes: u64,
    /// Largest soundtrack (the `audio` part), in bytes.
    #[arg(long, env = "MINIMOTO_MAX_AUDIO_BYTES", default_value_t = Limits::default().max_audio_bytes)]
    pub max_audio_bytes: u64,
    /// Largest upload (all photos and the soundtrack), in bytes.
    #[arg(long, env = "MINIMOTO_MAX_TOTAL_BYTES", default_value_t = Limits::default().max_total_bytes)]
    pub max_total_bytes: u64,
    /// Largest photo in pixels (width × height).
    #[arg(long, env = "MINIMOTO_MAX_IMAGE_PIXELS", default_value_t = Limits::default().max_image_pixels)]
    pub max_image_pixels: u64,
    /// Longest video, in seconds.
    #[arg(long, env = "MINIMOTO_MAX_VIDEO_SECONDS", default_value_t = Limits::default().max_video_seconds)]
    pub max_video_seconds: f64,
    /// Most rendering work per job: frames × canvas megapixels.
    #[arg(long, env = "MINIMOTO_MAX_MEGAPIXEL_FRAMES", default_value_t = Limits::default().max_megapixel_frames, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_megapixel_frames: u64,
}

impl LimitArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            max_images: self.max_images,
            max_image_bytes: self.max_image_bytes,
            max_audio_bytes: self.max_audio_bytes,
            max_total_bytes: self.max_total_bytes,
            max_image_pixels: self.max_image_pixels,
            max_video_seconds: self.max_video_seconds,
            max_megapixel_frames: self.max_megapixel_frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::CommonArgs;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    /// A child started with `to_env` and no flags sees what its parent was given as flags.
    #[test]
    fn settings_survive_the_trip_through_the_environment() {
        let parent = Cli::parse_from([
            "x",
            "--data-dir",
            "/srv/m",
            "--backend",
            "aws",
            "--stack",
            "demo",
            "--sqs-queue",
            "q1",
            "--max-attempts",
            "7",
            "--max-images",
            "12",
        ])
        .common;
        let env = parent.to_env();
        let get = |k: &str| {
            env.iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("MINIMOTO_DATA_DIR"), Some("/srv/m"));
        assert_eq!(get("MINIMOTO_BACKEND"), Some("aws"));
        assert_eq!(get("MINIMOTO_STACK"), Some("demo"));
        assert_eq!(get("MINIMOTO_SQS_QUEUE"), Some("q1"));
        assert_eq!(get("MINIMOTO_MAX_ATTEMPTS"), Some("7"));
        assert_eq!(get("MINIMOTO_MAX_IMAGES"), Some("12"));
        assert_eq!(
            get("MINIMOTO_S3_BUCKET"),
            None,
            "unset names stay derived from the stack"
        );
        // Every variable is one clap reads: an unknown name would be silently ignored.
        let source = include_str!("args.rs").to_owned() + include_str!("backend.rs");
        for (name, _) in &env {
            assert!(
                source.contains(&format!("env = \"{name}\"")),
                "{name} is not read by any flag"
            );
        }
    }
}
