//! Peak memory of [`inspect`] against [`inspect_cost`], of refusing metadata bombs, and of
//! [`decode_scaled`] reducing a large PNG.
//!
//! The workspace forbids unsafe code, so no counting global allocator: each photo is inspected in
//! a fresh child process (this test binary again, running [`measured_child`]) and measured by the
//! kernel's peak resident set size (`VmHWM`, reset just before the call), less what was resident
//! before it. A fresh process means no freed-but-kept heap from earlier work hides an
//! allocation. Resident size counts pages touched, which for decoders is what they allocate
//! (every output byte is written); it runs a little over the heap by code pages and allocator
//! slack. Linux only: elsewhere these tests pass without measuring.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use minimoto_common::limits::Limits;
use minimoto_photo::{decode, decode_scaled, inspect, inspect_cost};

use common::*;

/// Set in the child's environment: the photo to inspect.
const PHOTO: &str = "MINIMOTO_PHOTO_MEASURE";
/// Set in the child's environment, for a call other than [`inspect`]: `decode`, or
/// `decode_scaled` followed by the min_scale (`decode_scaled 0.125`).
const CALL: &str = "MINIMOTO_PHOTO_CALL";

fn status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

/// The child's side: inspects (or decodes, see [`CALL`]) the photo named in the environment and
/// prints its peak; does nothing (and passes) in a normal run.
#[test]
fn measured_child() {
    let Ok(path) = std::env::var(PHOTO) else {
        return;
    };
    let call = std::env::var(CALL).unwrap_or_default();
    let (path, limits) = (Path::new(&path), Limits::default());
    // Resets VmHWM to the current resident size (Linux 4.0+).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status("VmRSS:").expect("VmRSS");
    let result = match call.split_once(' ') {
        Some(("decode_scaled", scale)) => {
            let scale: f64 = scale.parse().expect("min_scale");
            decode_scaled(path, &limits, [0; 3], |_| scale).map(drop)
        }
        None if call == "decode" => decode(path, &limits, [0; 3]).map(drop),
        _ => inspect(path, &limits).map(drop),
    };
    let peak = status("VmHWM:").expect("VmHWM");
    let verdict = match result {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error {e}"),
    };
    println!("\nPEAK {} {verdict}", peak.saturating_sub(before));
}

/// Peak bytes [`inspect`] took on `path` in a fresh process, and its verdict (`ok` or the
/// error); `None` where `/proc` cannot tell.
fn measure(path: &Path) -> Option<(u64, String)> {
    measure_call(path, "inspect")
}

/// [`measure`] for another call (see [`CALL`]).
fn measure_call(path: &Path, call: &str) -> Option<(u64, String)> {
    status("VmHWM:")?;
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "measured_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PHOTO, path)
        .env(CALL, call)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK "))
        .unwrap_or_else(|| {
            panic!(
                "child said: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let (peak, verdict) = line.split_once(' ').expect("peak and verdict");
    Some((peak.parse().expect("bytes"), verdict.to_string()))
}

const MIB: f64 = (1 << 20) as f64;

/// Inspects each photo in a child, checks it passed within its cost, and prints both.
fn within_cost(cases: &[(&str, PathBuf)]) -> Vec<u64> {
    let mut peaks = Vec::new();
    for (name, path) in cases {
        let cost = inspect_cost(path, &Limits::default()).expect(name);
        let Some((peak, verdict)) = measure(path) else {
            return peaks;
        };
        println!(
            "{name}: inspect peak {:.1} MiB, inspect_cost {:.1} MiB",
            peak as f64 / MIB,
            cost as f64 / MIB
        );
        assert_eq!(verdict, "ok", "{name}");
        assert!(peak <= cost, "{name}: peak {peak} > cost {cost}");
        peaks.push(peak);
    }
    peaks
}

/// A GIF at the encoder's fastest quantisation (`write_to` uses its slowest: a minute at 2 MP).
fn fast_gif(image: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::gif::GifEncoder::new_with_speed(&mut out, 30)
        .encode_frame(image::Frame::new(image.to_rgba8()))
        .expect("gif");
    out
}

#[test]
fn inspect_stays_within_its_cost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let png = d.join("rgba16.png");
    png16(&png, 4000, 3000); // 12 MP at 8 bytes a pixel: 96 MB decoded
    let gradient = DynamicImage::ImageRgb8(RgbImage::from_fn(1600, 1200, |x, y| {
        Rgb([(x / 7) as u8, (y / 5) as u8, ((x ^ y) / 9) as u8])
    }));
    let interlaced = interlaced_png(gradient.as_rgb8().expect("rgb"));
    let rgba = DynamicImage::ImageRgba8(gradient.to_rgba8());
    let cases = [
        ("12 MP 16-bit RGBA PNG", png),
        (
            "12 MP noisy JPEG",
            write(d, "camera.jpg", &noisy_jpeg(4000, 3000, 90)),
        ),
        (
            "12 MP grey JPEG",
            write(
                d,
                "grey.jpg",
                &encode(
                    &DynamicImage::ImageLuma8(image::GrayImage::from_fn(4000, 3000, |x, y| {
                        image::Luma([((x * y) % 251) as u8])
                    })),
                    ImageFormat::Jpeg,
                ),
            ),
        ),
        (
            "2 MP interlaced PNG",
            write(d, "interlaced.png", &interlaced),
        ),
        (
            "2 MP WebP",
            write(d, "w.webp", &encode(&rgba, ImageFormat::WebP)),
        ),
        ("2 MP GIF", write(d, "g.gif", &fast_gif(&rgba))),
        (
            "2 MP BMP",
            write(d, "b.bmp", &encode(&gradient, ImageFormat::Bmp)),
        ),
        (
            "2 MP TIFF",
            write(d, "t.tiff", &encode(&gradient, ImageFormat::Tiff)),
        ),
        (
            "tiny PNG",
            write(d, "tiny.png", &encode(&small(), ImageFormat::Png)),
        ),
        (
            "tiny JPEG",
            write(d, "tiny.jpg", &encode(&small(), ImageFormat::Jpeg)),
        ),
    ];
    let peaks = within_cost(&cases);
    if let [png16, jpeg, ..] = peaks[..] {
        // Before: a full decode, 97 MB and 43 MB.
        assert!(png16 < 8 << 20, "16-bit PNG: {png16}");
        assert!(jpeg < 16 << 20, "12 MP JPEG: {jpeg}");
    }
}

/// 100 MP at 16 bits a channel: 800 MB decoded (and 0.8 GB peak before streaming). Ignored by
/// default for its run time (about a minute); run with `--ignored`.
#[test]
#[ignore]
fn a_100_mp_16_bit_png_is_inspected_in_a_few_mib() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.png");
    png16(&path, 10_000, 10_000);
    let peaks = within_cost(&[("100 MP 16-bit RGBA PNG", path)]);
    if let [peak] = peaks[..] {
        assert!(peak < 8 << 20, "{peak}");
    }
}

/// Peak bytes of [`decode_scaled`] at `min_scale` on a `width`×`height` 16-bit RGBA PNG, and of
/// the full [`decode`] when `full` (what [`decode_scaled`] cost for a PNG before it streamed).
fn scaled_png_peaks(width: u32, height: u32, min_scale: f64, full: bool) -> Option<(u64, u64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rgba16.png");
    png16(&path, width, height);
    let mp = u64::from(width) * u64::from(height) / 1_000_000;
    let peak = |call: &str| {
        let (peak, verdict) = measure_call(&path, call)?;
        println!(
            "{mp} MP 16-bit RGBA PNG: {call} peak {:.1} MiB",
            peak as f64 / MIB
        );
        assert_eq!(verdict, "ok", "{call}");
        Some(peak)
    };
    let scaled = peak(&format!("decode_scaled {min_scale}"))?;
    let full = if full { peak("decode")? } else { 0 };
    Some((scaled, full))
}

#[test]
fn a_large_png_shown_small_is_decoded_in_memory_bounded_by_the_output() {
    // 25 MP at 8 bytes a pixel: 200 MB decoded. At 1/8 the output is 625×625 RGB, 1.1 MiB.
    // Before streaming: ~290 MiB (the 16-bit pixels, then their RGB8 conversion).
    if let Some((scaled, _)) = scaled_png_peaks(5000, 5000, 0.125, false) {
        assert!(scaled < 16 << 20, "{scaled}");
    }
}

/// The 100 MP case, with the full decode for comparison: about a minute, and 1.2 GB for the full
/// decode; run with `--ignored`.
#[test]
#[ignore]
fn a_100_mp_png_shown_small_is_decoded_in_a_few_mib() {
    if let Some((scaled, full)) = scaled_png_peaks(10_000, 10_000, 0.125, true) {
        assert!(scaled < 64 << 20, "{scaled}");
        assert!(scaled * 20 < full, "{scaled} against {full}");
    }
}

#[test]
fn metadata_bombs_are_refused_in_little_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bomb = zlib_zeros(300);
    for (name, chunk) in [
        (
            "zTXt",
            chunk(b"zTXt", &[b"Comment\0\0".as_slice(), &bomb].concat()),
        ),
        (
            "iCCP",
            chunk(b"iCCP", &[b"icc\0\0".as_slice(), &bomb].concat()),
        ),
    ] {
        let path = write(dir.path(), "bomb.png", &png_with_chunks(&[chunk]));
        let Some((peak, verdict)) = measure(&path) else {
            return;
        };
        println!(
            "300 MiB {name} bomb: inspect peak {:.1} MiB, {verdict}",
            peak as f64 / MIB
        );
        assert!(
            verdict.contains("metadata inflate to more than"),
            "{verdict}"
        );
        // Before: the iCCP profile was inflated whole, 317 MB.
        assert!(peak < 8 << 20, "{name}: {peak}");
    }
}
