//! Composing one output frame: sample each visible photo's plate through its motion rectangle,
//! plane by plane, and join the two photos of a transition.
//!
//! Plates are yuv420p ([`YuvPlate`]) and so is the frame: the luma plane is sampled at the
//! canvas size and the chroma planes at half of it through the half-size rectangle, which
//! puts their samples where yuv420p's chroma sits (the centre of each 2×2 block). Blends are the
//! same per-byte mix on every plane (the colour conversion is affine, so mixing yuv is mixing
//! RGB), a third of the bytes RGBx would take.
//!
//! Frames are independent, so the pipeline composes several at once; each composition borrows a
//! [`Scratch`] (a sampler and a second frame) from a small pool instead of allocating per frame.
//! Every transition costs at most what a crossfade does: two samples and one pass over the frame
//! (slides and wipes copy rows instead of blending; fades sample one photo).

use std::sync::{Mutex, PoisonError};

use minimoto_common::spec::{Motion, TransitionKind};

use super::{
    RenderError,
    fit::internal,
    motion::{self, CropRect},
    sample::Sampler,
    timeline::{Blend, Layer},
    yuv::{self, YuvPlate},
};

/// How much closer the `zoom` transition brings the outgoing photo by its end (and the incoming
/// one at its start).
const TRANSITION_ZOOM: f64 = 1.5;

/// Luma and chroma of the colours the fades pass through (BT.709 limited range).
const BLACK: [u8; 3] = [16, 128, 128];
const WHITE: [u8; 3] = [235, 128, 128];

/// Per-composition working memory: the sampler's tables and a second yuv frame.
#[derive(Debug, Default)]
pub struct Scratch {
    sampler: Sampler,
    over: Vec<u8>,
}

/// Scratch buffers shared by the compose threads; one per concurrent composition, dropped with
/// the render (not kept in thread-locals, which would pin the memory after the job).
#[derive(Debug, Default)]
pub struct ScratchPool(Mutex<Vec<Scratch>>);

impl ScratchPool {
    pub fn take(&self) -> Scratch {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    pub fn give(&self, scratch: Scratch) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(scratch);
    }
}

/// The fixed facts of a render that every frame needs.
#[derive(Debug, Clone, Copy)]
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pub motion: Motion,
    /// The job's `motion_strength`.
    pub strength: f64,
}

impl Canvas {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Its luma and chroma plane sizes.
    fn planes(&self) -> ((usize, usize), (usize, usize)) {
        let (w, h) = (self.width as usize, self.height as usize);
        ((w, h), (w / 2, h / 2))
    }

    /// The rectangle of a `plate`-sized plate that photo `layer` shows in this frame.
    pub fn crop(&self, plate: (u32, u32), layer: Layer) -> CropRect {
        motion::rect(
            self.motion,
            layer.photo,
            layer.t,
            self.strength,
            plate,
            self.size(),
        )
    }
}

/// Composes one frame into `out` (yuv420p, [`yuv::frame_len`] bytes).
pub fn compose(
    scratch: &mut Scratch,
    canvas: Canvas,
    base: (&YuvPlate, Layer),
    blend: Option<(&YuvPlate, Blend)>,
    out: &mut [u8],
) -> Result<(), RenderError> {
    if out.len() != yuv::frame_len(canvas.width, canvas.height) {
        return Err(internal("the frame buffer does not match the canvas"));
    }
    let Scratch { sampler, over } = scratch;
    let old = (base.0, canvas.crop(base.0.size(), base.1));
    match blend {
        None => sample(sampler, canvas, old, out),
        Some((plate, blend)) => {
            let new = (plate, canvas.crop(plate.size(), blend.layer));
            transition(sampler, canvas, old, new, blend, out, over)
        }
    }
}

/// A transition frame into `frame`, `over` being the second buffer.
fn transition(
    sampler: &mut Sampler,
    canvas: Canvas,
    old: (&YuvPlate, CropRect),
    new: (&YuvPlate, CropRect),
    blend: Blend,
    frame: &mut [u8],
    over: &mut Vec<u8>,
) -> Result<(), RenderError> {
    use TransitionKind as K;
    let w = blend.weight.clamp(0.0, 1.0);
    let fade_to = match blend.kind {
        K::FadeBlack => Some(BLACK),
        K::FadeWhite => Some(WHITE),
        _ => None,
    };
    if let Some(colour) = fade_to {
        // The first half fades the old photo out, the second fades the new one in: one sample.
        let (photo, weight) = if w < 0.5 {
            (old, 2.0 * w)
        } else {
            (new, 2.0 - 2.0 * w)
        };
        sample(sampler, canvas, photo, frame)?;
        for (plane, value) in yuv::planes_mut(frame, canvas.width, canvas.height)
            .into_iter()
            .zip(colour)
        {
            mix_towards(plane, value, weight);
        }
        return Ok(());
    }
    over.resize(frame.len(), 0);
    let (old, new) = if blend.kind == K::Zoom {
        let closer = |by: f32| 1.0 + (TRANSITION_ZOOM - 1.0) * f64::from(by);
        (
            (old.0, old.1.zoomed(closer(w))),
            (new.0, new.1.zoomed(closer(1.0 - w))),
        )
    } else {
        (old, new)
    };
    sample(sampler, canvas, old, frame)?;
    sample(sampler, canvas, new, over)?;
    // Whole chroma samples: luma moves by an even number of pixels.
    let across =
        |side: usize| (((f64::from(w) * side as f64) / 2.0).round() as usize * 2).min(side);
    let (d_x, d_y) = (
        across(canvas.width as usize),
        across(canvas.height as usize),
    );
    let ((lw, _), (cw, _)) = canvas.planes();
    let frames = yuv::planes_mut(frame, canvas.width, canvas.height);
    let overs = yuv::planes(over, canvas.width, canvas.height);
    for (i, (f, o)) in frames.into_iter().zip(overs).enumerate() {
        // The luma plane moves d, the chroma planes d / 2.
        let (row, shift) = if i == 0 { (lw, 1) } else { (cw, 2) };
        match blend.kind {
            // Across: each row of the plane on its own, `d` pixels.
            K::SlideLeft | K::SlideRight | K::WipeLeft | K::WipeRight => {
                let d = d_x / shift;
                for (f, o) in f.chunks_exact_mut(row).zip(o.chunks_exact(row)) {
                    slide_or_wipe(blend.kind, f, o, d);
                }
            }
            // Down: the whole plane as one line, `d` rows of bytes.
            K::SlideUp | K::SlideDown | K::WipeUp | K::WipeDown => {
                slide_or_wipe(blend.kind, f, o, row * (d_y / shift));
            }
            _ => crossfade(f, o, w),
        }
    }
    Ok(())
}

/// A slide or wipe `d` bytes into one line of `frame` (a row, or a whole plane for the vertical
/// kinds), `over` being the new photo's line.
fn slide_or_wipe(kind: TransitionKind, frame: &mut [u8], over: &[u8], d: usize) {
    use TransitionKind as K;
    let all = frame.len();
    match kind {
        // The new photo enters from the right (bottom), pushing the old one out.
        K::SlideLeft | K::SlideUp => {
            frame.copy_within(d.., 0);
            frame[all - d..].copy_from_slice(&over[..d]);
        }
        K::SlideRight | K::SlideDown => {
            frame.copy_within(..all - d, d);
            frame[..d].copy_from_slice(&over[all - d..]);
        }
        // The edge moves from the right (bottom) side, revealing the new photo.
        K::WipeLeft | K::WipeUp => frame[all - d..].copy_from_slice(&over[all - d..]),
        _ => frame[..d].copy_from_slice(&over[..d]),
    }
}

/// Samples `rect` of `plate` into the yuv420p frame `dst`: luma at the canvas size, chroma at
/// half of it through the half-size rectangle. Bilinear, two taps a side ([`crate::sample`]).
fn sample(
    sampler: &mut Sampler,
    canvas: Canvas,
    (plate, r): (&YuvPlate, CropRect),
    dst: &mut [u8],
) -> Result<(), RenderError> {
    let (luma, chroma) = canvas.planes();
    let [y, u, v] = yuv::planes_mut(dst, canvas.width, canvas.height);
    let full = (plate.width as usize, plate.height as usize);
    sampler.prepare(full, r, luma)?;
    sampler.draw(&plate.y, y)?;
    let half = CropRect {
        left: r.left / 2.0,
        top: r.top / 2.0,
        width: r.width / 2.0,
        height: r.height / 2.0,
    };
    sampler.prepare(plate.half(), half, chroma)?;
    sampler.draw(&plate.u, u)?;
    sampler.draw(&plate.v, v)
}

/// `base = base·(1 − weight) + over·weight`, per byte, in 8.8 fixed point.
fn crossfade(base: &mut [u8], over: &[u8], weight: f32) {
    let (w, keep) = fixed(weight);
    for (b, &o) in base.iter_mut().zip(over) {
        *b = mix(*b, keep, o, w);
    }
}

/// `base = base·(1 − weight) + value·weight`.
fn mix_towards(base: &mut [u8], value: u8, weight: f32) {
    let (w, keep) = fixed(weight);
    for b in base.iter_mut() {
        *b = mix(*b, keep, value, w);
    }
}

/// A weight in 8.8 fixed point, and its complement.
fn fixed(weight: f32) -> (u16, u16) {
    let w = (weight.clamp(0.0, 1.0) * 256.0).round() as u16;
    (w, 256 - w)
}

#[inline]
fn mix(a: u8, keep: u16, b: u8, w: u16) -> u8 {
    // ≤ 255·256 + 128: fits in u16. Wrapping ops only to skip overflow checks in dev builds,
    // which would stop the loops from vectorising.
    let mixed = u16::from(a)
        .wrapping_mul(keep)
        .wrapping_add(u16::from(b).wrapping_mul(w));
    (mixed.wrapping_add(128) >> 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Plate;

    const W: u32 = 32;
    const H: u32 = 16;

    fn yuv(plate: &Plate) -> YuvPlate {
        YuvPlate::from_rgbx(plate).expect("convert")
    }

    fn plate(w: u32, h: u32, rgb: [u8; 3]) -> YuvPlate {
        yuv(&Plate {
            width: w,
            height: h,
            pixels: [rgb[0], rgb[1], rgb[2], 255].repeat((w * h) as usize),
        })
    }

    /// A plate whose grey rises from left to right (8 levels a column).
    fn ramp() -> YuvPlate {
        let pixels = (0..W * H)
            .flat_map(|i| {
                let v = (i % W * 8) as u8;
                [v, v, v, 255]
            })
            .collect();
        yuv(&Plate {
            width: W,
            height: H,
            pixels,
        })
    }

    fn still() -> Canvas {
        Canvas {
            width: W,
            height: H,
            motion: Motion::None,
            strength: 1.0,
        }
    }

    fn layer(photo: usize) -> Layer {
        Layer { photo, t: 0.5 }
    }

    /// The luma of the composed frame at (`x`, `y`).
    fn luma(frame: &[u8], x: u32, y: u32) -> u8 {
        frame[(y * W + x) as usize]
    }

    fn frame(a: &YuvPlate, b: Option<(&YuvPlate, TransitionKind, f32)>) -> Vec<u8> {
        let mut out = vec![0; yuv::frame_len(W, H)];
        let blend = b.map(|(p, kind, weight)| {
            let blend = Blend {
                layer: layer(1),
                weight,
                kind,
            };
            (p, blend)
        });
        compose(
            &mut Scratch::default(),
            still(),
            (a, layer(0)),
            blend,
            &mut out,
        )
        .expect("compose");
        out
    }

    #[test]
    fn crossfade_weights_the_incoming_frame() {
        let mut base = vec![0, 100, 200, 255];
        crossfade(&mut base, &[255, 100, 0, 255], 0.25);
        assert_eq!(base, [64, 100, 150, 255]);
        let mut base = vec![10; 4];
        crossfade(&mut base, &[250; 4], 1.0);
        assert_eq!(base, [250; 4]);
    }

    #[test]
    fn a_blended_frame_is_between_its_photos() {
        let canvas = Canvas {
            motion: Motion::KenBurns,
            ..still()
        };
        let (a, b) = (plate(38, 18, [200, 0, 0]), plate(38, 18, [0, 0, 200]));
        let mut scratch = Scratch::default();
        let mut out = vec![0; yuv::frame_len(W, H)];
        compose(&mut scratch, canvas, (&a, layer(0)), None, &mut out).expect("compose");
        let (y_red, v_red) = (out[0], out[32 * 16 + 16 * 8 + 10]);
        let blend = Blend {
            layer: layer(1),
            weight: 0.5,
            kind: TransitionKind::Crossfade,
        };
        compose(
            &mut scratch,
            canvas,
            (&a, layer(0)),
            Some((&b, blend)),
            &mut out,
        )
        .expect("compose");
        let (y_mix, v_mix) = (out[0], out[32 * 16 + 16 * 8 + 10]);
        assert!(v_mix < v_red && v_mix > 128, "{v_red} {v_mix}");
        assert!(y_mix != y_red);
    }

    #[test]
    fn halfway_through_a_slide_or_wipe_each_photo_has_its_half() {
        use TransitionKind as K;
        let (a, b) = (plate(W, H, [200, 0, 0]), plate(W, H, [0, 0, 200]));
        let (ya, yb) = (luma(&frame(&a, None), 0, 0), luma(&frame(&b, None), 0, 0));
        assert_ne!(ya, yb);
        // (kind, where the old photo still is: left, right, top, bottom)
        for (kind, old_at) in [
            (K::SlideLeft, "left"),
            (K::WipeLeft, "left"),
            (K::SlideRight, "right"),
            (K::WipeRight, "right"),
            (K::SlideUp, "top"),
            (K::WipeUp, "top"),
            (K::SlideDown, "bottom"),
            (K::WipeDown, "bottom"),
        ] {
            let f = frame(&a, Some((&b, kind, 0.5)));
            let (first, second) = match old_at {
                "left" | "right" => (luma(&f, 2, 8), luma(&f, W - 3, 8)),
                _ => (luma(&f, 16, 1), luma(&f, 16, H - 2)),
            };
            let expected = if matches!(old_at, "left" | "top") {
                (ya, yb)
            } else {
                (yb, ya)
            };
            assert_eq!((first, second), expected, "{kind:?}");
        }
    }

    #[test]
    fn a_slide_moves_the_old_photo_and_a_wipe_does_not() {
        let (old, new) = (ramp(), plate(W, H, [0, 0, 200]));
        let alone = frame(&old, None);
        // A quarter of the way: 8 columns of the new photo.
        let slid = frame(&old, Some((&new, TransitionKind::SlideLeft, 0.25)));
        let wiped = frame(&old, Some((&new, TransitionKind::WipeLeft, 0.25)));
        for x in 0..W - 8 {
            assert_eq!(
                luma(&slid, x, 4),
                luma(&alone, x + 8, 4),
                "slide, column {x}"
            );
            assert_eq!(luma(&wiped, x, 4), luma(&alone, x, 4), "wipe, column {x}");
        }
        let ynew = luma(&frame(&new, None), 0, 0);
        assert_eq!(luma(&slid, W - 1, 4), ynew);
        assert_eq!(luma(&wiped, W - 1, 4), ynew);
    }

    #[test]
    fn fades_pass_through_their_colour_at_the_cut() {
        let (a, b) = (plate(W, H, [200, 0, 0]), plate(W, H, [0, 0, 200]));
        // Limited-range luma: black is 16, white 235.
        let black = frame(&a, Some((&b, TransitionKind::FadeBlack, 0.5)));
        assert!(
            black[..(W * H) as usize].iter().all(|&y| y == 16),
            "{:?}",
            &black[..4]
        );
        let white = frame(&a, Some((&b, TransitionKind::FadeWhite, 0.5)));
        assert!(
            white[..(W * H) as usize].iter().all(|&y| y == 235),
            "{:?}",
            &white[..4]
        );
        // Before the cut only the old photo shows, darkened; after it only the new one.
        let ya = luma(&frame(&a, None), 0, 0);
        let early = luma(&frame(&a, Some((&b, TransitionKind::FadeBlack, 0.2))), 0, 0);
        assert!(early < ya && early > 16, "{ya} {early}");
        let yb = luma(&frame(&b, None), 0, 0);
        let late = luma(&frame(&a, Some((&b, TransitionKind::FadeBlack, 0.9))), 0, 0);
        assert!(late < yb + 2 && late > 16, "{yb} {late}");
    }

    #[test]
    fn the_zoom_transition_blends_a_closer_view() {
        // The old photo's ramp, zoomed in at the end of the transition: its left edge brightens.
        let (old, new) = (ramp(), ramp());
        let alone = frame(&old, None);
        let zoomed = frame(&old, Some((&new, TransitionKind::Zoom, 0.5)));
        assert!(luma(&zoomed, 0, 8) > luma(&alone, 0, 8) + 10);
        assert!(luma(&zoomed, W - 1, 8) < luma(&alone, W - 1, 8) - 10);
    }
}
