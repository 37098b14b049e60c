//! End-to-end renders with the real ffmpeg, checked with ffprobe. Sizes are tiny to stay fast.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use minimoto_common::{
    ErrorCode,
    limits::Limits,
    spec::{Fit, Motion, RenderSpec, Rgb as Colour, TransitionKind, TransitionSpec},
};
use minimoto_render::{EncoderSettings, RenderError, RenderInput, Rendered, render};

pub fn spec(width: u32, height: u32, fps: u32, spi: f64, crossfade: f64) -> RenderSpec {
    RenderSpec {
        width,
        height,
        fps,
        seconds_per_image: spi,
        transition: TransitionSpec {
            kind: if crossfade > 0.0 {
                TransitionKind::Crossfade
            } else {
                TransitionKind::None
            },
            seconds: crossfade,
        },
        motion: Motion::KenBurns,
        fit: Fit::Blur,
        background: Colour([0, 0, 0]),
        ..RenderSpec::default()
    }
}

/// A photo with a gradient and a bright mark in one corner, so frames are not flat.
pub fn photo(width: u32, height: u32, tint: [u8; 3]) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        if x < width / 8 && y < height / 8 {
            Rgb([255, 255, 255])
        } else {
            let shade = |c: u8| (u32::from(c) * (x + y) / (width + height) + 20).min(255) as u8;
            Rgb([shade(tint[0]), shade(tint[1]), shade(tint[2])])
        }
    }))
}

/// `count` JPEGs of [`photo`] at `size` in `dir`, `0.jpg`, `1.jpg` …, each tinted by `tint(i)`.
pub fn photos(
    dir: &Path,
    count: u8,
    size: (u32, u32),
    tint: impl Fn(u8) -> [u8; 3],
) -> Vec<PathBuf> {
    (0..count)
        .map(|i| {
            let image = photo(size.0, size.1, tint(i));
            save(dir, &format!("{i}.jpg"), &image, ImageFormat::Jpeg)
        })
        .collect()
}

pub fn save(dir: &Path, name: &str, image: &DynamicImage, format: ImageFormat) -> PathBuf {
    let path = dir.join(name);
    image.save_with_format(&path, format).expect("save photo");
    path
}

/// The installed ffmpeg at the default settings, as a worker runs it.
pub fn encoder() -> EncoderSettings {
    EncoderSettings::new(minimoto_render::ffmpeg::resolve(None))
}

pub fn run(spec: &RenderSpec, photos: &[PathBuf], out: &Path) -> Result<Rendered, RenderError> {
    let input = RenderInput {
        spec,
        photos,
        audio: None,
        limits: &Limits::default(),
        out_dir: out,
        encoder: &encoder(),
    };
    render(&input, &|_| {}, &AtomicBool::new(false))
}

/// The names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `command` (ffmpeg or ffprobe) to the end; its stdout, or a panic showing its stderr.
pub fn output_of(command: &mut Command) -> Vec<u8> {
    let out = command
        .output()
        .expect("ffmpeg and ffprobe run (the test command installs them)");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `ffprobe` facts about the first video stream, counting frames by decoding them.
pub fn probe(video: &Path) -> serde_json::Value {
    let out = output_of(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries"])
        .arg("stream=codec_name,profile,pix_fmt,width,height,nb_read_frames,r_frame_rate,color_space,color_primaries,color_transfer,color_range")
        .args(["-show_entries", "format=duration", "-of", "json"])
        .arg(video));
    serde_json::from_slice(&out).expect("ffprobe json")
}

pub fn assert_video(video: &Path, width: u32, height: u32, frames: u64, fps: u32) {
    assert_video_of("h264", video, (width, height), frames, fps);
}

/// Checks the codec, the size, every frame, the rate, BT.709 tags and the length of `video`.
pub fn assert_video_of(codec: &str, video: &Path, size: (u32, u32), frames: u64, fps: u32) {
    let (width, height) = size;
    let facts = probe(video);
    let stream = &facts["streams"][0];
    assert_eq!(stream["codec_name"], codec, "{facts}");
    // What every browser plays: H.264 High (or Main), VP9 profile 0 (8-bit 4:2:0).
    let profiles: &[&str] = if codec == "vp9" {
        &["Profile 0"]
    } else {
        &["High", "Main"]
    };
    assert!(
        profiles.iter().any(|p| stream["profile"] == *p),
        "profile: {facts}"
    );
    assert_eq!(stream["pix_fmt"], "yuv420p", "{facts}");
    assert_eq!(stream["width"], width, "{facts}");
    assert_eq!(stream["height"], height, "{facts}");
    assert_eq!(stream["nb_read_frames"], frames.to_string(), "{facts}");
    assert_eq!(stream["r_frame_rate"], format!("{fps}/1"), "{facts}");
    for key in ["color_space", "color_primaries", "color_transfer"] {
        assert_eq!(stream[key], "bt709", "{key}: {facts}");
    }
    assert_eq!(stream["color_range"], "tv", "{facts}");
    let duration: f64 = facts["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .expect("duration");
    let expected = frames as f64 / f64::from(fps);
    assert!(
        (duration - expected).abs() < 0.5 / f64::from(fps),
        "duration {duration} vs {expected}"
    );
}

#[test]
fn renders_a_small_job_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Landscape JPEG, portrait PNG, square WebP: every fit path gets exercised by Blur.
    let photos = [
        save(
            dir.path(),
            "a.jpg",
            &photo(640, 360, [255, 120, 40]),
            ImageFormat::Jpeg,
        ),
        save(
            dir.path(),
            "b.png",
            &photo(300, 500, [40, 200, 120]),
            ImageFormat::Png,
        ),
        save(
            dir.path(),
            "c.webp",
            &photo(400, 400, [60, 90, 255]),
            ImageFormat::WebP,
        ),
    ];
    let spec = spec(320, 240, 12, 1.0, 0.3);
    let out = dir.path().join("out");
    let reports = Mutex::new(Vec::new());
    let started = Instant::now();
    let input = RenderInput {
        spec: &spec,
        photos: &photos,
        audio: None,
        limits: &Limits::default(),
        out_dir: &out,
        encoder: &encoder(),
    };
    let rendered = render(
        &input,
        &|p| reports.lock().expect("lock").push(p),
        &AtomicBool::new(false),
    )
    .expect("render");
    eprintln!(
        "e2e render of 36 frames at 320x240 took {:?}",
        started.elapsed()
    );

    assert_eq!(rendered.frames, 36);
    assert_eq!(rendered.duration_seconds, 3.0);
    assert_eq!((rendered.width, rendered.height), (320, 240));
    assert_eq!(rendered.video, out.join("video.mp4"));
    assert_video(&rendered.video, 320, 240, 36, 12);

    let poster = image::open(&rendered.poster).expect("poster decodes");
    assert_eq!((poster.width(), poster.height()), (320, 240));
    assert_eq!(
        image::ImageFormat::from_path(&rendered.poster).ok(),
        Some(ImageFormat::Jpeg)
    );
    // Nothing but the outputs (the default thumbnails among them) is left behind.
    let sizes: Vec<_> = rendered.thumbnails.iter().map(|t| t.size).collect();
    assert_eq!(sizes, [100, 300, 600]);
    assert_eq!(
        file_names(&out),
        [
            "poster.jpg",
            "thumb-100.jpg",
            "thumb-300.jpg",
            "thumb-600.jpg",
            "video.mp4"
        ]
    );

    let reports = reports.into_inner().expect("lock");
    assert!(!reports.is_empty() && reports.len() <= 101, "{reports:?}");
    assert!(reports.windows(2).all(|w| w[0] < w[1]), "{reports:?}");
    assert_eq!(reports.last().copied(), Some(1.0));
}

#[test]
fn fractional_timing_gives_the_exact_frame_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos: Vec<PathBuf> = (0..3)
        .map(|i| {
            save(
                dir.path(),
                &format!("{i}.png"),
                &photo(120, 80, [200, 100, 50]),
                ImageFormat::Png,
            )
        })
        .collect();
    // 3 × 0.7 s × 24 fps = 50.4 → 50 frames; no motion, hard cuts.
    let mut spec = spec(64, 48, 24, 0.7, 0.0);
    spec.motion = Motion::None;
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    assert_eq!(rendered.frames, 50);
    assert_video(&rendered.video, 64, 48, 50, 24);
}

/// The poster's pixel at (`x`, `y`).
fn poster_pixel(rendered: &Rendered, x: u32, y: u32) -> [u8; 3] {
    image::open(&rendered.poster)
        .expect("poster")
        .to_rgb8()
        .get_pixel(x, y)
        .0
}

#[test]
fn each_fit_mode_renders_and_only_contain_shows_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A green portrait photo on a wide canvas: contain leaves wide side borders.
    let green = DynamicImage::ImageRgb8(RgbImage::from_pixel(60, 120, Rgb([30, 160, 60])));
    let photos = [save(dir.path(), "p.jpg", &green, ImageFormat::Jpeg)];
    let red = Colour([255, 0, 0]);
    for fit in [Fit::Cover, Fit::Contain, Fit::Blur] {
        let mut spec = spec(128, 64, 12, 1.0, 0.0);
        spec.fit = fit;
        spec.background = red;
        let rendered = run(&spec, &photos, &dir.path().join(format!("{fit:?}"))).expect("render");
        assert_video(&rendered.video, 128, 64, 12, 12);
        let edge = poster_pixel(&rendered, 4, 32);
        let centre = poster_pixel(&rendered, 64, 32);
        let reddish = |p: [u8; 3]| p[0] > 180 && p[1] < 80 && p[2] < 80;
        let greenish = |p: [u8; 3]| p[1] > 120 && p[0] < 80;
        assert!(greenish(centre), "{fit:?}: centre {centre:?}");
        // Colours survive BT.709 video and the BT.601 poster (a matrix mix-up shifts red by ~20).
        let off = centre
            .iter()
            .zip([30u8, 160, 60])
            .map(|(&a, b)| a.abs_diff(b))
            .max();
        assert!(
            off <= Some(8),
            "{fit:?}: centre {centre:?} vs [30, 160, 60]"
        );
        match fit {
            Fit::Contain => assert!(reddish(edge), "contain: edge {edge:?}"),
            Fit::Cover | Fit::Blur => assert!(greenish(edge), "{fit:?}: edge {edge:?}"),
        }
    }
}

#[test]
fn a_photo_much_larger_than_the_canvas_renders_the_same_picture() {
    // 1280×960 into a 128×72 canvas: the plate needs < 1/8 of it, so the JPEG is decoded at 1/8
    // scale (160×120). Left half red, right half blue, and a white bar along the bottom.
    let dir = tempfile::tempdir().expect("tempdir");
    let big = DynamicImage::ImageRgb8(RgbImage::from_fn(1280, 960, |x, y| {
        if y >= 840 {
            Rgb([255, 255, 255])
        } else if x < 640 {
            Rgb([220, 30, 30])
        } else {
            Rgb([30, 30, 220])
        }
    }));
    let photos = [save(dir.path(), "big.jpg", &big, ImageFormat::Jpeg)];
    let mut spec = spec(128, 72, 12, 1.0, 0.0);
    spec.motion = Motion::None;
    spec.fit = Fit::Contain;
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    assert_video(&rendered.video, 128, 72, 12, 12);
    // Contain: 96×72 centred (x 16..112); red left, blue right, white bottom rows.
    let near = |p: [u8; 3], want: [u8; 3]| p.iter().zip(want).all(|(&a, b)| a.abs_diff(b) < 40);
    let left = poster_pixel(&rendered, 30, 30);
    let right = poster_pixel(&rendered, 98, 30);
    let bottom = poster_pixel(&rendered, 64, 70);
    assert!(near(left, [220, 30, 30]), "left {left:?}");
    assert!(near(right, [30, 30, 220]), "right {right:?}");
    assert!(near(bottom, [255, 255, 255]), "bottom {bottom:?}");
}

#[test]
fn a_corrupt_photo_is_bad_input_naming_its_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = save(
        dir.path(),
        "good.jpg",
        &photo(200, 150, [90, 90, 200]),
        ImageFormat::Jpeg,
    );
    let bytes = std::fs::read(&good).expect("read");
    let broken = dir.path().join("broken.jpg");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).expect("write");
    let out = dir.path().join("out");
    let e = run(
        &spec(64, 48, 12, 1.0, 0.2),
        &[good.clone(), good, broken],
        &out,
    )
    .expect_err("corrupt");
    assert!(e.is_bad_input(), "{e:?}");
    assert_eq!(e.code(), ErrorCode::ImageCorrupt);
    assert!(e.to_string().starts_with("photo 3: "), "{e}");
    assert!(
        !e.to_string()
            .contains(dir.path().to_string_lossy().as_ref()),
        "no paths: {e}"
    );
    // Nothing that looks like a finished output.
    assert!(std::fs::read_dir(&out).expect("out").next().is_none());
}

#[test]
fn an_unsupported_photo_fails_before_any_encoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not a photo").expect("write");
    let good = save(
        dir.path(),
        "good.png",
        &photo(50, 50, [1, 2, 3]),
        ImageFormat::Png,
    );
    let e = run(
        &spec(64, 48, 12, 1.0, 0.0),
        &[good, text],
        &dir.path().join("out"),
    )
    .expect_err("text");
    assert_eq!(
        (e.code(), e.is_bad_input()),
        (ErrorCode::ImageUnsupported, true)
    );
    assert!(e.to_string().starts_with("photo 2: "), "{e}");
}

#[test]
fn an_invalid_spec_is_bad_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = save(
        dir.path(),
        "good.png",
        &photo(50, 50, [1, 2, 3]),
        ImageFormat::Png,
    );
    let e = run(
        &spec(65, 48, 12, 1.0, 0.0),
        &[good],
        &dir.path().join("out"),
    )
    .expect_err("odd width");
    assert_eq!(
        (e.code(), e.is_bad_input()),
        (ErrorCode::InvalidOptions, true)
    );
    let e = run(&spec(64, 48, 12, 1.0, 0.0), &[], &dir.path().join("out")).expect_err("no photos");
    assert_eq!(e.code(), ErrorCode::InvalidOptions);
}

/// Pids of our child processes whose command line mentions `needle`.
fn children_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(needle) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn cancel_stops_early_and_leaves_no_process_or_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos: Vec<PathBuf> = (0..10)
        .map(|i| {
            save(
                dir.path(),
                &format!("{i}.jpg"),
                &photo(320, 240, [200, 50, 50]),
                ImageFormat::Jpeg,
            )
        })
        .collect();
    // 10 × 5 s × 30 fps = 1500 frames: far more than will be rendered.
    let spec = spec(320, 240, 30, 5.0, 0.5);
    let out = dir.path().join("out");
    let needle = out.to_string_lossy().into_owned();
    let cancel = AtomicBool::new(false);
    let seen = Mutex::new((0.0f64, Vec::new()));
    let on_progress = |p: f64| {
        let mut seen = seen.lock().expect("lock");
        seen.0 = p;
        if p >= 0.02 && !cancel.load(Ordering::SeqCst) {
            seen.1 = children_mentioning(&needle);
            cancel.store(true, Ordering::SeqCst);
        }
    };
    let started = Instant::now();
    let input = RenderInput {
        spec: &spec,
        photos: &photos,
        audio: None,
        limits: &Limits::default(),
        out_dir: &out,
        encoder: &encoder(),
    };
    let e = render(&input, &on_progress, &cancel).expect_err("cancelled");
    let elapsed = started.elapsed();
    assert!(matches!(e, RenderError::Cancelled), "{e:?}");
    assert!(!e.is_bad_input(), "a cancel is not the input's fault");
    let (last, ffmpeg_pids) = seen.into_inner().expect("lock");
    assert!(last < 0.2, "stopped early, at {last}");
    assert!(elapsed.as_secs_f64() < 20.0, "took {elapsed:?}");
    if std::path::Path::new("/proc/self/task").exists() {
        assert_eq!(ffmpeg_pids.len(), 1, "the encoder was running");
        for pid in ffmpeg_pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "ffmpeg {pid} was not reaped"
            );
        }
    }
    assert!(
        std::fs::read_dir(&out).expect("out").next().is_none(),
        "partial output left"
    );
}
