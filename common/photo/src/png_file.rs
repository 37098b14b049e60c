//! PNG: the header, a structural walk over the chunks that bounds the metadata, a decode that
//! streams rows, and one that reduces them as they stream.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read, Seek},
    path::Path,
};

use flate2::read::ZlibDecoder;
use image::{DynamicImage, RgbImage, metadata::Orientation};

use crate::{PhotoError, over};

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

/// Decodes the PNG `factor` times smaller on each side, upright: each `factor`×`factor` block of
/// pixels becomes its mean (a box filter), so the result is ceil(w/f)×ceil(h/f) before the
/// orientation turns it.
///
/// Each pixel is made 8-bit RGB exactly as a full decode and [`crate::flatten`] make it (16-bit
/// samples rounded as `image` rounds them, alpha premultiplied over black) before it is averaged:
/// the result is the full upright decode box-filtered, each mean rounded. Blocks are laid out so
/// that the ragged ones (a side not a multiple of `factor`) end up right and bottom once the
/// orientation is applied, as in that reference.
///
/// Memory is the output, one row of sums and `png`'s row buffers, however large the PNG. An
/// interlaced (Adam7) PNG spreads each block over seven passes, so it keeps sums for the whole
/// output instead (12 bytes an output pixel, so at most 3 a stored pixel): more than a streamed
/// PNG, but less than its full decode.
pub(crate) fn decode_reduced(
    mut reader: png::Reader<BufReader<File>>,
    factor: u32,
    orientation: Orientation,
    background: [u8; 3],
) -> Result<RgbImage, PhotoError> {
    let info = reader.info();
    let (width, height, interlaced) = (info.width, info.height, info.interlaced);
    let (color, depth) = reader.output_color_type();
    let wide = depth == png::BitDepth::Sixteen;
    let channels = color.samples();
    let pixel_bytes = channels * if wide { 2 } else { 1 };
    let mut boxes = Boxes::new((width, height), factor, orientation, interlaced);
    let passes: &[Pass] = if interlaced { &ADAM7 } else { &[WHOLE] };
    // Where each row the reader returns lies: (pass, its number from 1, line within it).
    let mut lines = passes
        .iter()
        .zip(1u8..)
        .filter(|(pass, _)| pass.samples(width) > 0)
        .flat_map(|(pass, number)| (0..pass.lines(height)).map(move |line| (pass, number, line)));
    let out_of_step =
        || PhotoError::Corrupt("the PNG's rows do not match the size in its header".into());
    while let Some(row) = reader.next_interlaced_row().map_err(decoding_error)? {
        let (pass, number, line) = lines.next().ok_or_else(out_of_step)?;
        if let png::InterlaceInfo::Adam7(got) = row.interlace()
            && *got != png::Adam7Info::new(number, line, width)
        {
            return Err(out_of_step());
        }
        let data = row.data();
        if data.len() != pass.samples(width) as usize * pixel_bytes {
            return Err(out_of_step());
        }
        let y = pass.y0 + line * pass.dy;
        let at = (pass.x0, pass.dx);
        // One arm per sample layout, so that each gets its own inlined loop.
        match (channels, wide) {
            (1, false) => boxes.add(y, at, data, |p| pixel::<1, 1, false>(p, background)),
            (1, true) => boxes.add(y, at, data, |p| pixel::<1, 2, true>(p, background)),
            (2, false) => boxes.add(y, at, data, |p| pixel::<2, 2, false>(p, background)),
            (2, true) => boxes.add(y, at, data, |p| pixel::<2, 4, true>(p, background)),
            (3, false) => boxes.add(y, at, data, |p| pixel::<3, 3, false>(p, background)),
            (3, true) => boxes.add(y, at, data, |p| pixel::<3, 6, true>(p, background)),
            (4, false) => boxes.add(y, at, data, |p| pixel::<4, 4, false>(p, background)),
            (4, true) => boxes.add(y, at, data, |p| pixel::<4, 8, true>(p, background)),
            // EXPAND leaves grey, grey + alpha, RGB or RGBA: a palette is always expanded.
            _ => return Err(out_of_step()),
        }
        if !interlaced {
            boxes.row_done(y);
        }
    }
    if lines.next().is_some() {
        return Err(out_of_step());
    }
    let mut image = DynamicImage::ImageRgb8(boxes.finish());
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// The pixels of one interlacing pass: every `dx`-th from `x0` of every `dy`-th row from `y0`.
#[derive(Debug, Clone, Copy)]
struct Pass {
    x0: u32,
    y0: u32,
    dx: u32,
    dy: u32,
}

impl Pass {
    fn samples(&self, width: u32) -> u32 {
        width.saturating_sub(self.x0).div_ceil(self.dx)
    }

    fn lines(&self, height: u32) -> u32 {
        height.saturating_sub(self.y0).div_ceil(self.dy)
    }
}

/// A PNG that is not interlaced: one pass of every pixel.
const WHOLE: Pass = Pass {
    x0: 0,
    y0: 0,
    dx: 1,
    dy: 1,
};

/// The seven Adam7 passes, in file order (`png` skips the empty ones, as do we).
const ADAM7: [Pass; 7] = {
    const fn pass(x0: u32, y0: u32, dx: u32, dy: u32) -> Pass {
        Pass { x0, y0, dx, dy }
    }
    [
        pass(0, 0, 8, 8),
        pass(4, 0, 8, 8),
        pass(0, 4, 4, 8),
        pass(2, 0, 4, 4),
        pass(0, 2, 2, 4),
        pass(1, 0, 2, 2),
        pass(0, 1, 1, 2),
    ]
};

/// One pixel of `CHANNELS` samples (big-endian when `WIDE`) as 8-bit RGB over `bg`, as `image`
/// converts it and [`crate::flatten`] composites it.
fn pixel<const CHANNELS: usize, const BYTES: usize, const WIDE: bool>(
    p: &[u8; BYTES],
    bg: [u8; 3],
) -> [u8; 3] {
    let sample = |i: usize| {
        if WIDE {
            // `image`'s 16-to-8-bit rounding.
            ((u32::from(u16::from_be_bytes([p[2 * i], p[2 * i + 1]])) + 128) / 257) as u8
        } else {
            p[i]
        }
    };
    match CHANNELS {
        1 => [sample(0); 3],
        2 => [0, 1, 2].map(|i| over(sample(0), sample(1), bg[i])),
        3 => [sample(0), sample(1), sample(2)],
        _ => {
            let (a, rgb) = (sample(3), [sample(0), sample(1), sample(2)]);
            [0, 1, 2].map(|i| over(rgb[i], a, bg[i]))
        }
    }
}

/// Sums of 8-bit RGB over blocks of `factor`×`factor` stored pixels, turned into means a row of
/// blocks (a band) at a time.
#[derive(Debug)]
struct Boxes {
    factor: u32,
    /// The stored size.
    size: (u32, u32),
    /// Added to a stored coordinate before dividing by `factor`: on an axis the orientation
    /// reverses, the ragged block comes first.
    shift: (u32, u32),
    /// The output size, in blocks.
    blocks: (u32, u32),
    /// The means, 8-bit RGB, stored orientation.
    out: Vec<u8>,
    /// Three sums per block of each band held.
    sums: Vec<u32>,
    /// Bands held: one when rows come in order, all of them when interlaced.
    bands: u32,
}

impl Boxes {
    /// `factor` is at most 4096, so that a block's sums (255 × 4096² at most) fit a `u32`.
    fn new(size: (u32, u32), factor: u32, orientation: Orientation, interlaced: bool) -> Self {
        debug_assert!((1..=4096).contains(&factor));
        let (reverse_x, reverse_y) = reversed_axes(orientation);
        let ragged = |side: u32, reversed: bool| {
            if reversed {
                (factor - side % factor) % factor
            } else {
                0
            }
        };
        let blocks = (size.0.div_ceil(factor), size.1.div_ceil(factor));
        let bands = if interlaced { blocks.1 } else { 1 };
        let row = blocks.0 as usize * 3;
        Self {
            factor,
            size,
            shift: (ragged(size.0, reverse_x), ragged(size.1, reverse_y)),
            blocks,
            out: vec![0; row * blocks.1 as usize],
            sums: vec![0; row * bands as usize],
            bands,
        }
    }

    /// Adds the pixels of stored row `y` at `x0`, `x0 + dx`, …: `data` holds them, `N` bytes
    /// each, and `pixel` converts one.
    fn add<const N: usize>(
        &mut self,
        y: u32,
        (x0, dx): (u32, u32),
        data: &[u8],
        pixel: impl Fn(&[u8; N]) -> [u8; 3],
    ) {
        let factor = self.factor;
        let row = self.blocks.0 as usize * 3;
        let band = ((y + self.shift.1) / factor % self.bands) as usize;
        let sums = &mut self.sums[band * row..][..row];
        // Pixels come left to right: step to the next block at its edge rather than divide.
        let mut x = x0 + self.shift.0;
        let mut at = (x / factor) as usize * 3;
        let mut edge = (x / factor + 1) * factor;
        for p in data.as_chunks::<N>().0 {
            while x >= edge {
                at += 3;
                edge += factor;
            }
            for (s, c) in sums[at..at + 3].iter_mut().zip(pixel(p)) {
                *s += u32::from(c);
            }
            x += dx;
        }
    }

    /// Called after each stored row when rows come in order: a band is complete after its last.
    fn row_done(&mut self, y: u32) {
        let shifted = y + self.shift.1;
        if (shifted + 1).is_multiple_of(self.factor) || y + 1 == self.size.1 {
            self.flush(shifted / self.factor);
        }
    }

    /// Writes the means of band `by` and clears its sums.
    fn flush(&mut self, by: u32) {
        let row = self.blocks.0 as usize * 3;
        let slot = (by % self.bands) as usize;
        let sums = &mut self.sums[slot * row..][..row];
        let out = &mut self.out[by as usize * row..][..row];
        let rows = span(by, self.factor, self.shift.1, self.size.1);
        for (bx, (out, sums)) in out
            .chunks_exact_mut(3)
            .zip(sums.chunks_exact_mut(3))
            .enumerate()
        {
            let count = rows * span(bx as u32, self.factor, self.shift.0, self.size.0);
            for (o, s) in out.iter_mut().zip(sums) {
                *o = ((*s + count / 2) / count) as u8;
                *s = 0;
            }
        }
    }

    /// The means, stored orientation; an interlaced PNG's bands are complete only now.
    fn finish(mut self) -> RgbImage {
        if self.bands > 1 {
            for by in 0..self.blocks.1 {
                self.flush(by);
            }
        }
        let (width, height) = self.blocks;
        RgbImage::from_raw(width, height, self.out).expect("the buffer holds every block")
    }
}

/// How many stored pixels block `b` spans on an axis of `side` pixels shifted by `shift`.
fn span(b: u32, factor: u32, shift: u32, side: u32) -> u32 {
    let start = (b * factor).max(shift);
    let end = ((b + 1) * factor).min(side + shift);
    end - start
}

/// Which stored axes (x, y) run backwards once the orientation is applied.
fn reversed_axes(orientation: Orientation) -> (bool, bool) {
    match orientation {
        Orientation::NoTransforms | Orientation::Rotate90FlipH => (false, false),
        Orientation::FlipHorizontal | Orientation::Rotate270 => (true, false),
        Orientation::FlipVertical | Orientation::Rotate90 => (false, true),
        Orientation::Rotate180 | Orientation::Rotate270FlipH => (true, true),
    }
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
