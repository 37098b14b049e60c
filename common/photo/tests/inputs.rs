//! Inputs beyond a baseline RGB JPEG, made here: CMYK and progressive JPEGs, a 16-bit PNG, and
//! animated GIF and WebP (their first frame), each decoded to the picture it holds.

use std::path::{Path, PathBuf};

use image::{
    Delay, DynamicImage, Frame, ImageBuffer, ImageFormat, Rgb, Rgba, RgbaImage,
    codecs::gif::GifEncoder,
};
use jpeg_encoder::{ColorType, Encoder};
use minimoto_common::limits::Limits;
use minimoto_photo::{decode, decode_scaled, inspect};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}

fn close(got: [u8; 3], want: [u8; 3], tolerance: u8) -> bool {
    got.iter()
        .zip(want)
        .all(|(&g, w)| g.abs_diff(w) <= tolerance)
}

/// The colour at the centre of each half (left, right) of a decoded photo.
fn halves(path: &Path) -> ([u8; 3], [u8; 3]) {
    let image = decode(path, &Limits::default(), [0; 3]).expect("decodes");
    let (w, h) = image.dimensions();
    (
        image.get_pixel(w / 4, h / 2).0,
        image.get_pixel(3 * w / 4, h / 2).0,
    )
}

/// 64 × 32: red on the left, blue on the right, as CMYK ink (0 none, 255 full).
fn cmyk_halves() -> Vec<u8> {
    (0..32)
        .flat_map(|_| {
            (0..64).flat_map(|x| {
                if x < 32 {
                    [0, 255, 255, 0]
                } else {
                    [255, 255, 0, 0]
                }
            })
        })
        .collect()
}

#[test]
fn cmyk_jpegs_decode_to_their_colours_at_full_size_and_scaled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bytes = Vec::new();
    Encoder::new(&mut bytes, 95)
        .encode(&cmyk_halves(), 64, 32, ColorType::Cmyk)
        .expect("encode CMYK");
    let path = write(dir.path(), "cmyk.jpg", &bytes);
    let info = inspect(&path, &Limits::default()).expect("inspects");
    assert_eq!((info.format, info.width, info.height), ("jpeg", 64, 32));
    let (left, right) = halves(&path);
    assert!(close(left, [255, 0, 0], 30), "left {left:?}");
    assert!(close(right, [0, 0, 255], 30), "right {right:?}");
    // The scaling decoder declines CMYK and the full decode serves it instead.
    let scaled = decode_scaled(&path, &Limits::default(), [0; 3], |_| 0.25).expect("decodes");
    assert!(
        close(scaled.get_pixel(8, 16).0, [255, 0, 0], 30),
        "{:?}",
        scaled.get_pixel(8, 16)
    );
}

#[test]
fn progressive_jpegs_decode_like_baseline_ones_at_full_size_and_scaled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rgb: Vec<u8> = (0..256u32)
        .flat_map(|y| (0..256u32).flat_map(move |x| [x as u8, y as u8, 128]))
        .collect();
    let encode = |progressive: bool| {
        let mut bytes = Vec::new();
        let mut encoder = Encoder::new(&mut bytes, 90);
        encoder.set_progressive(progressive);
        encoder
            .encode(&rgb, 256, 256, ColorType::Rgb)
            .expect("encode");
        bytes
    };
    let (baseline, progressive) = (encode(false), encode(true));
    assert_ne!(baseline, progressive);
    let (b, p) = (
        write(dir.path(), "b.jpg", &baseline),
        write(dir.path(), "p.jpg", &progressive),
    );
    for scale in [1.0, 0.5, 0.125] {
        let decoded = |path: &Path| {
            decode_scaled(path, &Limits::default(), [0; 3], |_| scale).expect("decodes")
        };
        let (b, p) = (decoded(&b), decoded(&p));
        assert_eq!(b.dimensions(), p.dimensions(), "at {scale}");
        let worst = b
            .as_raw()
            .iter()
            .zip(p.as_raw())
            .map(|(x, y)| x.abs_diff(*y))
            .max();
        assert!(
            worst <= Some(6),
            "at {scale}: pixels differ by up to {worst:?}"
        );
    }
}

#[test]
fn a_16_bit_png_decodes_to_8_bits_rounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wide: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(40, 20, |x, _| {
        if x < 20 {
            Rgb([65535, 32896, 0])
        } else {
            Rgb([0, 257 * 10, 65535])
        }
    });
    let path = dir.path().join("wide.png");
    DynamicImage::ImageRgb16(wide)
        .save_with_format(&path, ImageFormat::Png)
        .expect("save");
    let (left, right) = halves(&path);
    assert_eq!(left, [255, 128, 0]);
    assert_eq!(right, [0, 10, 255]);
    // Streamed and reduced, the same colours.
    let scaled = decode_scaled(&path, &Limits::default(), [0; 3], |_| 0.5).expect("decodes");
    assert_eq!(scaled.dimensions(), (20, 10));
    assert_eq!(scaled.get_pixel(4, 5).0, [255, 128, 0]);
}

#[test]
fn animated_gif_and_webp_give_their_first_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let frame = |rgb: [u8; 3]| {
        Frame::from_parts(
            RgbaImage::from_pixel(32, 24, Rgba([rgb[0], rgb[1], rgb[2], 255])),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    };
    let mut gif = Vec::new();
    GifEncoder::new(&mut gif)
        .encode_frames([
            frame([250, 20, 20]),
            frame([20, 250, 20]),
            frame([20, 20, 250]),
        ])
        .expect("encode gif");
    let path = write(dir.path(), "a.gif", &gif);
    let (left, _) = halves(&path);
    assert!(close(left, [250, 20, 20], 8), "gif first frame {left:?}");

    // Animated WebP: made by ffmpeg (image writes only still WebP).
    let webp = dir.path().join("a.webp");
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "color=c=0xdc1e1e:s=32x24:r=10:d=0.3",
        ])
        .args(["-f", "lavfi", "-i", "color=c=0x1e1edc:s=32x24:r=10:d=0.3"])
        .args(["-filter_complex", "[0:v][1:v]concat=n=2:v=1,format=bgra"])
        .args(["-c:v", "libwebp_anim", "-lossless", "1", "-loop", "0"])
        .arg(&webp)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&webp).expect("read");
    assert!(bytes.windows(4).any(|w| w == b"ANIM"), "an animated WebP");
    let info = inspect(&webp, &Limits::default()).expect("inspects");
    assert_eq!((info.format, info.width, info.height), ("webp", 32, 24));
    let (left, _) = halves(&webp);
    assert!(close(left, [220, 30, 30], 8), "webp first frame {left:?}");
}
