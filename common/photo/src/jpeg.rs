//! JPEG: one structural walk over the segments (frame header, EXIF, scan sizes, end marker) and the
//! DCT-scaled decodes with `jpeg-decoder`.
//!
//! The decoders cannot be trusted with the checks done here: zune-jpeg (`image`'s decoder) is
//! lenient and fills whatever the file lacks with grey, and reports a coding process it does not
//! implement as a generic decoding error.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    panic::{self, AssertUnwindSafe},
    path::Path,
};

use image::{DynamicImage, GrayImage, RgbImage};

use crate::PhotoError;

/// What to tell the sender of a JPEG we cannot decode.
const RESAVE: &str = "re-save it as a standard (baseline or progressive) JPEG, or send PNG, WebP, GIF, BMP, TIFF or HEIC";

/// The frame header (SOF segment) of a JPEG we decode.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The SOF marker's second byte: 0xC0 (baseline), 0xC1 (extended) or 0xC2 (progressive).
    marker: u8,
    pub(crate) width: u16,
    pub(crate) height: u16,
    /// Horizontal and vertical sampling factors of each component (1 to 4 each).
    sampling: Vec<(u8, u8)>,
}

impl Frame {
    /// Channels of the full-size decode: grey for one component, RGB otherwise (CMYK included).
    pub(crate) fn output_channels(&self) -> u64 {
        if self.sampling.len() == 1 { 1 } else { 3 }
    }

    fn progressive(&self) -> bool {
        self.marker == 0xC2
    }

    fn max_sampling(&self) -> (u64, u64) {
        self.sampling.iter().fold((1, 1), |(h, v), &(ch, cv)| {
            (h.max(u64::from(ch)), v.max(u64::from(cv)))
        })
    }

    /// The blocks across and down of each component, padded to whole MCUs as both decoders
    /// lay them out.
    fn padded_blocks(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let (hmax, vmax) = self.max_sampling();
        let mcus_x = u64::from(self.width).div_ceil(8 * hmax);
        let mcus_y = u64::from(self.height).div_ceil(8 * vmax);
        self.sampling
            .iter()
            .map(move |&(h, v)| (mcus_x * u64::from(h), mcus_y * u64::from(v)))
    }

    /// Bytes a progressive decode keeps for its coefficients: 64 `i16`s per padded block.
    fn coefficient_bytes(&self) -> u64 {
        self.padded_blocks().map(|(x, y)| x * y * 128).sum()
    }

    /// The fewest 8×8 blocks the scans must code: every component's own size, unpadded.
    fn coded_blocks(&self) -> u64 {
        let (hmax, vmax) = self.max_sampling();
        let (w, h) = (u64::from(self.width), u64::from(self.height));
        self.sampling
            .iter()
            .map(|&(ch, cv)| {
                let cw = (w * u64::from(ch)).div_ceil(hmax);
                let chh = (h * u64::from(cv)).div_ceil(vmax);
                cw.div_ceil(8) * chh.div_ceil(8)
            })
            .sum()
    }
}

/// What the segments before the first scan say.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) frame: Frame,
    /// The last EXIF segment (APP1 `Exif\0\0`, prefix removed) before the first scan: the one
    /// zune-jpeg reads the orientation from.
    pub(crate) exif: Option<Vec<u8>>,
}

/// Walks a JPEG's segments, streaming (no copy of the file in memory): first up to its first scan
/// ([`Walk::header`]), then, for a full check, to the end-of-image marker ([`Walk::finish`]).
#[derive(Debug)]
pub(crate) struct Walk {
    r: BufReader<File>,
    in_scan: bool,
    scans: u32,
    scan_bytes: u64,
    frame: Option<Frame>,
    exif: Option<Vec<u8>>,
}

impl Walk {
    pub(crate) fn open(path: &Path) -> Result<Self, PhotoError> {
        let mut r = BufReader::with_capacity(64 << 10, File::open(path)?);
        if (next_byte(&mut r)?, next_byte(&mut r)?) != (0xFF, 0xD8) {
            return Err(PhotoError::Corrupt("missing the JPEG start marker".into()));
        }
        Ok(Self {
            r,
            in_scan: false,
            scans: 0,
            scan_bytes: 0,
            frame: None,
            exif: None,
        })
    }

    /// Reads up to the first scan: the frame header (refused here if it is a coding process or
    /// precision zune-jpeg does not decode) and the EXIF segment.
    pub(crate) fn header(&mut self) -> Result<Header, PhotoError> {
        if !self.run(true)? {
            return Err(PhotoError::Corrupt("the JPEG has no image data".into()));
        }
        let frame = self
            .frame
            .clone()
            .ok_or_else(|| PhotoError::Corrupt("the JPEG has no frame header".into()))?;
        Ok(Header {
            frame,
            exif: self.exif.take(),
        })
    }

    /// Reads on to the end-of-image marker (bytes after it are allowed: some cameras append
    /// data there), failing if the file ends first, then checks that the scans hold enough data
    /// for the size the header claims (see [`ensure_data_fits`]).
    pub(crate) fn finish(mut self) -> Result<(), PhotoError> {
        self.run(false)?;
        let frame = self
            .frame
            .as_ref()
            .ok_or_else(|| PhotoError::Corrupt("the JPEG has no frame header".into()))?;
        ensure_data_fits(frame, self.scan_bytes)
    }

    /// The walk itself. With `to_first_scan`, returns `Ok(true)` right after the first scan's
    /// header; otherwise runs to the end-of-image marker. `Ok(false)`: the end came before any
    /// scan.
    fn run(&mut self, to_first_scan: bool) -> Result<bool, PhotoError> {
        let r = &mut self.r;
        loop {
            if self.in_scan {
                // Entropy-coded data runs up to the next 0xFF; running out shows as EOF just below.
                let n = r.skip_until(0xFF).map_err(read_error)?;
                self.scan_bytes += n as u64;
            } else if next_byte(r)? != 0xFF {
                return Err(PhotoError::Corrupt(
                    "bytes out of place between JPEG segments".into(),
                ));
            }
            let mut marker = next_byte(r)?;
            while marker == 0xFF {
                marker = next_byte(r)?; // fill bytes
            }
            match marker {
                // A stuffed 0xFF or a restart marker: still the scan.
                0x00 | 0xD0..=0xD7 if self.in_scan => self.scan_bytes += 1,
                0xD9 if self.scans == 0 => return Ok(false),
                0xD9 => return Ok(true),
                0x01 | 0xD0..=0xD7 => {} // standalone markers without a length
                _ => {
                    self.in_scan = false;
                    let len = u16::from_be_bytes([next_byte(r)?, next_byte(r)?]);
                    let body = len.checked_sub(2).ok_or_else(|| {
                        PhotoError::Corrupt("a JPEG segment has a bad length".into())
                    })?;
                    match marker {
                        // SOF0–SOF15, less DHT (C4), JPG (C8) and DAC (CC).
                        0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                            if self.frame.is_some() {
                                return Err(PhotoError::Corrupt(
                                    "the JPEG has two frame headers".into(),
                                ));
                            }
                            self.frame = Some(parse_frame(marker, &read_body(r, body)?)?);
                        }
                        // Arithmetic coding conditioning, or the hierarchical mode's markers:
                        // coding processes zune-jpeg does not implement.
                        0xCC => return Err(unsupported("arithmetic-coded JPEG (DAC)")),
                        0xDE | 0xDF => return Err(unsupported("hierarchical JPEG (DHP)")),
                        0xE1 if self.scans == 0 => {
                            let app1 = read_body(r, body)?;
                            if let Some(exif) = app1.strip_prefix(b"Exif\0\0")
                                && !exif.is_empty()
                            {
                                self.exif = Some(exif.to_vec());
                            }
                        }
                        0xDA => {
                            if self.frame.is_none() {
                                return Err(PhotoError::Corrupt(
                                    "the JPEG's image data comes before its frame header".into(),
                                ));
                            }
                            skip(r, u64::from(body)).map_err(read_error)?;
                            self.in_scan = true;
                            self.scans += 1;
                            if to_first_scan {
                                return Ok(true);
                            }
                        }
                        _ => skip(r, u64::from(body)).map_err(read_error)?,
                    }
                }
            }
        }
    }
}

/// Refuses a frame header zune-jpeg cannot decode, naming the coding process.
fn parse_frame(marker: u8, body: &[u8]) -> Result<Frame, PhotoError> {
    let process = match marker {
        0xC0..=0xC2 => None,
        0xC3 => Some("lossless JPEG (SOF3)"),
        0xC5 => Some("hierarchical JPEG (SOF5)"),
        0xC6 => Some("hierarchical progressive JPEG (SOF6)"),
        0xC7 => Some("hierarchical lossless JPEG (SOF7)"),
        0xC9 => Some("arithmetic-coded JPEG (SOF9)"),
        0xCA => Some("arithmetic-coded progressive JPEG (SOF10)"),
        0xCB => Some("arithmetic-coded lossless JPEG (SOF11)"),
        0xCD => Some("arithmetic-coded hierarchical JPEG (SOF13)"),
        0xCE => Some("arithmetic-coded hierarchical progressive JPEG (SOF14)"),
        _ => Some("arithmetic-coded hierarchical lossless JPEG (SOF15)"),
    };
    if let Some(process) = process {
        return Err(unsupported(process));
    }
    let malformed = || PhotoError::Corrupt("the JPEG frame header is malformed".into());
    let [precision, h0, h1, w0, w1, count, components @ ..] = body else {
        return Err(malformed());
    };
    if *precision != 8 {
        return Err(unsupported(&format!("{precision}-bit JPEG")));
    }
    let (width, height) = (
        u16::from_be_bytes([*w0, *w1]),
        u16::from_be_bytes([*h0, *h1]),
    );
    if height == 0 {
        return Err(unsupported(
            "a JPEG whose height comes after its first scan (DNL)",
        ));
    }
    if width == 0 || *count == 0 || components.len() != 3 * usize::from(*count) {
        return Err(malformed());
    }
    let sampling = components
        .chunks_exact(3)
        .map(|c| (c[1] >> 4, c[1] & 0x0F))
        .collect::<Vec<_>>();
    if sampling
        .iter()
        .any(|&(h, v)| !(1..=4).contains(&h) || !(1..=4).contains(&v))
    {
        return Err(malformed());
    }
    Ok(Frame {
        marker,
        width,
        height,
        sampling,
    })
}

fn unsupported(what: &str) -> PhotoError {
    PhotoError::Unsupported(format!("{what} is not supported; {RESAVE}"))
}

/// Refuses a JPEG whose scans are too short for the size its header claims: the decoders would
/// render the missing blocks grey rather than fail, so a small file could pass as a huge photo.
///
/// The bound is the least any encoder can write. Every 8×8 block of every component is coded, and
/// a Huffman code is at least one bit: a sequential scan spends at least a DC code and an AC code
/// (the end-of-block code, or coefficients, which cost more) on each block, 2 bits; a progressive
/// image at least a DC code per block in its first DC scan, 1 bit (its AC scans can skip a whole
/// run of blocks with one code). Stuffed bytes and restart markers are counted as data, which
/// only makes the bound more lenient. A real photo spends tens to hundreds of bits per block, and
/// even a flat one with standard tables 6 bits, so no genuine file comes near it.
fn ensure_data_fits(frame: &Frame, scan_bytes: u64) -> Result<(), PhotoError> {
    let bits_per_block = if frame.progressive() { 1 } else { 2 };
    let needed = u128::from(frame.coded_blocks()) * bits_per_block;
    let have = u128::from(scan_bytes) * 8;
    if have >= needed {
        return Ok(());
    }
    let claimed = u128::from(frame.width) * u128::from(frame.height);
    Err(PhotoError::Corrupt(format!(
        "the JPEG header claims {}x{} pixels but its {scan_bytes} bytes of image data can hold at \
         most {} pixels",
        frame.width,
        frame.height,
        claimed * have / needed
    )))
}

/// Reads a segment body (at most 65 533 bytes).
fn read_body(r: &mut impl Read, len: u16) -> Result<Vec<u8>, PhotoError> {
    let mut body = vec![0; usize::from(len)];
    r.read_exact(&mut body).map_err(read_error)?;
    Ok(body)
}

/// One byte of a JPEG being walked; running out is truncation.
fn next_byte(r: &mut impl Read) -> Result<u8, PhotoError> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b).map_err(read_error)?;
    Ok(b[0])
}

fn read_error(e: io::Error) -> PhotoError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            PhotoError::Corrupt("the file ends before the end of the image".into())
        }
        _ => PhotoError::Io(e),
    }
}

/// Skips exactly `n` bytes or fails with `UnexpectedEof`.
fn skip(r: &mut impl BufRead, n: u64) -> io::Result<()> {
    let skipped = io::copy(&mut r.by_ref().take(n), &mut io::sink())?;
    if skipped < n {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// A `jpeg-decoder` set to decode the JPEG at `path` at 1/`denominator` of its `stored` size, or
/// `None` when it cannot: a header it does not read (colour model, sampling, anything it refuses
/// before the data), a size disagreeing with the one already checked, or a panic.
fn scaling_decoder(
    path: &Path,
    stored: (u32, u32),
    denominator: u32,
    budget: u64,
) -> Option<jpeg_decoder::Decoder<BufReader<File>>> {
    let attempt = || -> Option<jpeg_decoder::Decoder<BufReader<File>>> {
        let file = File::open(path).ok()?;
        let mut decoder = jpeg_decoder::Decoder::new(BufReader::with_capacity(64 << 10, file));
        decoder.set_max_decoding_buffer_size(usize::try_from(budget).unwrap_or(usize::MAX));
        decoder.read_info().ok()?;
        let info = decoder.info()?;
        if (u32::from(info.width), u32::from(info.height)) != stored {
            return None;
        }
        let scaled = scaled_size(stored, denominator);
        let side = |s: u32| u16::try_from(s).ok();
        let (w, h) = decoder.scale(side(scaled.0)?, side(scaled.1)?).ok()?;
        // `scale` picks the smallest factor reaching the request in either axis: the one asked.
        ((u32::from(w), u32::from(h)) == scaled).then_some(decoder)
    };
    panic::catch_unwind(AssertUnwindSafe(attempt))
        .ok()
        .flatten()
}

fn scaled_size(stored: (u32, u32), denominator: u32) -> (u32, u32) {
    (
        stored.0.div_ceil(denominator),
        stored.1.div_ceil(denominator),
    )
}

/// Decodes a JPEG at 1/`denominator` of its `stored` size (before orientation) with
/// `jpeg-decoder`, whose IDCT can output 1/2, 1/4 and 1/8 sized blocks directly. `None` whenever
/// it cannot (unsupported colour model or coding, a header disagreeing with the one already
/// checked, any decoding error, even a panic): the caller then decodes at full size, so a photo
/// that passed [`crate::inspect`] at upload never fails here for want of this shortcut.
pub(crate) fn decode_scaled(
    path: &Path,
    stored: (u32, u32),
    denominator: u32,
    budget: u64,
) -> Option<DynamicImage> {
    let mut decoder = scaling_decoder(path, stored, denominator, budget)?;
    let attempt = move || -> Option<DynamicImage> {
        let (w, h) = scaled_size(stored, denominator);
        match decoder.info()?.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => {
                RgbImage::from_raw(w, h, decoder.decode().ok()?).map(DynamicImage::ImageRgb8)
            }
            jpeg_decoder::PixelFormat::L8 => {
                GrayImage::from_raw(w, h, decoder.decode().ok()?).map(DynamicImage::ImageLuma8)
            }
            jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => None,
        }
    };
    panic::catch_unwind(AssertUnwindSafe(attempt))
        .ok()
        .flatten()
}

/// True when [`prove_whole`] can check this JPEG at 1/8 scale (decided from its header alone, so
/// that [`crate::inspect_cost`] knows which decoder [`crate::inspect`] will use).
pub(crate) fn scaling_decoder_reads(path: &Path, stored: (u32, u32)) -> bool {
    scaling_decoder(path, stored, 8, u64::MAX).is_some()
}

/// Proves the entropy-coded data whole by decoding it at 1/8 scale with `jpeg-decoder` and
/// dropping the pixels: every Huffman code of every block is still read, but only the DC term of
/// each block is transformed, and the output is 1/64 of the image. `Ok(false)` when
/// `jpeg-decoder` does not read this kind of JPEG (see [`scaling_decoder_reads`]): the caller
/// then decodes it at full size with zune-jpeg.
pub(crate) fn prove_whole(path: &Path, stored: (u32, u32)) -> Result<bool, PhotoError> {
    let Some(mut decoder) = scaling_decoder(path, stored, 8, u64::MAX) else {
        return Ok(false);
    };
    match panic::catch_unwind(AssertUnwindSafe(move || decoder.decode().map(drop))) {
        Ok(Ok(())) => Ok(true),
        Ok(Err(jpeg_decoder::Error::Unsupported(feature))) => Err(PhotoError::Unsupported(
            format!("this kind of JPEG is not supported ({feature:?}); {RESAVE}"),
        )),
        Ok(Err(jpeg_decoder::Error::Io(e))) => Err(read_error(e)),
        Ok(Err(e)) => Err(PhotoError::Corrupt(e.to_string())),
        Err(_) => Err(PhotoError::Corrupt(
            "the JPEG's image data could not be decoded".into(),
        )),
    }
}

/// How many MCU rows [`inspect_cost`] allows to be queued for `jpeg-decoder`'s per-component
/// threads at once. At 1/8 scale a thread only transforms each block's DC term, far less work
/// than the Huffman decoding that feeds it, so the queue stays short; the allowance covers a
/// thread kept off its core for a while on a busy machine.
const QUEUED_MCU_ROWS: u64 = 64;

/// An upper estimate of the peak heap bytes [`crate::inspect`] spends on this JPEG (beyond the
/// fixed allowance the caller adds). `scaled`: whether [`prove_whole`] reads it (see
/// [`scaling_decoder_reads`]); `file_bytes` and `total_bytes` (the full-size decoded image) only
/// matter when it does not.
pub(crate) fn inspect_cost(frame: &Frame, scaled: bool, file_bytes: u64, total_bytes: u64) -> u64 {
    let coefficients = frame.coefficient_bytes();
    let blocks: u64 = frame.padded_blocks().map(|(x, y)| x * y).sum();
    let mcu_row_bytes: u64 =
        frame.padded_blocks().map(|(x, _)| x * 128).sum::<u64>() * frame.max_sampling().1;
    let queued = coefficients.min(QUEUED_MCU_ROWS * mcu_row_bytes);
    if scaled {
        // One byte per block per component for the 1/8-scale planes, the same again (and up to
        // four channels) for the colour-converted output; a progressive image keeps every
        // coefficient, and its last scan hands copies of finished rows to the threads.
        let progressive = if frame.progressive() {
            coefficients + queued
        } else {
            0
        };
        blocks * 5 + queued + progressive
    } else {
        // zune-jpeg, through `image`: the whole file in memory, the full-size output, a
        // progressive image's coefficients, and MCU-row buffers for upsampling and colour.
        let progressive = if frame.progressive() { coefficients } else { 0 };
        file_bytes + total_bytes + progressive + 4 * mcu_row_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(marker: u8, width: u16, height: u16, sampling: &[(u8, u8)]) -> Frame {
        Frame {
            marker,
            width,
            height,
            sampling: sampling.to_vec(),
        }
    }

    const YUV420: &[(u8, u8)] = &[(2, 2), (1, 1), (1, 1)];

    #[test]
    fn coded_blocks_follow_each_components_sampling() {
        // 4:2:0: a full-size luma plane and two half-size chroma planes.
        let f = frame(0xC0, 10_000, 10_000, YUV420);
        assert_eq!(f.coded_blocks(), 1250 * 1250 + 2 * 625 * 625);
        // Odd sizes round up per component: 17×9 grey is 3×2 blocks.
        assert_eq!(frame(0xC0, 17, 9, &[(1, 1)]).coded_blocks(), 6);
        // 4:4:4: three full planes.
        let f = frame(0xC0, 64, 32, &[(1, 1), (1, 1), (1, 1)]);
        assert_eq!(f.coded_blocks(), 3 * 8 * 4);
    }

    #[test]
    fn the_data_bound_is_two_bits_a_block_sequential_and_one_progressive() {
        let f = frame(0xC0, 10_000, 10_000, YUV420);
        let blocks = f.coded_blocks();
        let least = (blocks * 2).div_ceil(8);
        ensure_data_fits(&f, least).expect("exactly enough");
        let e = ensure_data_fits(&f, least - 1).expect_err("one byte short");
        let msg = e.to_string();
        assert!(
            msg.contains("claims 10000x10000 pixels but its 585937 bytes of image data can hold at most 99999914 pixels"),
            "{msg}"
        );
        let p = frame(0xC2, 10_000, 10_000, YUV420);
        ensure_data_fits(&p, blocks.div_ceil(8)).expect("a DC scan's worth");
        ensure_data_fits(&p, blocks.div_ceil(8) - 1).expect_err("less than a DC scan");
    }

    #[test]
    fn a_progressive_jpeg_is_costed_with_all_its_coefficients() {
        // 12 MP 4:2:0: 250×188 MCUs of 6 blocks, 128 bytes of coefficients each.
        let p = frame(0xC2, 4000, 3000, YUV420);
        let coefficients = 250 * 188 * 6 * 128;
        assert_eq!(p.coefficient_bytes(), coefficients);
        assert!(inspect_cost(&p, true, 0, 0) > coefficients);
        // Baseline at 1/8 keeps none of them: a few bytes a block and a queue of rows.
        let b = frame(0xC0, 4000, 3000, YUV420);
        let cost = inspect_cost(&b, true, 0, 0);
        assert!(cost < coefficients / 2, "{cost}");
        // The full decode holds the file and the pixels.
        let full = inspect_cost(&b, false, 5_000_000, 36_000_000);
        assert!(full > 41_000_000, "{full}");
    }
}
