//! The hostile-input corpus: broken or hostile requests, each with the answer a careful API gives
//! (status and problem `code`). Generated in code, no binary fixtures.
//!
//! Shared by the test (`corpus/mod.rs`, which sends every case to the API in-process) and the
//! example `hostile_corpus` (which writes them out with a manifest for replaying with curl), so
//! the two cannot drift apart. Every request is plain (method, path, headers, body); the download
//! cases that need a running server's state (a signing key, a stored file) are described in
//! [`STATEFUL`] and built by the test alone.
//!
//! The server must run with [`limits`] and an upload stall time of [`STALL_SECONDS`]: some cases
//! (too many images, an image or upload over the byte limits, a video too long) are sized for
//! them.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use minimoto_common::limits::Limits;

/// Seconds an upload may send nothing; the stalled-upload case waits this long.
pub const STALL_SECONDS: u64 = 2;

/// The limits the server must run with for every expectation to hold. Small, so that limit cases
/// need only small bodies.
pub fn limits() -> Limits {
    Limits {
        max_images: 3,
        max_image_bytes: 64 * 1024,
        max_audio_bytes: 64 * 1024,
        max_total_bytes: 160 * 1024,
        max_image_pixels: 100_000_000,
        max_video_seconds: 100.0,
        max_megapixel_frames: 40_000,
    }
}

/// The whole-body cap the API derives from [`limits`]: `max_total_bytes` plus 16 MiB of room
/// for multipart framing.
pub fn body_cap() -> u64 {
    limits().max_total_bytes + 16 * 1024 * 1024
}

/// A request as bytes on the wire ([`Request::to_wire`] adds `host`, `connection: close`, and
/// `content-length` when the headers set neither it nor `transfer-encoding` and there is a body
/// or the method is POST or PUT).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    /// Sent as is: not normalised, not percent-encoded.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The headers as sent, `content-length` included (without `host` and `connection`).
    pub fn wire_headers(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        let framed = headers
            .iter()
            .any(|(n, _)| n == "content-length" || n == "transfer-encoding");
        if !framed && (!self.body.is_empty() || matches!(self.method, "POST" | "PUT")) {
            headers.push(("content-length".into(), self.body.len().to_string()));
        }
        headers
    }

    /// The whole request as sent on the wire: head (with `host` and `connection: close`), then
    /// the body.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n",
            self.method, self.path
        );
        for (name, value) in self.wire_headers() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// One kind of bad request and the answer it must get.
#[derive(Debug, Clone)]
pub struct Case {
    /// Unique, kebab-case; also the file name in the example's output.
    pub name: &'static str,
    /// What is wrong with the request, and why this answer.
    pub why: &'static str,
    pub request: Request,
    pub status: u16,
    pub code: &'static str,
    /// A response header that must be present and contain this text (`Allow` on a 405).
    pub expect_header: Option<(&'static str, &'static str)>,
}

/// A case whose current answer differs from the right one: the test asserts it still gets
/// `status` and `code` (so a fix is noticed and the entry removed), and everything else holds.
#[derive(Debug, Clone, Copy)]
pub struct KnownWrong {
    pub name: &'static str,
    /// The current, wrong, answer.
    pub status: u16,
    pub code: &'static str,
    pub why: &'static str,
}

/// Cases the API answers wrongly today (expected answer in the table, current one here).
///
/// An empty `code` is an answer that is not a problem at all. Cases recorded with a status under
/// 400 (accepted today) make a job, so the test runs them on a server of their own.
pub const KNOWN_WRONG: &[KnownWrong] = &[];

/// A download case that needs the running server's state (its signing key, a stored file): the
/// test builds its request; the example lists it in the manifest without a request.
#[derive(Debug, Clone, Copy)]
pub struct Stateful {
    pub name: &'static str,
    pub why: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub expect_header: Option<(&'static str, &'static str)>,
}

/// The content of the file the stateful download cases store (10 bytes).
pub const STORED_FILE: &[u8] = b"0123456789";

pub const STATEFUL: &[Stateful] = &[
    Stateful {
        name: "download-expired-link",
        why: "a correctly signed link past its expiry: gone, and says the link (not the file) expired",
        status: 410,
        code: "link-expired",
        expect_header: None,
    },
    Stateful {
        name: "download-range-past-end",
        why: "`Range: bytes=1000-` on a stored 10-byte file: unsatisfiable, with the size in Content-Range",
        status: 416,
        code: "range-not-satisfiable",
        expect_header: Some(("content-range", "bytes */10")),
    },
    Stateful {
        name: "download-range-starts-at-end",
        why: "`Range: bytes=10-` on a 10-byte file: the first byte is past the last one",
        status: 416,
        code: "range-not-satisfiable",
        expect_header: Some(("content-range", "bytes */10")),
    },
    Stateful {
        name: "download-range-suffix-zero",
        why: "`Range: bytes=-0`: a valid suffix range of length 0, which RFC 9110 §14.1.1 calls \
              unsatisfiable (416), like a start past the end",
        status: 416,
        code: "range-not-satisfiable",
        expect_header: Some(("content-range", "bytes */10")),
    },
    Stateful {
        name: "download-tampered-key",
        why: "a valid link for one key with the path changed to another: the signature covers the key",
        status: 403,
        code: "bad-signature",
        expect_header: None,
    },
    Stateful {
        name: "download-tampered-expiry",
        why: "a valid link with its expiry pushed later: the signature covers the expiry",
        status: 403,
        code: "bad-signature",
        expect_header: None,
    },
    Stateful {
        name: "download-signed-dotdot-key",
        why: "a correctly signed key `../url-signing.key` (raw `..` in the path): a key that leaves the \
              store is no file of it, signed or not, so not found (never the signing key)",
        status: 404,
        code: "not-found",
        expect_header: None,
    },
    Stateful {
        name: "download-signed-encoded-dotdot-key",
        why: "the same with `%2e%2e`, which the router decodes to `..`: not found",
        status: 404,
        code: "not-found",
        expect_header: None,
    },
    Stateful {
        name: "download-signed-missing-file",
        why: "a correctly signed link to a file that no longer exists: gone (`expired`)",
        status: 410,
        code: "expired",
        expect_header: None,
    },
    Stateful {
        name: "download-signed-directory",
        why: "a correctly signed link to a job's folder: a directory is never served",
        status: 404,
        code: "not-found",
        expect_header: None,
    },
];

// ---- Building blocks ----

const BOUNDARY: &str = "corpus-7d1f0b";
/// A job id that no job has.
pub const UNKNOWN_JOB: &str = "0193a0f2-5e3c-7b51-9c1e-2f4d8f7a6b10";

fn encode_rgb(img: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 4 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    })
}

/// A small valid photo of `format` (64×48).
fn photo(format: ImageFormat) -> Vec<u8> {
    match format {
        // Both encoders want 8-bit RGBA for the colours to survive as given.
        ImageFormat::Gif | ImageFormat::WebP => {
            let img = RgbaImage::from_fn(64, 48, |x, y| {
                Rgba([(x * 4) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8, 255])
            });
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, format).expect("encode");
            out.into_inner()
        }
        _ => encode_rgb(gradient(64, 48), format),
    }
}

fn jpeg() -> Vec<u8> {
    photo(ImageFormat::Jpeg)
}

fn png() -> Vec<u8> {
    photo(ImageFormat::Png)
}

/// The first half of `bytes`.
fn half(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() / 2);
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG whose IHDR claims `w`×`h` (CRC fixed, so only the size is wrong).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut png = png();
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// A valid PNG with one bit of its IDAT chunk's CRC flipped.
fn png_bad_crc() -> Vec<u8> {
    let mut png = png();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]) as usize;
        if &png[at + 4..at + 8] == b"IDAT" {
            png[at + 8 + len + 3] ^= 0x01;
            return png;
        }
        at += 12 + len;
    }
    panic!("the encoder wrote no IDAT chunk");
}

/// A valid PNG without its final IEND chunk (the last 12 bytes).
fn png_without_iend() -> Vec<u8> {
    let mut png = png();
    png.truncate(png.len() - 12);
    png
}

/// A zlib stream of fixed-Huffman deflate that inflates to `1 + 258·runs` zero bytes (13 bits a
/// run of 258: length code 285, distance code 0).
fn zlib_zeros(runs: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn lsb(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code, sent most significant bit first.
        fn code(&mut self, code: u64, count: u32) {
            for i in (0..count).rev() {
                self.lsb((code >> i) & 1, 1);
            }
        }
    }
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.lsb(1, 1); // final block
    bits.lsb(1, 2); // fixed Huffman
    bits.code(0b0011_0000, 8); // literal 0
    for _ in 0..runs {
        bits.code(0b1100_0101, 8); // length 258
        bits.code(0, 5); // distance 1
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    let len = (1 + 258 * runs) as u64;
    let adler = ((len % 65521) << 16) | 1;
    bits.out.extend_from_slice(&(adler as u32).to_be_bytes());
    bits.out
}

/// A valid PNG with a zTXt chunk that inflates to over 8 MiB (from ~54 KB).
fn png_ztxt_bomb() -> Vec<u8> {
    let png = png();
    let mut data = b"Comment\0\0".to_vec();
    data.extend_from_slice(&zlib_zeros(33_000));
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"zTXt");
    chunk.extend_from_slice(&data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    // After the signature (8) and IHDR (25).
    [&png[..33], &chunk, &png[33..]].concat()
}

/// A valid baseline JPEG whose frame header (SOF0) is changed by `patch(sof_marker_offset)`.
fn jpeg_patched(patch: impl FnOnce(&mut Vec<u8>, usize)) -> Vec<u8> {
    let mut jpg = jpeg();
    let mut at = 2;
    while at + 4 <= jpg.len() {
        assert_eq!(jpg[at], 0xFF, "a JPEG segment starts with 0xFF");
        if jpg[at + 1] == 0xC0 {
            patch(&mut jpg, at);
            return jpg;
        }
        at += 2 + usize::from(u16::from_be_bytes([jpg[at + 2], jpg[at + 3]]));
    }
    panic!("the encoder wrote no SOF0 segment");
}

/// A JPEG whose frame header claims `w`×`h` (height at +5, width at +7 from the marker).
fn jpeg_claiming(w: u16, h: u16) -> Vec<u8> {
    jpeg_patched(|j, at| {
        j[at + 5..at + 7].copy_from_slice(&h.to_be_bytes());
        j[at + 7..at + 9].copy_from_slice(&w.to_be_bytes());
    })
}

/// A GIF header of the given logical screen, with a global colour table and nothing after.
fn gif_claiming(w: u16, h: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&w.to_le_bytes());
    gif.extend_from_slice(&h.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
    gif.extend_from_slice(b",\0\0\0\0\x01\0\x01\0\0\x02\x02D\x01\0;");
    gif
}

/// An extended WebP (VP8X) whose canvas is `w`×`h` (each at most 2^24).
fn webp_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut chunk = vec![0u8; 10];
    chunk[4..7].copy_from_slice(&(w - 1).to_le_bytes()[..3]);
    chunk[7..10].copy_from_slice(&(h - 1).to_le_bytes()[..3]);
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&chunk);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    webp
}

/// A lossy WebP (VP8) whose frame header says 0×0.
fn webp_lossy_zero() -> Vec<u8> {
    let mut vp8 = vec![0x30, 0x01, 0x00, 0x9D, 0x01, 0x2A];
    vp8.resize(24, 0);
    let mut body = b"WEBPVP8 ".to_vec();
    body.extend_from_slice(&(vp8.len() as u32).to_le_bytes());
    body.extend_from_slice(&vp8);
    let mut webp = b"RIFF".to_vec();
    webp.extend_from_slice(&(body.len() as u32).to_le_bytes());
    webp.extend_from_slice(&body);
    webp
}

/// A GIF of a 1×1 screen whose one frame is 65535×65535.
fn gif_big_frame() -> Vec<u8> {
    let mut gif = b"GIF89a\x01\x00\x01\x00\x80\0\0\0\0\0\xFF\xFF\xFF".to_vec();
    gif.extend_from_slice(b",\0\0\0\0\xFF\xFF\xFF\xFF\0\x02\x02D\x01\0;");
    gif
}

/// A valid BMP whose info header claims `w`×`h`.
fn bmp_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut bmp = photo(ImageFormat::Bmp);
    bmp[18..22].copy_from_slice(&w.to_le_bytes());
    bmp[22..26].copy_from_slice(&h.to_le_bytes());
    bmp
}

/// A little-endian TIFF with one directory of ImageWidth and ImageLength (LONG) only.
fn tiff_claiming(w: u32, h: u32) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    tiff.extend_from_slice(&2u16.to_le_bytes());
    for (tag, value) in [(256u16, w), (257, h)] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes());
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes());
    tiff
}

/// An uncompressed BMP of `w`×`h` (so its size is exact: 54 + 3·w·h bytes for w a multiple of 4).
fn bmp_of(w: u32, h: u32) -> Vec<u8> {
    encode_rgb(gradient(w, h), ImageFormat::Bmp)
}

/// One multipart part with the given raw header lines.
fn raw_part(header_lines: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("--{BOUNDARY}\r\n").into_bytes();
    for line in header_lines {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(b"\r\n");
    out
}

fn file_part(name: &str, file_name: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    raw_part(
        &[
            &format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\""),
            &format!("Content-Type: {content_type}"),
        ],
        body,
    )
}

fn image_part(file_name: &str, body: &[u8]) -> Vec<u8> {
    file_part("images", file_name, "application/octet-stream", body)
}

fn text_part(name: &str, body: &[u8]) -> Vec<u8> {
    raw_part(
        &[&format!("Content-Disposition: form-data; name=\"{name}\"")],
        body,
    )
}

fn close() -> Vec<u8> {
    format!("--{BOUNDARY}--\r\n").into_bytes()
}

/// The parts, then the close delimiter.
fn form(parts: Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = parts.concat();
    out.extend_from_slice(&close());
    out
}

/// `POST /v1/jobs` with a multipart body framed by [`BOUNDARY`].
fn upload(body: Vec<u8>) -> Request {
    Request::new("POST", "/v1/jobs")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
}

/// An upload of one photo.
fn one_image(file_name: &str, bytes: &[u8]) -> Request {
    upload(form(vec![image_part(file_name, bytes)]))
}

/// An upload of one good photo and `options`.
fn with_options(options: &[u8]) -> Request {
    upload(form(vec![
        image_part("a.jpg", &jpeg()),
        text_part("options", options),
    ]))
}

/// An upload of `n` good photos and `options`.
fn photos_with_options(n: usize, options: &str) -> Request {
    let mut parts: Vec<Vec<u8>> = (0..n)
        .map(|i| image_part(&format!("{i}.jpg"), &jpeg()))
        .collect();
    parts.push(text_part("options", options.as_bytes()));
    upload(form(parts))
}

fn case(
    name: &'static str,
    why: &'static str,
    request: Request,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        why,
        request,
        status,
        code,
        expect_header: None,
    }
}

/// `method` on a route that does not take it: 405 listing the methods it does take.
fn wrong_method(
    name: &'static str,
    method: &'static str,
    path: &str,
    allowed: &'static str,
) -> Case {
    Case {
        expect_header: Some(("allow", allowed)),
        ..case(
            name,
            "a method the route does not take: 405 with the methods it takes in Allow",
            Request::new(method, path),
            405,
            "method-not-allowed",
        )
    }
}

fn invalid_options(name: &'static str, why: &'static str, options: &str) -> Case {
    case(
        name,
        why,
        with_options(options.as_bytes()),
        422,
        "invalid-options",
    )
}

// ---- The corpus ----

/// Every case that is a plain request (see [`STATEFUL`] for the rest).
pub fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    out.extend(framing());
    out.extend(images());
    out.extend(options());
    out.extend(http());
    out.extend(downloads());
    out
}

fn framing() -> Vec<Case> {
    let good = jpeg();
    let one = form(vec![image_part("a.jpg", &good)]);
    let mut no_final = image_part("a.jpg", &good);
    no_final.truncate(no_final.len() - 2);
    let mut cut_in_data = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\n\r\n"
    )
    .into_bytes();
    cut_in_data.extend_from_slice(&half(good.clone()));
    let mut long_header = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"\r\nX-Pad: "
    )
    .into_bytes();
    long_header.resize(long_header.len() + (2 << 20), b'a');
    long_header.extend_from_slice(b"\r\n\r\n");
    let mut long_preamble = vec![b'p'; 2 << 20];
    long_preamble.extend_from_slice(&one);
    let stalled_len = cut_in_data.len() + 1000;

    vec![
        case(
            "no-content-type",
            "a body without Content-Type is not multipart/form-data",
            Request::new("POST", "/v1/jobs").body(one.clone()),
            415,
            "not-multipart",
        ),
        case(
            "json-content-type",
            "a JSON body: the job must be multipart/form-data",
            Request::new("POST", "/v1/jobs")
                .header("content-type", "application/json")
                .body(r#"{"images": []}"#),
            415,
            "not-multipart",
        ),
        case(
            "urlencoded-content-type",
            "a urlencoded form cannot carry files",
            Request::new("POST", "/v1/jobs")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("images=a.jpg&options=%7B%7D"),
            415,
            "not-multipart",
        ),
        case(
            "multipart-mixed",
            "multipart/mixed is not multipart/form-data, even with a well-framed body",
            Request::new("POST", "/v1/jobs")
                .header(
                    "content-type",
                    format!("multipart/mixed; boundary={BOUNDARY}"),
                )
                .body(one.clone()),
            415,
            "not-multipart",
        ),
        case(
            "multipart-without-boundary",
            "multipart/form-data without its required boundary parameter: the media type is \
             right and the framing is broken, so a malformed multipart request (400), not an \
             unsupported media type (415, which tells the client to switch formats)",
            Request::new("POST", "/v1/jobs")
                .header("content-type", "multipart/form-data")
                .body(one.clone()),
            400,
            "bad-multipart",
        ),
        case(
            "boundary-mismatch",
            "the body is framed with another boundary than the header names: no part can be found",
            Request::new("POST", "/v1/jobs")
                .header(
                    "content-type",
                    "multipart/form-data; boundary=not-the-one-used",
                )
                .body(one.clone()),
            400,
            "bad-multipart",
        ),
        case(
            "missing-final-boundary",
            "the body ends after a part's data without the close delimiter",
            upload(no_final),
            400,
            "bad-multipart",
        ),
        case(
            "truncated-in-part-data",
            "the body ends in the middle of an image part",
            upload(cut_in_data.clone()),
            400,
            "bad-multipart",
        ),
        case(
            "truncated-in-part-headers",
            "the body ends in the middle of a part's headers",
            upload(format!("--{BOUNDARY}\r\nContent-Disposition: form-da").into_bytes()),
            400,
            "bad-multipart",
        ),
        case(
            "empty-body",
            "a multipart request with no body at all: not even the close delimiter",
            upload(Vec::new()),
            400,
            "bad-multipart",
        ),
        case(
            "only-close-delimiter",
            "a well-formed multipart body with no parts: no images",
            upload(close()),
            400,
            "no-images",
        ),
        case(
            "only-options",
            "options but no photo",
            upload(form(vec![text_part("options", b"{}")])),
            400,
            "no-images",
        ),
        case(
            "part-without-name",
            "a form-data part without the name RFC 7578 requires: a part of no known name",
            upload(form(vec![
                image_part("a.jpg", &good),
                raw_part(
                    &["Content-Disposition: form-data; filename=\"b.jpg\""],
                    &good,
                ),
            ])),
            400,
            "unexpected-part",
        ),
        case(
            "part-without-content-disposition",
            "a part with no Content-Disposition at all has no name either",
            upload(form(vec![
                image_part("a.jpg", &good),
                raw_part(&["Content-Type: image/jpeg"], &good),
            ])),
            400,
            "unexpected-part",
        ),
        case(
            "duplicate-options",
            "two `options` parts: which one applies is ambiguous",
            upload(form(vec![
                image_part("a.jpg", &good),
                text_part("options", b"{}"),
                text_part("options", br#"{"fps": 24}"#),
            ])),
            400,
            "duplicate-part",
        ),
        case(
            "unknown-part",
            "a part the API does not know (a typo must not be ignored)",
            upload(form(vec![
                image_part("a.jpg", &good),
                text_part("music", b"x"),
            ])),
            400,
            "unexpected-part",
        ),
        case(
            "audio-not-audio",
            "an `audio` part that is text: refused by its content, before anything is stored",
            upload(form(vec![
                image_part("a.jpg", &good),
                file_part("audio", "song.mp3", "audio/mpeg", b"not a song at all"),
            ])),
            415,
            "audio-unsupported",
        ),
        case(
            "audio-a-photo",
            "a JPEG sent as the soundtrack",
            upload(form(vec![
                image_part("a.jpg", &good),
                file_part("audio", "song.mp3", "audio/mpeg", &good),
            ])),
            415,
            "audio-unsupported",
        ),
        case(
            "audio-twice",
            "two `audio` parts: a video has one soundtrack",
            upload(form(vec![
                image_part("a.jpg", &good),
                file_part("audio", "a.mp3", "audio/mpeg", b"x"),
                file_part("audio", "b.mp3", "audio/mpeg", b"y"),
            ])),
            400,
            "duplicate-part",
        ),
        case(
            "audio-over-max-audio-bytes",
            "a soundtrack one byte over the audio limit, refused as it streams",
            upload(form(vec![
                image_part("a.jpg", &good),
                file_part("audio", "long.wav", "audio/wav", &vec![0u8; 64 * 1024 + 1]),
            ])),
            413,
            "audio-too-large",
        ),
        case(
            "misspelt-images-part",
            "`image` instead of `images`: part names are exact",
            upload(form(vec![
                image_part("a.jpg", &good),
                file_part("image", "b.jpg", "image/jpeg", &good),
            ])),
            400,
            "unexpected-part",
        ),
        case(
            "part-headers-over-1mib",
            "a part whose headers run over 1 MiB: the parser must not buffer them",
            upload(long_header),
            413,
            "part-headers-too-large",
        ),
        case(
            "preamble-over-1mib",
            "2 MiB before the first boundary: the parser must not buffer it",
            upload(long_preamble),
            413,
            "part-headers-too-large",
        ),
        case(
            "chunked-bad-chunk-size",
            "a chunked body whose chunk size is not hex: the body cannot be read",
            upload(b"zz\r\nabc\r\n0\r\n\r\n".to_vec()).header("transfer-encoding", "chunked"),
            400,
            "bad-multipart",
        ),
        case(
            "content-length-not-a-number",
            "`Content-Length: abc`: the request cannot be read",
            upload(close()).header("content-length", "abc"),
            400,
            "bad-request",
        ),
        case(
            "conflicting-content-lengths",
            "two different Content-Lengths (a request-smuggling vector): the request cannot be \
             read",
            upload(close())
                .header("content-length", "10")
                .header("content-length", "20"),
            400,
            "bad-request",
        ),
        case(
            "too-many-headers",
            "120 header lines, over the 100 the server reads: refused before the app runs, as a \
             problem all the same",
            (0..120).fold(upload(close()), |r, i| {
                r.header(&format!("x-filler-{i}"), "1")
            }),
            431,
            "headers-too-large",
        ),
        case(
            "uri-too-long",
            "a 70 000-character path, over the longest URI the server reads: refused before the \
             app runs, as a problem all the same",
            Request::new("GET", format!("/v1/jobs/{}", "a".repeat(70_000))),
            414,
            "uri-too-long",
        ),
        case(
            "base64-transfer-encoded-image",
            "a part with `Content-Transfer-Encoding: base64`, which RFC 7578 forbids senders: \
             its bytes as sent are base64 text, not an image",
            upload(form(vec![raw_part(
                &[
                    "Content-Disposition: form-data; name=\"images\"; filename=\"a.jpg\"",
                    "Content-Transfer-Encoding: base64",
                ],
                b"/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0a",
            )])),
            415,
            "image-unsupported",
        ),
        case(
            "body-shorter-than-content-length",
            "half an image part, with a Content-Length 1000 bytes longer, then the client waits: \
             cut after the stall time (a complete multipart body would be answered at its close \
             delimiter, the rest being an epilogue)",
            upload(cut_in_data).header("content-length", stalled_len.to_string()),
            408,
            "upload-stalled",
        ),
    ]
}

fn images() -> Vec<Case> {
    let limits = limits();
    let big = bmp_of(160, 160);
    assert!(big.len() as u64 > limits.max_image_bytes);
    let each = bmp_of(140, 140);
    assert!(each.len() as u64 <= limits.max_image_bytes);
    assert!(3 * each.len() as u64 > limits.max_total_bytes);

    let mut jpeg_pdf = b"\xFF\xD8\xFF\xE0".to_vec();
    jpeg_pdf.extend_from_slice(
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    );
    let mut gif_js = b"GIF89a\x01\x00\x01\x00".to_vec();
    gif_js.extend_from_slice(b"*/=1;alert(document.domain);/*");
    let mut png_svg = b"\x89PNG\r\n\x1a\n".to_vec();
    png_svg.extend_from_slice(br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#);
    let mut jpeg_zip = b"\xFF\xD8\xFF\xDB".to_vec();
    jpeg_zip.extend_from_slice(b"PK\x03\x04\x14\0\0\0\0\0");

    vec![
        case(
            "empty-image-file",
            "an `images` file part of zero bytes: no content, so no image format",
            upload(form(vec![file_part("images", "empty.jpg", "image/jpeg", b"")])),
            415,
            "image-unsupported",
        ),
        case(
            "zero-byte-part-without-filename",
            "an `images` part with no filename and no content",
            upload(form(vec![text_part("images", b"")])),
            415,
            "image-unsupported",
        ),
        case(
            "text-named-jpg",
            "text with a .jpg name and image/jpeg type: formats are told by content",
            upload(form(vec![file_part(
                "images",
                "holiday.jpg",
                "image/jpeg",
                b"hello, this is text and not a photo at all",
            )])),
            415,
            "image-unsupported",
        ),
        case(
            "second-image-not-an-image",
            "a good photo then text: the bad one is refused, the good one is not kept",
            upload(form(vec![
                image_part("a.jpg", &jpeg()),
                image_part("b.jpg", b"not a photo"),
            ])),
            415,
            "image-unsupported",
        ),
        case(
            "truncated-jpeg",
            "the first half of a JPEG: the decoder would paint the rest grey",
            one_image("t.jpg", &half(jpeg())),
            422,
            "image-corrupt",
        ),
        case(
            "jpeg-soi-only",
            "just the JPEG start marker",
            one_image("t.jpg", b"\xFF\xD8\xFF"),
            422,
            "image-corrupt",
        ),
        case(
            "jpeg-header-claims-more-than-its-data",
            "a 64×48 JPEG whose frame header claims 4000×3000 (under the pixel limit): too \
             little data for the claimed size",
            one_image("lie.jpg", &jpeg_claiming(4000, 3000)),
            422,
            "image-corrupt",
        ),
        case(
            "jpeg-lossless",
            "a lossless (SOF3) JPEG: a coding process minimoto does not decode",
            one_image("l.jpg", &jpeg_patched(|j, at| j[at + 1] = 0xC3)),
            415,
            "image-unsupported",
        ),
        case(
            "jpeg-arithmetic",
            "an arithmetic-coded (SOF9) JPEG: not decoded",
            one_image("a.jpg", &jpeg_patched(|j, at| j[at + 1] = 0xC9)),
            415,
            "image-unsupported",
        ),
        case(
            "truncated-png",
            "the first half of a PNG",
            one_image("t.png", &half(png())),
            422,
            "image-corrupt",
        ),
        case(
            "png-signature-only",
            "the PNG signature and nothing else",
            one_image("t.png", b"\x89PNG\r\n\x1a\n"),
            422,
            "image-corrupt",
        ),
        case(
            "png-bad-crc",
            "a PNG whose image data chunk fails its CRC: damaged in transit",
            one_image("crc.png", &png_bad_crc()),
            422,
            "image-corrupt",
        ),
        case(
            "png-without-iend",
            "a PNG cut just before its end chunk",
            one_image("t.png", &png_without_iend()),
            422,
            "image-corrupt",
        ),
        case(
            "png-zero-by-zero",
            "a PNG whose header says 0×0 pixels: not a sound image",
            one_image("zero.png", &png_claiming(0, 0)),
            422,
            "image-corrupt",
        ),
        case(
            "tiff-zero-by-zero",
            "a TIFF whose directory says 0×0",
            one_image("zero.tiff", &tiff_claiming(0, 0)),
            422,
            "image-corrupt",
        ),
        case(
            "webp-lossy-zero-by-zero",
            "a lossy WebP whose frame header says 0×0",
            one_image("zero.webp", &webp_lossy_zero()),
            422,
            "image-corrupt",
        ),
        case(
            "gif-screen-zero-by-zero",
            "a GIF whose logical screen is 0×0 (with a 1×1 frame): an image of no pixels",
            one_image("zero.gif", &gif_claiming(0, 0)),
            422,
            "image-corrupt",
        ),
        case(
            "bmp-zero-by-zero",
            "a BMP whose info header says 0×0",
            one_image("zero.bmp", &bmp_claiming(0, 0)),
            422,
            "image-corrupt",
        ),
        case(
            "jpeg-zero-width",
            "a JPEG frame header of width 0: malformed",
            one_image("zero.jpg", &jpeg_claiming(0, 48)),
            422,
            "image-corrupt",
        ),
        case(
            "jpeg-height-from-dnl",
            "a JPEG frame header of height 0, which means the height comes in a DNL segment \
             after the first scan: valid JPEG, a feature minimoto does not decode",
            one_image("dnl.jpg", &jpeg_claiming(64, 0)),
            415,
            "image-unsupported",
        ),
        case(
            "png-ztxt-metadata-bomb",
            "a valid PNG with a 54 KB zTXt chunk inflating to 8.1 MiB: metadata past the 8 MiB \
             the gate inflates (as a stream, so memory stays flat)",
            one_image("text.png", &png_ztxt_bomb()),
            422,
            "image-corrupt",
        ),
        case(
            "gif-frame-larger-than-screen",
            "a 1×1 GIF screen holding a 65535×65535 frame: the frame buffer would be 4 GiB, over \
             the decode budget a 1×1 image gets",
            one_image("frame.gif", &gif_big_frame()),
            422,
            "image-corrupt",
        ),
        case(
            "png-claims-1x200000000",
            "a PNG of 1 × 200 million pixels: each side is a valid PNG side, their product is \
             over the pixel limit",
            one_image("tall.png", &png_claiming(1, 200_000_000)),
            413,
            "image-too-large",
        ),
        case(
            "bmp-wider-than-65535",
            "a 70000×1 BMP: few pixels, but wider than the BMP decoder reads",
            one_image("wide.bmp", &bmp_claiming(70_000, 1)),
            415,
            "image-unsupported",
        ),
        case(
            "truncated-gif",
            "the first half of a GIF",
            one_image("t.gif", &half(photo(ImageFormat::Gif))),
            422,
            "image-corrupt",
        ),
        case(
            "truncated-webp",
            "the first half of a WebP",
            one_image("t.webp", &half(photo(ImageFormat::WebP))),
            422,
            "image-corrupt",
        ),
        case(
            "truncated-bmp",
            "the first half of a BMP",
            one_image("t.bmp", &half(photo(ImageFormat::Bmp))),
            422,
            "image-corrupt",
        ),
        case(
            "truncated-tiff",
            "the first half of a TIFF",
            one_image("t.tiff", &half(photo(ImageFormat::Tiff))),
            422,
            "image-corrupt",
        ),
        case(
            "png-claims-100000x100000",
            "a decompression bomb: a tiny PNG whose IHDR claims 10^10 pixels, refused from the \
             header before any decoder runs",
            one_image("bomb.png", &png_claiming(100_000, 100_000)),
            413,
            "image-too-large",
        ),
        case(
            "jpeg-claims-65535x65535",
            "a JPEG frame header claiming the largest JPEG size",
            one_image("bomb.jpg", &jpeg_claiming(65535, 65535)),
            413,
            "image-too-large",
        ),
        case(
            "gif-claims-65535x65535",
            "a GIF logical screen of 65535×65535",
            one_image("bomb.gif", &gif_claiming(65535, 65535)),
            413,
            "image-too-large",
        ),
        case(
            "webp-claims-16m-square",
            "an extended WebP whose canvas is 2^24 pixels a side",
            one_image("bomb.webp", &webp_claiming(1 << 24, 1 << 24)),
            413,
            "image-too-large",
        ),
        case(
            "bmp-claims-100000x100000",
            "a BMP info header claiming 100000×100000",
            one_image("bomb.bmp", &bmp_claiming(100_000, 100_000)),
            413,
            "image-too-large",
        ),
        case(
            "tiff-claims-100000x100000",
            "a TIFF directory claiming 100000×100000",
            one_image("bomb.tiff", &tiff_claiming(100_000, 100_000)),
            413,
            "image-too-large",
        ),
        case(
            "too-many-images",
            "one photo more than max_images (3)",
            upload(form(
                (0..4)
                    .map(|i| image_part(&format!("{i}.jpg"), &jpeg()))
                    .collect(),
            )),
            413,
            "too-many-images",
        ),
        case(
            "image-over-max-image-bytes",
            "a valid 160×160 BMP of 76854 bytes, over max_image_bytes (65536)",
            one_image("big.bmp", &big),
            413,
            "image-too-large",
        ),
        case(
            "upload-over-max-total-bytes",
            "three valid BMPs each under max_image_bytes, together over max_total_bytes (163840)",
            upload(form(
                (0..3)
                    .map(|i| image_part(&format!("{i}.bmp"), &each))
                    .collect(),
            )),
            413,
            "upload-too-large",
        ),
        case(
            "heic",
            "an iPhone HEIC's first box and nothing else: a HEIC without its container",
            one_image("IMG_0001.HEIC", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic\0\0\0\0"),
            422,
            "image-corrupt",
        ),
        case(
            "avif",
            "an AVIF header: an image format minimoto does not take",
            one_image("a.avif", b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf\0\0\0\0"),
            415,
            "image-unsupported",
        ),
        case(
            "svg",
            "an SVG with a script: vector markup, never an accepted image",
            one_image(
                "logo.svg",
                br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>"#,
            ),
            415,
            "image-unsupported",
        ),
        case(
            "xml-entity-bomb",
            "an XML billion-laughs document: refused by content, never parsed",
            one_image(
                "lol.jpg",
                b"<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]><l>&b;</l>",
            ),
            415,
            "image-unsupported",
        ),
        case(
            "pdf",
            "a PDF",
            one_image("scan.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"),
            415,
            "image-unsupported",
        ),
        case(
            "zip",
            "a ZIP archive (an empty one: its end-of-directory record)",
            one_image(
                "photos.zip",
                b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            ),
            415,
            "image-unsupported",
        ),
        case(
            "elf-executable",
            "an executable named .png",
            one_image("a.png", b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0"),
            415,
            "image-unsupported",
        ),
        case(
            "ico",
            "a Windows icon: a format `image` knows and minimoto does not take",
            one_image("favicon.ico", b"\0\0\x01\0\x01\0\x10\x10\0\0\x01\0\x20\0\x68\x04\0\0\x16\0\0\0"),
            415,
            "image-unsupported",
        ),
        case(
            "polyglot-jpeg-magic-pdf",
            "JPEG magic followed by a PDF: detected as JPEG, and not a sound one",
            one_image("p.jpg", &jpeg_pdf),
            422,
            "image-corrupt",
        ),
        case(
            "polyglot-gif-javascript",
            "a GIF header that is also JavaScript (`GIF89a…*/=1;alert()`): a 1×1 GIF with no \
             image data",
            one_image("p.gif", &gif_js),
            422,
            "image-corrupt",
        ),
        case(
            "polyglot-png-magic-svg",
            "the PNG signature followed by SVG markup: no header chunk",
            one_image("p.png", &png_svg),
            422,
            "image-corrupt",
        ),
        case(
            "polyglot-jpeg-magic-zip",
            "JPEG magic followed by a ZIP local header",
            one_image("p.jpg", &jpeg_zip),
            422,
            "image-corrupt",
        ),
    ]
}

fn options() -> Vec<Case> {
    let mut padded = b"{".to_vec();
    padded.resize(70 * 1024, b' ');
    padded.push(b'}');
    let deep = format!("{}{}", "[".repeat(30_000), "]".repeat(30_000));
    vec![
        invalid_options("options-not-json", "`fps=24` is not JSON", "fps=24"),
        invalid_options("options-empty", "an empty options part is not JSON", ""),
        invalid_options(
            "options-trailing-garbage",
            "a JSON object followed by more text",
            "{} {}",
        ),
        case(
            "options-not-utf8",
            "a byte 0xFF inside a JSON string: not UTF-8, so not JSON",
            with_options(b"{\"background\": \"\xFF\"}"),
            422,
            "invalid-options",
        ),
        invalid_options(
            "options-json-array",
            "an array would be read by position by serde: only an object is a spec",
            "[1920, 1080, 30]",
        ),
        invalid_options("options-json-string", "a JSON string", r#""{}""#),
        invalid_options("options-json-null", "JSON null", "null"),
        invalid_options("options-json-number", "a JSON number", "42"),
        invalid_options(
            "options-unknown-field",
            "a typo (`fsp`) must be named, not ignored",
            r#"{"fsp": 24}"#,
        ),
        invalid_options(
            "options-duplicate-key",
            "`fps` twice in one object: ambiguous",
            r#"{"fps": 24, "fps": 61}"#,
        ),
        invalid_options(
            "options-deep-nesting",
            "30000 nested arrays (under 64 KiB): refused by the parser's depth limit, no stack \
             overflow",
            &deep,
        ),
        invalid_options(
            "width-as-string",
            "a number sent as a string",
            r#"{"width": "1280"}"#,
        ),
        invalid_options("width-null", "null for a number", r#"{"width": null}"#),
        invalid_options(
            "fps-fraction",
            "a fraction for an integer field",
            r#"{"fps": 29.97}"#,
        ),
        invalid_options("fps-negative", "a negative frame rate", r#"{"fps": -30}"#),
        invalid_options(
            "transition-not-object",
            "transition as an array",
            r#"{"transition": ["none", 0]}"#,
        ),
        invalid_options(
            "width-odd",
            "an odd width (the encoder needs even sides)",
            r#"{"width": 1281}"#,
        ),
        invalid_options("height-odd", "an odd height", r#"{"height": 721}"#),
        invalid_options(
            "width-too-small",
            "an even width under 16",
            r#"{"width": 14}"#,
        ),
        invalid_options(
            "height-too-large",
            "an even height over 4096",
            r#"{"height": 4098}"#,
        ),
        invalid_options(
            "area-too-large",
            "4096×2160: each side allowed, the area over 3840×2160",
            r#"{"width": 4096, "height": 2160}"#,
        ),
        invalid_options(
            "width-over-u32",
            "a width that does not fit 32 bits",
            r#"{"width": 4294967298}"#,
        ),
        invalid_options("fps-zero", "0 frames per second", r#"{"fps": 0}"#),
        invalid_options(
            "fps-11",
            "one frame per second under the minimum",
            r#"{"fps": 11}"#,
        ),
        invalid_options(
            "resolution-and-width",
            "a size preset and an explicit width at once: which one wins is not guessed",
            r#"{"resolution": "720p", "width": 640}"#,
        ),
        invalid_options(
            "resolution-unknown",
            "a preset that does not exist",
            r#"{"resolution": "4k"}"#,
        ),
        invalid_options(
            "aspect-unknown",
            "an aspect ratio not offered",
            r#"{"aspect": "21:9"}"#,
        ),
        invalid_options(
            "motion-strength-over",
            "more than twice the default motion",
            r#"{"motion_strength": 2.5}"#,
        ),
        invalid_options(
            "transition-unknown",
            "a transition that does not exist",
            r#"{"transition": {"kind": "spin"}}"#,
        ),
        invalid_options(
            "durations-count",
            "two durations for the one photo of the form",
            r#"{"durations": [1, 2]}"#,
        ),
        invalid_options(
            "durations-zero",
            "a photo shown for no time at all",
            r#"{"durations": [0]}"#,
        ),
        invalid_options(
            "durations-not-numbers",
            "durations as a string",
            r#"{"durations": "1,2"}"#,
        ),
        invalid_options(
            "order-unknown",
            "an order that does not exist",
            r#"{"order": "random"}"#,
        ),
        invalid_options(
            "quality-unknown",
            "a quality that does not exist",
            r#"{"quality": "ultra"}"#,
        ),
        invalid_options(
            "fps-61",
            "one frame per second over the maximum",
            r#"{"fps": 61}"#,
        ),
        invalid_options(
            "seconds-per-image-zero",
            "0 s per photo",
            r#"{"seconds_per_image": 0}"#,
        ),
        invalid_options(
            "seconds-per-image-negative",
            "a negative duration",
            r#"{"seconds_per_image": -3}"#,
        ),
        invalid_options(
            "seconds-per-image-huge",
            "a million seconds per photo (the limit is 60)",
            r#"{"seconds_per_image": 1e6}"#,
        ),
        invalid_options(
            "seconds-per-image-overflows-f64",
            "1e400 is beyond f64",
            r#"{"seconds_per_image": 1e400}"#,
        ),
        invalid_options(
            "seconds-per-image-under-one-frame",
            "0.01 s at 30 fps is less than one frame",
            r#"{"seconds_per_image": 0.01, "transition": {"kind": "none"}}"#,
        ),
        invalid_options(
            "transition-longer-than-photo",
            "a 5 s crossfade between 3 s photos",
            r#"{"seconds_per_image": 3, "transition": {"seconds": 5}}"#,
        ),
        invalid_options(
            "transition-negative",
            "a negative crossfade",
            r#"{"transition": {"seconds": -0.5}}"#,
        ),
        invalid_options(
            "transition-kind-unknown",
            "a transition kind that does not exist",
            r#"{"transition": {"kind": "wipe"}}"#,
        ),
        invalid_options(
            "motion-unknown",
            "a motion that does not exist",
            r#"{"motion": "zoom"}"#,
        ),
        invalid_options(
            "fit-unknown",
            "a fit that does not exist",
            r#"{"fit": "stretch"}"#,
        ),
        invalid_options(
            "background-name",
            "a colour name, not #rrggbb",
            r#"{"background": "red"}"#,
        ),
        invalid_options(
            "background-short",
            "five hex digits",
            r##"{"background": "#12345"}"##,
        ),
        invalid_options(
            "background-not-hex",
            "not hex digits",
            r##"{"background": "#gggggg"}"##,
        ),
        invalid_options(
            "background-multibyte",
            "six bytes that are not six hex digits (`#ééé`): must not panic slicing the string",
            r##"{"background": "#ééé"}"##,
        ),
        case(
            "options-over-64kib",
            "a valid JSON object padded with whitespace past 64 KiB: the size limit holds whatever \
             the content",
            with_options(&padded),
            413,
            "options-too-large",
        ),
        case(
            "work-over-megapixel-frames",
            "2 photos × 50 s of 3840×2160 at 60 fps: within the length limit (100 s), 49766 \
             megapixel-frames of work against a limit of 40000",
            photos_with_options(
                2,
                r#"{"width": 3840, "height": 2160, "fps": 60, "seconds_per_image": 50}"#,
            ),
            422,
            "invalid-options",
        ),
        case(
            "video-over-max-seconds",
            "2 photos × 60 s = 120 s, longer than max_video_seconds (100)",
            photos_with_options(2, r#"{"seconds_per_image": 60}"#),
            422,
            "invalid-options",
        ),
    ]
}

fn http() -> Vec<Case> {
    let job = format!("/v1/jobs/{UNKNOWN_JOB}");
    vec![
        wrong_method("put-jobs-collection", "PUT", "/v1/jobs", "GET"),
        case(
            "list-with-a-bad-limit",
            "a page size out of range",
            Request::new("GET", "/v1/jobs?limit=0"),
            422,
            "invalid-query",
        ),
        wrong_method("delete-jobs-collection", "DELETE", "/v1/jobs", "POST"),
        wrong_method("options-jobs-collection", "OPTIONS", "/v1/jobs", "POST"),
        wrong_method("put-job", "PUT", &job, "GET"),
        wrong_method("patch-job", "PATCH", &job, "DELETE"),
        case(
            "delete-unknown-job",
            "deleting a job that does not exist",
            Request::new("DELETE", &job),
            404,
            "not-found",
        ),
        wrong_method("post-video", "POST", &format!("{job}/video"), "GET"),
        wrong_method("post-healthz", "POST", "/healthz", "GET"),
        wrong_method("delete-readyz", "DELETE", "/readyz", "GET"),
        wrong_method("post-files", "POST", "/files/outputs/x/video.mp4", "GET"),
        case(
            "unknown-route",
            "no such route",
            Request::new("GET", "/nope"),
            404,
            "not-found",
        ),
        case(
            "unknown-api-version",
            "a version that does not exist",
            Request::new("GET", "/v2/jobs"),
            404,
            "not-found",
        ),
        case(
            "jobs-trailing-slash",
            "`/v1/jobs/` names no job",
            Request::new("GET", "/v1/jobs/"),
            404,
            "not-found",
        ),
        case(
            "unknown-job-subresource",
            "a job has no `/subtitles` route",
            Request::new("GET", format!("{job}/subtitles")),
            404,
            "not-found",
        ),
        case(
            "job-id-not-uuid",
            "an id that is not a UUID names no job",
            Request::new("GET", "/v1/jobs/not-a-uuid"),
            404,
            "not-found",
        ),
        case(
            "video-job-id-not-uuid",
            "the same on the video route",
            Request::new("GET", "/v1/jobs/123/video"),
            404,
            "not-found",
        ),
        case(
            "job-id-sql-injection",
            "an id that is SQL: not a UUID, and never reaches the database",
            Request::new("GET", "/v1/jobs/1'%20OR%20'1'='1"),
            404,
            "not-found",
        ),
        case(
            "job-id-traversal",
            "an encoded `../../etc/passwd` as the id",
            Request::new("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd"),
            404,
            "not-found",
        ),
        case(
            "job-id-nul-byte",
            "an id of one NUL byte (`%00`)",
            Request::new("GET", "/v1/jobs/%00"),
            404,
            "not-found",
        ),
        case(
            "unknown-job",
            "a well-formed id of no job",
            Request::new("GET", job.clone()),
            404,
            "not-found",
        ),
        case(
            "unknown-job-video",
            "the video of no job",
            Request::new("GET", format!("{job}/video")),
            404,
            "not-found",
        ),
        case(
            "path-not-utf8",
            "`%FF` decodes to a byte that is not UTF-8: the request cannot be read",
            Request::new("GET", "/v1/jobs/%FF%FE"),
            400,
            "bad-request",
        ),
        case(
            "files-path-not-utf8",
            "the same on the download route",
            Request::new("GET", "/files/outputs/%FF/video.mp4?expires=1&signature=00"),
            400,
            "bad-request",
        ),
        case(
            "accept-html-on-job",
            "a client that takes only HTML on a JSON route",
            Request::new("GET", job.clone()).header("accept", "text/html"),
            406,
            "not-acceptable",
        ),
        case(
            "accept-json-q0-on-healthz",
            "`application/json;q=0` refuses JSON explicitly",
            Request::new("GET", "/healthz").header("accept", "application/json;q=0"),
            406,
            "not-acceptable",
        ),
        case(
            "accept-html-on-submit",
            "a valid upload from a client that takes only HTML: refused before it is read, so no \
             job is made for an answer the client cannot take",
            one_image("a.jpg", &jpeg()).header("accept", "text/html"),
            406,
            "not-acceptable",
        ),
        case(
            "content-length-over-body-cap",
            "a Content-Length over the whole-body cap (max_total_bytes + 16 MiB): refused before \
             the body is read",
            upload(Vec::new()).header("content-length", (body_cap() + 1).to_string()),
            413,
            "upload-too-large",
        ),
    ]
}

fn downloads() -> Vec<Case> {
    vec![
        case(
            "download-without-signature",
            "a download path with no query: no signature to check",
            Request::new("GET", "/files/outputs/x/video.mp4"),
            403,
            "bad-signature",
        ),
        case(
            "download-bad-signature",
            "a signature that is not the server's",
            Request::new(
                "GET",
                "/files/outputs/x/video.mp4?expires=99999999999&signature=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            ),
            403,
            "bad-signature",
        ),
        case(
            "download-signature-not-hex",
            "a signature that is not even hex",
            Request::new(
                "GET",
                "/files/outputs/x/video.mp4?expires=99999999999&signature=zz",
            ),
            403,
            "bad-signature",
        ),
        case(
            "download-expires-not-a-number",
            "an expiry that does not parse: as invalid as a wrong signature",
            Request::new(
                "GET",
                "/files/outputs/x/video.mp4?expires=soon&signature=00",
            ),
            403,
            "bad-signature",
        ),
        case(
            "download-dotdot-unsigned",
            "`/files/../url-signing.key` with a made-up signature: refused, the key never read",
            Request::new(
                "GET",
                "/files/../url-signing.key?expires=99999999999&signature=00",
            ),
            403,
            "bad-signature",
        ),
        case(
            "download-duplicate-expires",
            "`expires` given twice: which one was signed is ambiguous, so neither is",
            Request::new(
                "GET",
                "/files/outputs/x/video.mp4?expires=1&expires=99999999999&signature=00",
            ),
            403,
            "bad-signature",
        ),
        case(
            "download-empty-key",
            "`/files/` names no file",
            Request::new("GET", "/files/"),
            404,
            "not-found",
        ),
    ]
}
