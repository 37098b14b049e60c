//! `decode_scaled` on PNG: reducing rows as they stream must give what a full [`decode`] gives,
//! box-filtered, for every colour type, bit depth, interlacing and orientation, and keep every
//! check of the full decode.

mod common;

use image::{Rgb, RgbImage};
use minimoto_common::{ErrorCode, limits::Limits};
use minimoto_photo::{PhotoInfo, decode, decode_scaled};
use png::{BitDepth, ColorType};

use common::*;

fn limits() -> Limits {
    Limits::default()
}

/// The reference: `image` reduced `f` times by area averaging (a box filter), the ragged blocks
/// at the right and bottom, each mean rounded to nearest.
fn box_reduced(image: &RgbImage, f: u32) -> RgbImage {
    let (w, h) = image.dimensions();
    RgbImage::from_fn(w.div_ceil(f), h.div_ceil(f), |bx, by| {
        let (xs, ys) = (bx * f..((bx + 1) * f).min(w), by * f..((by + 1) * f).min(h));
        let count = xs.len() as u32 * ys.len() as u32;
        let mut sum = [0u32; 3];
        for y in ys {
            for x in xs.clone() {
                for (s, c) in sum.iter_mut().zip(image.get_pixel(x, y).0) {
                    *s += u32::from(c);
                }
            }
        }
        Rgb(sum.map(|s| ((s + count / 2) / count) as u8))
    })
}

/// Decodes `png` at 1/`f` and checks it against the full decode box-filtered. The match is exact:
/// the streaming path converts each pixel as the full decode does before averaging.
fn check(name: &str, png: &[u8], f: u32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "p.png", png);
    let full = decode(&path, &limits(), [0; 3]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let expected = box_reduced(&full, f);
    let got = decode_scaled(&path, &limits(), [0; 3], |_| 1.0 / f64::from(f))
        .unwrap_or_else(|e| panic!("{name} at 1/{f}: {e}"));
    assert_eq!(got.dimensions(), expected.dimensions(), "{name} at 1/{f}");
    let worst = got
        .enumerate_pixels()
        .flat_map(|(x, y, p)| {
            let e = expected.get_pixel(x, y).0;
            (0..3).map(move |c| (p.0[c].abs_diff(e[c]), (x, y)))
        })
        .max();
    assert_eq!(
        worst.map_or(0, |(d, _)| d),
        0,
        "{name} at 1/{f}: worst difference at {worst:?}"
    );
}

/// How the samples of a generated PNG are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Every sample random.
    Noise,
    /// Each sample 0 or its maximum, so that a tRNS colour (the maximum, or magenta) recurs.
    Sparse,
    /// Random colour, alpha a ramp from fully transparent (left) to opaque (right).
    AlphaRamp,
}

/// A PNG of `color` at `depth`, `width`×`height`, and its raw rows (packed samples, no filter
/// bytes). Palettes have every index; `trns` adds transparency (half the palette's entries, or a
/// colour for grey and RGB); `exif` is inserted before the image data.
struct Generated {
    png: Vec<u8>,
    rows: Vec<Vec<u8>>,
    bits_per_pixel: usize,
}

fn generate(
    (color, depth): (ColorType, BitDepth),
    (width, height): (u32, u32),
    trns: bool,
    fill: Fill,
    exif: Option<&[u8]>,
) -> Generated {
    let mut noise = Noise::new(width * 31 + height + depth as u32 * 7 + color as u32);
    let bits = depth as usize;
    let channels = color.samples();
    let max = (1u32 << bits) - 1;
    let bits_per_pixel = bits * channels;
    let rows: Vec<Vec<u8>> = (0..height)
        .map(|_| {
            let mut row = vec![0u8; (width as usize * bits_per_pixel).div_ceil(8)];
            for x in 0..width as usize {
                for c in 0..channels {
                    let value = match fill {
                        Fill::Noise => noise.next() & max,
                        Fill::Sparse => {
                            if noise.next() & 1 == 1 {
                                max
                            } else {
                                0
                            }
                        }
                        Fill::AlphaRamp if c == channels - 1 => {
                            // Clamped at both ends: whole blocks of 0 and of full opacity.
                            let ramp = (x as f64 / f64::from(width) * 1.5 - 0.25).clamp(0.0, 1.0);
                            (ramp * f64::from(max)).round() as u32
                        }
                        Fill::AlphaRamp => noise.next() & max,
                    };
                    put_bits(&mut row, (x * channels + c) * bits, bits, u64::from(value));
                }
            }
            row
        })
        .collect();
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    let entries = 1usize << bits.min(8);
    let palette: Vec<u8> = (0..entries * 3).map(|_| noise.next() as u8).collect();
    // Alpha for the first half of the palette (the rest stays opaque): clear, opaque, then random.
    let palette_alpha: Vec<u8> = (0..entries.div_ceil(2))
        .map(|i| match i {
            0 => 0,
            1 => 255,
            _ => noise.next() as u8,
        })
        .collect();
    let key = |v: u32| (v as u16).to_be_bytes();
    let colour_key: Vec<u8> = match color {
        ColorType::Grayscale => key(max).to_vec(),
        ColorType::Rgb => [key(max), key(0), key(max)].concat(),
        _ => palette_alpha.clone(),
    };
    if color == ColorType::Indexed {
        encoder.set_palette(palette);
    }
    if trns {
        encoder.set_trns(colour_key);
    }
    let mut writer = encoder.write_header().expect("header");
    if let Some(exif) = exif {
        writer
            .write_chunk(png::chunk::ChunkType(*b"eXIf"), exif)
            .expect("exif");
    }
    writer.write_image_data(&rows.concat()).expect("rows");
    writer.finish().expect("finish");
    Generated {
        png,
        rows,
        bits_per_pixel,
    }
}

/// Writes the low `n` bits of `value` at bit `at` of `row`, most significant first (PNG order).
fn put_bits(row: &mut [u8], at: usize, n: usize, value: u64) {
    for i in 0..n {
        if (value >> (n - 1 - i)) & 1 == 1 {
            row[(at + i) / 8] |= 0x80 >> ((at + i) % 8);
        }
    }
}

fn get_bits(row: &[u8], at: usize, n: usize) -> u64 {
    (0..n).fold(0, |v, i| {
        (v << 1) | u64::from((row[(at + i) / 8] >> (7 - (at + i) % 8)) & 1)
    })
}

/// The chunks of a PNG: type and data.
fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().expect("4")) as usize;
        let kind = png[at + 4..at + 8].try_into().expect("4");
        out.push((kind, png[at + 8..at + 8 + len].to_vec()));
        at += 12 + len;
    }
    out
}

fn assemble(chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in chunks {
        out.extend_from_slice(&chunk(kind, data));
    }
    out
}

/// The same image, interlaced (Adam7, filter none): `png` encodes no interlacing.
fn interlaced(generated: &Generated, (width, height): (u32, u32)) -> Vec<u8> {
    let bpp = generated.bits_per_pixel;
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in ADAM7 {
        if x0 >= width || y0 >= height {
            continue;
        }
        for y in (y0..height).step_by(dy as usize) {
            let xs: Vec<u32> = (x0..width).step_by(dx as usize).collect();
            let mut row = vec![0u8; (xs.len() * bpp).div_ceil(8)];
            for (i, x) in xs.into_iter().enumerate() {
                let value = get_bits(&generated.rows[y as usize], x as usize * bpp, bpp);
                put_bits(&mut row, i * bpp, bpp, value);
            }
            raw.push(0);
            raw.extend_from_slice(&row);
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut z, &raw).expect("deflate");
    let idat = z.finish().expect("deflate");
    let mut out = Vec::new();
    for (kind, mut data) in chunks(&generated.png) {
        match &kind {
            b"IHDR" => data[12] = 1,
            b"IDAT" if out.iter().any(|(k, _)| k == b"IDAT") => continue,
            b"IDAT" => data = idat.clone(),
            _ => {}
        }
        out.push((kind, data));
    }
    assemble(&out)
}

/// Every colour type at every bit depth it allows.
const LAYOUTS: [(ColorType, BitDepth); 15] = [
    (ColorType::Grayscale, BitDepth::One),
    (ColorType::Grayscale, BitDepth::Two),
    (ColorType::Grayscale, BitDepth::Four),
    (ColorType::Grayscale, BitDepth::Eight),
    (ColorType::Grayscale, BitDepth::Sixteen),
    (ColorType::GrayscaleAlpha, BitDepth::Eight),
    (ColorType::GrayscaleAlpha, BitDepth::Sixteen),
    (ColorType::Rgb, BitDepth::Eight),
    (ColorType::Rgb, BitDepth::Sixteen),
    (ColorType::Rgba, BitDepth::Eight),
    (ColorType::Rgba, BitDepth::Sixteen),
    (ColorType::Indexed, BitDepth::One),
    (ColorType::Indexed, BitDepth::Two),
    (ColorType::Indexed, BitDepth::Four),
    (ColorType::Indexed, BitDepth::Eight),
];

#[test]
fn every_colour_type_and_bit_depth_is_the_full_decode_box_filtered() {
    // 61×43: no factor below divides either side.
    let size = (61, 43);
    for layout in LAYOUTS {
        let has_alpha = matches!(layout.0, ColorType::GrayscaleAlpha | ColorType::Rgba);
        for trns in if has_alpha {
            &[false][..]
        } else {
            &[false, true]
        } {
            let fill = match layout {
                (ColorType::Grayscale | ColorType::Rgb, depth) if *trns && depth as u8 >= 8 => {
                    Fill::Sparse
                }
                _ => Fill::Noise,
            };
            let generated = generate(layout, size, *trns, fill, None);
            let interlaced = interlaced(&generated, size);
            for f in [2, 3, 4, 8] {
                let name = format!("{layout:?} tRNS {trns}");
                check(&name, &generated.png, f);
                check(&format!("{name}, interlaced"), &interlaced, f);
            }
        }
    }
}

#[test]
fn photo_like_pngs_are_the_full_decode_box_filtered() {
    let cases = [
        (
            "noisy 8-bit RGB",
            (ColorType::Rgb, BitDepth::Eight),
            (517, 389),
            false,
            Fill::Noise,
        ),
        (
            "16-bit RGBA, alpha from clear to opaque",
            (ColorType::Rgba, BitDepth::Sixteen),
            (203, 151),
            false,
            Fill::AlphaRamp,
        ),
        (
            "8-bit palette with transparency",
            (ColorType::Indexed, BitDepth::Eight),
            (250, 97),
            true,
            Fill::Noise,
        ),
        (
            "16-bit grey",
            (ColorType::Grayscale, BitDepth::Sixteen),
            (333, 111),
            false,
            Fill::Noise,
        ),
    ];
    for (name, layout, size, trns, fill) in cases {
        let png = generate(layout, size, trns, fill, None).png;
        for f in [2, 3, 7, 8, 16] {
            check(name, &png, f);
        }
    }
}

#[test]
fn every_exif_orientation_is_applied_with_the_ragged_blocks_right_and_bottom() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = (61, 43);
    let layout = (ColorType::Rgba, BitDepth::Sixteen);
    for orientation in 1..=8 {
        let generated = generate(
            layout,
            size,
            false,
            Fill::AlphaRamp,
            Some(&exif(orientation)),
        );
        let interlaced = interlaced(&generated, size);
        for f in [3, 4, 8] {
            let name = format!("orientation {orientation}");
            check(&name, &generated.png, f);
            check(&format!("{name}, interlaced"), &interlaced, f);
        }
        // min_scale is asked with the displayed size.
        let path = write(dir.path(), "o.png", &generated.png);
        let seen = std::cell::Cell::new(None);
        let img = decode_scaled(&path, &limits(), [0; 3], |info| {
            seen.set(Some(info));
            0.25
        })
        .expect("decode");
        let shown = if orientation >= 5 { (43, 61) } else { (61, 43) };
        assert_eq!(
            seen.get(),
            Some(PhotoInfo {
                format: "png",
                width: shown.0,
                height: shown.1,
                orientation: orientation as u8,
                taken: None,
            }),
            "orientation {orientation}"
        );
        assert_eq!(
            img.dimensions(),
            (shown.0.div_ceil(4), shown.1.div_ceil(4)),
            "orientation {orientation}"
        );
    }
}

#[test]
fn a_reduced_png_keeps_every_check_of_the_full_decode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let size = (96, 64);
    let generated = generate(
        (ColorType::Rgb, BitDepth::Eight),
        size,
        false,
        Fill::Noise,
        None,
    );
    let bytes = &generated.png;
    let corrupt = |name: &str, png: &[u8]| {
        let path = write(dir.path(), "bad.png", png);
        let e = decode_scaled(&path, &limits(), [0; 3], |_| 0.25).expect_err(name);
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{name}: {e}");
        e.to_string()
    };
    // Cut off: the structural walk finds it before any row is read.
    corrupt("cut in half", &bytes[..bytes.len() / 2]);
    corrupt("cut before the end", &bytes[..bytes.len() - 3]);
    // Whole chunks, but the image data is cut short (CRC fixed): the rows run out.
    let parts = chunks(bytes);
    let short: Vec<_> = parts
        .iter()
        .map(|(kind, data)| {
            let data = if kind == b"IDAT" {
                data[..data.len() / 2].to_vec()
            } else {
                data.clone()
            };
            (*kind, data)
        })
        .collect();
    corrupt("image data cut short", &assemble(&short));
    let interlaced_short: Vec<_> = chunks(&interlaced(&generated, size))
        .into_iter()
        .map(|(kind, data)| {
            let keep = if &kind == b"IDAT" {
                data.len() - 40
            } else {
                data.len()
            };
            (kind, data[..keep].to_vec())
        })
        .collect();
    corrupt(
        "interlaced image data cut short",
        &assemble(&interlaced_short),
    );
    // A header claiming more than its data holds.
    corrupt("claiming 1000x1000", &png_claiming(1000, 1000));
    // Metadata inflating past its limit.
    let mut bomb = parts.clone();
    bomb.insert(
        1,
        (
            *b"zTXt",
            [b"Comment\0\0".as_slice(), &zlib_zeros(300)].concat(),
        ),
    );
    let msg = corrupt("metadata bomb", &assemble(&bomb));
    assert!(msg.contains("metadata inflate to more than 8 MiB"), "{msg}");
    // Over the pixel limit: refused from the header, before min_scale is asked.
    let path = write(dir.path(), "big.png", bytes);
    let small = Limits {
        max_image_pixels: 96 * 64 - 1,
        ..Limits::default()
    };
    let e = decode_scaled(&path, &small, [0; 3], |_| panic!("not asked")).expect_err("over");
    assert_eq!(e.code(), ErrorCode::ImageTooLarge, "{e}");
    decode_scaled(&path, &limits(), [0; 3], |_| 0.25).expect("the whole file decodes");
}
