//! minimoto's render engine: photos and a [`RenderSpec`] in; the video (H.264 MP4 or VP9 WebM),
//! its poster, thumbnails and an optional animated preview out.
//!
//! Photos are decoded once (EXIF orientation applied, limits enforced), fitted to plates with
//! headroom for motion ([`fit`]) and converted to yuv420p once ([`yuv`]); every frame is composed
//! in Rust from those planes — sub-pixel Ken Burns ([`motion`], [`sample`]) and crossfades on a
//! frame-exact [`timeline`] — in parallel ([`compose`], `pipeline`) and piped into ffmpeg
//! (libx264 or libvpx-vp9, [`encode`]).
//! The poster is the composed frame at the poster time, written with its [`thumbnails`] by a
//! low-priority thread while the video encodes ([`poster`]); the finished video is sped up into
//! an optional looping [`preview`]. [`ffmpeg`] finds the encoders and checks them
//! at startup.
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
pub mod preview;
pub mod sample;
pub mod thumbnails;
pub mod timeline;
pub mod yuv;

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Instant,
};

use minimoto_common::{
    ErrorCode,
    limits::Limits,
    spec::{Format, PreviewFormat, RenderSpec},
};
use minimoto_photo::{self as photo, PhotoError};

pub use self::{encode::EncoderSettings, thumbnails::Thumb};
use self::{
    encode::{Ffmpeg, VideoShape},
    fit::internal,
    timeline::Timeline,
};

/// The poster's file name inside `out_dir`.
pub const POSTER_FILE: &str = "poster.jpg";

/// The video's file name inside `out_dir`.
pub fn video_file(format: Format) -> String {
    format!("video.{}", format.extension())
}

/// What to render, and where.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    pub spec: &'a RenderSpec,
    /// The photos, in order; local files.
    pub photos: &'a [PathBuf],
    /// The soundtrack, a local file checked at submit; `None` for a silent video.
    pub audio: Option<&'a Path>,
    pub limits: &'a Limits,
    /// Where the outputs go (created if missing; previous outputs are replaced).
    pub out_dir: &'a Path,
    pub encoder: &'a EncoderSettings,
}

/// A finished render.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub video: PathBuf,
    pub poster: PathBuf,
    /// In the order of the spec's `thumbnails`.
    pub thumbnails: Vec<Thumb>,
    /// When the spec asked for one.
    pub preview: Option<PathBuf>,
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
    let out = |name: &str| input.out_dir.join(name);
    let ext = spec.format.extension();
    let (video, video_part) = (
        out(&video_file(spec.format)),
        out(&format!("video.partial.{ext}")),
    );
    let (poster, poster_part) = (out(POSTER_FILE), out("poster.partial.jpg"));
    let preview_path = spec
        .preview
        .as_ref()
        .map(|p| (out(&preview::file_name(p.format)), p));
    // Every output of every format: an earlier attempt's must not pass for this one's.
    let mut stale = vec![
        video.clone(),
        video_part.clone(),
        poster.clone(),
        poster_part.clone(),
    ];
    stale.extend([Format::Mp4, Format::Webm].map(|f| out(&video_file(f))));
    for f in [PreviewFormat::Gif, PreviewFormat::Webp] {
        stale.extend([out(&preview::file_name(f)), out(&preview::part_name(f))]);
    }
    for &size in &spec.thumbnails {
        stale.extend([
            out(&thumbnails::file_name(size)),
            out(&thumbnails::part_name(size)),
        ]);
    }
    let mut cleanup = Cleanup(stale);
    cleanup.remove_all()?;

    let ffmpeg = &input.encoder.ffmpeg;
    let shape = VideoShape {
        width: spec.width,
        height: spec.height,
        fps: spec.fps,
        frames,
        format: spec.format,
    };
    let soundtrack = input.audio.map(|path| encode::Soundtrack {
        path,
        fade_seconds: spec.audio_fade_seconds,
    });
    let settings = input.encoder.for_quality(spec.quality);
    let args = encode::encode_args(shape, &settings, soundtrack, &video_part);
    let mut encoder = Ffmpeg::spawn(ffmpeg, &args)?;
    let stdin = encoder
        .take_stdin()
        .ok_or_else(|| internal("ffmpeg's stdin is not a pipe"))?;
    widen_pipe(&stdin);
    let job = pipeline::Job {
        spec,
        photos: input.photos,
        limits: input.limits,
        timeline: &timeline,
    };
    let (keep_tx, keep_rx) = mpsc::sync_channel::<Vec<u8>>(1);
    let keep = (timeline.poster_frame(), keep_tx);
    let (poster_at, poster_part_at) = (&poster, &poster_part);
    let (piped, pictures) = std::thread::scope(|s| {
        let pictures = s.spawn(move || {
            nice::lower_current_thread();
            let frame = keep_rx
                .recv()
                .map_err(|_| internal("the poster frame was never composed"))?;
            let picture = poster::to_rgb(&frame, spec.width, spec.height)?;
            drop(frame);
            poster::write(&picture, poster_part_at)?;
            fs::rename(poster_part_at, poster_at)?;
            thumbnails::write(&picture, &spec.thumbnails, input.out_dir)
        });
        let piped = pipeline::run(&job, stdin, progress, cancel, keep);
        let pictures = pictures
            .join()
            .unwrap_or_else(|_| Err(internal("the poster thread panicked")));
        (piped, pictures)
    });
    match piped {
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
    let thumbnails = pictures?;
    let duration_seconds = frames as f64 / f64::from(spec.fps);
    let preview = match preview_path {
        Some((path, p)) => {
            let part = out(&preview::part_name(p.format));
            let size = (spec.width, spec.height);
            preview::write(ffmpeg, &video, size, duration_seconds, p, &part)?;
            fs::rename(&part, &path)?;
            Some(path)
        }
        None => None,
    };
    cleanup.0.clear(); // success: keep the outputs
    tracing::info!(
        frames,
        photos = input.photos.len(),
        width = spec.width,
        height = spec.height,
        format = ext,
        encode_ms = encoded.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "rendered"
    );
    Ok(Rendered {
        video,
        poster,
        thumbnails,
        preview,
        frames,
        duration_seconds,
        width: spec.width,
        height: spec.height,
    })
}

/// Grows the frame pipe from 64 KiB to 1 MiB (Linux's default ceiling for any user): a 720p
/// frame is 1.4 MB, and each refill of a small pipe wakes ffmpeg's reader and our writer again.
/// Best effort: a smaller pipe only costs speed.
fn widen_pipe(stdin: &std::process::ChildStdin) {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::pipe::fcntl_setpipe_size(stdin, 1 << 20) {
        tracing::debug!(error = %e, "the frame pipe keeps its size");
    }
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

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;

    #[test]
    fn the_frame_pipe_is_widened_to_a_mebibyte() {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cat");
        let stdin = child.stdin.take().expect("stdin");
        let before = rustix::pipe::fcntl_getpipe_size(&stdin).expect("size");
        widen_pipe(&stdin);
        let after = rustix::pipe::fcntl_getpipe_size(&stdin).expect("size");
        // Linux lets any user grow a pipe up to /proc/sys/fs/pipe-max-size (1 MiB by default).
        let ceiling: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20);
        if ceiling >= 1 << 20 {
            assert_eq!(after, 1 << 20, "grown from {before}");
        } else {
            assert_eq!(after, before, "a failed widening leaves the pipe as it was");
        }
        drop(stdin);
        child.wait().expect("cat ends");
    }
}
