//! Sub-pixel camera motion measured on the frames the pipeline composes (captured on their way to
//! ffmpeg, so the encoder's own motion decisions do not blur the evidence): a slow pan moves a
//! sharp edge a fraction of a pixel each frame, steadily, never in whole-pixel jumps.

use std::{os::unix::fs::PermissionsExt, path::Path, sync::atomic::AtomicBool};

use image::{DynamicImage, ImageFormat, RgbImage};
use minimoto_common::{limits::Limits, spec::Motion};
use minimoto_render::{EncoderSettings, RenderInput, render};

use crate::render::{save, spec};

/// An ffmpeg that keeps a copy of the raw frames it is fed in `frames`.
fn capturing_ffmpeg(dir: &Path, frames: &Path) -> EncoderSettings {
    let wrapper = dir.join("ffmpeg-tee");
    let script = format!(
        "#!/usr/bin/env bash\nif [[ \" $* \" == *\" -i - \"* ]]; then tee '{}' | ffmpeg \"$@\"; else exec ffmpeg \"$@\"; fi\n",
        frames.display()
    );
    std::fs::write(&wrapper, script).expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    EncoderSettings::new(wrapper)
}

#[test]
fn a_slow_pan_moves_each_frame_by_a_steady_fraction_of_a_pixel() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Black on the left, white on the right: the edge's position is the frame's dark area.
    let edge = RgbImage::from_fn(400, 240, |x, _| {
        let v = if x < 200 { 0 } else { 255 };
        image::Rgb([v, v, v])
    });
    let photos = [save(
        dir.path(),
        "edge.png",
        &DynamicImage::ImageRgb8(edge),
        ImageFormat::Png,
    )];
    let (w, h) = (160u32, 96u32);
    let mut spec = spec(w, h, 30, 3.0, 0.0);
    spec.motion = Motion::PanLeft;
    spec.motion_strength = 0.3;
    spec.fit = minimoto_common::spec::Fit::Cover;
    spec.thumbnails.clear();
    let frames = dir.path().join("frames.yuv");
    let input = RenderInput {
        spec: &spec,
        photos: &photos,
        audio: None,
        limits: &Limits::default(),
        out_dir: &dir.path().join("out"),
        encoder: &capturing_ffmpeg(dir.path(), &frames),
    };
    let rendered = render(&input, &|_| {}, &AtomicBool::new(false)).expect("render");
    let raw = std::fs::read(&frames).expect("captured frames");
    let frame_len = (w * h * 3 / 2) as usize;
    assert_eq!(raw.len(), 90 * frame_len, "every frame captured");
    // The edge's x, from the luma plane (limited range, 16 black to 235 white), over all rows.
    let positions: Vec<f64> = raw
        .chunks_exact(frame_len)
        .map(|f| {
            let dark: f64 = f[..(w * h) as usize]
                .iter()
                .map(|&y| 1.0 - (f64::from(y.clamp(16, 235)) - 16.0) / 219.0)
                .sum();
            dark / f64::from(h)
        })
        .collect();
    let steps: Vec<f64> = positions.windows(2).map(|p| p[1] - p[0]).collect();
    let travel = positions[0] - positions[positions.len() - 1];
    // The picture moves left by a few pixels over the whole photo…
    assert!(travel > 3.0, "the edge moved {travel} px: {positions:?}");
    // …a steady sub-pixel amount each frame: never a whole-pixel jump, never backwards, never a
    // stop-and-go of rounded positions.
    for (i, s) in steps.iter().enumerate() {
        assert!(-*s > 0.0 && -*s < 0.25, "step {i} is {s} px: {steps:?}");
    }
    for pair in steps.windows(2) {
        assert!(
            (pair[1] - pair[0]).abs() < 0.02,
            "uneven steps {pair:?} in {steps:?}"
        );
    }
    // The poster is the composed frame at the poster time (the middle of a lone photo: frame
    // 45): its edge is where that frame's is, within what JPEG's rounding moves it (flat areas
    // clamped as the frames' are), far less than the 3+ px the edge travels.
    let poster = image::open(&rendered.poster).expect("poster").into_luma8();
    assert_eq!(poster.dimensions(), (w, h));
    let dark: f64 = poster
        .pixels()
        .map(|p| 1.0 - (f64::from(p.0[0].clamp(8, 247)) - 8.0) / 239.0)
        .sum::<f64>()
        / f64::from(h);
    assert!(
        (dark - positions[45]).abs() < 0.3,
        "the poster's edge is at {dark} px, frame 45's at {} (frame 0's {}, the last's {})",
        positions[45],
        positions[0],
        positions[positions.len() - 1]
    );
}
