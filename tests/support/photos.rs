//! Making photos, soundtracks and multipart job submissions, shared by the end-to-end tests (the
//! real binary) and the in-process API tests (`api/tests`). Depends on `image` and `reqwest`
//! only (and the installed ffmpeg, for soundtracks, and libheif's heif-enc, for HEICs).

#![allow(dead_code, reason = "each test binary uses part of these helpers")]

use image::{ImageFormat, Rgb, RgbImage};

/// A gradient with a white corner mark, so orientation and cropping are visible.
pub fn picture(width: u32, height: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 8 && y < height / 8 {
            Rgb([255, 255, 255])
        } else {
            let r = (x * 255 / width.max(1)) as u8;
            let g = (y * 255 / height.max(1)) as u8;
            Rgb([r, g, seed.wrapping_mul(40)])
        }
    })
}

/// [`picture`] encoded as `format`.
pub fn photo(width: u32, height: u32, seed: u8, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    picture(width, height, seed)
        .write_to(&mut out, format)
        .expect("encode photo");
    out.into_inner()
}

/// [`picture`] as an iPhone-style HEIC, made by libheif's heif-enc (x265) from a PNG.
pub fn heic(width: u32, height: u32, seed: u8) -> Vec<u8> {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let base = std::env::temp_dir().join(format!("minimoto-heic-{}-{n}", std::process::id()));
    let (png, out) = (base.with_extension("png"), base.with_extension("heic"));
    picture(width, height, seed).save(&png).expect("write png");
    let run = std::process::Command::new("heif-enc")
        .args(["-q", "90"])
        .arg(&png)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("heif-enc runs (scripts/ensure-deps installs libheif-examples)");
    let bytes = std::fs::read(&out);
    let _ = (std::fs::remove_file(&png), std::fs::remove_file(&out));
    assert!(
        run.status.success(),
        "heif-enc: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    bytes.expect("heif-enc wrote the HEIC")
}

pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    photo(width, height, seed, ImageFormat::Jpeg)
}

/// A JPEG as a camera writes it: an EXIF block whose `DateTimeOriginal` is `taken`
/// (`YYYY:MM:DD HH:MM:SS`), and a `DateTime` (when it was last edited) of 2000 to tell them apart.
pub fn jpeg_taken(width: u32, height: u32, seed: u8, taken: &str) -> Vec<u8> {
    fn entry(tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32) {
        tiff.extend_from_slice(&tag.to_be_bytes());
        tiff.extend_from_slice(&kind.to_be_bytes());
        tiff.extend_from_slice(&count.to_be_bytes());
        tiff.extend_from_slice(&value.to_be_bytes());
    }
    const ASCII: u16 = 2;
    const LONG: u16 = 4;
    // Header (8), IFD0 with 2 entries (2 + 24 + 4) at 8, the Exif IFD with 1 (2 + 12 + 4) at
    // 38, then the two 20-byte strings at 56 and 76.
    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut tiff, 0x0132, ASCII, 20, 76); // DateTime
    entry(&mut tiff, 0x8769, LONG, 1, 38); // the Exif IFD
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    entry(&mut tiff, 0x9003, ASCII, 20, 56); // DateTimeOriginal
    tiff.extend_from_slice(&0u32.to_be_bytes());
    for text in [taken, "2000:01:01 00:00:00"] {
        assert_eq!(text.len(), 19, "EXIF dates are YYYY:MM:DD HH:MM:SS");
        tiff.extend_from_slice(text.as_bytes());
        tiff.push(0);
    }
    let app1 = [b"Exif\0\0".as_slice(), &tiff].concat();
    let jpeg = jpeg(width, height, seed);
    let length = u16::try_from(app1.len() + 2)
        .expect("small block")
        .to_be_bytes();
    [&jpeg[..2], &[0xFF, 0xE1], &length, &app1, &jpeg[2..]].concat()
}

/// A `POST /v1/jobs` body: one `images` part per photo, then `options` if given.
pub fn form(images: &[(&str, Vec<u8>)], options: Option<&str>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in images {
        form = form.part(
            "images",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    if let Some(o) = options {
        form = form.text("options", o.to_owned());
    }
    form
}

/// A `seconds` long 440 Hz tone in `format` (an ffmpeg muxer that can write to a pipe: `mp3`,
/// `flac`, `ogg`), made by the installed ffmpeg.
pub fn tone(format: &str, seconds: f64) -> Vec<u8> {
    let source = format!("sine=frequency=440:sample_rate=44100:duration={seconds}");
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v", "error", "-f", "lavfi", "-i", &source, "-f", format, "-",
        ])
        .output()
        .expect("ffmpeg runs (the test command installs it)");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "ffmpeg made no {format}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
