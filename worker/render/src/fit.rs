//! Fitting a decoded photo to the canvas: the "plate" every frame of that photo is sampled from.
//!
//! A plate is the photo already scaled close to the output size (so per-frame sampling is cheap
//! and the full-size photo can be dropped at once), fitted here in RGBx (what `fast_image_resize`
//! resamples fastest) and then converted to yuv420p once ([`crate::yuv::YuvPlate`]), the form
//! frames are sampled from. With motion the plate is [`headroom`] larger than the canvas, so even
//! the most zoomed-in frame is downsampled, never upscaled. With Ken Burns and
//! `cover`, a photo of another shape (a portrait photo in a landscape video) gets a longer plate,
//! as much more of its long side as the camera travels along it ([`plate_for`]).

use fast_image_resize::{
    FilterType, ResizeAlg, ResizeOptions, Resizer,
    images::{TypedImage, TypedImageRef},
    pixels::U8x4,
};
use image::{RgbImage, RgbaImage};
use minimoto_common::spec::{Fit, Motion, Rgb};

use super::RenderError;

/// How much larger than the canvas a plate is when the camera moves at strength 1.
pub const HEADROOM: f64 = 1.15;

/// How much larger than the canvas a plate is at `strength`: always more than the zoom
/// ([`crate::motion::zoom_at`]), so the most zoomed-in rectangle still covers the canvas.
pub fn headroom(strength: f64) -> f64 {
    1.0 + (HEADROOM - 1.0) * strength.max(0.0)
}

/// A photo fitted to (a little more than) the canvas, RGBx with x = 255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plate {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// The plate size for a canvas (even sides): the canvas itself when nothing moves.
pub fn plate_size(canvas: (u32, u32), motion: Motion, strength: f64) -> (u32, u32) {
    if motion == Motion::None {
        return canvas;
    }
    let grow = |side: u32| even(f64::from(side) * headroom(strength));
    (grow(canvas.0), grow(canvas.1))
}

/// The nearest even number of pixels (at least 2): plates become yuv420p, whose chroma planes
/// are half the size.
fn even(side: f64) -> u32 {
    ((side / 2.0).round() as u32).max(1) * 2
}

/// How fast the camera travels along a long photo (Ken Burns, `cover`): in canvas heights (or
/// widths) a second at strength 1: a gentle pan (a canvas width in 6.7 s), 3.6 px a frame down a
/// portrait photo at 720p30, 6.4 px along a panorama.
pub const LONG_PAN_SPEED: f64 = 0.15;
/// A long plate is at most this many times the usual plate's side (it bounds the memory held).
pub const MAX_LONG: f64 = 2.0;

/// The plate of a `photo`-sized picture shown `seconds`: [`plate_size`], except with Ken Burns
/// and `cover` for a photo of another shape than the canvas, where the plate keeps the usual
/// short side and is longer along the photo's long side by the distance the camera travels
/// ([`LONG_PAN_SPEED`]), as far as the photo reaches and at most [`MAX_LONG`] times.
pub fn plate_for(
    canvas: (u32, u32),
    photo: (u32, u32),
    motion: Motion,
    strength: f64,
    mode: Fit,
    seconds: f64,
) -> (u32, u32) {
    let base = plate_size(canvas, motion, strength);
    if mode != Fit::Cover || motion != Motion::KenBurns || strength <= 0.0 {
        return base;
    }
    let (pw, ph) = (f64::from(base.0), f64::from(base.1));
    let aspect = f64::from(photo.0.max(1)) / f64::from(photo.1.max(1));
    let travel = LONG_PAN_SPEED * strength * seconds.max(0.0);
    let longer = |side: f64, canvas_side: u32, reach: f64| {
        let wanted = side + travel * f64::from(canvas_side);
        even(wanted.min(side * MAX_LONG).min(reach).max(side))
    };
    if aspect < pw / ph {
        (base.0, longer(ph, canvas.1, pw / aspect))
    } else {
        (longer(pw, canvas.0, ph * aspect), base.1)
    }
}

/// The smallest scale of a `photo`-sized image that still fills its part of the plate without
/// upscaling: a decoder may shrink the photo to that (see `photo::decode_scaled`) and [`fit`]
/// gives the same plate, for much less work and memory.
pub fn min_scale(photo: (u32, u32), plate: (u32, u32), mode: Fit) -> f64 {
    let sx = f64::from(plate.0) / f64::from(photo.0.max(1));
    let sy = f64::from(plate.1) / f64::from(photo.1.max(1));
    match mode {
        Fit::Cover => sx.max(sy),
        Fit::Contain | Fit::Blur => sx.min(sy),
    }
}

/// Builds the plate of `photo` for the given fit mode.
///
/// The photo is widened to RGBx first, so every resize runs on one pixel type: each pixel type
/// `fast_image_resize` is used with compiles its whole set of SIMD kernels again (half of this
/// crate's build time was the RGB set).
pub fn fit(
    photo: &RgbImage,
    plate: (u32, u32),
    mode: Fit,
    background: Rgb,
) -> Result<Plate, RenderError> {
    let photo = to_rgbx(photo)?;
    let (pw, ph) = plate;
    let whole = |img: RgbaImage| Plate {
        width: img.width(),
        height: img.height(),
        pixels: img.into_raw(),
    };
    match mode {
        Fit::Cover => Ok(whole(resize(&photo, pw, ph, true, FilterType::CatmullRom)?)),
        Fit::Contain | Fit::Blur => {
            let (iw, ih) = photo.dimensions();
            let scale = (f64::from(pw) / f64::from(iw)).min(f64::from(ph) / f64::from(ih));
            let side = |s: u32, max: u32| ((f64::from(s) * scale).round() as u32).clamp(1, max);
            let (sw, sh) = (side(iw, pw), side(ih, ph));
            let contained = resize(&photo, sw, sh, false, FilterType::CatmullRom)?;
            if (sw, sh) == (pw, ph) {
                // Nothing of the backdrop would show.
                return Ok(whole(contained));
            }
            let mut out = if mode == Fit::Blur {
                blurred_backdrop(&contained, pw, ph)?
            } else {
                let [r, g, b] = background.0;
                Plate {
                    width: pw,
                    height: ph,
                    pixels: [r, g, b, 255].repeat(pw as usize * ph as usize),
                }
            };
            paste(&mut out, &contained, (pw - sw) / 2, (ph - sh) / 2);
            Ok(out)
        }
    }
}

/// A heavily blurred copy of the photo covering the plate. Blurring is done on a tiny copy and
/// scaled up: a wide blur at full size would cost more than the whole photo's frames.
fn blurred_backdrop(photo: &RgbaImage, pw: u32, ph: u32) -> Result<Plate, RenderError> {
    const SHRINK: u32 = 16;
    let (tw, th) = ((pw / SHRINK).max(4), (ph / SHRINK).max(4));
    let tiny = resize(photo, tw, th, true, FilterType::Bilinear)?;
    // The x channel is 255 everywhere, so it stays 255 through the blur.
    let blurred = image::imageops::fast_blur(&tiny, 2.5);
    let backdrop = resize(&blurred, pw, ph, false, FilterType::Bilinear)?;
    Ok(Plate {
        width: pw,
        height: ph,
        pixels: backdrop.into_raw(),
    })
}

/// Resizes an RGBx image; `cover` crops the centre to the destination's aspect ratio first.
pub(crate) fn resize(
    src: &RgbaImage,
    w: u32,
    h: u32,
    cover: bool,
    filter: FilterType,
) -> Result<RgbaImage, RenderError> {
    let view = TypedImageRef::<U8x4>::from_buffer(src.width(), src.height(), src.as_raw())
        .map_err(internal)?;
    let mut out = vec![0; w as usize * h as usize * 4];
    let mut dst = TypedImage::<U8x4>::from_buffer(w, h, &mut out).map_err(internal)?;
    let mut options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .use_alpha(false);
    if cover {
        options = options.fit_into_destination(Some((0.5, 0.5)));
    }
    Resizer::new()
        .resize_typed(&view, &mut dst, &options)
        .map_err(internal)?;
    RgbaImage::from_raw(w, h, out).ok_or_else(|| internal("resized buffer has the wrong size"))
}

/// The photo as RGBx, x = 255.
pub(crate) fn to_rgbx(rgb: &RgbImage) -> Result<RgbaImage, RenderError> {
    let mut out = Vec::with_capacity(rgb.as_raw().len() / 3 * 4);
    for px in rgb.as_raw().chunks_exact(3) {
        out.extend_from_slice(&[px[0], px[1], px[2], 255]);
    }
    RgbaImage::from_raw(rgb.width(), rgb.height(), out)
        .ok_or_else(|| internal("widened buffer has the wrong size"))
}

/// Copies `src` into `plate` with its top-left corner at (`x`, `y`); it must fit.
fn paste(plate: &mut Plate, src: &RgbaImage, x: u32, y: u32) {
    let stride = plate.width as usize * 4;
    let (x, y) = (x as usize, y as usize);
    let line = src.width() as usize * 4;
    for (row, pixels) in src.as_raw().chunks_exact(line).enumerate() {
        let start = (y + row) * stride + x * 4;
        plate.pixels[start..start + line].copy_from_slice(pixels);
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> RenderError {
    RenderError::Internal(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RED: Rgb = Rgb([255, 0, 0]);

    fn px(p: &Plate, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * p.width as usize + x as usize) * 4;
        [
            p.pixels[i],
            p.pixels[i + 1],
            p.pixels[i + 2],
            p.pixels[i + 3],
        ]
    }

    /// A portrait photo: a blue-to-green gradient, never red.
    fn portrait() -> RgbImage {
        RgbImage::from_fn(300, 600, |_, y| image::Rgb([0, (y * 255 / 600) as u8, 200]))
    }

    #[test]
    fn min_scale_covers_or_contains_the_plate() {
        let photo = (4000, 3000);
        let plate = plate_size((1280, 720), Motion::KenBurns, 1.0);
        // Cover crops the sides: the width is what must still reach 1472 (the height 828 needs less).
        let cover = min_scale(photo, plate, Fit::Cover);
        assert!((cover - 1472.0 / 4000.0).abs() < 1e-9, "{cover}");
        // Contain fits the height: 3000 → 828.
        for mode in [Fit::Contain, Fit::Blur] {
            let s = min_scale(photo, plate, mode);
            assert!((s - 828.0 / 3000.0).abs() < 1e-9, "{mode:?} {s}");
        }
        // A photo smaller than the plate would be upscaled: it needs all its pixels.
        assert!(min_scale((800, 600), plate, Fit::Contain) > 1.0);
    }

    #[test]
    fn plate_has_headroom_only_with_motion() {
        assert_eq!(plate_size((1280, 720), Motion::None, 1.0), (1280, 720));
        assert_eq!(plate_size((1280, 720), Motion::KenBurns, 1.0), (1472, 828));
    }

    #[test]
    fn a_photo_of_another_shape_gets_a_longer_plate_with_ken_burns_and_cover() {
        let canvas = (1280, 720);
        let plate =
            |photo, motion, mode, seconds| plate_for(canvas, photo, motion, 1.0, mode, seconds);
        let (kb, cover) = (Motion::KenBurns, Fit::Cover);
        // A portrait photo for 3.5 s: 0.15 × 3.5 canvas heights more of its height.
        assert_eq!(plate((1080, 1920), kb, cover, 3.5), (1472, 1206));
        // Long on screen: twice the usual height at most; a 4:3 photo ends first.
        assert_eq!(plate((1080, 1920), kb, cover, 30.0), (1472, 1656));
        assert_eq!(plate((4000, 3000), kb, cover, 30.0), (1472, 1104));
        // A panorama gets a wider plate instead.
        assert_eq!(plate((6000, 1500), kb, cover, 3.5), (2144, 828));
        // The canvas's own shape, another fit, another motion, or no strength: the usual plate.
        let usual = plate_size(canvas, kb, 1.0);
        assert_eq!(plate((1920, 1080), kb, cover, 3.5), usual);
        assert_eq!(plate((1080, 1920), kb, Fit::Blur, 3.5), usual);
        assert_eq!(plate((1080, 1920), Motion::PanLeft, cover, 3.5), usual);
        let still = plate_for(canvas, (1080, 1920), kb, 0.0, cover, 3.5);
        assert_eq!(still, plate_size(canvas, kb, 0.0));
    }

    #[test]
    fn cover_fills_the_plate() {
        let p = fit(&portrait(), (160, 90), Fit::Cover, RED).expect("fit");
        assert_eq!((p.width, p.height, p.pixels.len()), (160, 90, 160 * 90 * 4));
        for (x, y) in [(0, 0), (159, 0), (0, 89), (159, 89), (80, 45)] {
            let [r, _, b, a] = px(&p, x, y);
            assert!(
                r < 10 && b > 180 && a == 255,
                "({x},{y}) {:?}",
                px(&p, x, y)
            );
        }
    }

    #[test]
    fn contain_centres_the_photo_over_the_background() {
        let p = fit(&portrait(), (160, 90), Fit::Contain, RED).expect("fit");
        // 300×600 into 160×90: 45×90, centred at x 57..102.
        assert_eq!(px(&p, 0, 45), [255, 0, 0, 255]);
        assert_eq!(px(&p, 159, 45), [255, 0, 0, 255]);
        let [r, _, b, _] = px(&p, 80, 45);
        assert!(r < 10 && b > 180);
    }

    #[test]
    fn blur_fills_the_border_with_the_photo_not_the_background() {
        let p = fit(&portrait(), (160, 90), Fit::Blur, RED).expect("fit");
        for (x, y) in [(0, 45), (159, 45), (2, 2)] {
            let [r, _, b, a] = px(&p, x, y);
            assert!(
                r < 10 && b > 150 && a == 255,
                "({x},{y}) {:?}",
                px(&p, x, y)
            );
        }
    }

    #[test]
    fn same_aspect_contain_is_a_plain_resize() {
        let photo = RgbImage::from_pixel(320, 180, image::Rgb([9, 99, 199]));
        for mode in [Fit::Contain, Fit::Blur, Fit::Cover] {
            let p = fit(&photo, (160, 90), mode, RED).expect("fit");
            assert!(
                p.pixels.chunks_exact(4).all(|c| c == [9, 99, 199, 255]),
                "{mode:?}"
            );
        }
    }
}
