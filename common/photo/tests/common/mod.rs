//! Hostile and honest photos, generated in code (no binary fixtures): encodes from `image` and
//! `png`, then patched byte by byte.

#![allow(dead_code)] // each test binary uses its own share

use std::{
    io::{BufWriter, Cursor, Write},
    path::{Path, PathBuf},
};

use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

pub fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A small RGB image with some structure (JPEG and WebP need a few blocks to be worth a test).
pub fn small() -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(64, 32, |x, y| {
        Rgb([(x * 4) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
    }))
}

/// A xorshift stream: cheap, reproducible noise.
pub struct Noise(u32);

impl Noise {
    pub fn new(seed: u32) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// A photo-like JPEG: smooth gradients under sensor-like noise, at a camera's quality, the kind of
/// file whose scans are dense (nothing like a header-only bomb).
pub fn noisy_jpeg(width: u32, height: u32, quality: u8) -> Vec<u8> {
    let mut noise = Noise::new(width ^ height);
    let image = RgbImage::from_fn(width, height, |x, y| {
        let n = (noise.next() & 15) as u8;
        Rgb([
            ((x * 255 / width) as u8).wrapping_add(n),
            ((y * 255 / height) as u8).wrapping_add(n / 2),
            (((x + y) / 8) as u8).wrapping_add(n),
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(&image)
        .expect("jpeg");
    out
}

/// Where the frame header (SOF0–SOF2) of an encoded JPEG starts: its 0xFF.
pub fn sof_at(jpeg: &[u8]) -> usize {
    let mut i = 2;
    loop {
        assert_eq!(jpeg[i], 0xFF, "a segment starts at {i}");
        if (0xC0..=0xC2).contains(&jpeg[i + 1]) {
            return i;
        }
        i += 2 + usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
    }
}

/// A valid JPEG with its frame header's size changed, its scans (and end marker) kept.
pub fn jpeg_claiming(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = jpeg.to_vec();
    let sof = sof_at(&out);
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// A PNG chunk: length, type, data, CRC.
pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len())
        .expect("chunk size")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// A 1×1 PNG with `chunks` inserted right after its header chunk.
pub fn png_with_chunks(chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut png = encode(
        &DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
        ImageFormat::Png,
    );
    assert_eq!(&png[12..16], b"IHDR");
    png.splice(33..33, chunks.concat());
    png
}

/// A PNG whose header claims `width`×`height` (its CRC fixed), its data kept.
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = encode(&small(), ImageFormat::Png);
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A zlib stream that inflates to `mib` MiB of zeros, built in a few milliseconds: one
/// compressed MiB repeated (a deflate block after a sync flush is byte-aligned and only looks
/// back on zeros, so it is valid anywhere after the first), then an empty final block and the
/// Adler-32 of the whole. Small on disk: about 1 KiB per MiB.
pub fn zlib_zeros(mib: usize) -> Vec<u8> {
    assert!(mib >= 2);
    let block = vec![0u8; 1 << 20];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(&block).expect("deflate");
    z.flush().expect("flush");
    let first = z.get_ref().len();
    z.write_all(&block).expect("deflate");
    z.flush().expect("flush");
    let mut out = z.get_ref().clone();
    let repeated = out[first..].to_vec();
    for _ in 2..mib {
        out.extend_from_slice(&repeated);
    }
    out.extend_from_slice(&[0x03, 0x00]); // final fixed-Huffman block: end of block only
    // Adler-32 of n zeros: s1 stays 1, s2 adds 1 per byte.
    let s2 = ((mib as u64) << 20) % 65521;
    out.extend_from_slice(&(((s2 as u32) << 16) | 1).to_be_bytes());
    out
}

/// A 16-bit RGBA PNG streamed to `path` row by row (never whole in memory): a horizontal ramp
/// repeated on every row, so that it compresses to almost nothing however large.
pub fn png16(path: &Path, width: u32, height: u32) {
    let file = BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut encoder = png::Encoder::new(file, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Sixteen);
    encoder.set_compression(png::Compression::Fast);
    encoder.set_filter(png::Filter::Up);
    let mut writer = encoder.write_header().expect("header");
    let mut stream = writer.stream_writer().expect("stream");
    let row: Vec<u8> = (0..width as usize * 8).map(|i| (i / 8) as u8).collect();
    for _ in 0..height {
        stream.write_all(&row).expect("row");
    }
    stream.finish().expect("finish");
}

/// The seven Adam7 passes: (first column, first row, column step, row step).
pub const ADAM7: [(u32, u32, u32, u32); 7] = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
];

/// A big-endian EXIF block holding only an orientation.
pub fn exif(orientation: u16) -> Vec<u8> {
    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend_from_slice(&8u32.to_be_bytes());
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&0x0112u16.to_be_bytes());
    tiff.extend_from_slice(&3u16.to_be_bytes());
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&orientation.to_be_bytes());
    tiff.extend_from_slice(&[0, 0]);
    tiff.extend_from_slice(&0u32.to_be_bytes());
    tiff
}

/// An interlaced (Adam7) 8-bit RGB PNG of `image`, written by hand: `png` encodes no interlacing.
pub fn interlaced_png(image: &RgbImage) -> Vec<u8> {
    let (width, height) = image.dimensions();
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in ADAM7 {
        if x0 >= width || y0 >= height {
            continue; // an empty pass has no rows at all
        }
        for y in (y0..height).step_by(dy as usize) {
            raw.push(0); // filter: none
            for x in (x0..width).step_by(dx as usize) {
                raw.extend_from_slice(&image.get_pixel(x, y).0);
            }
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    z.write_all(&raw).expect("deflate");
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 1]); // 8-bit RGB, interlaced
    [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        chunk(b"IHDR", &ihdr),
        chunk(b"IDAT", &z.finish().expect("deflate")),
        chunk(b"IEND", b""),
    ]
    .concat()
}
