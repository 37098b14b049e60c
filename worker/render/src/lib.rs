//! minimoto's render engine: photos and a [`RenderSpec`] in, `video.mp4` and `poster.jpg` out.
//!
//! Photos are decoded once (EXIF orientation applied, limits enforced), fitted to plates with
//! headroom for motion ([`fit`]), and every frame is composed in Rust — sub-pixel Ken Burns
//! ([`motion`]) and crossfades on a frame-exact [`timeline`] — in parallel ([`compose`],
//! `pipeline`), converted to yuv420p ([`yuv`]) and piped into ffmpeg/libx264 ([`encode`]).
//! The poster is then cut from the finished video ([`poster`]). [`ffmpeg`] finds the encoder and
//! checks it at startup.
//!
//! Outputs are written under temporary names and renamed only once complete, so a crash, an error
//! or a cancel never leaves a file that looks finished but is not.
//!
//! Its own crate so that its loops compile optimised in test builds while the worker around it
//! (the consume loop) does not, and so that both halves build in parallel.

pub mod compose;
pub mod encode;
pub mod ffmpeg;
pub mod fit;
pub mod motion;
mod nice;
mod pipeline;
pub mod poster;
pub mod timeline;
pub mod yuv;

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use minimoto_common::{ErrorCode, limits::Limits, spec::RenderSpec};
use minimoto_photo::{self as photo, PhotoError};

pub use self::encode::EncoderSettings;
use self::{encode::Ffmpeg, fit::internal, timeline::Timeline};

/// File names of the outputs inside `out_dir`.
pub const VIDEO_FILE: &str = "video.mp4";
pub const POSTER_FILE: &str = "poster.jpg";

/// What to render, and where.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    pub spec: &'a RenderSpec,
    /// The photos, in order; local files.
    pub photos: &'a [PathBuf],
    pub limits: &'a Limits,
    /// Where `video.mp4` and `poster.jpg` go (created if missing; previous outputs are replaced).
    pub out_dir: &'a Path,
    pub encoder: &'a EncoderSettings,
}

/// A finished render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub video: PathBuf,
    pub poster: PathBuf,
    pub frames: u64,
    /// `frames / fps`: exactly the video's length.
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
}

/// Why a render failed. [`Self::is_bad_input`] tells the worker whether to fail the job (the input
/// will never render) or to retry it (infrastructure trouble).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A photo is unusable; `index` is 1-based, as the user numbers their uploads.
    #[error("photo {index}: {source}")]
    Photo { index: usize, source: PhotoError },
    /// The spec or the photo list breaks a rule (normally caught by the API first).
    #[error("invalid render options: {0}")]
    InvalidSpec(String),
    /// ffmpeg could not start, crashed, or exited with an error. `log` holds the last lines of its
    /// stderr, for the operator's log only.
    #[error("the video encoder failed: {message}")]
    Encoder { message: String, log: String },
    #[error("the render was cancelled")]
    Cancelled,
    #[error("could not write the outputs: {0}")]
    Io(#[from] io::Error),
    /// The disk the render writes to is full: infrastructure, worth a retry once there is room.
    #[error("the worker's disk is full ({0})")]
    NoSpace(String),
    /// A bug or an impossible state inside the pipeline.
    #[error("the render failed unexpectedly: {0}")]
    Internal(String),
}

impl RenderError {
    /// True when retrying cannot help: the job should fail with [`Self::code`].
    pub fn is_bad_input(&self) -> bool {
        match self {
            Self::Photo { source, .. } => source.is_bad_input(),
            Self::InvalidSpec(_) => true,
            Self::Encoder { .. }
            | Self::Cancelled
            | Self::Io(_)
            | Self::NoSpace(_)
            | Self::Internal(_) => false,
        }
    }

    /// The job's `error.code` for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Photo { source, .. } => source.code(),
            Self::InvalidSpec(_) => ErrorCode::InvalidOptions,
            Self::Encoder { .. } => ErrorCode::EncoderFailed,
            // Not a failure: the job was cancelled or taken over (see the consume loop).
            Self::Cancelled => ErrorCode::InternalError,
            Self::Io(_) => ErrorCode::ScratchFailed,
            Self::NoSpace(_) => ErrorCode::NoSpace,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// A write that failed for lack of space, told apart from other failures: by the error kind
    /// for our own writes, by ffmpeg's last words for its (an encoder that cannot write its
    /// output is not a broken encoder).
    fn or_no_space(self) -> Self {
        const FULL: [&str; 2] = ["No space left on device", "Disk quota exceeded"];
        match self {
            Self::Io(e) if minimoto_common::error::is_storage_full(&e) => {
                Self::NoSpace(e.to_string())
            }
            Self::Encoder { log, .. } if FULL.iter().any(|f| log.contains(f)) => {
                let line = log
                    .lines()
                    .rev()
                    .find(|l| FULL.iter().any(|f| l.contains(f)))
                    .unwrap_or_default();
                Self::NoSpace(format!("ffmpeg: {}", line.trim()))
            }
            other => other,
        }
    }
}

/// Renders `input` into `input.out_dir`. Blocking and CPU-heavy: run it on a blocking thread.
///
/// `progress` receives the fraction of frames encoded (0..=1, at most ~100 calls, from a pipeline
/// thread); `cancel` is polled between frames, and stops ffmpeg and removes partial outputs when
/// set. A full disk is [`RenderError::NoSpace`], whichever write hit it.
pub fn render(
    input: &RenderInput<'_>,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Rendered, RenderError> {
    render_to(input, progress, cancel).map_err(RenderError::or_no_space)
}

fn render_to(
    input: &RenderInput<'_>,
    progress: &(dyn Fn(f64) + Sync),
    cancel: &AtomicBool,
) -> Result<Rendered, RenderError> {
    let started = Instant::now();
    let spec = input.spec;
    check_input(input)?;
    let timeline = Timeline::for_spec(input.photos.len(), spec);
    let frames = timeline.total_frames();

    fs::create_dir_all(input.out_dir)?;
    let video = input.out_dir.join(VIDEO_FILE);
    let poster = input.out_dir.join(POSTER_FILE);
    let video_part = input.out_dir.join("video.partial.mp4");
    let poster_part = input.out_dir.join("poster.partial.jpg");
    let mut cleanup = Cleanup(vec![
        video.clone(),
        poster.clone(),
        video_part.clone(),
        poster_part.clone(),
    ]);
    cleanup.remove_all()?; // outputs of an earlier attempt must not pass for this one's

    let ffmpeg = &input.encoder.ffmpeg;
    let args = encode::encode_args(
        spec.width,
        spec.height,
        spec.fps,
        frames,
        &input.encoder.for_quality(spec.quality),
        &video_part,
    );
    let mut encoder = Ffmpeg::spawn(ffmpeg, &args)?;
    let stdin = encoder
        .take_stdin()
        .ok_or_else(|| internal("ffmpeg's stdin is not a pipe"))?;
    let job = pipeline::Job {
        spec,
        photos: input.photos,
        limits: input.limits,
        timeline: &timeline,
    };
    match pipeline::run(&job, stdin, progress, cancel) {
        Ok(()) => encoder.finish()?,
        Err(RenderError::Encoder { message, log }) if log.is_empty() => {
            // ffmpeg stopped taking frames: its stderr says why.
            return Err(RenderError::Encoder {
                message,
                log: encoder.kill(),
            });
        }
        Err(e) => {
            encoder.kill();
            return Err(e);
        }
    }
    fs::rename(&video_part, &video)?;
    let encoded = started.elapsed();

    if cancel.load(Ordering::SeqCst) {
        return Err(RenderError::Cancelled);
    }
    poster::extract(
        ffmpeg,
        &video,
        timeline.poster_frame(),
        spec.fps,
        &poster_part,
    )?;
    fs::rename(&poster_part, &poster)?;
    cleanup.0.clear(); // success: keep the outputs
    tracing::info!(
        frames,
        photos = input.photos.len(),
        width = spec.width,
        height = spec.height,
        encode_ms = encoded.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "rendered"
    );
    Ok(Rendered {
        video,
        poster,
        frames,
        duration_seconds: frames as f64 / f64::from(spec.fps),
        width: spec.width,
        height: spec.height,
    })
}

/// Refuses what can be refused before any work: a broken spec, no photos, or a photo that is not
/// a usable image by its header (corrupt pixel data only shows when a photo is decoded, later).
fn check_input(input: &RenderInput<'_>) -> Result<(), RenderError> {
    if input.photos.is_empty() {
        return Err(RenderError::InvalidSpec(
            "a video needs at least one photo".into(),
        ));
    }
    let count = u32::try_from(input.photos.len()).unwrap_or(u32::MAX);
    let violations = input.spec.validate(count, input.limits);
    if !violations.is_empty() {
        let all: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        return Err(RenderError::InvalidSpec(all.join("; ")));
    }
    for (i, path) in input.photos.iter().enumerate() {
        photo::probe(path, input.limits).map_err(|source| RenderError::Photo {
            index: i + 1,
            source,
        })?;
    }
    Ok(())
}

/// Removes the listed files when dropped (error, cancel or panic), unless the list is cleared.
#[derive(Debug)]
struct Cleanup(Vec<PathBuf>);

impl Cleanup {
    fn remove_all(&mut self) -> io::Result<()> {
        for path in &self.0 {
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.remove_all();
    }
}
