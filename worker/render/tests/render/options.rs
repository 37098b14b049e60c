//! The render options people pick between, rendered for real: every transition and motion gives
//! every frame, a transition's middle frame is what it promises, and a job renders the same twice.

use std::{path::Path, process::Command};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use minimoto_common::spec::{Motion, Quality, TransitionKind};

use crate::render::{assert_video, output_of, photos, run, save, spec};

/// Decoded frame `n` of `video`, as RGB bytes.
fn frame(video: &Path, n: u64) -> Vec<u8> {
    let select = format!("select=eq(n\\,{n})");
    let rgb = decoded(
        video,
        &["-vf", &select, "-frames:v", "1", "-pix_fmt", "rgb24"],
    );
    assert!(!rgb.is_empty(), "no frame {n} in {}", video.display());
    rgb
}

/// Every decoded frame of `video`, as raw yuv420p.
fn all_frames(video: &Path) -> Vec<u8> {
    decoded(video, &["-pix_fmt", "yuv420p"])
}

/// `video` decoded by ffmpeg to raw pixels, with `args` choosing which and how.
fn decoded(video: &Path, args: &[&str]) -> Vec<u8> {
    output_of(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(video)
            .args(args)
            .args(["-f", "rawvideo", "-"]),
    )
}

pub fn solid(dir: &Path, name: &str, rgb: [u8; 3]) -> std::path::PathBuf {
    let image = DynamicImage::ImageRgb8(RgbImage::from_pixel(96, 64, Rgb(rgb)));
    save(dir, name, &image, ImageFormat::Png)
}

#[test]
fn every_transition_and_motion_renders_every_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tints = [[200, 80, 40], [40, 160, 200], [90, 200, 90]];
    let photos = photos(dir.path(), 3, (240, 160), |i| tints[usize::from(i)]);
    let mut kinds = TransitionKind::VISIBLE.to_vec();
    kinds.push(TransitionKind::Random);
    for kind in kinds {
        // 3 × 1 s at 12 fps with half-second transitions: 36 frames whatever the transition.
        let mut spec = spec(96, 64, 12, 1.0, 0.5);
        spec.transition.kind = kind;
        let rendered = run(&spec, &photos, &dir.path().join(format!("{kind:?}")))
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_video(&rendered.video, 96, 64, 36, 12);
    }
    for motion in Motion::ALL {
        for strength in [0.0, 2.0] {
            let mut spec = spec(96, 64, 12, 1.0, 0.5);
            spec.motion = motion;
            spec.motion_strength = strength;
            spec.quality = Quality::Draft;
            let out = dir.path().join(format!("{motion:?}-{strength}"));
            let rendered = run(&spec, &photos, &out).unwrap_or_else(|e| panic!("{motion:?}: {e}"));
            assert_video(&rendered.video, 96, 64, 36, 12);
        }
    }
}

#[test]
fn a_transitions_middle_frame_is_what_it_promises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = ([220, 40, 20], [20, 60, 220]);
    let photos = [solid(dir.path(), "a.png", a), solid(dir.path(), "b.png", b)];
    // 12 frames a photo, a 3-frame transition on frames 11, 12 and 13: frame 12 is its middle.
    let at_middle = |kind: TransitionKind| {
        let mut spec = spec(96, 64, 12, 1.0, 0.25);
        spec.motion = Motion::None;
        spec.transition.kind = kind;
        let rendered = run(&spec, &photos, &dir.path().join(format!("{kind:?}"))).expect("render");
        let rgb = frame(&rendered.video, 12);
        let i = (32 * 96 + 48) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    let close =
        |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 8);
    let mean = [0, 1, 2].map(|c| (u16::from(a[c]) + u16::from(b[c])).div_ceil(2) as u8);
    let got = at_middle(TransitionKind::Crossfade);
    assert!(close(got, mean), "crossfade middle {got:?}, mean {mean:?}");
    let got = at_middle(TransitionKind::FadeBlack);
    assert!(close(got, [0, 0, 0]), "fade-black middle {got:?}");
    let got = at_middle(TransitionKind::FadeWhite);
    assert!(close(got, [255, 255, 255]), "fade-white middle {got:?}");
}

#[test]
fn the_same_job_renders_the_same_frames_twice() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = photos(dir.path(), 4, (300, 200), |i| {
        [60 + 40 * i, 200 - 30 * i, 90]
    });
    let mut spec = spec(128, 72, 12, 1.0, 0.5);
    spec.transition.kind = TransitionKind::Random;
    let first = run(&spec, &photos, &dir.path().join("first")).expect("render");
    let second = run(&spec, &photos, &dir.path().join("second")).expect("render");
    let (a, b) = (all_frames(&first.video), all_frames(&second.video));
    assert_eq!(a.len(), 48 * 128 * 72 * 3 / 2);
    assert!(a == b, "the two renders differ");
}

#[test]
fn durations_give_each_photo_its_time_to_the_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let photos = photos(dir.path(), 3, (160, 120), |i| [90, 40 * i, 200]);
    // 0.5 + 1.5 + 1.25 s at 24 fps: 12 + 36 + 30 = 78 frames.
    let mut spec = spec(96, 64, 24, 1.0, 0.25);
    spec.durations = Some(vec![0.5, 1.5, 1.25]);
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    assert_eq!(rendered.frames, 78);
    assert_eq!(rendered.duration_seconds, 3.25);
    assert_video(&rendered.video, 96, 64, 78, 24);
}

#[test]
fn transparency_shows_the_chosen_background_not_black() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Left half transparent, right half opaque green.
    let logo = image::RgbaImage::from_fn(96, 64, |x, _| {
        if x < 48 {
            image::Rgba([255, 255, 255, 0])
        } else {
            image::Rgba([30, 200, 60, 255])
        }
    });
    let photos = [save(
        dir.path(),
        "logo.png",
        &DynamicImage::ImageRgba8(logo),
        ImageFormat::Png,
    )];
    let mut spec = spec(96, 64, 12, 1.0, 0.0);
    spec.motion = Motion::None;
    spec.fit = minimoto_common::spec::Fit::Contain;
    spec.background = minimoto_common::spec::Rgb([220, 30, 30]);
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    let rgb = frame(&rendered.video, 6);
    let at = |x: usize, y: usize| {
        let i = (y * 96 + x) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    };
    let close =
        |got: [u8; 3], want: [u8; 3]| got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 12);
    assert!(
        close(at(16, 32), [220, 30, 30]),
        "transparent: {:?}",
        at(16, 32)
    );
    assert!(close(at(80, 32), [30, 200, 60]), "opaque: {:?}", at(80, 32));
}

#[test]
fn a_portrait_photo_in_a_landscape_video_pans_along_its_length() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 9:16, dark at the top to bright at the bottom.
    let tall = RgbImage::from_fn(180, 320, |_, y| {
        let v = (y * 255 / 319) as u8;
        Rgb([v, v, v])
    });
    let photos = [save(
        dir.path(),
        "tall.png",
        &DynamicImage::ImageRgb8(tall),
        ImageFormat::Png,
    )];
    let mut spec = spec(160, 96, 12, 3.0, 0.0);
    spec.fit = minimoto_common::spec::Fit::Cover;
    spec.motion = Motion::KenBurns;
    let rendered = run(&spec, &photos, &dir.path().join("out")).expect("render");
    let centre = |n: u64| {
        let rgb = frame(&rendered.video, n);
        let i = (48 * 160 + 80) * 3;
        i32::from(rgb[i])
    };
    let (first, last) = (centre(0), centre(35));
    // The camera travels down the photo: 13 % of its height here, where a centred crop with the
    // zoom's pan alone moves under 2 %.
    assert!(last - first > 20, "the centre went from {first} to {last}");
}
