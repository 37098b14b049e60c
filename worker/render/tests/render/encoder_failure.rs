//! An encoder that dies mid-render: the error is retryable and carries ffmpeg's last words.
//! The fake ffmpeg is passed in as the render's encoder setting, as the worker's `--ffmpeg` is.

use std::{os::unix::fs::PermissionsExt, sync::atomic::AtomicBool};

use image::{DynamicImage, ImageFormat, RgbImage};
use minimoto_common::{limits::Limits, spec::RenderSpec};
use minimoto_render::{EncoderSettings, RenderError, RenderInput, render};

/// Renders one photo with a fake ffmpeg running `script`; the render's error.
fn render_with_fake_ffmpeg(tmp: &tempfile::TempDir, script: &str) -> RenderError {
    let fake = tmp.path().join("ffmpeg");
    std::fs::write(&fake, script).expect("write fake");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let encoder = EncoderSettings::new(fake);
    let dir = tmp.path();
    let photo = dir.join("p.png");
    DynamicImage::ImageRgb8(RgbImage::from_pixel(80, 60, image::Rgb([10, 200, 30])))
        .save_with_format(&photo, ImageFormat::Png)
        .expect("photo");
    let spec = RenderSpec {
        width: 160,
        height: 120,
        fps: 12,
        seconds_per_image: 2.0,
        ..RenderSpec::default()
    };
    let out = dir.join("out");
    let photos = [photo];
    let input = RenderInput {
        spec: &spec,
        photos: &photos,
        audio: None,
        limits: &Limits::default(),
        out_dir: &out,
        encoder: &encoder,
    };
    let e = render(&input, &|_| {}, &AtomicBool::new(false)).expect_err("encoder dies");
    assert!(
        std::fs::read_dir(&out).expect("out").next().is_none(),
        "partial output left"
    );
    e
}

#[test]
fn a_crashing_encoder_is_retryable_and_logged() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Takes some frames, then dies the way a crashing encoder does.
    let e = render_with_fake_ffmpeg(
        &tmp,
        "#!/bin/sh\nhead -c 50000 >/dev/null\necho 'x264 [error]: malloc failed' >&2\nexit 3\n",
    );
    assert_eq!(
        (e.code(), e.is_bad_input()),
        (minimoto_common::ErrorCode::EncoderFailed, false),
        "{e:?}"
    );
    match &e {
        RenderError::Encoder { log, .. } => assert!(log.contains("malloc failed"), "{log}"),
        other => panic!("{other:?}"),
    }
    assert!(
        !e.to_string().contains("malloc"),
        "the log is for operators, not the message: {e}"
    );
}

#[test]
fn an_encoder_that_cannot_write_for_lack_of_space_is_a_full_disk_not_a_broken_encoder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let e = render_with_fake_ffmpeg(
        &tmp,
        "#!/bin/sh\nhead -c 50000 >/dev/null\n\
         echo '[out#0/mp4] Error writing trailer: No space left on device' >&2\nexit 1\n",
    );
    assert_eq!(
        (e.code(), e.is_bad_input()),
        (minimoto_common::ErrorCode::NoSpace, false),
        "{e:?}"
    );
    assert!(e.to_string().contains("disk is full"), "{e}");
    assert!(e.to_string().contains("No space left on device"), "{e}");
}
