//! HEIC photos, made here with the system libheif's HEVC encoder (x265) and given the rotation
//! and mirror boxes cameras write: each comes out upright, alpha is composited on the
//! background, and broken or oversized files are refused before a pixel is decoded.

mod common;

use std::process::Command;

use common::{chunk, write};
use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use minimoto_common::{ErrorCode, limits::Limits};
use minimoto_photo::{decode, decode_scaled, inspect, inspect_cost, probe};

/// A noisy photo-like picture, 96 × 64, with a distinct colour in each quadrant (so any rotation
/// or mirror shows): the image to encode (with `alpha` on its right half, when given) and the
/// RGB reference.
fn picture(alpha: Option<u8>) -> (DynamicImage, RgbImage) {
    let (w, h) = (96u32, 64u32);
    let quadrant = |x: u32, y: u32| match (x < w / 2, y < h / 2) {
        (true, true) => [220u8, 40, 40],
        (false, true) => [40, 200, 40],
        (true, false) => [40, 40, 220],
        (false, false) => [230, 220, 40],
    };
    let mut seed = 7u32;
    let reference = RgbImage::from_fn(w, h, |x, y| {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (seed >> 29) as u8; // 0–7: grain, not pattern
        let c = quadrant(x, y);
        image::Rgb([c[0] + noise, c[1] + noise, c[2] + noise])
    });
    let source = match alpha {
        None => DynamicImage::ImageRgb8(reference.clone()),
        Some(a) => DynamicImage::ImageRgba8(RgbaImage::from_fn(w, h, |x, y| {
            let p = reference.get_pixel(x, y).0;
            image::Rgba([p[0], p[1], p[2], if x < w / 2 { 255 } else { a }])
        })),
    };
    (source, reference)
}

/// `source` as a HEIC, made by libheif's own `heif-enc` (x265), from a PNG, or from a JPEG
/// carrying `exif` (which heif-enc copies into the HEIC).
fn heic(source: &DynamicImage, exif: Option<&[u8]>) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = match exif {
        None => {
            let path = dir.path().join("in.png");
            source
                .save_with_format(&path, ImageFormat::Png)
                .expect("png");
            path
        }
        Some(exif) if source.color().has_alpha() => {
            // A PNG with an `eXIf` chunk after its header, which heif-enc copies too.
            let mut png = std::io::Cursor::new(Vec::new());
            source.write_to(&mut png, ImageFormat::Png).expect("png");
            let png = png.into_inner();
            let path = dir.path().join("in.png");
            let bytes = [&png[..33], &chunk(b"eXIf", exif), &png[33..]].concat();
            std::fs::write(&path, bytes).expect("write png");
            path
        }
        Some(exif) => {
            let mut jpeg = std::io::Cursor::new(Vec::new());
            source
                .to_rgb8()
                .write_to(&mut jpeg, ImageFormat::Jpeg)
                .expect("jpeg");
            let jpeg = jpeg.into_inner();
            let app1 = [b"Exif\0\0".as_slice(), exif].concat();
            let length = u16::try_from(app1.len() + 2).expect("small").to_be_bytes();
            let path = dir.path().join("in.jpg");
            let bytes = [&jpeg[..2], &[0xFF, 0xE1], &length, &app1, &jpeg[2..]].concat();
            std::fs::write(&path, bytes).expect("write jpeg");
            path
        }
    };
    let output = dir.path().join("out.heic");
    let run = Command::new("heif-enc")
        .args(["-q", "92"])
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .output()
        .expect("heif-enc runs (scripts/ensure-deps installs libheif-examples)");
    assert!(
        run.status.success(),
        "heif-enc: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read(&output).expect("heic")
}

/// Mean absolute difference per channel.
fn distance(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| u64::from(x.abs_diff(y)))
        .sum();
    sum as f64 / a.as_raw().len() as f64
}

/// `heic` with transform properties given to its primary image, in order: `irot` (`Some(n)`: n
/// quarter turns anticlockwise) and `imir` (`Some(axis)`), as a camera writes them. libheif 1.15
/// writes neither, so the boxes are added here: appended to `ipco`, associated (as essential)
/// in `ipma`, the enclosing box sizes grown, and the item locations moved by the bytes added.
fn with_transforms(heic: &[u8], irot: Option<u8>, imir: Option<u8>) -> Vec<u8> {
    let mut props = Vec::new();
    if let Some(angle) = irot {
        props.extend_from_slice(&[0, 0, 0, 9, b'i', b'r', b'o', b't', angle]);
    }
    if let Some(axis) = imir {
        props.extend_from_slice(&[0, 0, 0, 9, b'i', b'm', b'i', b'r', axis]);
    }
    let added = u8::from(irot.is_some()) + u8::from(imir.is_some());
    let meta = child(heic, 0, heic.len(), b"meta").expect("meta");
    let (meta_body, meta_end) = (meta.0 + 12, meta.1); // a full box: version and flags
    let iprp = child(heic, meta_body, meta_end, b"iprp").expect("iprp");
    let ipco = child(heic, iprp.0 + 8, iprp.1, b"ipco").expect("ipco");
    let ipma = child(heic, iprp.0 + 8, iprp.1, b"ipma").expect("ipma");
    let pitm = child(heic, meta_body, meta_end, b"pitm").expect("pitm");
    let iloc = child(heic, meta_body, meta_end, b"iloc").expect("iloc");
    let primary = if heic[pitm.0 + 8] == 0 {
        u32::from(be(heic, pitm.0 + 12, 2) as u16)
    } else {
        be(heic, pitm.0 + 12, 4) as u32
    };
    let existing = children(heic, ipco.0 + 8, ipco.1).len() as u8;
    // ipma: find the primary item's entry and the end of its associations.
    let (version, wide) = (heic[ipma.0 + 8], heic[ipma.0 + 11] & 1 == 1);
    let mut at = ipma.0 + 12;
    let entries = be(heic, at, 4);
    at += 4;
    // Every item gets the transforms: the primary image and its alpha plane (libheif drops an
    // alpha plane whose size no longer matches the turned image).
    let mut inserts = Vec::new();
    let mut has_primary = false;
    for _ in 0..entries {
        let id_len = if version < 1 { 2 } else { 4 };
        has_primary |= be(heic, at, id_len) as u32 == primary;
        at += id_len;
        let count_at = at;
        let count = usize::from(heic[at]);
        at += 1 + count * if wide { 2 } else { 1 };
        inserts.push((count_at, at));
    }
    assert!(has_primary, "the primary item has properties");
    let mut assoc = Vec::new();
    for i in 1..=added {
        let index = existing + i;
        if wide {
            assoc.extend_from_slice(&[0x80, index]);
        } else {
            assoc.push(0x80 | index);
        }
    }
    let assoc_bytes = assoc.len() * inserts.len();
    let grow = (props.len() + assoc_bytes) as u64;
    // Edits from the end of the file backwards, so each position is still where it was read.
    let mut out = heic.to_vec();
    let mut edits: Vec<(usize, Edit)> = vec![
        (ipma.0, Edit::Size(assoc_bytes as u64)),
        (ipco.1, Edit::Insert(props.clone())),
        (ipco.0, Edit::Size(props.len() as u64)),
        (iprp.0, Edit::Size(grow)),
        (meta.0, Edit::Size(grow)),
    ];
    for (count_at, assoc_end) in inserts {
        edits.push((assoc_end, Edit::Insert(assoc.clone())));
        edits.push((count_at, Edit::Byte(heic[count_at] + added)));
    }
    for (pos, len) in iloc_offsets(heic, iloc.0) {
        edits.push((pos, Edit::Offset(len, grow)));
    }
    edits.sort_by_key(|(pos, _)| std::cmp::Reverse(*pos));
    for (pos, edit) in edits {
        match edit {
            Edit::Insert(bytes) => {
                out.splice(pos..pos, bytes);
            }
            Edit::Byte(b) => out[pos] = b,
            Edit::Size(by) => {
                let size = be(&out, pos, 4) + by;
                out[pos..pos + 4].copy_from_slice(&(size as u32).to_be_bytes());
            }
            Edit::Offset(len, by) => {
                let value = be(&out, pos, len) + by;
                out[pos..pos + len].copy_from_slice(&value.to_be_bytes()[8 - len..]);
            }
        }
    }
    out
}

#[derive(Debug)]
enum Edit {
    Insert(Vec<u8>),
    Byte(u8),
    Size(u64),
    Offset(usize, u64),
}

fn be(b: &[u8], at: usize, len: usize) -> u64 {
    b[at..at + len]
        .iter()
        .fold(0, |v, &x| (v << 8) | u64::from(x))
}

/// The boxes between `start` and `end`: (start, end, type).
fn children(b: &[u8], start: usize, end: usize) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let size = be(b, at, 4) as usize;
        let kind = b[at + 4..at + 8].try_into().expect("type");
        out.push((at, at + size, kind));
        at += size;
    }
    out
}

fn child(b: &[u8], start: usize, end: usize, kind: &[u8; 4]) -> Option<(usize, usize)> {
    children(b, start, end)
        .into_iter()
        .find(|c| &c.2 == kind)
        .map(|c| (c.0, c.1))
}

/// Where the file offsets of `iloc` (at `at`) are, with their byte lengths: the base offset of
/// an item when it has one, else each extent's offset.
fn iloc_offsets(b: &[u8], at: usize) -> Vec<(usize, usize)> {
    let version = b[at + 8];
    let mut p = at + 12;
    let (offset_size, length_size) = (usize::from(b[p] >> 4), usize::from(b[p] & 15));
    let (base_size, index_size) = (usize::from(b[p + 1] >> 4), usize::from(b[p + 1] & 15));
    p += 2;
    let wide = version == 2;
    let items = be(b, p, if wide { 4 } else { 2 });
    p += if wide { 4 } else { 2 };
    let mut out = Vec::new();
    for _ in 0..items {
        p += if wide { 4 } else { 2 }; // item id
        if version >= 1 {
            p += 2; // construction method
        }
        p += 2; // data reference
        let base_at = p;
        let base = if base_size > 0 {
            be(b, p, base_size)
        } else {
            0
        };
        p += base_size;
        let extents = be(b, p, 2);
        p += 2;
        if base > 0 {
            out.push((base_at, base_size));
        }
        for _ in 0..extents {
            if version >= 1 {
                p += index_size;
            }
            if base == 0 && offset_size > 0 {
                out.push((p, offset_size));
            }
            p += offset_size + length_size;
        }
    }
    out
}

/// A turn of the reference by `quarters` quarter turns anticlockwise.
fn turned(reference: &RgbImage, quarters: u8) -> RgbImage {
    match quarters % 4 {
        0 => reference.clone(),
        1 => image::imageops::rotate270(reference),
        2 => image::imageops::rotate180(reference),
        _ => image::imageops::rotate90(reference),
    }
}

#[test]
fn a_heic_turned_by_its_container_decodes_upright() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, reference) = picture(None);
    let plain = heic(&image, None);
    for quarters in 0..4 {
        let bytes = with_transforms(&plain, Some(quarters), None);
        let path = write(dir.path(), &format!("irot{quarters}.heic"), &bytes);
        let want = turned(&reference, quarters);
        let info = inspect(&path, &Limits::default()).expect("inspects");
        assert_eq!(info.format, "heic");
        assert_eq!(
            (info.width, info.height),
            want.dimensions(),
            "irot {quarters}"
        );
        assert_eq!(info.orientation, 1, "libheif applied the container's turn");
        // The header alone: the container's size, before its turn.
        let header = probe(&path, &Limits::default()).expect("probes");
        assert_eq!(
            (header.format, header.width, header.height),
            ("heic", 96, 64)
        );
        let got = decode(&path, &Limits::default(), [0; 3]).expect("decodes");
        let d = distance(&got, &want);
        assert!(d < 8.0, "irot {quarters}: mean difference {d:.2}");
        // Not merely close: the photo the other way round is far away.
        let d = distance(&got, &turned(&reference, quarters + 2));
        assert!(
            d > 60.0,
            "irot {quarters}: {d:.2} from the half-turned photo"
        );
        // Shown at a quarter of its size: the converted JPEG is decoded at 1/4 scale.
        let scaled = decode_scaled(&path, &Limits::default(), [0; 3], |_| 0.25).expect("scaled");
        let (w, h) = want.dimensions();
        assert_eq!(scaled.dimensions(), (w.div_ceil(4), h.div_ceil(4)));
    }
    // A mirror keeps the size and swaps quadrants, as libheif 1.15 reads the axis: 0 turns
    // the photo upside down (top and bottom swap), 1 swaps left and right.
    for (axis, want) in [
        (0, image::imageops::flip_vertical(&reference)),
        (1, image::imageops::flip_horizontal(&reference)),
    ] {
        let bytes = with_transforms(&plain, None, Some(axis));
        let path = write(dir.path(), &format!("imir{axis}.heic"), &bytes);
        let got = decode(&path, &Limits::default(), [0; 3]).expect("decodes");
        let d = distance(&got, &want);
        assert!(d < 8.0, "imir {axis}: mean difference {d:.2}");
        assert!(
            distance(&got, &reference) > 60.0,
            "imir {axis} mirrored nothing"
        );
    }
}

#[test]
fn a_heic_exif_orientation_is_not_applied_on_top_of_the_containers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, reference) = picture(None);
    // As an iPhone writes them: the container turns the photo (a quarter turn clockwise is
    // three anticlockwise), and EXIF says the same thing again (6: 90° clockwise).
    let exif = exif_block(6, "2024:07:14 09:30:00");
    let bytes = with_transforms(&heic(&image, Some(&exif)), Some(3), None);
    let path = write(dir.path(), "iphone.heic", &bytes);
    let info = inspect(&path, &Limits::default()).expect("inspects");
    assert_eq!(
        (info.width, info.height),
        (64, 96),
        "turned once, not twice"
    );
    let taken = info.taken.expect("the EXIF date is read");
    assert_eq!(taken.to_string(), "2024-07-14 09:30:00");
    let got = decode(&path, &Limits::default(), [0; 3]).expect("decodes");
    assert!(distance(&got, &turned(&reference, 3)) < 10.0);
}

#[test]
fn a_heic_with_alpha_is_composited_on_the_background() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, _) = picture(Some(0));
    let path = write(dir.path(), "alpha.heic", &heic(&image, None));
    let got = decode(&path, &Limits::default(), [10, 250, 10]).expect("decodes");
    // The right half is fully transparent: the background shows; the left half is opaque.
    let right = got.get_pixel(80, 16).0;
    assert!(
        right
            .iter()
            .zip([10u8, 250, 10])
            .all(|(&g, w)| g.abs_diff(w) <= 12),
        "{right:?}"
    );
    let left = got.get_pixel(16, 16).0;
    assert!(left[0] > 180 && left[1] < 90, "{left:?}");
}

#[test]
fn a_transparent_heic_with_exif_is_turned_once_and_composited() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Alpha makes the conversion a PNG, into which libheif copies the EXIF block (orientation
    // 6): the container's quarter turn clockwise is applied, the EXIF one is not.
    let (source, _) = picture(Some(0));
    let exif = exif_block(6, "2023:01:02 03:04:05");
    let bytes = with_transforms(&heic(&source, Some(&exif)), Some(3), None);
    let path = write(dir.path(), "alpha-exif.heic", &bytes);
    let info = inspect(&path, &Limits::default()).expect("inspects");
    assert_eq!((info.width, info.height, info.orientation), (64, 96, 1));
    assert_eq!(
        info.taken.map(|t| t.to_string()).as_deref(),
        Some("2023-01-02 03:04:05")
    );
    let got = decode(&path, &Limits::default(), [10, 250, 10]).expect("decodes");
    assert_eq!(got.dimensions(), (64, 96));
    // Turned clockwise, the transparent right half is the bottom half: the background shows.
    let bottom = got.get_pixel(32, 80).0;
    assert!(
        bottom
            .iter()
            .zip([10u8, 250, 10])
            .all(|(&g, w)| g.abs_diff(w) <= 12),
        "{bottom:?}"
    );
    // The top half is the opaque left half, its top-left (red) quadrant on the right.
    let top = got.get_pixel(48, 16).0;
    assert!(top[0] > 180 && top[1] < 90, "{top:?}");
}

#[test]
fn a_ten_bit_heic_decodes_to_its_colours() {
    let dir = tempfile::tempdir().expect("tempdir");
    // From a 16-bit PNG heif-enc makes a 10-bit 4:2:0 HEIC, which libheif reduces to 8 bits.
    let (_, reference) = picture(None);
    let deep = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(96, 64, |x, y| {
        let p = reference.get_pixel(x, y).0;
        image::Rgb(p.map(|c| u16::from(c) * 257))
    }));
    let path = write(dir.path(), "deep.heic", &heic(&deep, None));
    let info = inspect(&path, &Limits::default()).expect("inspects");
    assert_eq!((info.format, info.width, info.height), ("heic", 96, 64));
    let got = decode(&path, &Limits::default(), [0; 3]).expect("decodes");
    let d = distance(&got, &reference);
    assert!(d < 8.0, "mean difference {d:.2}");
}

#[test]
fn heif_sequences_are_refused_by_brand() {
    let dir = tempfile::tempdir().expect("tempdir");
    for brand in ["heis", "hevc", "msf1"] {
        let head = [
            b"\0\0\0\x18ftyp".as_slice(),
            brand.as_bytes(),
            b"\0\0\0\0mif1heic",
        ]
        .concat();
        let path = write(dir.path(), brand, &head);
        let e = inspect(&path, &Limits::default()).expect_err(brand);
        assert_eq!(e.code(), ErrorCode::ImageUnsupported, "{e}");
        assert!(e.to_string().contains(&format!("brand {brand}")), "{e}");
    }
}

#[test]
fn broken_and_oversized_heics_are_refused_before_decoding() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (image, _) = picture(None);
    let bytes = heic(&image, None);
    // Over the pixel limit: refused from the container's header, with the limit named.
    let path = write(dir.path(), "big.heic", &bytes);
    let tight = Limits {
        max_image_pixels: 96 * 64 - 1,
        ..Limits::default()
    };
    let e = inspect(&path, &tight).expect_err("too many pixels");
    assert_eq!(e.code(), ErrorCode::ImageTooLarge);
    assert!(e.to_string().contains("96x64"), "{e}");
    assert!(inspect_cost(&path, &tight).is_err());
    // Within it, the cost covers the decoded pixels.
    let cost = inspect_cost(&path, &Limits::default()).expect("cost");
    assert!(cost > 96 * 64 * 3, "{cost}");
    // Cut anywhere: a clear refusal, never a panic or a half image.
    for keep in [40, bytes.len() / 2, bytes.len() - 10] {
        let path = write(dir.path(), &format!("cut{keep}.heic"), &bytes[..keep]);
        let e = inspect(&path, &Limits::default()).expect_err("truncated");
        assert!(e.is_bad_input(), "{e}");
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "cut at {keep}: {e}");
    }
}

#[test]
fn a_heic_whose_stream_codes_more_pixels_than_it_claims_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 1024×768 coded, then the container's size (`ispe`) changed to claim 64×48: the decoder
    // allocates for the stream's size, which the converting child's memory limit bounds, and
    // what comes out is refused for being larger than the claim.
    let mut bytes = heic(&DynamicImage::ImageRgb8(RgbImage::new(1024, 768)), None);
    let ispe = bytes
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("an ispe box");
    bytes[ispe + 8..ispe + 12].copy_from_slice(&64u32.to_be_bytes());
    bytes[ispe + 12..ispe + 16].copy_from_slice(&48u32.to_be_bytes());
    let path = write(dir.path(), "bomb.heic", &bytes);
    // The header alone believes the claim (and holds it to the limits) …
    let info = probe(&path, &Limits::default()).expect("the header claims 64x48");
    assert_eq!((info.width, info.height), (64, 48));
    // … the conversion does not.
    for e in [
        inspect(&path, &Limits::default()).expect_err("refused"),
        decode(&path, &Limits::default(), [0; 3]).expect_err("refused"),
    ] {
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{e}");
        assert!(
            e.to_string()
                .contains("decodes to 1024x768 pixels, more than the 64x48"),
            "{e}"
        );
    }
    // Nothing of the conversion is left beside the photo.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["bomb.heic"], "{left:?}");
}

/// A minimal EXIF block (TIFF, big-endian) with an orientation and `DateTimeOriginal`.
fn exif_block(orientation: u16, taken: &str) -> Vec<u8> {
    let mut date = taken.as_bytes().to_vec();
    date.push(0);
    let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec();
    // IFD0: orientation and a pointer to the EXIF IFD.
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    let exif_ifd = 8 + 2 + 2 * 12 + 4;
    tiff.extend_from_slice(&[0x87, 0x69, 0, 4, 0, 0, 0, 1]);
    tiff.extend_from_slice(&(exif_ifd as u32).to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // EXIF IFD: DateTimeOriginal, its 20 bytes after the IFD.
    let value_at = exif_ifd + 2 + 12 + 4;
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x90, 0x03, 0, 2]);
    tiff.extend_from_slice(&(date.len() as u32).to_be_bytes());
    tiff.extend_from_slice(&(value_at as u32).to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff.extend_from_slice(&date);
    tiff
}
