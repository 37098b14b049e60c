//! Camera motion: per frame, the rectangle of the plate that becomes the frame.
//!
//! The rectangle is computed in `f64` and resampled with a sub-pixel crop, never rounded to whole
//! pixels: ffmpeg's `zoompan` rounds per frame and slow zooms visibly step 0/1/0 px ("jitter").
//! Ken Burns zooms each photo in or out (alternating) while drifting towards or away from a point
//! off-centre; the direction varies per photo but is a pure function of its index, so a re-run
//! renders the same video. Zooms and pans are the same path with fixed directions. Every move is
//! scaled by the job's `motion_strength`.

use std::f64::consts::PI;

use minimoto_common::spec::Motion;

/// How much the camera zooms over one photo at strength 1 (12 %). Together with the plate's
/// headroom (`fit::headroom`) this keeps the sampled rectangle at least canvas-sized: the frame is
/// never upscaled from the plate.
pub const ZOOM: f64 = 1.12;
/// How far towards the edge of the available room the Ken Burns pan goes (of the maximum that
/// stays inside).
const PAN: f64 = 0.8;
/// How much of the room a straight pan crosses: nearly all of it.
const SWEEP: f64 = 0.95;

/// A rectangle of the plate, in plate pixels (sub-pixel).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropRect {
    pub left: f64,
    pub top: f64,
    pub width: f64,
    pub height: f64,
}

impl CropRect {
    /// The same centre, `factor` times closer (2 shows half the width and height).
    pub fn zoomed(self, factor: f64) -> Self {
        let (width, height) = (self.width / factor, self.height / factor);
        Self {
            left: self.left + (self.width - width) / 2.0,
            top: self.top + (self.height - height) / 2.0,
            width,
            height,
        }
    }
}

/// The largest rectangle with the canvas's aspect ratio, centred in the plate: the still frame.
pub fn full(plate: (u32, u32), canvas: (u32, u32)) -> CropRect {
    let (pw, ph) = (f64::from(plate.0), f64::from(plate.1));
    let aspect = f64::from(canvas.0) / f64::from(canvas.1);
    let (width, height) = if pw / ph > aspect {
        (ph * aspect, ph)
    } else {
        (pw, pw / aspect)
    };
    CropRect {
        left: (pw - width) / 2.0,
        top: (ph - height) / 2.0,
        width,
        height,
    }
}

/// The zoom reached at `strength` (1.12 at 1, none at 0).
pub fn zoom_at(strength: f64) -> f64 {
    1.0 + (ZOOM - 1.0) * strength.max(0.0)
}

/// The rectangle of photo `photo` at progress `t ∈ [0, 1]` of its visible span.
pub fn rect(
    motion: Motion,
    photo: usize,
    t: f64,
    strength: f64,
    plate: (u32, u32),
    canvas: (u32, u32),
) -> CropRect {
    let e = ease(t.clamp(0.0, 1.0));
    match motion {
        Motion::None => full(plate, canvas),
        Motion::KenBurns => {
            // `u` = 0: the whole plate, centred; `u` = 1: zoomed in on an off-centre point.
            let even = photo.is_multiple_of(2);
            let u = if even { e } else { 1.0 - e };
            let angle = 2.0 * PI * (photo as f64 * 0.618_033_988_749_895 + 0.125).fract();
            let pan = (u * PAN * angle.cos(), u * PAN * angle.sin());
            let r = at(plate, canvas, strength, u, pan);
            // A plate longer than the canvas's shape (`fit::plate_for`): travel along it, from
            // one end to the other (top to bottom, or left to right, for even photos).
            let wide = full(plate, canvas);
            let long = (
                (f64::from(plate.0) - wide.width) / 2.0,
                (f64::from(plate.1) - wide.height) / 2.0,
            );
            let along = if even { 2.0 * e - 1.0 } else { 1.0 - 2.0 * e };
            CropRect {
                left: r.left + along * long.0,
                top: r.top + along * long.1,
                ..r
            }
        }
        Motion::ZoomIn => at(plate, canvas, strength, e, (0.0, 0.0)),
        Motion::ZoomOut => at(plate, canvas, strength, 1.0 - e, (0.0, 0.0)),
        // The picture moves left: the camera travels from the left edge of the room to the right.
        Motion::PanLeft => at(plate, canvas, strength, 1.0, (SWEEP * (2.0 * e - 1.0), 0.0)),
        Motion::PanRight => at(plate, canvas, strength, 1.0, (SWEEP * (1.0 - 2.0 * e), 0.0)),
    }
}

/// The Ken Burns rectangle at strength 1 (see [`rect`]).
pub fn ken_burns(photo: usize, t: f64, plate: (u32, u32), canvas: (u32, u32)) -> CropRect {
    rect(Motion::KenBurns, photo, t, 1.0, plate, canvas)
}

/// The rectangle zoomed in by `u ∈ [0, 1]` of the full zoom, its centre moved by `pan` (each
/// axis in `[-1, 1]` of half the room the full zoom makes).
fn at(plate: (u32, u32), canvas: (u32, u32), strength: f64, u: f64, pan: (f64, f64)) -> CropRect {
    let wide = full(plate, canvas);
    let zoom = zoom_at(strength);
    // Geometric interpolation: the zoom speed looks constant (zoom^u), and since
    // 1 - r^u ≥ u(1 - r) a pan scaled by `u` always stays within the room the zoom has made.
    let rect = wide.zoomed(zoom.powf(u));
    let room_x = (wide.width - wide.width / zoom) / 2.0;
    let room_y = (wide.height - wide.height / zoom) / 2.0;
    CropRect {
        left: rect.left + pan.0 * room_x,
        top: rect.top + pan.1 * room_y,
        ..rect
    }
}

/// Mostly linear with eased ends: the camera never stops dead mid-crossfade, yet starts and ends
/// softly.
fn ease(t: f64) -> f64 {
    0.6 * t + 0.4 * (0.5 - 0.5 * (PI * t).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANVAS: (u32, u32) = (1280, 720);
    const PLATE: (u32, u32) = (1472, 828);

    fn inside(r: &CropRect, plate: (u32, u32)) -> bool {
        let eps = 1e-9;
        r.left >= -eps
            && r.top >= -eps
            && r.left + r.width <= f64::from(plate.0) + eps
            && r.top + r.height <= f64::from(plate.1) + eps
    }

    #[test]
    fn rectangle_stays_inside_with_the_canvas_aspect() {
        for (canvas, plate) in [
            (CANVAS, PLATE),
            ((720, 1280), (828, 1472)),
            ((16, 16), (18, 18)),
            ((640, 480), (737, 552)),
        ] {
            let aspect = f64::from(canvas.0) / f64::from(canvas.1);
            for photo in 0..20 {
                for step in 0..=100 {
                    let r = ken_burns(photo, f64::from(step) / 100.0, plate, canvas);
                    assert!(inside(&r, plate), "{photo} {step} {r:?}");
                    assert!((r.width / r.height - aspect).abs() < 1e-9, "{r:?}");
                    // Never sampled from fewer plate pixels than the zoom allows.
                    assert!(r.width >= full(plate, canvas).width / ZOOM - 1e-9);
                }
            }
        }
    }

    #[test]
    fn motion_is_smooth_sub_pixel_and_never_stops() {
        // 3 s at 30 fps plus a 0.5 s crossfade: 105 frames of one photo.
        let frames = 105;
        for photo in 0..6 {
            let rects: Vec<CropRect> = (0..frames)
                .map(|f| {
                    ken_burns(
                        photo,
                        (f64::from(f) + 0.5) / f64::from(frames),
                        PLATE,
                        CANVAS,
                    )
                })
                .collect();
            let lefts: Vec<f64> = rects.iter().map(|r| r.left).collect();
            let widths: Vec<f64> = rects.iter().map(|r| r.width).collect();
            for series in [&lefts, &widths] {
                let deltas: Vec<f64> = series.windows(2).map(|w| w[1] - w[0]).collect();
                assert!(
                    deltas.iter().all(|d| d.abs() > 1e-4 && d.abs() < 3.0),
                    "{photo} {deltas:?}"
                );
                assert!(
                    deltas.iter().any(|d| d.fract().abs() > 1e-3),
                    "whole-pixel steps"
                );
                // Consecutive steps differ by far less than a pixel: no 0/1/0 stepping.
                for pair in deltas.windows(2) {
                    assert!((pair[1] - pair[0]).abs() < 0.05, "{photo} {pair:?}");
                    assert!(
                        pair[0].signum() == pair[1].signum(),
                        "never backwards: {pair:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn direction_varies_per_photo_and_is_deterministic() {
        let at = |photo, t| ken_burns(photo, t, PLATE, CANVAS);
        // Alternate zoom in / zoom out.
        assert!(at(0, 1.0).width < at(0, 0.0).width);
        assert!(at(1, 1.0).width > at(1, 0.0).width);
        // Zoomed-in ends point in different directions for neighbouring photos.
        let centre = |r: CropRect| (r.left + r.width / 2.0, r.top + r.height / 2.0);
        let ends: Vec<(f64, f64)> = (0..4)
            .map(|p| centre(at(p, if p % 2 == 0 { 1.0 } else { 0.0 })))
            .collect();
        for w in ends.windows(2) {
            assert!(
                (w[0].0 - w[1].0).abs() + (w[0].1 - w[1].1).abs() > 5.0,
                "{ends:?}"
            );
        }
        assert_eq!(at(3, 0.37), at(3, 0.37));
    }

    #[test]
    fn full_rect_centres_the_canvas_aspect() {
        let r = full((1000, 1000), (200, 100));
        assert_eq!(
            r,
            CropRect {
                left: 0.0,
                top: 250.0,
                width: 1000.0,
                height: 500.0
            }
        );
        let r = full((100, 50), (200, 100));
        assert_eq!(
            r,
            CropRect {
                left: 0.0,
                top: 0.0,
                width: 100.0,
                height: 50.0
            }
        );
    }

    #[test]
    fn every_motion_stays_inside_its_plate_at_every_strength() {
        for canvas in [CANVAS, (720, 1280), (1080, 1350), (16, 16)] {
            let aspect = f64::from(canvas.0) / f64::from(canvas.1);
            for motion in Motion::ALL {
                for strength in [0.0, 0.5, 1.0, 2.0] {
                    let plate = crate::fit::plate_size(canvas, motion, strength);
                    for photo in 0..6 {
                        for step in 0..=50 {
                            let t = f64::from(step) / 50.0;
                            let r = rect(motion, photo, t, strength, plate, canvas);
                            let ctx = format!("{motion:?} {strength} {canvas:?} {photo} {t}");
                            assert!(inside(&r, plate), "{ctx} {r:?}");
                            assert!((r.width / r.height - aspect).abs() < 1e-6, "{ctx}");
                            // Never upscaled: at least as many plate pixels as the canvas has.
                            assert!(r.width >= f64::from(canvas.0) - 0.5, "{ctx} {r:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ken_burns_travels_along_a_long_plate_smoothly_and_inside_it() {
        let canvas = CANVAS;
        let aspect = f64::from(canvas.0) / f64::from(canvas.1);
        // A portrait photo's plate (`fit::plate_for`), and a panorama's.
        for plate in [(1472, 1206), (2144, 828)] {
            let wide = full(plate, canvas);
            let room = (f64::from(plate.0) - wide.width) + (f64::from(plate.1) - wide.height);
            for photo in 0..4 {
                let frames = 105;
                let rects: Vec<CropRect> = (0..=frames)
                    .map(|f| ken_burns(photo, f64::from(f) / f64::from(frames), plate, canvas))
                    .collect();
                let centre = |r: &CropRect| (r.left + r.width / 2.0, r.top + r.height / 2.0);
                for r in &rects {
                    assert!(inside(r, plate), "{plate:?} {photo} {r:?}");
                    assert!((r.width / r.height - aspect).abs() < 1e-9);
                }
                let (a, b) = (centre(&rects[0]), centre(&rects[frames as usize]));
                let travelled = (b.0 - a.0).abs() + (b.1 - a.1).abs();
                assert!(
                    travelled > 0.9 * room,
                    "{plate:?} {photo}: {travelled} of {room}"
                );
                // Steady, sub-pixel steps, never backwards along the long side.
                let along: Vec<f64> = rects
                    .iter()
                    .map(|r| {
                        if plate.1 > plate.0 {
                            centre(r).1
                        } else {
                            centre(r).0
                        }
                    })
                    .collect();
                let steps: Vec<f64> = along.windows(2).map(|w| w[1] - w[0]).collect();
                assert!(steps.iter().all(|s| s.abs() < 10.0), "{steps:?}");
                assert!(
                    steps.windows(2).all(|w| w[0].signum() == w[1].signum()),
                    "{steps:?}"
                );
                assert!(
                    steps.windows(2).all(|w| (w[1] - w[0]).abs() < 0.2),
                    "{steps:?}"
                );
            }
            // Top to bottom (left to right) for even photos, back for odd ones.
            let start = |photo| ken_burns(photo, 0.0, plate, canvas);
            assert!(start(0).top + start(0).left < 1.0, "{:?}", start(0));
            assert!(start(1).top + start(1).left > 0.5 * room, "{:?}", start(1));
        }
    }

    #[test]
    fn zooms_and_pans_go_the_way_they_are_named() {
        let at = |motion, t| rect(motion, 0, t, 1.0, PLATE, CANVAS);
        let centre = |r: CropRect| (r.left + r.width / 2.0, r.top + r.height / 2.0);
        assert!(at(Motion::ZoomIn, 1.0).width < at(Motion::ZoomIn, 0.0).width / 1.1);
        assert!(at(Motion::ZoomOut, 1.0).width > at(Motion::ZoomOut, 0.0).width * 1.1);
        for motion in [Motion::ZoomIn, Motion::ZoomOut] {
            let (a, b) = (centre(at(motion, 0.0)), centre(at(motion, 1.0)));
            assert!(
                (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9,
                "{motion:?}"
            );
        }
        // The picture moves left when the rectangle moves right, across most of the room.
        let (start, end) = (at(Motion::PanLeft, 0.0), at(Motion::PanLeft, 1.0));
        let room = f64::from(PLATE.0) - start.width;
        assert!(end.left - start.left > 0.9 * room, "{start:?} {end:?}");
        assert_eq!((start.width, start.top), (end.width, end.top));
        let (start, end) = (at(Motion::PanRight, 0.0), at(Motion::PanRight, 1.0));
        assert!(start.left - end.left > 0.9 * room, "{start:?} {end:?}");
        // Twice the strength, twice the zoom's reach; none at all at 0.
        let plate2 = crate::fit::plate_size(CANVAS, Motion::ZoomIn, 2.0);
        let zoom2 = rect(Motion::ZoomIn, 0, 0.0, 2.0, plate2, CANVAS).width
            / rect(Motion::ZoomIn, 0, 1.0, 2.0, plate2, CANVAS).width;
        assert!((zoom2 - 1.24).abs() < 1e-9, "{zoom2}");
        for motion in Motion::ALL {
            let r = rect(motion, 3, 0.3, 0.0, CANVAS, CANVAS);
            assert_eq!(r, full(CANVAS, CANVAS), "{motion:?}");
        }
    }
}
