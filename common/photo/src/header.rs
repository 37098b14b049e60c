//! The size a WebP, GIF, BMP or TIFF header claims, read from the few bytes where each format
//! keeps it, before any decoder sees the file.
//!
//! The decoders cannot be asked first: some refuse a large claim themselves (the BMP decoder
//! past 65 535 pixels a side, as a decoding error), and constructing one may already allocate
//! for the size it read. Every side fits a `u32` (a WebP canvas has 24 bits, a BMP 31, a TIFF
//! 32; BigTIFF is not detected as an image at all), but their product may not.

use std::{
    fs::File,
    io::{self, BufReader, Read, Seek, SeekFrom},
    path::Path,
};

use crate::PhotoError;

/// Width and height as the header claims them.
pub(crate) type Claim = (u32, u32);

fn corrupt(what: &str) -> PhotoError {
    PhotoError::Corrupt(format!("the {what} header is malformed"))
}

fn le16(b: &[u8], i: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn le24(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], 0])
}

fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// GIF: the logical screen, which is the size `image` decodes to.
pub(crate) fn gif(head: &[u8]) -> Result<Claim, PhotoError> {
    if head.len() < 10 {
        return Err(corrupt("GIF"));
    }
    Ok((le16(head, 6), le16(head, 8)))
}

/// BMP: 16-bit sides in the old OS/2 core header, signed 32-bit ones in every later header (a
/// negative height means the rows are stored top-down).
pub(crate) fn bmp(head: &[u8]) -> Result<Claim, PhotoError> {
    if head.len() < 26 {
        return Err(corrupt("BMP"));
    }
    if le32(head, 14) == 12 {
        return Ok((le16(head, 18), le16(head, 20)));
    }
    let width = le32(head, 18).cast_signed();
    let height = le32(head, 22).cast_signed();
    if width < 0 {
        return Err(corrupt("BMP"));
    }
    Ok((width.unsigned_abs(), height.unsigned_abs()))
}

/// WebP: the canvas of an extended file (VP8X), else the frame of a lossy (VP8) or lossless
/// (VP8L) bitstream.
pub(crate) fn webp(head: &[u8]) -> Result<Claim, PhotoError> {
    let data = head.get(20..30).ok_or_else(|| corrupt("WebP"))?;
    match &head[12..16] {
        b"VP8X" => Ok((le24(data, 4) + 1, le24(data, 7) + 1)),
        b"VP8L" if data[0] == 0x2F => {
            let bits = le32(data, 1);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8 " if data[3..6] == [0x9D, 0x01, 0x2A] => {
            Ok((le16(data, 6) & 0x3FFF, le16(data, 8) & 0x3FFF))
        }
        _ => Err(corrupt("WebP")),
    }
}

/// TIFF: ImageWidth and ImageLength of the first image, the one `image` decodes. Reads the first
/// directory's entries until both are found.
pub(crate) fn tiff(path: &Path) -> Result<Claim, PhotoError> {
    let mut r = BufReader::with_capacity(8 << 10, File::open(path)?);
    let mut head = [0u8; 8];
    read_exact(&mut r, &mut head)?;
    let big_endian = match &head[..2] {
        b"II" => false,
        b"MM" => true,
        _ => return Err(corrupt("TIFF")),
    };
    let u16_at = |b: &[u8]| {
        let b = [b[0], b[1]];
        u32::from(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    r.seek(SeekFrom::Start(u64::from(u32_at(&head[4..8]))))?;
    let mut count = [0u8; 2];
    read_exact(&mut r, &mut count)?;
    let (mut width, mut height) = (None, None);
    let mut entry = [0u8; 12]; // tag, type, count, then the value if it fits in 4 bytes
    for _ in 0..u16_at(&count) {
        read_exact(&mut r, &mut entry)?;
        let value = match u16_at(&entry[2..4]) {
            3 => u16_at(&entry[8..10]), // SHORT
            4 => u32_at(&entry[8..12]), // LONG
            _ => continue,
        };
        match u16_at(&entry[..2]) {
            256 => width = Some(value),
            257 => height = Some(value),
            _ => {}
        }
        if let (Some(w), Some(h)) = (width, height) {
            return Ok((w, h));
        }
    }
    Err(corrupt("TIFF"))
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), PhotoError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            PhotoError::Corrupt("the file ends before the end of the image".into())
        }
        _ => PhotoError::Io(e),
    })
}
