//! Finding ffmpeg, and checking at startup that it can do the job.
//!
//! The worker needs an `ffmpeg` with every encoder in [`ENCODERS`]. Which one is a setting (`--ffmpeg`, or
//! `MINIMOTO_FFMPEG`, read by the command line, never here); it is checked once per process
//! start through [`check`], so a missing or unfit install stops the service with instructions
//! instead of failing every job later.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// The setting's names, for messages.
const PATH_SETTING: &str = "--ffmpeg or MINIMOTO_FFMPEG";

const INSTALL: &str =
    "Install it: `sudo apt-get install ffmpeg` (Debian/Ubuntu), `brew install ffmpeg` (macOS)";

/// Why ffmpeg cannot be used; the message tells the operator how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum FfmpegMissing {
    #[error(
        "ffmpeg was not found on PATH (or at {PATH_SETTING}); tried `{path}`: {reason}. {INSTALL}, or point {PATH_SETTING} at it"
    )]
    NotFound { path: String, reason: String },
    #[error("ffmpeg at `{path}` does not run properly (`ffmpeg -version` {reason}). {INSTALL}")]
    Broken { path: String, reason: String },
    #[error(
        "ffmpeg at `{path}` ({version}) has no {encoder} encoder, which minimoto needs for {purpose}. {INSTALL} (these builds include it), or point {PATH_SETTING} at one that does"
    )]
    MissingEncoder {
        path: String,
        version: String,
        encoder: &'static str,
        purpose: &'static str,
    },
}

/// The encoders a render may use, and what for: a worker without one would fail every job that
/// asks for it, so it refuses to start instead.
pub const ENCODERS: [(&str, &str); 6] = [
    ("libx264", "H.264 (MP4 videos)"),
    ("libvpx-vp9", "VP9 (WebM videos)"),
    ("aac", "AAC soundtracks (MP4)"),
    ("libopus", "Opus soundtracks (WebM)"),
    ("gif", "GIF previews"),
    ("libwebp_anim", "animated WebP previews"),
];

/// The ffmpeg binary to run: the one given, else ffmpeg-sidecar's lookup (a binary next to our
/// executable, else `ffmpeg` on `PATH`).
pub fn resolve(given: Option<&Path>) -> PathBuf {
    match given {
        Some(path) if !path.as_os_str().is_empty() => path.to_owned(),
        _ => ffmpeg_sidecar::paths::ffmpeg_path(),
    }
}

/// Checks that the ffmpeg at `path` runs and has every encoder in [`ENCODERS`]; returns its version line
/// (e.g. `ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024 the FFmpeg developers`).
pub fn check(path: &Path) -> Result<String, FfmpegMissing> {
    let shown = path.display().to_string();
    let version = run(path, &["-version"]).map_err(|e| match e {
        RunError::Spawn(reason) => FfmpegMissing::NotFound {
            path: shown.clone(),
            reason,
        },
        RunError::Failed(reason) => FfmpegMissing::Broken {
            path: shown.clone(),
            reason,
        },
    })?;
    let version = version.lines().next().unwrap_or_default().trim().to_owned();
    if !version.starts_with("ffmpeg version") {
        return Err(FfmpegMissing::Broken {
            path: shown,
            reason: format!("printed `{version}` instead of a version"),
        });
    }
    let encoders =
        run(path, &["-hide_banner", "-encoders"]).map_err(|e| FfmpegMissing::Broken {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    if let Some(&(encoder, purpose)) = ENCODERS
        .iter()
        .find(|(name, _)| !has_encoder(&encoders, name))
    {
        return Err(FfmpegMissing::MissingEncoder {
            path: shown,
            version,
            encoder,
            purpose,
        });
    }
    Ok(version)
}

/// True when `ffmpeg -encoders` output lists `name` (lines look like ` V....D libx264  …`).
fn has_encoder(listing: &str, name: &str) -> bool {
    listing
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(name))
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Spawn(String),
    #[error("{0}")]
    Failed(String),
}

fn run(path: &Path, args: &[&str]) -> Result<String, RunError> {
    let out = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RunError::Spawn(e.to_string()))?;
    if !out.status.success() {
        return Err(RunError::Failed(format!("exited with {}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_listing_is_parsed_by_name_not_substring() {
        let listing =
            " V....D libx264rgb           libx264 H.264 RGB\n V..... h264_v4l2m2m  V4L2\n";
        assert!(!has_encoder(listing, "libx264"));
        assert!(has_encoder(
            " V....D libx264              libx264 H.264\n",
            "libx264"
        ));
    }

    #[test]
    fn installed_ffmpeg_passes_the_check() {
        let version =
            check(&resolve(None)).expect("ffmpeg with its encoders is installed on build machines");
        assert!(version.starts_with("ffmpeg version"), "{version}");
    }

    #[test]
    fn missing_ffmpeg_explains_how_to_install() {
        let e = check(Path::new("/nonexistent/ffmpeg")).expect_err("no such binary");
        assert!(matches!(e, FfmpegMissing::NotFound { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("not found on PATH") && msg.contains("apt-get install ffmpeg"),
            "{msg}"
        );
        assert!(
            msg.contains("brew install ffmpeg")
                && msg.contains("MINIMOTO_FFMPEG")
                && msg.contains("/nonexistent/ffmpeg"),
            "{msg}"
        );
    }
}
