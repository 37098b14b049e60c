//! HEIC/HEIF photos (what iPhones take by default), converted to JPEG by libheif's own
//! `heif-convert` (Debian: `libheif-examples`) in a child process under a memory limit, a CPU
//! limit and a deadline (`prlimit`, `timeout`). libheif and libde265 are C and C++: whatever a
//! hostile file makes them do (allocate for a stream far larger than the file claims, crash)
//! stays in that process and ends as a refusal, never in the API or the worker.
//!
//! Before that, the container's image sizes (`ispe`) are read here and held to the pixel limit,
//! as every format's header is. libheif applies the container's rotation, mirror and crop
//! (`irot`, `imir`, `clap`) as it converts, which is what turns a HEIC upright; the EXIF
//! orientation it copies into the JPEG is informational in HEIF and is removed, so it is not
//! applied a second time. The EXIF block is kept aside for the date the photo was taken.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use crate::PhotoError;

/// The longest a conversion may take, in wall and in CPU seconds (a 12 MP photo takes ~1 s).
const CONVERT_SECONDS: u64 = 60;
/// The largest `meta` box read (a camera photo's item tables and properties take a few KiB; an
/// iPhone's grid of 48 tiles about 10 KiB).
const MAX_META_BYTES: u64 = 4 << 20;
/// The largest EXIF block kept for the date taken.
const MAX_EXIF_BYTES: u64 = 1 << 20;
/// The most top-level boxes a HEIF file may have (a camera's has 3 or 4: `ftyp`, `meta`,
/// `mdat`, perhaps `free`).
const MAX_TOP_LEVEL_BOXES: u32 = 64;
/// Where the child finds `timeout`, `prlimit` and `heif-convert` (it gets no other environment:
/// none of the parent's credentials).
const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/opt/homebrew/bin";

/// What the container says, read by this crate before any decoder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    /// The largest image size (`ispe`) among the item properties: the primary image, its grid
    /// or its tiles, thumbnails, auxiliary images.
    pub(crate) size: (u32, u32),
    /// Whether it has an alpha plane (an auxiliary image of type alpha).
    pub(crate) alpha: bool,
}

impl Claim {
    /// Whether the conversion writes a PNG (for its alpha) rather than a JPEG (10-bit photos
    /// included: libheif reduces them to 8 bits for it).
    fn png(self) -> bool {
        self.alpha
    }
}

/// A HEIC converted to a JPEG (a PNG when it has alpha) in a private directory next to it
/// (removed on drop).
#[derive(Debug)]
pub(crate) struct Converted {
    _dir: tempfile::TempDir,
    /// The photo upright, without EXIF: a baseline JPEG, or a PNG when it has alpha.
    pub(crate) image: PathBuf,
    /// The photo's EXIF block (TIFF structure), for the date taken.
    pub(crate) exif: Option<Vec<u8>>,
}

/// Memory the child may use for a photo whose container claims `pixels`: libheif holds the
/// coded tiles, the YCbCr planes (16-bit for HDR), the RGB image and libjpeg's buffers; 192 MiB
/// covers the program, its threads and a file's items.
pub(crate) fn memory_limit(pixels: u64) -> u64 {
    (192 << 20) + 24 * pixels
}

/// Reads the container's claim (sizes and alpha) from its item properties.
pub(crate) fn claim(path: &Path) -> Result<Claim, PhotoError> {
    let meta = read_meta(path)?;
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let body = meta.get(4..).ok_or_else(|| malformed("meta"))?;
    let iprp = find(body, b"iprp")?.ok_or_else(|| malformed("iprp"))?;
    let ipco = find(iprp, b"ipco")?.ok_or_else(|| malformed("ipco"))?;
    let properties = boxes(ipco)?;
    // `auxC`: a full box, then the auxiliary type as a NUL-terminated URN.
    let alpha = properties.iter().any(|(kind, c)| {
        kind == b"auxC"
            && c.get(4..).is_some_and(|urn| {
                let urn = urn.split(|&b| b == 0).next().unwrap_or_default();
                urn == b"urn:mpeg:hevc:2015:auxid:1"
                    || urn == b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"
            })
    });
    let size = properties
        .iter()
        .filter(|(kind, _)| kind == b"ispe")
        .map(|(_, c)| {
            // A full box, then the width and the height.
            let be = |at: usize| {
                c.get(at..at + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            };
            be(4).zip(be(8)).ok_or_else(|| malformed("ispe"))
        })
        .try_fold(None, |best: Option<(u32, u32)>, size| {
            let size = size?;
            let area = |(w, h): (u32, u32)| u64::from(w) * u64::from(h);
            Ok::<_, PhotoError>(Some(match best {
                Some(b) if area(b) >= area(size) => b,
                _ => size,
            }))
        })?
        .ok_or_else(|| malformed("ispe"))?;
    Ok(Claim { size, alpha })
}

/// Converts the HEIC at `path` into an upright JPEG without EXIF (a PNG, slower to write, when
/// it has alpha: the background is composited later, as for any PNG), in a child process
/// under [`memory_limit`] and [`CONVERT_SECONDS`].
pub(crate) fn convert(path: &Path, claim: Claim) -> Result<Converted, PhotoError> {
    // Absolute, so no argument handed to the child can start with `-`.
    let path = &std::path::absolute(path)?;
    let parent = path.parent().unwrap_or_else(|| Path::new("/"));
    // Unique per conversion, inside the photo's own directory (so swept with it).
    let dir = tempfile::Builder::new()
        .prefix(".heic-")
        .tempdir_in(parent)?;
    let extension = if claim.png() { "png" } else { "jpg" };
    let raw = dir.path().join(format!("raw.{extension}"));
    let image = dir.path().join(format!("converted.{extension}"));
    let log = dir.path().join("stderr");
    let pixels = u64::from(claim.size.0) * u64::from(claim.size.1);
    let limit = memory_limit(pixels);
    // The output (and its log) may not grow past a generous uncompressed size.
    let file_limit = 8 * pixels + (16 << 20);
    let status = Command::new("timeout")
        .args(["--kill-after=5", &CONVERT_SECONDS.to_string()])
        .arg("prlimit")
        .arg(format!("--data={limit}"))
        .arg(format!("--cpu={CONVERT_SECONDS}"))
        .arg(format!("--fsize={file_limit}"))
        // Thread stacks count against the data limit: hold them to the usual 8 MiB.
        .arg("--stack=8388608")
        .args(["heif-convert", "--quiet", "-q", "95"])
        .arg("--")
        .arg(path)
        .arg(&raw)
        .env_clear()
        .env("PATH", CHILD_PATH)
        // Fewer malloc arenas: each reserves address space the data limit counts.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log)?)
        .status();
    let status = match status {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(no_converter()),
        Err(e) => return Err(PhotoError::Io(e)),
    };
    if !status.success() || !raw.is_file() {
        let stderr = read_bounded(&log, 4096).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr);
        return Err(match (status.code(), status.signal()) {
            // A missing program (127) and timeout's own failures (125, 126): the server's.
            (Some(127), _) => {
                tracing::error!(%stderr, "cannot run heif-convert under timeout and prlimit");
                no_converter()
            }
            (Some(125 | 126), _) => {
                tracing::error!(%status, %stderr, "cannot run heif-convert under timeout and prlimit");
                PhotoError::Io(io::Error::other("the HEIC converter could not be started"))
            }
            // The deadline, or a limit: SIGKILL, SIGTERM, SIGXCPU, SIGXFSZ.
            (Some(124), _) | (_, Some(9 | 15 | 24 | 25)) => PhotoError::Corrupt(format!(
                "decoding the HEIC took longer than {CONVERT_SECONDS} s or more than {} MiB",
                limit >> 20
            )),
            (_, Some(_)) => {
                tracing::warn!(%status, "heif-convert crashed on an uploaded photo");
                PhotoError::Corrupt("libheif crashed decoding it".into())
            }
            _ => {
                tracing::debug!(%status, %stderr, "heif-convert refused a photo");
                PhotoError::Corrupt(format!(
                    "libheif could not decode it (within {} MiB)",
                    limit >> 20
                ))
            }
        });
    }
    // heif-convert copies the EXIF block, orientation included, into what it writes: taken
    // out (kept for the date), so that only the container's turn applies.
    let exif = if claim.png() {
        strip_png_exif(&raw, &image)?
    } else {
        strip_app1(&raw, &image)?
    };
    Ok(Converted {
        _dir: dir,
        image,
        exif,
    })
}

fn no_converter() -> PhotoError {
    PhotoError::Unsupported(
        "this server cannot read HEIC photos (its heif-convert, from libheif, is missing); send \
         JPEG (on iPhone: Settings → Camera → Formats → Most Compatible)"
            .into(),
    )
}

fn malformed(what: &str) -> PhotoError {
    PhotoError::Corrupt(format!(
        "the HEIF file's {what} box is missing or malformed"
    ))
}

/// The file's bytes when it exists and is at most `max` long.
fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)
        .ok()?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (!bytes.is_empty() && bytes.len() as u64 <= max).then_some(bytes)
}

/// Copies the JPEG at `from` to `to` without its APP1 segments (EXIF, XMP), streaming; returns
/// the EXIF block (TIFF structure) it held.
fn strip_app1(from: &Path, to: &Path) -> Result<Option<Vec<u8>>, PhotoError> {
    let bad = || PhotoError::Corrupt("libheif wrote a malformed JPEG".into());
    let mut r = BufReader::new(File::open(from)?);
    let mut w = BufWriter::new(File::create(to)?);
    let mut soi = [0u8; 2];
    r.read_exact(&mut soi).map_err(|_| bad())?;
    if soi != [0xFF, 0xD8] {
        return Err(bad());
    }
    w.write_all(&soi)?;
    let mut exif = None;
    loop {
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte).map_err(|_| bad())?;
        if byte[0] != 0xFF {
            return Err(bad());
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            r.read_exact(&mut byte).map_err(|_| bad())?; // fill bytes
            marker = byte[0];
        }
        let mut length = [0u8; 2];
        r.read_exact(&mut length).map_err(|_| bad())?;
        let head = [0xFF, marker, length[0], length[1]];
        let len = u16::from_be_bytes(length);
        let body = u64::from(len.checked_sub(2).ok_or_else(bad)?);
        if marker == 0xE1 {
            let mut segment = Vec::new();
            r.by_ref().take(body).read_to_end(&mut segment)?;
            if let Some(tiff) = segment.strip_prefix(b"Exif\0\0") {
                exif = Some(tiff.to_vec());
            }
            continue;
        }
        w.write_all(&head)?;
        if io::copy(&mut r.by_ref().take(body), &mut w)? < body {
            return Err(bad());
        }
        if marker == 0xDA {
            // The first scan: everything after it is image data.
            io::copy(&mut r, &mut w)?;
            break;
        }
    }
    synced(w)?;
    Ok(exif)
}

/// Copies the PNG at `from` to `to` without its `eXIf` chunk, streaming; returns that chunk's
/// EXIF block when it is at most [`MAX_EXIF_BYTES`].
fn strip_png_exif(from: &Path, to: &Path) -> Result<Option<Vec<u8>>, PhotoError> {
    let bad = || PhotoError::Corrupt("libheif wrote a malformed PNG".into());
    let mut r = BufReader::new(File::open(from)?);
    let mut w = BufWriter::new(File::create(to)?);
    let mut signature = [0u8; 8];
    r.read_exact(&mut signature).map_err(|_| bad())?;
    if &signature != b"\x89PNG\r\n\x1a\n" {
        return Err(bad());
    }
    w.write_all(&signature)?;
    let mut exif = None;
    loop {
        let mut head = [0u8; 8];
        r.read_exact(&mut head).map_err(|_| bad())?;
        // The data and its CRC.
        let rest = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]])) + 4;
        if &head[4..8] == b"eXIf" {
            let mut chunk = Vec::new();
            r.by_ref().take(rest).read_to_end(&mut chunk)?;
            chunk.truncate(chunk.len().saturating_sub(4)); // the CRC
            if chunk.len() as u64 <= MAX_EXIF_BYTES {
                exif = Some(chunk);
            }
            continue;
        }
        w.write_all(&head)?;
        if io::copy(&mut r.by_ref().take(rest), &mut w)? < rest {
            return Err(bad());
        }
        if &head[4..8] == b"IEND" {
            break;
        }
    }
    synced(w)?;
    Ok(exif)
}

/// Flushes and syncs a copy: it is read back at once, and must be whole.
fn synced(w: BufWriter<File>) -> Result<(), PhotoError> {
    w.into_inner()
        .map_err(|e| PhotoError::Io(e.into_error()))?
        .sync_all()?;
    Ok(())
}

/// The top-level `meta` box's content (at most [`MAX_META_BYTES`]); a file with none, or with
/// two (libheif would read the last, this the first), is refused.
fn read_meta(path: &Path) -> Result<Vec<u8>, PhotoError> {
    let mut r = BufReader::new(File::open(path)?);
    let len = r.get_ref().metadata()?.len();
    let mut at = 0u64;
    let mut meta = None;
    let mut count = 0;
    while len - at >= 8 {
        count += 1;
        if count > MAX_TOP_LEVEL_BOXES {
            return Err(PhotoError::Corrupt(format!(
                "the HEIF file has more than {MAX_TOP_LEVEL_BOXES} top-level boxes"
            )));
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head)?;
        let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let mut header = 8;
        if size == 1 {
            let mut large = [0u8; 8];
            r.read_exact(&mut large)
                .map_err(|_| malformed("top-level"))?;
            size = u64::from_be_bytes(large);
            header = 16;
        } else if size == 0 {
            size = len - at; // to the end of the file
        }
        if size < header || size > len - at {
            return Err(malformed("top-level"));
        }
        let content = size - header;
        if &head[4..8] == b"meta" {
            if meta.is_some() {
                return Err(PhotoError::Corrupt(
                    "the HEIF file has two meta boxes".into(),
                ));
            }
            if content > MAX_META_BYTES {
                return Err(PhotoError::Corrupt(format!(
                    "the HEIF file's metadata is {content} bytes, more than the {MAX_META_BYTES} \
                     bytes allowed"
                )));
            }
            let mut bytes = vec![0; content as usize];
            r.read_exact(&mut bytes)?;
            meta = Some(bytes);
        } else {
            r.seek_relative(i64::try_from(content).map_err(|_| malformed("top-level"))?)?;
        }
        at += size; // at least 8: every box moves the walk on
    }
    meta.ok_or_else(|| malformed("meta"))
}

/// A box's type and content.
type Boxed<'a> = ([u8; 4], &'a [u8]);

/// The boxes in `bytes` (32-bit sizes: inside `meta`, nothing needs more).
fn boxes(mut bytes: &[u8]) -> Result<Vec<Boxed<'_>>, PhotoError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let head = bytes.get(..8).ok_or_else(|| malformed("property"))?;
        let size = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = [head[4], head[5], head[6], head[7]];
        let content = bytes.get(8..size).ok_or_else(|| malformed("property"))?;
        out.push((kind, content));
        bytes = &bytes[size..];
    }
    Ok(out)
}

fn find<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, PhotoError> {
    Ok(boxes(bytes)?
        .into_iter()
        .find(|(k, _)| k == kind)
        .map(|(_, c)| c))
}
