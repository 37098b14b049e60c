//! PNG: the header, a structural walk over the chunks that bounds the metadata, and a decode that
//! streams rows.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek},
    path::Path,
};

use flate2::read::ZlibDecoder;
use image::metadata::Orientation;

use crate::PhotoError;

/// Most bytes of metadata a PNG may carry, counted once inflated: text (tEXt, zTXt, iTXt), ICC
/// profile (iCCP) and EXIF (eXIf) together.
///
/// Compressed chunks are the one place a small file can grow in memory past its own size (zlib
/// reaches 1000:1), and the decoders hold them whole. Camera EXIF fits in 64 KiB (a JPEG segment's
/// size), ICC profiles rarely exceed 1 MiB, and XMP a few hundred KiB; this leaves room for an
/// unusually heavy but honest file while keeping a hostile one to a few MiB.
pub(crate) const METADATA_LIMIT: u64 = 8 << 20;

/// The image header (IHDR), which PNG requires to be the first chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ihdr {
    pub(crate) width: u32,
    pub(crate) height: u32,
    bit_depth: u8,
}

impl Ihdr {
    /// Reads the IHDR chunk at its fixed place after the signature.
    pub(crate) fn read(head: &[u8]) -> Result<Self, PhotoError> {
        let corrupt = || PhotoError::Corrupt("the PNG does not start with its header chunk".into());
        let ihdr = head.get(8..29).ok_or_else(corrupt)?;
        if ihdr[..8] != [0, 0, 0, 13, b'I', b'H', b'D', b'R'] {
            return Err(corrupt());
        }
        let be = |i: usize| u32::from_be_bytes([ihdr[i], ihdr[i + 1], ihdr[i + 2], ihdr[i + 3]]);
        Ok(Self {
            width: be(8),
            height: be(12),
            bit_depth: ihdr[16],
        })
    }

    /// Bytes of one row as decoded (8-bit or 16-bit samples), assuming the widest colour type:
    /// four channels (RGBA, or any type given alpha by a tRNS chunk).
    pub(crate) fn row_bytes(&self) -> u64 {
        let sample = if self.bit_depth == 16 { 2 } else { 1 };
        u64::from(self.width) * 4 * sample + 1
    }

    /// The `png` crate's own allocation limit. It counts metadata chunks more than once (the
    /// chunk buffer as it doubles, then the parsed copy), but never the image buffer; rows are
    /// counted once each. Metadata proved under [`METADATA_LIMIT`] always fits.
    pub(crate) fn decoder_limit(&self) -> u64 {
        4 * METADATA_LIMIT + 8 * self.row_bytes() + (1 << 20)
    }

    /// An upper estimate of the heap bytes [`stream_rows`] needs (beyond the fixed allowance the
    /// caller adds): `png` keeps a window of rows to unfilter (a few rows and at least 128 KiB,
    /// plus the 32 KiB that inflation looks back on), the previous row, and the output row; and
    /// the EXIF chunk (at most the file's size), which it holds up to three times.
    pub(crate) fn inspect_cost(&self, file_bytes: u64) -> u64 {
        16 * self.row_bytes() + (1 << 20) + 3 * file_bytes.min(METADATA_LIMIT)
    }
}

pub(crate) fn metadata_too_large() -> PhotoError {
    PhotoError::Corrupt(format!(
        "its text, ICC profile and EXIF metadata inflate to more than {} MiB, the most accepted",
        METADATA_LIMIT >> 20
    ))
}

/// Walks every chunk from the header to IEND, so that a cut-off file is found before paying for a
/// decode (the decoders stop after the last pixel row and never read the end chunk), and counts
/// the metadata, inflating compressed chunks as a stream: memory stays O(1) whatever they
/// inflate to, and the walk stops as soon as the total passes [`METADATA_LIMIT`].
///
/// Chunk data is skipped by seeking, and CRCs are left to the decoder, so this costs little
/// next to the decode. A damaged compressed stream only ends its count: the decoders ignore a
/// broken ancillary chunk. Bytes after IEND are allowed.
pub(crate) fn walk(path: &Path) -> Result<(), PhotoError> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut r = BufReader::with_capacity(64 << 10, file);
    let truncated = || PhotoError::Corrupt("the file ends before the end of the image".into());
    let mut at = 8; // after the signature, already checked by format detection
    r.seek(io::SeekFrom::Start(at))?;
    let mut metadata = 0u64;
    loop {
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => truncated(),
            _ => PhotoError::Io(e),
        })?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        if len > i32::MAX as u32 {
            return Err(PhotoError::Corrupt(
                "a PNG chunk has an impossible length".into(),
            ));
        }
        let (len, kind) = (u64::from(len), [head[4], head[5], head[6], head[7]]);
        let next = at + 8 + len + 4; // data, then the CRC
        if next > file_len {
            return Err(truncated());
        }
        if &kind == b"IEND" {
            return Ok(());
        }
        let room = METADATA_LIMIT.saturating_sub(metadata);
        let mut data = (&mut r).take(len);
        metadata += match &kind {
            b"tEXt" | b"eXIf" => len,
            // keyword NUL, method, zlib stream
            b"zTXt" | b"iCCP" => {
                let keyword = through_nul(&mut data)?;
                let method = data.read(&mut [0u8; 1])? as u64;
                keyword + method + inflated_len(&mut data, room)
            }
            // keyword NUL, compressed flag, method, language NUL, translated keyword NUL, text
            b"iTXt" => {
                let keyword = through_nul(&mut data)?;
                let mut flags = [0u8; 2]; // compressed, method
                let compressed = data.read_exact(&mut flags).is_ok() && flags[0] == 1;
                let tags = through_nul(&mut data)? + through_nul(&mut data)?;
                let prefix = keyword + 2 + tags;
                if compressed {
                    prefix + inflated_len(&mut data, room)
                } else {
                    len
                }
            }
            _ => 0,
        };
        if metadata > METADATA_LIMIT {
            return Err(metadata_too_large());
        }
        let consumed = len - data.limit();
        r.seek_relative(i64::try_from(len - consumed + 4).unwrap_or(i64::MAX))?;
        at = next;
    }
}

/// Reads through the next NUL (inclusive) of a chunk's data, returning the bytes read.
fn through_nul(r: &mut impl BufRead) -> io::Result<u64> {
    r.skip_until(0).map(|n| n as u64)
}

/// How many bytes the zlib stream in `r` inflates to, counting no further than just past `max`
/// (so the caller sees that it is over). Inflates into a small buffer that is overwritten: the
/// output is never kept.
fn inflated_len(r: impl Read, max: u64) -> u64 {
    let mut z = ZlibDecoder::new(r);
    let mut buf = [0u8; 16 << 10];
    let mut n = 0u64;
    while n <= max {
        match z.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A broken stream (or a chunk cut short): the count ends here.
            Err(_) => break,
        }
    }
    n
}

/// A `png` reader past the metadata, set up as `image` sets its own (8- and 16-bit samples,
/// palettes and transparency expanded), so it accepts and refuses exactly the files `image`
/// does. Text and ICC chunks are skipped (nothing here uses them); EXIF is read for the
/// orientation.
pub(crate) fn reader(path: &Path, ihdr: &Ihdr) -> Result<png::Reader<BufReader<File>>, PhotoError> {
    let limit = usize::try_from(ihdr.decoder_limit()).unwrap_or(usize::MAX);
    let file = BufReader::with_capacity(64 << 10, File::open(path)?);
    let mut decoder = png::Decoder::new_with_limits(file, png::Limits { bytes: limit });
    decoder.set_ignore_text_chunk(true);
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.read_info().map_err(decoding_error)
}

/// The EXIF orientation, as `image` reads it: from an eXIf chunk before the image data.
pub(crate) fn orientation(reader: &png::Reader<BufReader<File>>) -> Orientation {
    reader
        .info()
        .exif_metadata
        .as_deref()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// Decodes every row (interlaced passes included) into one row buffer, then drops it: the whole
/// image is inflated and unfiltered, so damage is found as by a full decode, in O(row) memory.
pub(crate) fn stream_rows(mut reader: png::Reader<BufReader<File>>) -> Result<(), PhotoError> {
    while reader.next_row().map_err(decoding_error)?.is_some() {}
    Ok(())
}

/// Maps a `png` error as [`crate::classify`] maps `image`'s. Its limit can only trip on metadata:
/// rows are within [`Ihdr::decoder_limit`] by construction.
fn decoding_error(e: png::DecodingError) -> PhotoError {
    match e {
        png::DecodingError::IoError(io)
            if matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other
            ) =>
        {
            PhotoError::Corrupt(io.to_string())
        }
        png::DecodingError::IoError(io) => PhotoError::Io(io),
        png::DecodingError::LimitsExceeded => metadata_too_large(),
        other => PhotoError::Corrupt(other.to_string()),
    }
}
