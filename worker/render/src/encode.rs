//! Running ffmpeg: the video encoder (H.264 or VP9) fed raw frames on stdin, and any one-shot
//! ffmpeg command.
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
use minimoto_common::spec::{Format, Quality};

use super::RenderError;

/// Lines of ffmpeg's stderr kept for the operator log when it fails.
const TAIL_LINES: usize = 20;

/// Which ffmpeg runs, and how hard its encoders work: settings of the worker, passed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// The libx264 preset (`ultrafast` … `veryslow`): speed against file size (MP4).
    pub preset: String,
    /// libx264's constant rate factor, 0–51: lower is better quality and bigger files.
    pub crf: u8,
    /// libvpx-vp9's `-cpu-used` in real-time mode, 0–8: higher is faster and bigger (WebM).
    pub vp9_speed: u8,
    /// libvpx-vp9's constant quality, 0–63: lower is better quality and bigger files.
    pub vp9_crf: u8,
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

/// libvpx-vp9's fastest real-time speed.
pub const MAX_VP9_SPEED: u8 = 8;
/// libvpx-vp9's worst quality.
pub const MAX_VP9_CRF: u8 = 63;

impl EncoderSettings {
    /// x264 `veryfast` at CRF 23: a render keeps pace with a photo slideshow's low motion at a
    /// size a browser streams comfortably. VP9 at real-time speed 7 and CRF 33: about 1.3 × the
    /// time of x264 on this kind of content (measured on 2 cores), at a smaller file.
    pub fn new(ffmpeg: PathBuf) -> Self {
        Self {
            ffmpeg,
            preset: "veryfast".into(),
            crf: 23,
            vp9_speed: 7,
            vp9_crf: 33,
        }
    }

    /// The settings for a job's `quality`: `standard` is these settings; `draft` is two x264
    /// presets faster at CRF + 5, `high` two presets slower at CRF − 4 (with the defaults:
    /// `ultrafast` 28, `veryfast` 23, `fast` 19). For VP9, `draft` is speed + 1 at CRF + 5 and
    /// `high` speed − 2 at CRF − 4 (8/38, 7/33, 5/29).
    pub fn for_quality(&self, quality: Quality) -> Self {
        let (steps, crf, vp9_steps): (isize, i16, i16) = match quality {
            Quality::Draft => (-2, 5, 1),
            Quality::Standard => (0, 0, 0),
            Quality::High => (2, -4, -2),
        };
        let at = PRESETS.iter().position(|p| *p == self.preset).unwrap_or(2) as isize;
        let preset = PRESETS[(at + steps).clamp(0, PRESETS.len() as isize - 1) as usize];
        let shift = |v: u8, by: i16, max: u8| (i16::from(v) + by).clamp(0, i16::from(max)) as u8;
        Self {
            ffmpeg: self.ffmpeg.clone(),
            preset: preset.into(),
            crf: shift(self.crf, crf, 51),
            vp9_speed: shift(self.vp9_speed, vp9_steps, MAX_VP9_SPEED),
            vp9_crf: shift(self.vp9_crf, crf, MAX_VP9_CRF),
        }
    }
}

/// What the encoder makes of the frames: their size, rate and count, and the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoShape {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u64,
    pub format: Format,
}

/// A soundtrack to lay under the video.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Soundtrack<'a> {
    pub path: &'a Path,
    /// How long it fades out at the end (capped at the video's length).
    pub fade_seconds: f64,
}

/// The soundtrack's bit rate: AAC in MP4, Opus in WebM (transparent for music at these rates).
const AAC_BITRATE: &str = "192k";
const OPUS_BITRATE: &str = "128k";

/// Arguments that make ffmpeg read `shape.frames` raw yuv420p frames from stdin and write a
/// browser-safe video to `output`, yuv420p, BT.709 tagged limited range, its index at the front
/// (playable before fully downloaded): H.264 in MP4 (libx264, `+faststart`) or VP9 in WebM
/// (libvpx-vp9 in real-time mode with row threading, cues first).
///
/// With a `soundtrack`, it is looped (when shorter) and cut to exactly the video's length, faded
/// out, and encoded as stereo 48 kHz AAC (MP4) or Opus (WebM); without one, the video is silent.
pub fn encode_args(
    shape: VideoShape,
    settings: &EncoderSettings,
    soundtrack: Option<Soundtrack<'_>>,
    output: &Path,
) -> Vec<String> {
    let (size, fps, frames) = (
        format!("{}x{}", shape.width, shape.height),
        shape.fps.to_string(),
        shape.frames.to_string(),
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
    match soundtrack {
        Some(sound) => push_audio(&mut args, shape, sound),
        None => args.push("-an".into()),
    }
    match shape.format {
        Format::Mp4 => {
            let crf = settings.crf.to_string();
            push_pairs(
                &mut args,
                &[
                    ("-c:v", "libx264"),
                    ("-preset", &settings.preset),
                    ("-crf", &crf),
                ],
            );
            // `ultrafast` also turns CABAC off, which makes a Constrained Baseline stream; with
            // it back on the video is Main profile, as every other preset's is High.
            if settings.preset == "ultrafast" {
                push_pairs(&mut args, &[("-x264-params", "cabac=1")]);
            }
        }
        Format::Webm => {
            let (speed, crf) = (settings.vp9_speed.to_string(), settings.vp9_crf.to_string());
            push_pairs(
                &mut args,
                &[
                    ("-c:v", "libvpx-vp9"),
                    ("-deadline", "realtime"),
                    ("-cpu-used", &speed),
                    ("-row-mt", "1"),
                    ("-crf", &crf),
                    // Constant quality: no bitrate target.
                    ("-b:v", "0"),
                ],
            );
        }
    }
    push_pairs(
        &mut args,
        &[
            ("-pix_fmt", "yuv420p"),
            ("-colorspace", "bt709"),
            ("-color_primaries", "bt709"),
            ("-color_trc", "bt709"),
            ("-color_range", "tv"),
        ],
    );
    // A guard against writing more frames than the timeline holds. Not with a soundtrack: in
    // ffmpeg 5 the first stream to reach its limit ends the whole file, cutting the audio short;
    // the video then ends with its input (stdin closes after the last frame) and the audio with
    // its trim.
    if soundtrack.is_none() {
        push_pairs(&mut args, &[("-frames:v", &frames)]);
    }
    let container: &[(&str, &str)] = match shape.format {
        Format::Mp4 => &[("-movflags", "+faststart"), ("-f", "mp4")],
        Format::Webm => &[("-cues_to_front", "1"), ("-f", "webm")],
    };
    push_pairs(&mut args, container);
    args.push("-y".into());
    args.push(output.to_string_lossy().into_owned());
    args
}

/// The soundtrack's input (looped without end), its mapping, and its filter and encoder.
fn push_audio(args: &mut Vec<String>, shape: VideoShape, sound: Soundtrack<'_>) {
    let seconds = shape.frames as f64 / f64::from(shape.fps.max(1));
    let fade = sound.fade_seconds.clamp(0.0, seconds);
    let path = sound.path.to_string_lossy();
    push_pairs(args, &[("-stream_loop", "-1"), ("-i", &path)]);
    // Trimmed by sample count to the video's length, timestamps from 0.
    let mut filter = format!("atrim=end={seconds:.6},asetpts=PTS-STARTPTS");
    if fade > 0.0 {
        filter.push_str(&format!(
            ",afade=t=out:st={:.6}:d={fade:.6}",
            seconds - fade
        ));
    }
    let (codec, bitrate) = match shape.format {
        Format::Mp4 => ("aac", AAC_BITRATE),
        Format::Webm => ("libopus", OPUS_BITRATE),
    };
    push_pairs(
        args,
        &[
            ("-map", "0:v:0"),
            ("-map", "1:a:0"),
            ("-af", &filter),
            ("-c:a", codec),
            ("-b:a", bitrate),
            ("-ac", "2"),
            ("-ar", "48000"),
        ],
    );
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

/// [`run`] for a command that writes `output`, failing unless it wrote something: ffmpeg exits
/// cleanly without writing when, say, a seek lands past the end. `what` names it in the error.
pub fn run_writing(
    ffmpeg: &Path,
    args: &[String],
    output: &Path,
    what: &str,
) -> Result<(), RenderError> {
    run(ffmpeg, args)?;
    match std::fs::metadata(output) {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => Err(RenderError::Encoder {
            message: format!("ffmpeg wrote no {what}"),
            log: String::new(),
        }),
    }
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
        let vp9 = |q| {
            let s = standard.for_quality(q);
            (s.vp9_speed, s.vp9_crf)
        };
        assert_eq!(vp9(Quality::Draft), (8, 38));
        assert_eq!(vp9(Quality::Standard), (7, 33));
        assert_eq!(vp9(Quality::High), (5, 29));
        // Clamped at the ends of the preset list and the CRF range.
        let slow = EncoderSettings {
            preset: "slower".into(),
            crf: 2,
            vp9_speed: 1,
            vp9_crf: 61,
            ..standard
        };
        let high = slow.for_quality(Quality::High);
        assert_eq!((high.preset.as_str(), high.crf), ("veryslow", 0));
        assert_eq!(high.vp9_speed, 0);
        assert_eq!(slow.for_quality(Quality::Draft).vp9_crf, MAX_VP9_CRF);
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
        let settings = EncoderSettings {
            preset: "faster".into(),
            crf: 20,
            vp9_speed: 6,
            vp9_crf: 31,
            ..EncoderSettings::new(PathBuf::from("ffmpeg"))
        };
        let mp4 = [
            ("-c:v", "libx264"),
            ("-preset", "faster"),
            ("-crf", "20"),
            ("-movflags", "+faststart"),
            ("-f", "mp4"),
        ];
        let webm = [
            ("-c:v", "libvpx-vp9"),
            ("-deadline", "realtime"),
            ("-cpu-used", "6"),
            ("-row-mt", "1"),
            ("-crf", "31"),
            ("-b:v", "0"),
            ("-cues_to_front", "1"),
            ("-f", "webm"),
        ];
        for (format, expected, absent) in [
            (Format::Mp4, &mp4[..], "-cpu-used"),
            (Format::Webm, &webm[..], "-movflags"),
        ] {
            for ((width, height, fps, frames), (size, rate, count)) in cases {
                let shape = VideoShape {
                    width,
                    height,
                    fps,
                    frames,
                    format,
                };
                let args = encode_args(shape, &settings, None, &out);
                assert_eq!(value_of(&args, "-s"), [size]);
                assert_eq!(value_of(&args, "-framerate"), [rate]);
                assert_eq!(value_of(&args, "-frames:v"), [count]);
                // Raw yuv420p in, yuv420p out; input options precede `-i -`.
                let input = args.iter().position(|a| a == "-i").expect("-i");
                assert_eq!(args[input + 1], "-");
                assert!(args.iter().position(|a| a == "rawvideo").expect("rawvideo") < input);
                assert_eq!(value_of(&args, "-pix_fmt"), ["yuv420p", "yuv420p"]);
                let tags = [
                    ("-colorspace", "bt709"),
                    ("-color_primaries", "bt709"),
                    ("-color_trc", "bt709"),
                    ("-color_range", "tv"),
                ];
                // The output's options (`-f` is also the input's, first).
                for (flag, value) in expected.iter().chain(&tags) {
                    let given = value_of(&args, flag);
                    assert_eq!(given.last(), Some(value), "{flag}: {args:?}");
                    assert!(given.len() == 1 || *flag == "-f", "{flag}: {args:?}");
                }
                assert!(value_of(&args, absent).is_empty(), "{args:?}");
                assert!(value_of(&args, "-x264-params").is_empty(), "{args:?}");
                assert!(args.contains(&"-an".to_owned()) && args.contains(&"-y".to_owned()));
                assert_eq!(
                    args.last().map(String::as_str),
                    Some("/tmp/job/video.partial.mp4")
                );
            }
        }
    }

    #[test]
    fn ultrafast_keeps_cabac_so_the_stream_stays_main_profile() {
        let settings = EncoderSettings::new(PathBuf::from("ffmpeg")).for_quality(Quality::Draft);
        assert_eq!(settings.preset, "ultrafast");
        let shape = VideoShape {
            width: 320,
            height: 240,
            fps: 30,
            frames: 30,
            format: Format::Mp4,
        };
        let args = encode_args(shape, &settings, None, &PathBuf::from("/j/v.mp4"));
        assert_eq!(value_of(&args, "-x264-params"), ["cabac=1"]);
    }

    #[test]
    fn a_soundtrack_is_looped_cut_to_the_video_faded_and_encoded_for_the_container() {
        let settings = EncoderSettings::new(PathBuf::from("ffmpeg"));
        let song = PathBuf::from("/j/audio.mp3");
        let out = PathBuf::from("/j/video.partial.mp4");
        for (format, frames, fade, codec, filter) in [
            (
                Format::Mp4,
                90,
                2.0,
                "aac",
                "atrim=end=3.000000,asetpts=PTS-STARTPTS,afade=t=out:st=1.000000:d=2.000000",
            ),
            // A fade longer than the video is the whole video; none is no fade filter.
            (
                Format::Webm,
                15,
                2.0,
                "libopus",
                "atrim=end=0.500000,asetpts=PTS-STARTPTS,afade=t=out:st=0.000000:d=0.500000",
            ),
            (
                Format::Mp4,
                45,
                0.0,
                "aac",
                "atrim=end=1.500000,asetpts=PTS-STARTPTS",
            ),
        ] {
            let shape = VideoShape {
                width: 320,
                height: 240,
                fps: 30,
                frames,
                format,
            };
            let sound = Soundtrack {
                path: &song,
                fade_seconds: fade,
            };
            let args = encode_args(shape, &settings, Some(sound), &out);
            assert!(!args.contains(&"-an".to_owned()), "{args:?}");
            assert_eq!(value_of(&args, "-i"), ["-", "/j/audio.mp3"]);
            let looped = args.iter().position(|a| a == "-stream_loop").expect("loop");
            assert_eq!(args[looped + 1], "-1");
            assert_eq!(
                args[looped + 3],
                "/j/audio.mp3",
                "the loop applies to the audio"
            );
            assert_eq!(value_of(&args, "-map"), ["0:v:0", "1:a:0"]);
            assert_eq!(value_of(&args, "-af"), [filter]);
            assert_eq!(value_of(&args, "-c:a"), [codec]);
            assert_eq!(value_of(&args, "-ar"), ["48000"]);
            assert_eq!(value_of(&args, "-ac"), ["2"]);
            assert!(value_of(&args, "-frames:v").is_empty(), "{args:?}");
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
