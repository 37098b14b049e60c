//! Hostile photos, built byte by byte: each must be refused with the right error, from every entry
//! point, and honest photos that look a little like them must still pass.

mod common;

use std::{path::Path, time::Instant};

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};
use minimoto_common::{ErrorCode, limits::Limits};
use minimoto_photo::{PhotoError, decode, decode_scaled, inspect, inspect_cost, probe};

use common::*;

fn limits() -> Limits {
    Limits::default()
}

/// Every public way in, results reduced to their errors.
fn every_entry(path: &Path, limits: &Limits) -> Vec<(&'static str, Result<(), PhotoError>)> {
    vec![
        ("inspect", inspect(path, limits).map(drop)),
        ("probe", probe(path, limits).map(drop)),
        ("inspect_cost", inspect_cost(path, limits).map(drop)),
        ("decode", decode(path, limits, [0; 3]).map(drop)),
        (
            "decode_scaled",
            decode_scaled(path, limits, [0; 3], |_| 0.1).map(drop),
        ),
    ]
}

// --- 1. A header claiming too many pixels is TooLarge, whatever the format -----------------

fn gif_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut gif = encode(
        &DynamicImage::ImageRgba8(small().to_rgba8()),
        ImageFormat::Gif,
    );
    gif[6..8].copy_from_slice(&width.to_le_bytes());
    gif[8..10].copy_from_slice(&height.to_le_bytes());
    gif
}

fn bmp_claiming(width: i32, height: i32) -> Vec<u8> {
    let mut bmp = encode(&small(), ImageFormat::Bmp);
    assert!(u32::from_le_bytes([bmp[14], bmp[15], bmp[16], bmp[17]]) >= 40);
    bmp[18..22].copy_from_slice(&width.to_le_bytes());
    bmp[22..26].copy_from_slice(&height.to_le_bytes());
    bmp
}

/// A real lossless WebP wrapped as an extended file (VP8X) whose canvas claims the size.
fn webp_claiming(width: u32, height: u32) -> Vec<u8> {
    let simple = encode(
        &DynamicImage::ImageRgba8(small().to_rgba8()),
        ImageFormat::WebP,
    );
    let mut vp8x = [0u8; 10];
    vp8x[4..7].copy_from_slice(&(width - 1).to_le_bytes()[..3]);
    vp8x[7..10].copy_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&vp8x);
    body.extend_from_slice(&simple[12..]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A real lossless WebP (VP8L) with its bitstream header patched: 14 bits a side.
fn vp8l_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut webp = encode(
        &DynamicImage::ImageRgba8(small().to_rgba8()),
        ImageFormat::WebP,
    );
    assert_eq!(&webp[12..16], b"VP8L");
    let old = u32::from_le_bytes([webp[21], webp[22], webp[23], webp[24]]);
    let bits = (old & !0x0FFF_FFFF) | (width - 1) | ((height - 1) << 14);
    webp[21..25].copy_from_slice(&bits.to_le_bytes());
    webp
}

/// A lossy WebP (VP8) frame header alone: `image` cannot encode lossy WebP, and the size is all
/// the gate should need.
fn vp8_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut frame = vec![0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A];
    frame.extend_from_slice(&width.to_le_bytes());
    frame.extend_from_slice(&height.to_le_bytes());
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(4 + 8 + frame.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WEBPVP8 ");
    out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame);
    out
}

/// A real little-endian TIFF with its ImageWidth and ImageLength entries rewritten as LONGs.
fn tiff_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut tiff = encode(&small(), ImageFormat::Tiff);
    assert_eq!(&tiff[..4], b"II*\0");
    let ifd = u32::from_le_bytes([tiff[4], tiff[5], tiff[6], tiff[7]]) as usize;
    let count = usize::from(u16::from_le_bytes([tiff[ifd], tiff[ifd + 1]]));
    let mut patched = 0;
    for e in (0..count).map(|i| ifd + 2 + 12 * i) {
        let value = match u16::from_le_bytes([tiff[e], tiff[e + 1]]) {
            256 => width,
            257 => height,
            _ => continue,
        };
        tiff[e + 2..e + 4].copy_from_slice(&4u16.to_le_bytes()); // LONG
        tiff[e + 4..e + 8].copy_from_slice(&1u32.to_le_bytes());
        tiff[e + 8..e + 12].copy_from_slice(&value.to_le_bytes());
        patched += 1;
    }
    assert_eq!(patched, 2);
    tiff
}

#[test]
fn a_header_claiming_too_many_pixels_is_too_large_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jpeg = encode(&small(), ImageFormat::Jpeg);
    const BIG: u32 = 20_000;
    let cases: Vec<(&str, Vec<u8>, (u32, u32))> = vec![
        // 20 000 × 20 000 = 400 MP against a 100 MP limit.
        ("jpeg", jpeg_claiming(&jpeg, 20_000, 20_000), (BIG, BIG)),
        ("png", png_claiming(BIG, BIG), (BIG, BIG)),
        ("webp", webp_claiming(BIG, BIG), (BIG, BIG)),
        ("gif", gif_claiming(20_000, 20_000), (BIG, BIG)),
        ("bmp", bmp_claiming(20_000, 20_000), (BIG, BIG)),
        ("bmp top-down", bmp_claiming(20_000, -20_000), (BIG, BIG)),
        ("tiff", tiff_claiming(BIG, BIG), (BIG, BIG)),
        // The most each format can claim, past u32 pixels wherever it can go.
        (
            "jpeg max",
            jpeg_claiming(&jpeg, 65_535, 65_535),
            (65_535, 65_535),
        ),
        (
            "png max",
            png_claiming(0x7FFF_FFFF, 0x7FFF_FFFF),
            (0x7FFF_FFFF, 0x7FFF_FFFF),
        ),
        (
            "webp max",
            webp_claiming(1 << 24, 1 << 24),
            (1 << 24, 1 << 24),
        ),
        ("vp8l max", vp8l_claiming(16_384, 16_384), (16_384, 16_384)),
        ("vp8 max", vp8_claiming(16_383, 16_383), (16_383, 16_383)),
        ("gif max", gif_claiming(65_535, 65_535), (65_535, 65_535)),
        (
            "bmp max",
            bmp_claiming(i32::MAX, i32::MAX),
            (i32::MAX as u32, i32::MAX as u32),
        ),
        (
            "tiff max",
            tiff_claiming(u32::MAX, u32::MAX),
            (u32::MAX, u32::MAX),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, bytes, (width, height)) in cases {
        let path = write(dir.path(), "claim", &bytes);
        for (entry, result) in every_entry(&path, &limits()) {
            match result {
                Err(PhotoError::TooLarge {
                    width: w,
                    height: h,
                    max_pixels: 100_000_000,
                }) if (w, h) == (width, height) => {}
                other => wrong.push(format!("{name}, {entry}: {other:?}")),
            }
        }
    }
    assert!(wrong.is_empty(), "expected TooLarge:\n{}", wrong.join("\n"));
}

#[test]
fn a_claim_within_the_limit_is_judged_on_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 10 000 × 10 000 is exactly 100 MP: the header passes, the missing pixels do not. (Not GIF:
    // a small frame on a large logical screen is a valid GIF.)
    for (name, bytes) in [
        ("png", png_claiming(10_000, 10_000)),
        ("bmp", bmp_claiming(10_000, 10_000)),
        ("tiff", tiff_claiming(10_000, 10_000)),
        ("webp", webp_claiming(10_000, 10_000)),
    ] {
        let path = write(dir.path(), name, &bytes);
        // The header passes (`probe` of the TIFF already finds its strips inconsistent).
        match probe(&path, &limits()) {
            Ok(_) | Err(PhotoError::Corrupt(_)) => {}
            Err(e) => panic!("{name}: {e:?}"),
        }
        let e = inspect(&path, &limits()).expect_err(name);
        assert!(matches!(e, PhotoError::Corrupt(_)), "{name}: {e:?}");
    }
}

// --- 2. A valid JPEG in a coding process we do not decode is Unsupported ---------------------

#[test]
fn jpeg_coding_processes_zune_does_not_decode_are_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jpeg = encode(&small(), ImageFormat::Jpeg);
    let sof = sof_at(&jpeg);
    let with_marker = |marker: u8| {
        let mut bytes = jpeg.clone();
        bytes[sof + 1] = marker;
        bytes
    };
    let mut cases = vec![
        (with_marker(0xC3), "lossless JPEG (SOF3) is not supported"),
        (
            with_marker(0xC5),
            "hierarchical JPEG (SOF5) is not supported",
        ),
        (with_marker(0xC6), "hierarchical progressive JPEG (SOF6)"),
        (with_marker(0xC7), "hierarchical lossless JPEG (SOF7)"),
        (
            with_marker(0xC9),
            "arithmetic-coded JPEG (SOF9) is not supported",
        ),
        (
            with_marker(0xCA),
            "arithmetic-coded progressive JPEG (SOF10)",
        ),
        (with_marker(0xCB), "arithmetic-coded lossless JPEG (SOF11)"),
        (
            with_marker(0xCD),
            "arithmetic-coded hierarchical JPEG (SOF13)",
        ),
        (with_marker(0xCE), "(SOF14)"),
        (with_marker(0xCF), "(SOF15)"),
    ];
    // 12-bit samples (extended sequential, the process that allows them).
    let mut twelve = with_marker(0xC1);
    twelve[sof + 4] = 12;
    cases.push((twelve, "12-bit JPEG is not supported"));
    // Height 0: the real one would come in a DNL segment after the first scan.
    cases.push((jpeg_claiming(&jpeg, 64, 0), "(DNL) is not supported"));
    for (bytes, message) in cases {
        let path = write(dir.path(), "p.jpg", &bytes);
        for (entry, result) in every_entry(&path, &limits()) {
            let e = result.expect_err(message);
            assert_eq!(
                e.code(),
                ErrorCode::ImageUnsupported,
                "{message}, {entry}: {e}"
            );
            assert!(e.to_string().contains(message), "{entry}: {e}");
            assert!(e.to_string().contains("baseline or progressive"), "{e}");
        }
    }
}

#[test]
fn extended_sequential_8_bit_jpeg_is_still_decoded() {
    // SOF1 at 8 bits is baseline in all but name: both decoders read it.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut jpeg = encode(&small(), ImageFormat::Jpeg);
    let sof = sof_at(&jpeg);
    jpeg[sof + 1] = 0xC1;
    let path = write(dir.path(), "sof1.jpg", &jpeg);
    for (entry, result) in every_entry(&path, &limits()) {
        result.unwrap_or_else(|e| panic!("{entry}: {e}"));
    }
}

// --- 3. A JPEG claiming more pixels than its data can hold is Corrupt ------------------------

#[test]
fn a_jpeg_claiming_more_pixels_than_its_data_holds_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jpeg = encode(&small(), ImageFormat::Jpeg);
    // A valid 64×32 JPEG, end marker kept, claiming 10 000 × 10 000 (exactly the pixel limit).
    let path = write(dir.path(), "lie.jpg", &jpeg_claiming(&jpeg, 10_000, 10_000));
    probe(&path, &limits()).expect("the header alone is within the limit");
    inspect_cost(&path, &limits()).expect("the header alone is within the limit");
    for (entry, result) in [
        ("inspect", inspect(&path, &limits()).map(drop)),
        ("decode", decode(&path, &limits(), [0; 3]).map(drop)),
        (
            "decode_scaled",
            decode_scaled(&path, &limits(), [0; 3], |_| 0.1).map(drop),
        ),
    ] {
        let e = result.expect_err(entry);
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{entry}: {e}");
        let msg = e.to_string();
        assert!(
            msg.contains("the JPEG header claims 10000x10000 pixels but its")
                && msg.contains("can hold at most"),
            "{entry}: {msg}"
        );
    }
    // A smaller lie is caught too: 64×32 of data claiming 2000×2000.
    let path = write(dir.path(), "lie2.jpg", &jpeg_claiming(&jpeg, 2000, 2000));
    let e = inspect(&path, &limits()).expect_err("2000x2000");
    assert!(e.to_string().contains("claims 2000x2000"), "{e}");
}

#[test]
fn real_photos_have_far_more_data_than_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A 12 MP camera-like photo: noisy, quality 85.
    let path = write(dir.path(), "camera.jpg", &noisy_jpeg(4000, 3000, 85));
    let info = inspect(&path, &limits()).expect("a noisy 12 MP JPEG passes");
    assert_eq!((info.width, info.height), (4000, 3000));
    let scaled = decode_scaled(&path, &limits(), [0; 3], |_| 0.125).expect("decodes");
    assert_eq!(scaled.dimensions(), (500, 375));
    // The least data an honest encoder writes: a flat image, every block a DC difference of
    // zero and an end of block (6 bits a block with the standard tables, against a bound of 2).
    for (name, image) in [
        (
            "black",
            DynamicImage::ImageRgb8(image::RgbImage::new(3000, 2000)),
        ),
        (
            "grey",
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(3000, 2000, image::Luma([128]))),
        ),
    ] {
        let path = write(dir.path(), name, &encode(&image, ImageFormat::Jpeg));
        inspect(&path, &limits()).unwrap_or_else(|e| panic!("{name}: {e}"));
        decode(&path, &limits(), [0; 3]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

// --- 4. Metadata that inflates past its limit is refused, quickly ---------------------------

fn ztxt(text: &[u8]) -> Vec<u8> {
    chunk(b"zTXt", &[b"Comment\0\0".as_slice(), text].concat())
}

fn itxt_compressed(text: &[u8]) -> Vec<u8> {
    chunk(
        b"iTXt",
        &[b"XML:com.adobe.xmp\0\x01\0en\0\0".as_slice(), text].concat(),
    )
}

fn iccp(profile: &[u8]) -> Vec<u8> {
    chunk(b"iCCP", &[b"icc\0\0".as_slice(), profile].concat())
}

#[test]
fn metadata_inflating_past_its_limit_is_refused_quickly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bomb = zlib_zeros(300); // 300 MiB of zeros, ~300 KiB on disk
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let many_texts: Vec<Vec<u8>> = (0..20)
        .map(|_| {
            chunk(
                b"tEXt",
                &[b"Comment\0".as_slice(), &[b'x'; 512 << 10]].concat(),
            )
        })
        .collect();
    for (name, png) in [
        ("zTXt", png_with_chunks(&[ztxt(&bomb)])),
        ("iTXt", png_with_chunks(&[itxt_compressed(&bomb)])),
        ("iCCP", png_with_chunks(&[iccp(&bomb)])),
        ("20 tEXt of 512 KiB", png_with_chunks(&many_texts)),
    ] {
        let path = write(dir.path(), "bomb.png", &png);
        probe(&path, &limits()).expect("the header alone is fine");
        for entry in ["inspect", "decode"] {
            let started = Instant::now();
            let result = match entry {
                "inspect" => inspect(&path, &limits()).map(drop),
                _ => decode(&path, &limits(), [0; 3]).map(drop),
            };
            let e = result.expect_err(name);
            assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{name}, {entry}: {e}");
            assert!(
                e.to_string()
                    .contains("metadata inflate to more than 8 MiB"),
                "{name}, {entry}: {e}"
            );
            assert!(started.elapsed().as_secs() < 5, "{name}, {entry}");
        }
    }
    // Real metadata passes: an ICC profile and text chunks, 4 MiB inflated in all.
    let honest = png_with_chunks(&[
        iccp(&zlib_zeros(2)[..]),
        ztxt(&zlib_zeros(2)),
        chunk(b"tEXt", b"Software\0minimoto test"),
    ]);
    let path = write(dir.path(), "honest.png", &honest);
    inspect(&path, &limits()).expect("4 MiB of metadata is fine");
    decode(&path, &limits(), [0; 3]).expect("4 MiB of metadata is fine");
}

// --- 5. Orientation is reported the same by every path --------------------------------------

#[test]
fn a_png_exif_orientation_is_applied_by_inspect_probe_and_decode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut png = encode(
        &DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 32, Rgba([9, 8, 7, 255]))),
        ImageFormat::Png,
    );
    png.splice(33..33, chunk(b"eXIf", &exif(6)));
    let path = write(dir.path(), "turned.png", &png);
    let info = inspect(&path, &limits()).expect("inspect");
    assert_eq!((info.width, info.height), (32, 64));
    assert_eq!(probe(&path, &limits()).expect("probe"), info);
    assert_eq!(
        decode(&path, &limits(), [0; 3])
            .expect("decode")
            .dimensions(),
        (32, 64)
    );
}

#[test]
fn an_interlaced_png_is_streamed_and_decoded_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = image::RgbImage::from_fn(37, 21, |x, y| image::Rgb([x as u8 * 6, y as u8 * 12, 7]));
    let bytes = interlaced_png(&image);
    let path = write(dir.path(), "adam7.png", &bytes);
    let info = inspect(&path, &limits()).expect("inspect streams every pass");
    assert_eq!((info.width, info.height), (37, 21));
    assert_eq!(decode(&path, &limits(), [0; 3]).expect("decode"), image);
    // Cut inside the image data: every pass must be there.
    let idat_end = bytes.len() - 12 - 4;
    let cut = write(
        dir.path(),
        "cut.png",
        &[&bytes[..idat_end - 20], &bytes[idat_end..]].concat(),
    );
    let e = inspect(&cut, &limits()).expect_err("cut");
    assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{e}");
}
