//! Reading a photo safely, shared by the API (checked at upload) and the worker (decoded to render).
//!
//! Every photo goes through the same gate, in order of cost:
//! 1. the format is detected from the content (never the file name) and must be one we decode:
//!    JPEG, PNG, WebP, GIF, BMP, TIFF, or HEIC/HEIF (converted to JPEG in a sandboxed child
//!    process by the system libheif, see `heif`);
//! 2. the dimensions are read from the header alone, by this crate (a few bytes per format, see
//!    `header`), and width × height is checked against [`Limits::max_image_pixels`], so a
//!    decompression bomb (a small file claiming a huge image) is refused as
//!    [`PhotoError::TooLarge`] whatever its format, before any decoder is built; a JPEG in a
//!    coding process we do not decode (lossless, hierarchical, arithmetic, 12-bit) is refused here
//!    too, as [`PhotoError::Unsupported`];
//! 3. cheap structural walks prove the file whole before paying for a decode: a JPEG's segments
//!    must reach the end marker and its scans hold enough data for the claimed size (the decoder
//!    would paint the rest grey); a PNG's chunks must reach the end chunk, and its metadata (text,
//!    ICC, EXIF), inflated as a stream, must come to 8 MiB at most (compressed chunks are the one
//!    way a small file grows past its own size in memory);
//! 4. the pixels are decoded under an allocation budget derived from the actual image's decoded
//!    size (not from the largest allowed), so a header that lies cannot blow memory either.
//!
//! [`inspect`] proves a photo decodable with the least memory: a JPEG is decoded at 1/8 scale
//! (every coefficient is still read, but the output is 1/64 of the image), a PNG row by row.
//! [`inspect_cost`] tells, from the header alone, how much memory that will take, so that callers
//! can share a memory budget among concurrent checks.
//!
//! [`decode`] also applies the EXIF orientation (all eight values, mirrored ones included), because
//! phone photos are stored sideways and nothing downstream (ffmpeg included) would fix them. A
//! HEIC is turned upright by its container's own transforms instead, which libheif applies.
//!
//! [`decode_scaled`] is [`decode`] for a photo that will be shown much smaller than it is: a JPEG
//! is then decoded at 1/2, 1/4 or 1/8 of its size by DCT scaling (`jpeg-decoder`), which skips most
//! of the inverse transform and colour conversion and needs a quarter of the memory or less; a PNG
//! is reduced by an integer factor as its rows stream, in memory bounded by the output (a 100 MP
//! PNG shown at 1280×720 never exists at full size). The same gate applies (header limits first,
//! structural checks, orientation).

mod header;
mod heif;
mod jpeg;
mod png_file;

use std::{
    fs::File,
    io::{self, Read},
    path::Path,
};

use image::{
    DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage,
    metadata::Orientation,
};

use minimoto_common::{ErrorCode, limits::Limits};

/// What [`inspect`] learned about a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoInfo {
    /// The format detected from the content: `jpeg`, `png`, `webp`, `gif`, `bmp`, `tiff` or
    /// `heic` (any HEIF file).
    pub format: &'static str,
    /// Width as displayed, i.e. after the EXIF orientation is applied. For a HEIC, [`probe`]
    /// gives the container's largest image size, before its rotation.
    pub width: u32,
    /// Height as displayed, i.e. after the EXIF orientation is applied.
    pub height: u32,
    /// The EXIF orientation applied to show it upright, 1–8 (1: none). Always 1 for a HEIC,
    /// whose rotation and mirroring are the container's and applied by libheif.
    pub orientation: u8,
    /// When it was taken, by its EXIF `DateTimeOriginal` (else `DateTime`), in the camera's
    /// local time; [`inspect`] reads it, [`probe`] does not.
    pub taken: Option<chrono::NaiveDateTime>,
}

/// Why a photo was refused. Messages are for the person who sent it: they name the limit that was
/// broken and never mention paths or other internals.
///
/// Hostile content that is not too many pixels (a JPEG whose header claims more than its data
/// holds, metadata inflating past its limit) is [`PhotoError::Corrupt`]: the file is not a sound
/// image, and asking for a smaller one ([`PhotoError::TooLarge`]) would mislead.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Not an image, or an image format (or JPEG coding process) we do not decode.
    #[error("{0}")]
    Unsupported(String),
    /// More pixels than [`Limits::max_image_pixels`] allows, as claimed by the header.
    #[error(
        "the image is {width}x{height} pixels ({pixels} pixels), more than the limit of {max_pixels} pixels",
        pixels = u64::from(*width) * u64::from(*height)
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// The file claims to be an image but cannot be decoded: truncated, damaged, or hostile.
    #[error("the image is corrupt or truncated ({0})")]
    Corrupt(String),
    /// Reading the file failed (not the photo's fault: worth a retry).
    #[error("the image could not be read: {0}")]
    Io(#[from] io::Error),
}

impl PhotoError {
    /// The job failure code (the API maps the variants to its own answers).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unsupported(_) => ErrorCode::ImageUnsupported,
            Self::TooLarge { .. } => ErrorCode::ImageTooLarge,
            Self::Corrupt(_) => ErrorCode::ImageCorrupt,
            // Reading the worker's own scratch copy failed.
            Self::Io(_) => ErrorCode::ScratchFailed,
        }
    }

    /// True when the photo itself is at fault (retrying cannot help); false for I/O trouble.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Self::Io(_))
    }
}

/// The formats we accept, as the user would name them.
const ACCEPTED: &str = "JPEG, PNG, WebP, GIF, BMP, TIFF or HEIC";

/// Checks a photo completely: format, header dimensions, structure, then a decode of every pixel
/// that proves the file whole, with the least memory it can (see [`inspect_cost`]); the pixels
/// are dropped. Reports the same size and orientation as [`decode`] would.
pub fn inspect(path: &Path, limits: &Limits) -> Result<PhotoInfo, PhotoError> {
    let gate = Gate::open(path, limits, Depth::Whole)?;
    let (orientation, taken) = match &gate.kind {
        Kind::Heif(claim) => {
            let converted = convert_heif(&gate, *claim, limits)?;
            let image = inspect(&converted.image, limits)?;
            return Ok(PhotoInfo {
                format: gate.format.name(),
                taken: exif_taken(converted.exif.as_deref()),
                ..image
            });
        }
        Kind::Jpeg(header) => {
            if !jpeg::prove_whole(path, gate.stored)? {
                // `jpeg-decoder` does not read this kind of JPEG: prove it with zune-jpeg, the
                // decoder a full-size render uses.
                let decoder = gate.image_decoder()?;
                DynamicImage::from_decoder(decoder).map_err(|e| gate.decode_error(e))?;
            }
            let exif = header.exif.as_deref();
            (exif_orientation(exif), exif_taken(exif))
        }
        Kind::Png(ihdr) => {
            let reader = png_file::reader(path, ihdr)?;
            let orientation = png_file::orientation(&reader);
            let taken = exif_taken(reader.info().exif_metadata.as_deref());
            png_file::stream_rows(reader)?;
            (orientation, taken)
        }
        Kind::Other => {
            let mut decoder = gate.image_decoder()?;
            let orientation = decoder
                .orientation()
                .map_err(|e| classify(e, metadata_too_large))?;
            // Read after the orientation, which some decoders take from the same chunk; a
            // decoder that gives it only once leaves the date unknown, never the photo refused.
            let taken = exif_taken(decoder.exif_metadata().ok().flatten().as_deref());
            DynamicImage::from_decoder(decoder).map_err(|e| gate.decode_error(e))?;
            (orientation, taken)
        }
    };
    Ok(PhotoInfo {
        taken,
        ..gate.info(orientation)
    })
}

/// The cheap part of [`inspect`]: format, header dimensions and orientation only. It does not
/// prove that the file is whole; use it to refuse hopeless inputs early, before paying for a
/// decode.
pub fn probe(path: &Path, limits: &Limits) -> Result<PhotoInfo, PhotoError> {
    let gate = Gate::open(path, limits, Depth::Header)?;
    let orientation = gate.orientation()?;
    Ok(gate.info(orientation))
}

/// An upper estimate of the peak heap memory, in bytes, that [`inspect`] allocates for the photo at
/// `path`, read from its header alone (it refuses what [`probe`] refuses, as [`inspect`] would).
/// Meant as a weighted semaphore's weight, so concurrent checks share one memory budget.
///
/// It is what [`inspect`]'s decoders hold by design, counted generously, plus a fixed 4 MiB for
/// readers, tables and threads:
/// - a JPEG that `jpeg-decoder` reads is decoded at 1/8: about 5 bytes per 8×8 block, a bounded
///   queue of coefficient rows for its threads, and for a progressive JPEG every coefficient
///   (2 bytes per sample, padded to whole MCUs), which any decoder of progressive JPEG holds;
///   any other JPEG costs a full decode by zune-jpeg: the file, the full-size pixels, and a
///   progressive JPEG's coefficients;
/// - a PNG is decoded a row at a time: 16 rows of 4 channels at its bit depth, 1 MiB of inflate
///   and unfilter windows, and room for its EXIF chunk;
/// - any other format is decoded whole under the allocation budget [`decode`] uses (twice the
///   decoded size, plus the file, plus 16 MiB), on top of the decoded pixels themselves.
pub fn inspect_cost(path: &Path, limits: &Limits) -> Result<u64, PhotoError> {
    /// Buffered readers (64 KiB each), Huffman and quantisation tables, inflate state, and the
    /// heap and stack pages that `jpeg-decoder`'s threads touch.
    const FIXED: u64 = 4 << 20;
    let gate = Gate::open(path, limits, Depth::Header)?;
    let (width, height) = (u64::from(gate.stored.0), u64::from(gate.stored.1));
    Ok(FIXED
        + match &gate.kind {
            Kind::Jpeg(header) => {
                let frame = &header.frame;
                let total = width * height * frame.output_channels();
                let scaled = jpeg::scaling_decoder_reads(path, gate.stored);
                jpeg::inspect_cost(frame, scaled, gate.file_bytes, total)
            }
            Kind::Png(ihdr) => ihdr.inspect_cost(gate.file_bytes),
            // The child converting it, then the converted JPEG's check (at most a full decode).
            Kind::Heif(_) => {
                let pixels = width * height;
                heif::memory_limit(pixels) + 4 * pixels
            }
            Kind::Other => {
                let total = gate.image_decoder()?.total_bytes();
                total + decode_budget(total, gate.file_bytes)
            }
        })
}

/// Decodes a photo after the same checks as [`inspect`], upright (EXIF orientation applied).
///
/// Animated GIFs give their first frame. Transparency is flattened over `background` (the
/// video's background colour): a video has no alpha, and compositing gives the same,
/// deterministic result whatever colour an encoder left under fully transparent pixels.
pub fn decode(path: &Path, limits: &Limits, background: [u8; 3]) -> Result<RgbImage, PhotoError> {
    decode_upright(path, limits, background, None).map(|image| flatten(image, background))
}

/// [`decode`] for a photo that will be shown at `min_scale(info)` times its size or less
/// (`info` is what [`probe`] returns: the displayed size).
///
/// A JPEG is decoded at the smallest of 1/8, 1/4, 1/2 of its size that is still at least
/// `min_scale` (DCT scaling: far less work and memory than a full decode followed by a downscale).
/// A PNG is reduced by the largest integer factor `f` with 1/`f` ≥ `min_scale` (any integer, up
/// to 4096): its rows are streamed and each `f`×`f` block averaged (a box filter) into 8-bit RGB,
/// giving exactly [`decode`]'s pixels box-filtered, with the ragged blocks at the right and bottom.
/// That holds the output and a row of sums, never the full image; an interlaced PNG holds sums for
/// the whole output (12 bytes an output pixel), still less than its full decode. When no
/// reduction is small enough, for other formats, and for the rare JPEG the scaling decoder cannot
/// read (CMYK, unusual sampling, or a file only the lenient full decoder accepts), the photo is
/// decoded at full size exactly as by [`decode`]. Orientation and limits apply either way; the
/// result may be a pixel larger than the exact scale (sizes round up).
pub fn decode_scaled(
    path: &Path,
    limits: &Limits,
    background: [u8; 3],
    min_scale: impl Fn(PhotoInfo) -> f64,
) -> Result<RgbImage, PhotoError> {
    decode_upright(path, limits, background, Some(&min_scale))
        .map(|image| flatten(image, background))
}

/// The shared decode: gate, pixels (reduced while decoding when a `min_scale` allows),
/// orientation.
fn decode_upright(
    path: &Path,
    limits: &Limits,
    background: [u8; 3],
    min_scale: Option<&dyn Fn(PhotoInfo) -> f64>,
) -> Result<DynamicImage, PhotoError> {
    let gate = Gate::open(path, limits, Depth::Whole)?;
    let mut decoder = match &gate.kind {
        Kind::Heif(claim) => {
            let converted = convert_heif(&gate, *claim, limits)?;
            return decode_upright(&converted.image, limits, background, min_scale);
        }
        Kind::Jpeg(header) => {
            let orientation = exif_orientation(header.exif.as_deref());
            if let Some(min_scale) = min_scale {
                let denominator = dct_denominator(min_scale(gate.info(orientation)));
                if denominator > 1 {
                    let budget = decode_budget(
                        u64::from(gate.stored.0) * u64::from(gate.stored.1) * 4,
                        gate.file_bytes,
                    );
                    if let Some(mut image) =
                        jpeg::decode_scaled(path, gate.stored, denominator, budget)
                    {
                        image.apply_orientation(orientation);
                        return Ok(image);
                    }
                    tracing::debug!("the scaling JPEG decoder declined; decoding at full size");
                }
            }
            gate.image_decoder()?
        }
        Kind::Png(ihdr) => {
            if let Some(min_scale) = min_scale {
                let reader = png_file::reader(path, ihdr)?;
                let orientation = png_file::orientation(&reader);
                // At most 4096 (so block sums fit `u32`), and no more than shrinks the longer side to 1.
                let cap = gate.stored.0.max(gate.stored.1).min(4096);
                let factor = box_factor(min_scale(gate.info(orientation)), cap);
                if factor > 1 {
                    let image = png_file::decode_reduced(reader, factor, orientation, background)?;
                    return Ok(DynamicImage::ImageRgb8(image));
                }
            }
            gate.image_decoder()?
        }
        Kind::Other => gate.image_decoder()?,
    };
    let orientation = match &gate.kind {
        Kind::Jpeg(header) => exif_orientation(header.exif.as_deref()),
        _ => decoder
            .orientation()
            .map_err(|e| classify(e, metadata_too_large))?,
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| gate.decode_error(e))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The formats we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
    WebP,
    Gif,
    Bmp,
    Tiff,
    Heif,
}

impl Format {
    /// The short name of an accepted format, or `None` for anything else.
    fn accepted(format: ImageFormat) -> Option<Self> {
        Some(match format {
            ImageFormat::Jpeg => Self::Jpeg,
            ImageFormat::Png => Self::Png,
            ImageFormat::WebP => Self::WebP,
            ImageFormat::Gif => Self::Gif,
            ImageFormat::Bmp => Self::Bmp,
            ImageFormat::Tiff => Self::Tiff,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Gif => "gif",
            Self::Bmp => "bmp",
            Self::Tiff => "tiff",
            Self::Heif => "heic",
        }
    }
}

/// How far [`Gate::open`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Depth {
    /// Format and header only.
    Header,
    /// Also the structural walk that proves the file whole (JPEG and PNG) before a decode.
    Whole,
}

/// A photo past the header checks: format known, claimed size within the limit.
#[derive(Debug)]
struct Gate<'a> {
    path: &'a Path,
    format: Format,
    /// The size before orientation, as the header claims it (and the decoders agree).
    stored: (u32, u32),
    file_bytes: u64,
    kind: Kind,
}

/// What the header walk kept for the decode.
#[derive(Debug)]
enum Kind {
    Jpeg(jpeg::Header),
    Png(png_file::Ihdr),
    /// Converted to a JPEG (a PNG with alpha) before anything else reads it.
    Heif(heif::Claim),
    /// WebP, GIF, BMP or TIFF: `image` reads their metadata.
    Other,
}

impl<'a> Gate<'a> {
    fn open(path: &'a Path, limits: &Limits, depth: Depth) -> Result<Self, PhotoError> {
        let format = detect(path)?;
        let file_bytes = std::fs::metadata(path)?.len();
        let max_pixels = limits.max_image_pixels;
        let mut head = Vec::with_capacity(32);
        File::open(path)?.take(32).read_to_end(&mut head)?;
        let (claim, kind) = match format {
            Format::Jpeg => {
                let mut walk = jpeg::Walk::open(path)?;
                let header = walk.header()?;
                let claim = (header.frame.width.into(), header.frame.height.into());
                within(claim, max_pixels)?;
                if depth == Depth::Whole {
                    walk.finish()?;
                }
                (claim, Kind::Jpeg(header))
            }
            Format::Png => {
                let ihdr = png_file::Ihdr::read(&head)?;
                let claim = (ihdr.width, ihdr.height);
                within(claim, max_pixels)?;
                if depth == Depth::Whole {
                    png_file::walk(path)?;
                }
                (claim, Kind::Png(ihdr))
            }
            Format::Heif => {
                let claim = heif::claim(path)?;
                within(claim.size, max_pixels)?;
                (claim.size, Kind::Heif(claim))
            }
            Format::WebP | Format::Gif | Format::Bmp | Format::Tiff => {
                let claim = match format {
                    Format::WebP => header::webp(&head)?,
                    Format::Gif => header::gif(&head)?,
                    Format::Bmp => header::bmp(&head)?,
                    _ => header::tiff(path)?,
                };
                within(claim, max_pixels)?;
                if format == Format::Bmp && claim.0.max(claim.1) > 0xFFFF {
                    // `image`'s BMP decoder refuses these, however few pixels they have.
                    return Err(PhotoError::Unsupported(
                        "BMP images wider or taller than 65535 pixels are not supported; send \
                         PNG or TIFF"
                            .into(),
                    ));
                }
                (claim, Kind::Other)
            }
        };
        Ok(Self {
            path,
            format,
            stored: claim,
            file_bytes,
            kind,
        })
    }

    fn info(&self, orientation: Orientation) -> PhotoInfo {
        let (width, height) = self.stored;
        let swaps = matches!(
            orientation,
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        );
        let (width, height) = if swaps {
            (height, width)
        } else {
            (width, height)
        };
        PhotoInfo {
            format: self.format.name(),
            width,
            height,
            orientation: orientation.to_exif(),
            taken: None,
        }
    }

    /// The EXIF orientation, read as [`decode`] reads it.
    fn orientation(&self) -> Result<Orientation, PhotoError> {
        match &self.kind {
            Kind::Jpeg(header) => Ok(exif_orientation(header.exif.as_deref())),
            Kind::Png(ihdr) => Ok(png_file::orientation(&png_file::reader(self.path, ihdr)?)),
            Kind::Heif(_) => Ok(Orientation::NoTransforms),
            Kind::Other => self
                .image_decoder()?
                .orientation()
                .map_err(|e| classify(e, metadata_too_large)),
        }
    }

    /// An `image` decoder for the photo, bounded: PNG's own buffers by its metadata limit (the
    /// only one `image` passes on when the decoder is built), then every decoder by
    /// [`decode_budget`] for the decoded size it reports.
    fn image_decoder(&self) -> Result<Box<dyn ImageDecoder>, PhotoError> {
        let mut reader = ImageReader::open(self.path)?;
        // `open` guesses from the extension; forget that so only the content decides.
        reader.clear_format();
        let mut reader = reader.with_guessed_format()?;
        let mut limits = image::Limits::default();
        limits.max_alloc = match &self.kind {
            Kind::Png(ihdr) => Some(ihdr.decoder_limit()),
            _ => None,
        };
        reader.limits(limits.clone());
        let mut decoder = reader
            .into_decoder()
            .map_err(|e| classify(e, metadata_too_large))?;
        let (width, height) = decoder.dimensions();
        // The header was read by this crate; a decoder reading another size (`image-webp` reads
        // a 16 384-pixel lossless side as 0) would decode something else than was checked.
        if (width, height) != self.stored {
            let (w, h) = self.stored;
            return Err(PhotoError::Corrupt(format!(
                "its header says {w}x{h} pixels but the decoder reads {width}x{height}"
            )));
        }
        limits.max_alloc = Some(decode_budget(decoder.total_bytes(), self.file_bytes));
        limits.max_image_width = Some(width);
        limits.max_image_height = Some(height);
        decoder
            .set_limits(limits)
            .map_err(|e| self.decode_error(e))?;
        Ok(Box::new(decoder))
    }

    /// Maps a decoding error; a limit tripping now means a decoder wanted more memory than the
    /// image's own size accounts for.
    fn decode_error(&self, e: ImageError) -> PhotoError {
        let (width, height) = self.stored;
        classify(e, || {
            PhotoError::Corrupt(format!(
                "decoding it needs more memory than a {width}x{height} image should"
            ))
        })
    }
}

/// Detects the format from the content and refuses any we do not decode.
fn detect(path: &Path) -> Result<Format, PhotoError> {
    let mut reader = ImageReader::open(path)?;
    reader.clear_format();
    match reader.with_guessed_format()?.format() {
        None => match heif_brand(path)? {
            // The brands libheif 1.15 reads: a still image, its extended range, or any HEIF.
            Some(brand) if matches!(&brand, b"heic" | b"heix" | b"mif1") => Ok(Format::Heif),
            // Sequences and multi-layer HEVC (`heim`, `heis`, `hevc`, `hevx`, `msf1`).
            Some(brand) => Err(PhotoError::Unsupported(format!(
                "HEIF files of brand {} (image sequences, multi-layer) are not supported; send \
                 a still photo (HEIC) or {ACCEPTED}",
                String::from_utf8_lossy(&brand)
            ))),
            None => Err(PhotoError::Unsupported(format!(
                "the file is not a recognised image; send {ACCEPTED}"
            ))),
        },
        Some(f) => Format::accepted(f).ok_or_else(|| {
            PhotoError::Unsupported(format!(
                "{} images are not supported; send {ACCEPTED}",
                f.extensions_str()
                    .first()
                    .map_or("these", |e| e)
                    .to_uppercase()
            ))
        }),
    }
}

/// Converts a HEIC and checks, from its header, what came out: a JPEG or a PNG (never another
/// HEIC, which would recurse) no larger than the container claimed (a stream coding more pixels
/// than its `ispe` says; a crop may make it smaller).
fn convert_heif(
    gate: &Gate<'_>,
    claim: heif::Claim,
    limits: &Limits,
) -> Result<heif::Converted, PhotoError> {
    let converted = heif::convert(gate.path, claim)?;
    if !matches!(detect(&converted.image)?, Format::Jpeg | Format::Png) {
        return Err(PhotoError::Corrupt(
            "libheif wrote something other than a JPEG or PNG".into(),
        ));
    }
    let header = probe(&converted.image, limits)?;
    let (width, height) = (header.width, header.height);
    let (cw, ch) = gate.stored;
    if u64::from(width) * u64::from(height) > u64::from(cw) * u64::from(ch) {
        return Err(PhotoError::Corrupt(format!(
            "it decodes to {width}x{height} pixels, more than the {cw}x{ch} its container claims"
        )));
    }
    Ok(converted)
}

/// Refuses a claimed size over the pixel limit, and one with no pixels at all (a header that
/// says 0 wide or high is a broken file, whatever the format's decoder would make of it).
fn within((width, height): header::Claim, max_pixels: u64) -> Result<(), PhotoError> {
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt(format!(
            "the header says the image is {width}x{height} pixels: it has no pixels"
        )));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(PhotoError::TooLarge {
            width,
            height,
            max_pixels,
        });
    }
    Ok(())
}

fn metadata_too_large() -> PhotoError {
    png_file::metadata_too_large()
}

/// When the photo was taken, from an EXIF block (TIFF structure, as in a JPEG's APP1 after
/// `Exif\0\0`): `DateTimeOriginal`, else `DateTime`. Unreadable or absent: unknown.
fn exif_taken(exif: Option<&[u8]>) -> Option<chrono::NaiveDateTime> {
    let parsed = exif::Reader::new().read_raw(exif?.to_vec()).ok()?;
    [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .into_iter()
        .find_map(|tag| {
            let field = parsed.get_field(tag, exif::In::PRIMARY)?;
            let exif::Value::Ascii(values) = &field.value else {
                return None;
            };
            let t = exif::DateTime::from_ascii(values.first()?).ok()?;
            chrono::NaiveDate::from_ymd_opt(t.year.into(), t.month.into(), t.day.into())?
                .and_hms_opt(t.hour.into(), t.minute.into(), t.second.into())
        })
}

fn exif_orientation(exif: Option<&[u8]>) -> Orientation {
    exif.and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms)
}

/// The largest integer factor `f` (at most `cap`) such that 1/`f` is still at least `min_scale`:
/// 1 when no reduction is allowed (or `min_scale` is NaN).
///
/// Any integer, not only the powers of two DCT scaling offers: a box filter is the same code for
/// every factor, and a closer fit leaves less to the render's own resize.
fn box_factor(min_scale: f64, cap: u32) -> u32 {
    let fits = |f: u32| 1.0 / f64::from(f) >= min_scale;
    // A guess from the reciprocal (`as` saturates, and gives 0 for NaN), then corrected by the
    // comparison itself against a rounding error either way.
    let mut f = ((1.0 / min_scale) as u32).clamp(1, cap.max(1));
    while f > 1 && !fits(f) {
        f -= 1;
    }
    while f < cap && fits(f + 1) {
        f += 1;
    }
    f
}

/// The largest DCT scaling denominator (8, 4, 2, or 1 for none) that still gives at least
/// `min_scale` of the full size.
fn dct_denominator(min_scale: f64) -> u32 {
    [8, 4, 2]
        .into_iter()
        .find(|&d| 1.0 / f64::from(d) >= min_scale)
        .unwrap_or(1)
}

/// The major brand of an ISO-BMFF file with a HEIF brand (`ftypheic`, `ftypmif1`, …), what
/// iPhones send by default (`image` detects AVIF, whose brand is `avif`, and refuses it as a
/// format of its own).
fn heif_brand(path: &Path) -> io::Result<Option<[u8; 4]>> {
    const BRANDS: [&[u8]; 8] = [
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
    ];
    let mut head = Vec::with_capacity(12);
    File::open(path)?.take(12).read_to_end(&mut head)?;
    Ok(
        (head.len() == 12 && &head[4..8] == b"ftyp" && BRANDS.contains(&&head[8..12]))
            .then(|| [head[8], head[9], head[10], head[11]]),
    )
}

/// Bytes an `image` decoder may allocate for a photo that decodes to `total_bytes`: those bytes
/// twice (TIFF's decoder, for one, decodes into its own buffer and then copies), plus the file
/// (a chunk of compressed data may be read whole) and 16 MiB of working room. Bounded by the
/// photo's actual size, not by the largest allowed, so a small photo cannot make a decoder
/// reserve room for a huge one.
fn decode_budget(total_bytes: u64, file_bytes: u64) -> u64 {
    total_bytes
        .saturating_mul(2)
        .saturating_add(file_bytes)
        .saturating_add(16 << 20)
}

/// Maps a decoder error to what it means for the sender. `on_limit` gives the error to report
/// when an allocation limit trips (the pixel count was checked before: what trips then is a
/// metadata or decoding budget).
fn classify(e: ImageError, on_limit: impl FnOnce() -> PhotoError) -> PhotoError {
    match e {
        ImageError::Limits(_) => on_limit(),
        ImageError::Unsupported(u) => {
            PhotoError::Unsupported(format!("this kind of image is not supported ({u})"))
        }
        // A decoder reading past the end, or refusing bytes, is a damaged file, not an I/O fault.
        ImageError::IoError(io)
            if matches!(
                io.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other
            ) =>
        {
            PhotoError::Corrupt(io.to_string())
        }
        ImageError::IoError(io) => PhotoError::Io(io),
        other => PhotoError::Corrupt(other.to_string()),
    }
}

/// Drops alpha by compositing over `background`; opaque images are not copied.
fn flatten(image: DynamicImage, background: [u8; 3]) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = src.0;
        dst.0 = [0, 1, 2].map(|i| over([r, g, b][i], a, background[i]));
    }
    out
}

/// `c` at opacity `a` composited over `under`, rounded.
fn over(c: u8, a: u8, under: u8) -> u8 {
    ((u32::from(c) * u32::from(a) + u32::from(under) * u32::from(255 - a) + 127) / 255) as u8
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{Rgb, Rgba, RgbaImage};

    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    /// A 64×32 image with a distinct colour in each quadrant (big enough blocks to survive JPEG).
    fn quadrants() -> RgbImage {
        RgbImage::from_fn(64, 32, |x, y| match (x < 32, y < 16) {
            (true, true) => Rgb([255, 0, 0]),       // top left: red
            (false, true) => Rgb([0, 255, 0]),      // top right: green
            (true, false) => Rgb([0, 0, 255]),      // bottom left: blue
            (false, false) => Rgb([255, 255, 255]), // bottom right: white
        })
    }

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write");
        path
    }

    #[test]
    fn every_accepted_format_is_detected_from_content_not_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rgb = DynamicImage::ImageRgb8(quadrants());
        let rgba = DynamicImage::ImageRgba8(DynamicImage::ImageRgb8(quadrants()).to_rgba8());
        let cases = [
            (ImageFormat::Jpeg, "jpeg", &rgb),
            (ImageFormat::Png, "png", &rgb),
            (ImageFormat::WebP, "webp", &rgba),
            (ImageFormat::Gif, "gif", &rgba),
            (ImageFormat::Bmp, "bmp", &rgb),
            (ImageFormat::Tiff, "tiff", &rgb),
        ];
        for (format, name, image) in cases {
            // A misleading extension: the content must win.
            let path = write(dir.path(), &format!("{name}.txt"), &encode(image, format));
            let info = inspect(&path, &limits()).expect(name);
            assert_eq!(
                info,
                PhotoInfo {
                    format: name,
                    width: 64,
                    height: 32,
                    orientation: 1,
                    taken: None,
                }
            );
            let decoded = decode(&path, &limits(), [0; 3]).expect(name);
            assert_eq!(decoded.dimensions(), (64, 32));
            assert_eq!(probe(&path, &limits()).expect(name), info);
        }
    }

    #[test]
    fn not_an_image_is_unsupported_even_named_jpg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "notes.jpg",
            b"hello, this is text and not a photo at all",
        );
        let e = inspect(&path, &limits()).expect_err("text");
        assert_eq!(e.code(), ErrorCode::ImageUnsupported, "{e}");
        assert!(e.to_string().contains("JPEG, PNG"), "{e}");
        let empty = write(dir.path(), "empty.png", b"");
        assert_eq!(
            inspect(&empty, &limits()).expect_err("empty").code(),
            ErrorCode::ImageUnsupported
        );
    }

    #[test]
    fn other_image_formats_are_unsupported() {
        let dir = tempfile::tempdir().expect("tempdir");
        // An AVIF header and a Photoshop header: known magic, not ours.
        let avif = write(dir.path(), "a", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf");
        let e = inspect(&avif, &limits()).expect_err("avif");
        assert_eq!(e.code(), ErrorCode::ImageUnsupported, "{e}");
        let heic = write(
            dir.path(),
            "IMG_0001.HEIC",
            b"\0\0\0\x18ftypheic\0\0\0\0mif1heic",
        );
        // A HEIC brand with nothing after it: taken for a HEIC, whose container is missing.
        let e = inspect(&heic, &limits()).expect_err("heic");
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{e}");
        assert!(e.to_string().contains("meta box"), "{e}");
        let psd = write(dir.path(), "b", b"8BPS\0\x01\0\0\0\0\0\0\0\x03");
        assert_eq!(
            inspect(&psd, &limits()).expect_err("psd").code(),
            ErrorCode::ImageUnsupported
        );
    }

    #[test]
    fn truncated_jpeg_and_png_are_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let noisy = DynamicImage::ImageRgb8(RgbImage::from_fn(96, 64, |x, y| {
            Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ])
        }));
        for (format, name) in [(ImageFormat::Jpeg, "jpeg"), (ImageFormat::Png, "png")] {
            let bytes = encode(&noisy, format);
            for keep in [bytes.len() / 2, bytes.len() - 3] {
                let path = write(dir.path(), name, &bytes[..keep]);
                let e = inspect(&path, &limits()).expect_err(name);
                assert_eq!(
                    e.code(),
                    ErrorCode::ImageCorrupt,
                    "{name} cut at {keep}: {e}"
                );
                assert!(decode(&path, &limits(), [0; 3]).is_err());
            }
        }
    }

    #[test]
    fn trailing_bytes_after_a_jpeg_are_fine() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Jpeg);
        bytes.extend_from_slice(b"\0\0camera trailer");
        let path = write(dir.path(), "t.jpg", &bytes);
        inspect(&path, &limits()).expect("trailer is allowed");
    }

    /// CRC-32 (IEEE), as PNG chunks need.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn decompression_bomb_is_refused_from_the_header() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A 1×1 PNG whose header claims `side`×`side`: its data holds one pixel, not that many.
        let bomb = |side: u32| {
            let mut png = encode(
                &DynamicImage::ImageRgb8(RgbImage::new(1, 1)),
                ImageFormat::Png,
            );
            // IHDR: length(4) "IHDR"(4) width(4) height(4) ... crc after 13 data bytes.
            assert_eq!(&png[12..16], b"IHDR");
            png[16..20].copy_from_slice(&side.to_be_bytes());
            png[20..24].copy_from_slice(&side.to_be_bytes());
            let crc = crc32(&png[12..29]);
            png[29..33].copy_from_slice(&crc.to_be_bytes());
            write(dir.path(), &format!("bomb{side}.png"), &png)
        };
        let path = bomb(100_000);
        let e = inspect(&path, &limits()).expect_err("bomb");
        assert_eq!(e.code(), ErrorCode::ImageTooLarge, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("100000x100000") && msg.contains("100000000"),
            "{msg}"
        );

        // Refused before any decode, from every entry point: a decode of this file would get as
        // far as its missing pixels (well inside the allocation budget at this size) and call it
        // corrupt, as it does once the limit allows the claimed size.
        let path = bomb(100);
        let limited = |max_image_pixels| Limits {
            max_image_pixels,
            ..Limits::default()
        };
        let under = limited(100 * 100 - 1);
        for (what, result) in [
            ("inspect", inspect(&path, &under).map(|_| ())),
            ("probe", probe(&path, &under).map(|_| ())),
            ("decode", decode(&path, &under, [0; 3]).map(|_| ())),
            (
                "decode_scaled",
                decode_scaled(&path, &under, [0; 3], |_| 0.01).map(|_| ()),
            ),
        ] {
            let e = result.expect_err(what);
            assert_eq!(e.code(), ErrorCode::ImageTooLarge, "{what}: {e}");
        }
        let at = limited(100 * 100);
        probe(&path, &at).expect("the header alone is fine at the limit");
        let e = inspect(&path, &at).expect_err("decoding finds the pixels missing");
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{e}");
    }

    #[test]
    fn pixel_limit_applies_to_real_images() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "p",
            &encode(&DynamicImage::ImageRgb8(quadrants()), ImageFormat::Png),
        );
        let small = Limits {
            max_image_pixels: 64 * 32 - 1,
            ..Limits::default()
        };
        let e = decode(&path, &small, [0; 3]).expect_err("over");
        assert_eq!(e.code(), ErrorCode::ImageTooLarge);
        assert!(e.to_string().contains("64x32"), "{e}");
        let exact = Limits {
            max_image_pixels: 64 * 32,
            ..Limits::default()
        };
        decode(&path, &exact, [0; 3]).expect("at the limit is fine");
    }

    #[test]
    fn transparency_is_flattened_over_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut img = RgbaImage::from_pixel(32, 32, Rgba([200, 100, 50, 255]));
        img.put_pixel(0, 0, Rgba([255, 255, 255, 0]));
        img.put_pixel(1, 0, Rgba([200, 100, 50, 128]));
        let path = write(
            dir.path(),
            "a",
            &encode(&DynamicImage::ImageRgba8(img), ImageFormat::Png),
        );
        let black = decode(&path, &limits(), [0; 3]).expect("decode");
        assert_eq!(black.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(black.get_pixel(1, 0).0, [100, 50, 25]);
        assert_eq!(black.get_pixel(2, 2).0, [200, 100, 50]);
        let blue = decode(&path, &limits(), [0, 0, 255]).expect("decode");
        assert_eq!(
            blue.get_pixel(0, 0).0,
            [0, 0, 255],
            "transparent: the background"
        );
        assert_eq!(blue.get_pixel(1, 0).0, [100, 50, 152], "half: the mean");
        assert_eq!(blue.get_pixel(2, 2).0, [200, 100, 50], "opaque: the photo");
        // The streamed PNG reduction composites the same way, before it averages.
        let halved = decode_scaled(&path, &limits(), [0, 0, 255], |_| 0.5).expect("decode");
        assert_eq!(halved.dimensions(), (16, 16));
        let mean = |i: usize| {
            [
                blue.get_pixel(0, 0),
                blue.get_pixel(1, 0),
                blue.get_pixel(0, 1),
                blue.get_pixel(1, 1),
            ]
            .iter()
            .map(|p| u32::from(p.0[i]))
            .sum::<u32>()
            .div_ceil(4)
        };
        let got = halved.get_pixel(0, 0).0;
        for (i, &c) in got.iter().enumerate() {
            assert!(
                u32::from(c).abs_diff(mean(i)) <= 1,
                "{got:?} vs the mean of the block"
            );
        }
    }

    /// A JPEG of [`quadrants`] carrying an EXIF APP1 segment with the given orientation.
    fn jpeg_with_orientation(orientation: u16) -> Vec<u8> {
        with_orientation(&quadrants(), orientation)
    }

    /// A JPEG of `image` carrying an EXIF APP1 segment with the given orientation, written by
    /// hand: "Exif\0\0", a big-endian TIFF header, one IFD with the 0x0112 entry.
    fn with_orientation(image: &RgbImage, orientation: u16) -> Vec<u8> {
        let jpeg = encode(&DynamicImage::ImageRgb8(image.clone()), ImageFormat::Jpeg);
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"MM\0\x2a");
        tiff.extend_from_slice(&8u32.to_be_bytes()); // first IFD right after the header
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]); // value padding
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&u16::try_from(app1.len() + 2).expect("short").to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// Which quadrant colour a decoded pixel is (JPEG is lossy: nearest wins).
    fn colour(p: Rgb<u8>) -> &'static str {
        let named = [
            ("red", [255, 0, 0]),
            ("green", [0, 255, 0]),
            ("blue", [0, 0, 255]),
            ("white", [255, 255, 255]),
        ];
        let dist = |c: [i32; 3]| {
            (0..3)
                .map(|i| (i32::from(p.0[i]) - c[i]).pow(2))
                .sum::<i32>()
        };
        named
            .iter()
            .min_by_key(|(_, c)| dist(*c))
            .map_or("?", |(n, _)| n)
    }

    #[test]
    fn all_eight_exif_orientations_are_applied() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Stored: red top-left, green top-right, blue bottom-left, white bottom-right.
        // Expected displayed (top-left, top-right, bottom-left) and whether width/height swap.
        let cases = [
            (1, ("red", "green", "blue"), false),
            (2, ("green", "red", "white"), false), // mirror horizontal
            (3, ("white", "blue", "green"), false), // rotate 180
            (4, ("blue", "white", "red"), false),  // mirror vertical
            (5, ("red", "blue", "green"), true),   // transpose
            (6, ("blue", "red", "white"), true),   // rotate 90 clockwise
            (7, ("white", "green", "blue"), true), // transverse
            (8, ("green", "white", "red"), true),  // rotate 90 counter-clockwise
        ];
        for (orientation, (tl, tr, bl), swaps) in cases {
            let path = write(dir.path(), "o.jpg", &jpeg_with_orientation(orientation));
            let img = decode(&path, &limits(), [0; 3]).expect("decode");
            let (w, h) = img.dimensions();
            assert_eq!(
                (w, h),
                if swaps { (32, 64) } else { (64, 32) },
                "orientation {orientation}"
            );
            let info = inspect(&path, &limits()).expect("inspect");
            assert_eq!(
                (info.width, info.height),
                (w, h),
                "orientation {orientation}"
            );
            let got = (
                colour(*img.get_pixel(2, 2)),
                colour(*img.get_pixel(w - 3, 2)),
                colour(*img.get_pixel(2, h - 3)),
            );
            assert_eq!(got, (tl, tr, bl), "orientation {orientation}");
        }
    }

    /// [`quadrants`] at `scale` times its size (blocks of 32·scale × 16·scale).
    fn big_quadrants(scale: u32) -> RgbImage {
        let small = quadrants();
        RgbImage::from_fn(64 * scale, 32 * scale, |x, y| {
            *small.get_pixel(x / scale, y / scale)
        })
    }

    /// Top-left, top-right and bottom-left colours, a few pixels in from the corners.
    fn corners(img: &RgbImage) -> (&'static str, &'static str, &'static str) {
        let (w, h) = img.dimensions();
        (
            colour(*img.get_pixel(2, 2)),
            colour(*img.get_pixel(w - 3, 2)),
            colour(*img.get_pixel(2, h - 3)),
        )
    }

    #[test]
    fn dct_denominator_is_the_largest_that_keeps_enough_pixels() {
        for (min_scale, denominator) in [
            (0.1, 8),
            (0.125, 8),
            (0.2, 4),
            (0.25, 4),
            (0.368, 2),
            (0.5, 2),
            (0.51, 1),
            (1.0, 1),
            (3.0, 1),
        ] {
            assert_eq!(dct_denominator(min_scale), denominator, "{min_scale}");
        }
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_reduced_scale_with_every_orientation() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 256×128 stored; shown at a quarter at most: decoded at 1/4, 64×32 (or 32×64 turned).
        let stored = big_quadrants(4);
        let cases = [
            (1, ("red", "green", "blue"), false),
            (2, ("green", "red", "white"), false),
            (3, ("white", "blue", "green"), false),
            (4, ("blue", "white", "red"), false),
            (5, ("red", "blue", "green"), true),
            (6, ("blue", "red", "white"), true),
            (7, ("white", "green", "blue"), true),
            (8, ("green", "white", "red"), true),
        ];
        for (orientation, expected, swaps) in cases {
            let path = write(dir.path(), "o.jpg", &with_orientation(&stored, orientation));
            let seen = std::cell::Cell::new(None);
            let img = decode_scaled(&path, &limits(), [0; 3], |info| {
                seen.set(Some(info));
                0.25
            })
            .expect("decode");
            let shown = if swaps { (128, 256) } else { (256, 128) };
            assert_eq!(
                seen.get(),
                Some(PhotoInfo {
                    format: "jpeg",
                    width: shown.0,
                    height: shown.1,
                    orientation: orientation as u8,
                    taken: None,
                }),
                "min_scale is asked with the displayed size"
            );
            assert_eq!(
                img.dimensions(),
                (shown.0 / 4, shown.1 / 4),
                "orientation {orientation}"
            );
            assert_eq!(corners(&img), expected, "orientation {orientation}");
            // The same picture as the full decode, only smaller.
            let full = decode(&path, &limits(), [0; 3]).expect("full");
            assert_eq!(full.dimensions(), shown);
            assert_eq!(corners(&full), expected, "orientation {orientation}");
        }
    }

    #[test]
    fn the_scale_is_never_below_what_was_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        // 200×100: odd block counts at 1/8 round up (25×13 from 200/8 × 100/8 = 12.5).
        let stored = RgbImage::from_fn(200, 100, |x, y| {
            image::Rgb([(x % 256) as u8, (y * 2 % 256) as u8, 90])
        });
        let path = write(
            dir.path(),
            "s.jpg",
            &encode(&DynamicImage::ImageRgb8(stored), ImageFormat::Jpeg),
        );
        for (min_scale, size) in [
            (0.1, (25, 13)),
            (0.2, (50, 25)),
            (0.3, (100, 50)),
            (0.5, (100, 50)),
            (0.6, (200, 100)),
            // A photo smaller than its plate: every pixel is needed.
            (1.7, (200, 100)),
        ] {
            let img = decode_scaled(&path, &limits(), [0; 3], |_| min_scale).expect("decode");
            assert_eq!(img.dimensions(), size, "min_scale {min_scale}");
        }
    }

    #[test]
    fn box_factor_is_the_largest_integer_that_keeps_enough_pixels() {
        for (min_scale, factor) in [
            (0.1, 10),
            (0.125, 8),
            (0.128, 7),
            (0.2, 5),
            (0.3, 3),
            (1.0 / 3.0, 3),
            // A plate over a photo size: the ratio is not exact in binary.
            (720.0 / 2160.0, 3),
            (0.5, 2),
            (0.51, 1),
            (1.0, 1),
            (3.0, 1),
            (1e-12, 4096),
            (0.0, 4096),
            (-1.0, 4096),
            (f64::NAN, 1),
        ] {
            assert_eq!(box_factor(min_scale, 4096), factor, "{min_scale}");
        }
        assert_eq!(box_factor(0.01, 64), 64, "capped");
        assert_eq!(box_factor(0.01, 0), 1, "a zero cap is no reduction");
    }

    #[test]
    fn a_png_is_reduced_by_an_integer_factor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(
            dir.path(),
            "p.png",
            &encode(&DynamicImage::ImageRgb8(big_quadrants(2)), ImageFormat::Png),
        );
        for (min_scale, size) in [
            (0.1, (13, 7)),
            (0.3, (43, 22)),
            (0.5, (64, 32)),
            (0.6, (128, 64)),
            (1.7, (128, 64)),
            // Never less than a pixel: the factor stops at the longer side.
            (1e-6, (1, 1)),
        ] {
            let img = decode_scaled(&path, &limits(), [0; 3], |_| min_scale).expect("decode");
            assert_eq!(img.dimensions(), size, "min_scale {min_scale}");
        }
        let quarter = decode_scaled(&path, &limits(), [0; 3], |_| 0.25).expect("decode");
        assert_eq!(corners(&quarter), ("red", "green", "blue"));
    }

    #[test]
    fn other_formats_ignore_the_scale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rgb = DynamicImage::ImageRgb8(big_quadrants(2));
        for format in [ImageFormat::WebP, ImageFormat::Bmp] {
            let image = if format == ImageFormat::WebP {
                DynamicImage::ImageRgba8(rgb.to_rgba8())
            } else {
                rgb.clone()
            };
            let path = write(dir.path(), "f", &encode(&image, format));
            let img = decode_scaled(&path, &limits(), [0; 3], |_| 0.1).expect("decode");
            assert_eq!(img.dimensions(), (128, 64), "{format:?}");
        }
    }

    #[test]
    fn a_grayscale_jpeg_is_scaled_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        let grey =
            image::GrayImage::from_fn(128, 64, |x, _| image::Luma([if x < 64 { 20 } else { 230 }]));
        let path = write(
            dir.path(),
            "g.jpg",
            &encode(&DynamicImage::ImageLuma8(grey), ImageFormat::Jpeg),
        );
        let img = decode_scaled(&path, &limits(), [0; 3], |_| 0.5).expect("decode");
        assert_eq!(img.dimensions(), (64, 32));
        assert!(img.get_pixel(4, 16).0.iter().all(|&c| c < 50));
        assert!(img.get_pixel(60, 16).0.iter().all(|&c| c > 200));
    }

    #[test]
    fn scaled_decoding_keeps_every_check() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = encode(
            &DynamicImage::ImageRgb8(big_quadrants(4)),
            ImageFormat::Jpeg,
        );
        // Truncated: refused, not filled with grey.
        let cut = write(dir.path(), "cut.jpg", &bytes[..bytes.len() / 2]);
        let e = decode_scaled(&cut, &limits(), [0; 3], |_| 0.25).expect_err("truncated");
        assert_eq!(e.code(), ErrorCode::ImageCorrupt, "{e}");
        // Over the pixel limit: refused from the header, before min_scale is even asked.
        let path = write(dir.path(), "big.jpg", &bytes);
        let small = Limits {
            max_image_pixels: 256 * 128 - 1,
            ..Limits::default()
        };
        let e = decode_scaled(&path, &small, [0; 3], |_| panic!("not asked")).expect_err("over");
        assert_eq!(e.code(), ErrorCode::ImageTooLarge, "{e}");
        // Not a JPEG at all.
        let text = write(dir.path(), "t.jpg", b"not an image");
        let e = decode_scaled(&text, &limits(), [0; 3], |_| 0.25).expect_err("text");
        assert_eq!(e.code(), ErrorCode::ImageUnsupported, "{e}");
    }
}
