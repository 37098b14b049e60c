//! The outputs besides an MP4, rendered for real: VP9 in WebM, thumbnails of the poster, and the
//! animated preview in both its formats.

use std::{fs::File, io::BufReader, path::Path, process::Command};

use image::{
    AnimationDecoder, Frame, ImageFormat, codecs::gif::GifDecoder, codecs::webp::WebPDecoder,
};
use minimoto_common::spec::{Format, Motion, PreviewFormat, PreviewSpec};

use crate::{
    options::solid,
    render::{assert_video_of, file_names, output_of, photo, photos, run, save, spec},
};

/// The mean colour of an RGB(A) buffer with `channels` bytes a pixel.
fn mean(raw: &[u8], channels: usize) -> [u8; 3] {
    let n = (raw.len() / channels) as u64;
    [0, 1, 2].map(|c| {
        (raw.iter()
            .skip(c)
            .step_by(channels)
            .map(|&v| u64::from(v))
            .sum::<u64>()
            / n) as u8
    })
}

fn close(got: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    got.iter()
        .zip(want)
        .all(|(&g, w)| g.abs_diff(w) <= tolerance)
}

#[test]
fn webm_is_vp9_with_every_frame_and_its_index_before_the_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tints = [[200, 80, 40], [40, 160, 200], [90, 200, 90]];
    let photos = photos(dir.path(), 3, (320, 200), |i| tints[usize::from(i)]);
    let mut spec = spec(160, 96, 12, 1.0, 0.25);
    spec.format = Format::Webm;
    spec.thumbnails.clear();
    let out = dir.path().join("out");
    let rendered = run(&spec, &photos, &out).expect("render");
    assert_eq!(rendered.video, out.join("video.webm"));
    assert_video_of("vp9", &rendered.video, (160, 96), 36, 12);
    // Cues (the seek index, EBML id 1C 53 BB 6B) precede the first Cluster (1F 43 B6 75), so a
    // browser can seek before it has the whole file.
    let bytes = std::fs::read(&rendered.video).expect("read");
    let at = |id: [u8; 4]| bytes.windows(4).position(|w| w == id);
    let (cues, cluster) = (at([0x1C, 0x53, 0xBB, 0x6B]), at([0x1F, 0x43, 0xB6, 0x75]));
    assert!(
        matches!((cues, cluster), (Some(c), Some(f)) if c < f),
        "cues {cues:?}, first cluster {cluster:?}"
    );
    let poster = image::open(&rendered.poster).expect("poster decodes");
    assert_eq!((poster.width(), poster.height()), (160, 96));
    assert_eq!(file_names(&out), ["poster.jpg", "video.webm"]);
}

#[test]
fn thumbnails_are_the_poster_at_each_size_and_never_upscaled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = [save(
        dir.path(),
        "a.jpg",
        &photo(640, 360, [255, 140, 60]),
        ImageFormat::Jpeg,
    )];
    let mut spec = spec(320, 180, 12, 1.0, 0.0);
    spec.thumbnails = vec![100, 64, 1000];
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    let poster = image::open(&rendered.poster).expect("poster").into_rgb8();
    let made: Vec<_> = rendered
        .thumbnails
        .iter()
        .map(|t| (t.size, t.width, t.height))
        .collect();
    assert_eq!(made, [(100, 100, 56), (64, 64, 36), (1000, 320, 180)]);
    for t in &rendered.thumbnails {
        assert_eq!(
            t.path.file_name().and_then(|n| n.to_str()),
            Some(format!("thumb-{}.jpg", t.size).as_str())
        );
        assert_eq!(
            ImageFormat::from_path(&t.path).ok(),
            Some(ImageFormat::Jpeg)
        );
        let thumb = image::open(&t.path).expect("thumbnail decodes").into_rgb8();
        assert_eq!((thumb.width(), thumb.height()), (t.width, t.height));
        let (got, want) = (mean(thumb.as_raw(), 3), mean(poster.as_raw(), 3));
        assert!(
            close(got, want, 6),
            "thumb-{}: mean {got:?}, poster {want:?}",
            t.size
        );
    }
}

/// The frames of an animated GIF or WebP, with the image crate's decoders.
fn frames_of(path: &Path, format: PreviewFormat) -> Vec<Frame> {
    let reader = BufReader::new(File::open(path).expect("open preview"));
    let frames = match format {
        PreviewFormat::Gif => GifDecoder::new(reader)
            .expect("a GIF")
            .into_frames()
            .collect_frames(),
        PreviewFormat::Webp => {
            let decoder = WebPDecoder::new(reader).expect("a WebP");
            assert!(
                decoder.has_animation(),
                "{} is not animated",
                path.display()
            );
            decoder.into_frames().collect_frames()
        }
    };
    frames.expect("every frame decodes")
}

#[test]
fn the_preview_is_the_whole_video_sped_up_in_either_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (red, green, blue) = ([220, 40, 20], [30, 200, 60], [20, 60, 220]);
    let photos = [
        solid(dir.path(), "r.png", red),
        solid(dir.path(), "g.png", green),
        solid(dir.path(), "b.png", blue),
    ];
    // 9 s of video into 3 s at 10 frames a second: frame k shows the video at 0.3 k s.
    let mut spec = spec(160, 96, 12, 3.0, 0.0);
    spec.motion = Motion::None;
    spec.thumbnails.clear();
    for format in [PreviewFormat::Gif, PreviewFormat::Webp] {
        spec.preview = Some(PreviewSpec {
            format,
            seconds: 3.0,
            width: 80,
        });
        let out = dir.path().join(format.extension());
        let rendered = run(&spec, &photos, &out).expect("render");
        let path = rendered.preview.clone().expect("a preview");
        assert_eq!(path, out.join(format!("preview.{}", format.extension())));
        // Encoders may merge identical frames into one longer one: sample by time.
        let frames = frames_of(&path, format);
        let mut ends = Vec::with_capacity(frames.len());
        let mut total = 0.0;
        for f in &frames {
            let (numer, denom) = f.delay().numer_denom_ms();
            total += f64::from(numer) / f64::from(denom);
            ends.push(total);
            assert_eq!(f.buffer().dimensions(), (80, 48), "{format:?}");
        }
        assert_eq!(total.round(), 3000.0, "{format:?}: {} frames", frames.len());
        for (k, want) in [
            (0, red),
            (9, red),
            (11, green),
            (19, green),
            (21, blue),
            (29, blue),
        ] {
            let at = f64::from(k) * 100.0 + 50.0;
            let shown = ends
                .iter()
                .position(|&end| at < end)
                .expect("in the preview");
            let got = mean(frames[shown].buffer().as_raw(), 4);
            assert!(
                close(got, want, 14),
                "{format:?} at {at} ms: {got:?}, want {want:?}"
            );
        }
        let mut expected = vec![
            "poster.jpg".to_owned(),
            format!("preview.{}", format.extension()),
            "video.mp4".to_owned(),
        ];
        expected.sort();
        assert_eq!(file_names(&out), expected);
    }
}

/// A `seconds` long 440 Hz tone, made by ffmpeg into `name` (the container by its extension).
fn tone(dir: &Path, name: &str, seconds: f64) -> std::path::PathBuf {
    let path = dir.join(name);
    let source = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
    output_of(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", &source])
            .arg(&path),
    );
    path
}

/// The audio track of `video`, decoded to mono 48 kHz samples.
fn samples(video: &Path) -> Vec<i16> {
    let raw = output_of(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(video)
            .args([
                "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "s16le", "-",
            ]),
    );
    raw.chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The audio codec of `video`, by ffprobe.
fn audio_codec(video: &Path) -> String {
    let out = output_of(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "a:0"])
            .args(["-show_entries", "stream=codec_name"])
            .args(["-of", "default=noprint_wrappers=1:nokey=1"])
            .arg(video),
    );
    String::from_utf8_lossy(&out).trim().to_owned()
}

/// Root mean square of `s[from..to]` (in seconds at 48 kHz).
fn loudness(s: &[i16], from: f64, to: f64) -> f64 {
    let (a, b) = (
        (from * 48_000.0) as usize,
        ((to * 48_000.0) as usize).min(s.len()),
    );
    let part = &s[a..b];
    (part.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / part.len() as f64).sqrt()
}

#[test]
fn a_soundtrack_is_looped_or_cut_to_the_video_to_the_frame_and_faded_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = photos(dir.path(), 3, (200, 120), |i| [90 + 50 * i, 120, 200]);
    // 3 photos × 1 s at 12 fps: a 3 s video. One song shorter (it loops), one longer (it is cut).
    let short = tone(dir.path(), "short.mp3", 1.3);
    let long = tone(dir.path(), "long.flac", 10.0);
    let mut spec = spec(160, 96, 12, 1.0, 0.25);
    spec.thumbnails.clear();
    spec.audio_fade_seconds = 1.0;
    for (format, song, codec) in [
        (Format::Mp4, &short, "aac"),
        (Format::Webm, &long, "opus"),
        (Format::Mp4, &long, "aac"),
    ] {
        spec.format = format;
        let out = dir.path().join(format!(
            "{}-{codec}-{}",
            format.extension(),
            song.display().to_string().len()
        ));
        let input = minimoto_render::RenderInput {
            spec: &spec,
            photos: &photos,
            audio: Some(song),
            limits: &minimoto_common::limits::Limits::default(),
            out_dir: &out,
            encoder: &crate::render::encoder(),
        };
        let rendered =
            minimoto_render::render(&input, &|_| {}, &std::sync::atomic::AtomicBool::new(false))
                .unwrap_or_else(|e| panic!("{format:?} with {}: {e}", song.display()));
        let codec_name = if format == Format::Webm {
            "vp9"
        } else {
            "h264"
        };
        assert_video_of(codec_name, &rendered.video, (160, 96), 36, 12);
        assert_eq!(audio_codec(&rendered.video), codec, "{format:?}");
        let sound = samples(&rendered.video);
        let seconds = sound.len() as f64 / 48_000.0;
        assert!(
            (seconds - 3.0).abs() <= 1.0 / 12.0,
            "{format:?}: {seconds} s of audio for 3 s of video"
        );
        // Sound all the way (a short song loops), full until the fade, then fading to silence.
        let full = loudness(&sound, 0.2, 0.6);
        assert!(full > 1000.0, "{format:?}: {full}");
        let looped = loudness(&sound, 1.5, 1.9);
        assert!(
            looped > 0.8 * full,
            "{format:?}: {looped} after the song's end, {full} at first"
        );
        let tail = loudness(&sound, 2.85, 2.95);
        assert!(
            tail < 0.2 * full,
            "{format:?}: the last 0.1 s at {tail}, {full} before the fade"
        );
    }
}
