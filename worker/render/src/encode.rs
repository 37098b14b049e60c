//! Running ffmpeg: the H.264 encoder fed raw frames on stdin, and any one-shot ffmpeg command.
//!
//! Argument lists are built by pure functions (tested as tables); [`Ffmpeg`] owns the process so
//! it is always reaped: finished explicitly, or killed and waited for when dropped (error, cancel
//! or panic), so no zombie and no encoder outlives its render.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::ChildStdin,
    thread::JoinHandle,
};

use ffmpeg_sidecar::{child::FfmpegChild, command::FfmpegCommand};
use minimoto_common::spec::Quality;

use super::RenderError;

/// Lines of ffmpeg's stderr kept for the operator log when it fails.
const TAIL_LINES: usize = 20;

/// Which ffmpeg runs, and how hard libx264 works: settings of the worker, passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The libx264 preset (`ultrafast` … `veryslow`): speed against file size.
    pub preset: String,
    /// libx264's constant rate factor, 0–51: lower is better quality and bigger files.
    pub crf: u8,
}

/// The libx264 presets, fastest first.
pub const PRESETS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

impl EncoderSettings {
    /// `veryfast` at CRF 23: a render keeps pace with a photo slideshow's low motion at a size
    /// a browser streams comfortably.
    pub fn new(ffmpeg: PathBuf) -> Self {
        Self {
            ffmpeg,
            preset: "veryfast".into(),
            crf: 23,
        }
    }

    /// The settings for a job's `quality`: `standard` is these settings; `draft` is two presets
    /// faster at CRF + 5, `high` two presets slower at CRF − 4 (with the defaults: `ultrafast`
    /// 28, `veryfast` 23, `fast` 19).
    pub fn for_quality(&self, quality: Quality) -> Self {
        let (steps, crf): (isize, i16) = match quality {
            Quality::Draft => (-2, 5),
            Quality::Standard => (0, 0),
            Quality::High => (2, -4),
        };
        let at = PRESETS.iter().position(|p| *p == self.preset).unwrap_or(2) as isize;
        let preset = PRESETS[(at + steps).clamp(0, PRESETS.len() as isize - 1) as usize];
        Self {
            ffmpeg: self.ffmpeg.clone(),
            preset: preset.into(),
            crf: (i16::from(self.crf) + crf).clamp(0, 51) as u8,
        }
    }
}

/// Arguments that make ffmpeg read `frames` raw yuv420p frames of `width × height` from stdin and
/// write a browser-safe MP4 to `output`: H.264 (libx264 at `settings`' preset and CRF), yuv420p,
/// BT.709 tagged limited range, `+faststart` (playable before fully downloaded), no audio.
pub fn encode_args(
    width: u32,
    height: u32,
    fps: u32,
    frames: u64,
    settings: &EncoderSettings,
    output: &Path,
) -> Vec<String> {
    let (size, fps, frames, crf) = (
        format!("{width}x{height}"),
        fps.to_string(),
        frames.to_string(),
        settings.crf.to_string(),
    );
    let mut args = common_args();
    // Input: the raw frames we compose, on stdin.
    push_pairs(
        &mut args,
        &[
            ("-f", "rawvideo"),
            ("-pix_fmt", "yuv420p"),
            ("-s", &size),
            ("-framerate", &fps),
            ("-i", "-"),
        ],
    );
    args.push("-an".into());
    push_pairs(
        &mut args,
        &[
            ("-c:v", "libx264"),
            ("-preset", &settings.preset),
            ("-crf", &crf),
            ("-pix_fmt", "yuv420p"),
            ("-colorspace", "bt709"),
            ("-color_primaries", "bt709"),
            ("-color_trc", "bt709"),
            ("-color_range", "tv"),
            ("-frames:v", &frames),
            ("-movflags", "+faststart"),
            ("-f", "mp4"),
        ],
    );
    args.push("-y".into());
    args.push(output.to_string_lossy().into_owned());
    args
}

/// Appends `flag value` pairs.
pub fn push_pairs(args: &mut Vec<String>, pairs: &[(&str, &str)]) {
    for (flag, value) in pairs {
        args.extend([(*flag).to_owned(), (*value).to_owned()]);
    }
}

/// Flags every invocation shares: quiet except for warnings and errors (which end up in the
/// failure's log), no per-frame progress lines, never an interactive prompt.
pub fn common_args() -> Vec<String> {
    [
        "-hide_banner",
        "-nostats",
        "-nostdin",
        "-loglevel",
        "level+warning",
    ]
    .map(String::from)
    .to_vec()
}

/// A running ffmpeg process.
pub struct Ffmpeg {
    pid: u32,
    child: Option<FfmpegChild>,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
}

impl std::fmt::Debug for Ffmpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ffmpeg")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl Ffmpeg {
    /// Starts `ffmpeg` with `args`; stdin is a pipe the caller may take with [`Self::take_stdin`].
    pub fn spawn(ffmpeg: &Path, args: &[String]) -> Result<Self, RenderError> {
        let mut command = FfmpegCommand::new_with_path(ffmpeg);
        command.args(args);
        let mut child = command.spawn().map_err(|e| RenderError::Encoder {
            message: format!("could not start ffmpeg ({e})"),
            log: String::new(),
        })?;
        let pid = child.as_inner().id();
        let stdin = child.take_stdin();
        // Nothing is written to stdout; closing our end early is harmless.
        drop(child.take_stdout());
        let stderr = child
            .take_stderr()
            .map(|stderr| std::thread::spawn(move || tail(stderr)));
        Ok(Self {
            pid,
            child: Some(child),
            stdin,
            stderr,
        })
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.stdin.take()
    }

    /// Closes stdin (end of input), waits for ffmpeg to finish, and fails with the tail of its
    /// stderr if it did not exit cleanly.
    pub fn finish(mut self) -> Result<(), RenderError> {
        drop(self.stdin.take());
        let status = match self.child.take() {
            Some(mut child) => child.wait().map_err(|e| RenderError::Encoder {
                message: format!("waiting for ffmpeg failed ({e})"),
                log: String::new(),
            })?,
            None => return Ok(()),
        };
        let log = self.log();
        if status.success() {
            Ok(())
        } else {
            Err(RenderError::Encoder {
                message: format!("ffmpeg {status}"),
                log,
            })
        }
    }

    /// Kills ffmpeg (if still running) and reaps it; returns the tail of its stderr.
    pub fn kill(mut self) -> String {
        self.stop();
        self.log()
    }

    fn stop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut child) = self.child.take() {
            // It may have exited already; either way `wait` reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines ffmpeg wrote to stderr (waits for the reader, which ends with the process).
    fn log(&mut self) -> String {
        let lines = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        lines.into_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Ffmpeg {
    fn drop(&mut self) {
        self.stop();
        drop(self.stderr.take().map(JoinHandle::join));
    }
}

/// Drains a stream to its end, keeping only the last [`TAIL_LINES`] lines (ffmpeg blocks if its
/// stderr pipe fills up, so it must always be read).
fn tail(stream: impl Read) -> VecDeque<String> {
    let mut lines = VecDeque::with_capacity(TAIL_LINES);
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(String::from_utf8_lossy(&line).trim_end().to_owned());
        line.clear();
    }
    lines
}

/// Runs a one-shot ffmpeg command to completion.
pub fn run(ffmpeg: &Path, args: &[String]) -> Result<(), RenderError> {
    Ffmpeg::spawn(ffmpeg, args)?.finish()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn quality_moves_the_preset_and_the_crf_from_the_workers_settings() {
        let standard = EncoderSettings::new(PathBuf::from("ffmpeg"));
        let at = |q| {
            let s = standard.for_quality(q);
            (s.preset, s.crf)
        };
        assert_eq!(at(Quality::Draft), ("ultrafast".to_owned(), 28));
        assert_eq!(at(Quality::Standard), ("veryfast".to_owned(), 23));
        assert_eq!(at(Quality::High), ("fast".to_owned(), 19));
        // Clamped at the ends of the preset list and the CRF range.
        let slow = EncoderSettings {
            preset: "slower".into(),
            crf: 2,
            ..standard
        };
        let high = slow.for_quality(Quality::High);
        assert_eq!((high.preset.as_str(), high.crf), ("veryslow", 0));
    }

    fn value_of<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn encode_args_table() {
        let out = PathBuf::from("/tmp/job/video.partial.mp4");
        let cases = [
            ((1280, 720, 30, 90), ("1280x720", "30", "90")),
            ((320, 240, 10, 30), ("320x240", "10", "30")),
            ((720, 1280, 24, 454), ("720x1280", "24", "454")),
        ];
        for ((w, h, fps, frames), (size, rate, count)) in cases {
            let settings = EncoderSettings {
                preset: "faster".into(),
                crf: 20,
                ..EncoderSettings::new(PathBuf::from("ffmpeg"))
            };
            let args = encode_args(w, h, fps, frames, &settings, &out);
            assert_eq!(value_of(&args, "-s"), [size]);
            assert_eq!(value_of(&args, "-framerate"), [rate]);
            assert_eq!(value_of(&args, "-frames:v"), [count]);
            // Raw yuv420p in, yuv420p out; input options precede `-i -`.
            let input = args.iter().position(|a| a == "-i").expect("-i");
            assert_eq!(args[input + 1], "-");
            assert!(args.iter().position(|a| a == "rawvideo").expect("rawvideo") < input);
            assert_eq!(value_of(&args, "-pix_fmt"), ["yuv420p", "yuv420p"]);
            for (flag, value) in [
                ("-c:v", "libx264"),
                ("-preset", "faster"),
                ("-crf", "20"),
                ("-colorspace", "bt709"),
                ("-color_primaries", "bt709"),
                ("-color_trc", "bt709"),
                ("-color_range", "tv"),
                ("-movflags", "+faststart"),
                ("-f", "mp4"),
            ] {
                assert!(
                    value_of(&args, flag).contains(&value),
                    "{flag} {value}: {args:?}"
                );
            }
            assert!(args.contains(&"-an".to_owned()) && args.contains(&"-y".to_owned()));
            assert_eq!(
                args.last().map(String::as_str),
                Some("/tmp/job/video.partial.mp4")
            );
        }
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let text: String = (0..50).map(|i| format!("line {i}\n")).collect();
        let lines = tail(text.as_bytes());
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.front().map(String::as_str), Some("line 30"));
        assert_eq!(lines.back().map(String::as_str), Some("line 49"));
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let args: Vec<String> = [
            "-hide_banner",
            "-i",
            "/nonexistent/input.mp4",
            "-f",
            "null",
            "-",
        ]
        .map(String::from)
        .to_vec();
        let e = run(&crate::ffmpeg::resolve(None), &args).expect_err("no such input");
        assert_eq!(e.code(), minimoto_common::ErrorCode::EncoderFailed);
        match e {
            RenderError::Encoder { log, .. } => assert!(log.contains("No such file"), "{log}"),
            other => panic!("{other:?}"),
        }
    }
}
