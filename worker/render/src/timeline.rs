//! The timeline: which photo(s) every output frame shows, in whole frames.
//!
//! Everything is derived from frame numbers rounded once from each photo's start time, never
//! from summed frame counts, so the video lasts exactly `round(images × seconds_per_image × fps)`
//! frames (or `round(Σ durations × fps)`) whatever the inputs (no drift):
//! - photo `i` owns frames `[round(start(i)·fps), round(start(i+1)·fps))`, `start(i)` being
//!   `i·spi` or the sum of the durations before it;
//! - a crossfade of `T = round(transition·fps)` frames is centred on each cut between neighbours
//!   (none before the first photo or after the last), so transitions overlap neighbours and add
//!   no time;
//! - each photo's motion runs over its whole visible span, its transition overlaps included, so
//!   the camera keeps moving smoothly through a crossfade.

use std::ops::Range;

use minimoto_common::spec::{RenderSpec, TransitionKind};

/// One photo as seen in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// Index of the photo (0-based).
    pub photo: usize,
    /// Progress of this photo's motion over its visible span, in `(0, 1)`.
    pub t: f64,
}

/// What one output frame shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FramePlan {
    /// The photo underneath (the outgoing one during a transition).
    pub base: Layer,
    /// During a transition: the incoming photo, and how far the transition has come.
    pub blend: Option<Blend>,
}

/// The incoming photo of a transition frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    pub layer: Layer,
    /// Progress of the transition in `(0, 1)`, growing frame by frame (a crossfade's weight).
    pub weight: f32,
    /// The transition at this cut (`random` already resolved; never `none`).
    pub kind: TransitionKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `bounds[i]` is the first frame photo `i` owns; `bounds[n]` is the total frame count.
    bounds: Vec<u64>,
    /// Crossfade length in frames (0 = hard cuts), clamped so transitions never overlap.
    transition: u64,
    /// Frames of each crossfade that fall before its cut.
    before_cut: u64,
    kind: TransitionKind,
}

impl Timeline {
    pub fn for_spec(images: usize, spec: &RenderSpec) -> Self {
        let kind = spec.transition.kind;
        let seconds = match kind {
            TransitionKind::None => 0.0,
            _ => spec.transition.seconds,
        };
        let fps = f64::from(spec.fps);
        let bounds = (0..=images)
            .map(|i| frames_at(spec.start_of(i) * fps))
            .collect();
        Self {
            kind,
            ..Self::from_bounds(bounds, seconds * fps)
        }
    }

    /// A timeline of `images` photos of `seconds_per_image` each at `fps`, with crossfades of
    /// `transition_seconds` (0 for hard cuts). Inputs are assumed validated (see `RenderSpec::validate`).
    pub fn new(images: usize, seconds_per_image: f64, fps: u32, transition_seconds: f64) -> Self {
        // Evaluated exactly as documented, (i · spi) · fps, so the total matches what the API
        // computes for the same spec.
        let bounds: Vec<u64> = (0..=images)
            .map(|i| frames_at(i as f64 * seconds_per_image * f64::from(fps)))
            .collect();
        Self::from_bounds(bounds, transition_seconds * f64::from(fps))
    }

    /// A timeline from the first frame of each photo (`bounds[n]`: the total) and a transition
    /// of `transition_frames` (rounded; clamped to the shortest photo).
    fn from_bounds(bounds: Vec<u64>, transition_frames: f64) -> Self {
        let images = bounds.len() - 1;
        let shortest = bounds.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(0);
        let transition = if images < 2 {
            0
        } else {
            // Rounding can make one photo a frame shorter than the transition asked for.
            frames_at(transition_frames).min(shortest)
        };
        Self {
            bounds,
            transition,
            before_cut: transition / 2,
            kind: TransitionKind::Crossfade,
        }
    }

    pub fn images(&self) -> usize {
        self.bounds.len() - 1
    }

    pub fn total_frames(&self) -> u64 {
        self.bounds.last().copied().unwrap_or(0)
    }

    pub fn transition_frames(&self) -> u64 {
        self.transition
    }

    /// The frames on which photo `i` is visible, transitions included.
    pub fn span(&self, i: usize) -> Range<u64> {
        let start = if i == 0 {
            0
        } else {
            self.bounds[i] - self.before_cut
        };
        let end = if i + 1 == self.images() {
            self.total_frames()
        } else {
            self.bounds[i + 1] - self.before_cut + self.transition
        };
        start..end
    }

    /// The crossfade frames around the cut before photo `i` (`1 ≤ i < images`).
    fn crossfade(&self, i: usize) -> Range<u64> {
        let start = self.bounds[i] - self.before_cut;
        start..start + self.transition
    }

    fn layer(&self, photo: usize, frame: u64) -> Layer {
        let span = self.span(photo);
        let len = (span.end - span.start).max(1) as f64;
        Layer {
            photo,
            t: ((frame - span.start) as f64 + 0.5) / len,
        }
    }

    /// What frame `frame` (< [`Self::total_frames`]) shows.
    pub fn frame(&self, frame: u64) -> FramePlan {
        let last = self.images().saturating_sub(1);
        // The photo owning this frame: the last bound at or before it.
        let owner = self
            .bounds
            .partition_point(|&b| b <= frame)
            .saturating_sub(1)
            .min(last);
        let fading = [owner, owner + 1]
            .into_iter()
            .filter(|&cut| cut >= 1 && cut <= last && self.transition > 0)
            .find(|&cut| self.crossfade(cut).contains(&frame));
        match fading {
            Some(cut) => {
                let k = frame - self.crossfade(cut).start;
                let weight = ((k as f64 + 0.5) / self.transition as f64) as f32;
                FramePlan {
                    base: self.layer(cut - 1, frame),
                    blend: Some(Blend {
                        layer: self.layer(cut, frame),
                        weight,
                        kind: self.kind.at_cut(cut),
                    }),
                }
            }
            None => FramePlan {
                base: self.layer(owner, frame),
                blend: None,
            },
        }
    }

    /// A representative frame for the poster: the middle of the first photo's time on screen
    /// alone (before its first crossfade starts), so the poster shows one clean photo.
    pub fn poster_frame(&self) -> u64 {
        let alone_until = if self.images() > 1 {
            self.crossfade(1).start
        } else {
            self.total_frames()
        };
        alone_until / 2
    }
}

/// Rounds a non-negative frame position to a whole frame.
fn frames_at(position: f64) -> u64 {
    // Inputs are validated finite and non-negative; the clamp keeps a bad one harmless.
    position.round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combos() -> Vec<(usize, f64, u32, f64)> {
        let mut out = Vec::new();
        for n in [1, 2, 3, 7, 13, 100] {
            for (spi, fps) in [
                (1.0, 10),
                (2.7, 24),
                (3.0, 30),
                (0.25, 10),
                (1.3, 29),
                (0.1, 10),
                (5.55, 60),
            ] {
                for ts in [0.0, 0.3, 0.5, 1.0, spi / 2.0, spi] {
                    if ts <= spi {
                        out.push((n, spi, fps, ts));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn total_duration_is_exact_for_many_inputs() {
        for (n, spi, fps, ts) in combos() {
            let tl = Timeline::new(n, spi, fps, ts);
            let expected = (n as f64 * spi * f64::from(fps)).round() as u64;
            assert_eq!(
                tl.total_frames(),
                expected,
                "{n} × {spi}s @ {fps} fps, T={ts}"
            );
            let seconds = tl.total_frames() as f64 / f64::from(fps);
            assert!((seconds - n as f64 * spi).abs() <= 0.5 / f64::from(fps) + 1e-9);
        }
        // The classic drift case: 7 photos of 2.7 s at 24 fps is 453.6 frames → 454, not 7 × 65.
        assert_eq!(Timeline::new(7, 2.7, 24, 0.5).total_frames(), 454);
    }

    #[test]
    fn every_frame_is_covered_and_weights_rise_within_a_crossfade() {
        for (n, spi, fps, ts) in combos() {
            let tl = Timeline::new(n, spi, fps, ts);
            let ctx = format!("{n} × {spi}s @ {fps} fps, T={ts}");
            let mut previous: Option<FramePlan> = None;
            for f in 0..tl.total_frames() {
                let plan = tl.frame(f);
                assert!(plan.base.photo < n, "{ctx} frame {f}");
                assert!(tl.span(plan.base.photo).contains(&f), "{ctx} frame {f}");
                assert!(plan.base.t > 0.0 && plan.base.t < 1.0, "{ctx} frame {f}");
                if let Some(Blend {
                    layer: incoming,
                    weight: w,
                    ..
                }) = plan.blend
                {
                    assert_eq!(incoming.photo, plan.base.photo + 1, "{ctx} frame {f}");
                    assert!(w > 0.0 && w < 1.0, "{ctx} frame {f}: weight {w}");
                    assert!(tl.span(incoming.photo).contains(&f), "{ctx} frame {f}");
                    if let Some(FramePlan {
                        blend:
                            Some(Blend {
                                layer: p,
                                weight: pw,
                                ..
                            }),
                        ..
                    }) = previous
                        && p.photo == incoming.photo
                    {
                        assert!(w > pw, "{ctx} frame {f}: {pw} then {w}");
                    }
                }
                if let Some(prev) = previous {
                    // Photos only move forwards, and motion only moves forwards.
                    assert!(plan.base.photo >= prev.base.photo, "{ctx} frame {f}");
                    if plan.base.photo == prev.base.photo {
                        assert!(plan.base.t > prev.base.t, "{ctx} frame {f}");
                    }
                }
                previous = Some(plan);
            }
            // Spans tile the video: each photo appears, and neighbours overlap by exactly T.
            for i in 0..n {
                assert!(!tl.span(i).is_empty(), "{ctx} photo {i}");
                if i + 1 < n {
                    assert_eq!(
                        tl.span(i).end - tl.span(i + 1).start,
                        tl.transition_frames(),
                        "{ctx}"
                    );
                }
            }
            assert_eq!(tl.span(0).start, 0);
            assert_eq!(tl.span(n - 1).end, tl.total_frames());
        }
    }

    #[test]
    fn transition_frames_are_centred_on_cuts_and_clamped() {
        let tl = Timeline::new(3, 1.0, 10, 0.3);
        assert_eq!(tl.transition_frames(), 3);
        // Cut at frame 10: one frame before it, two after.
        let blended: Vec<u64> = (0..30).filter(|&f| tl.frame(f).blend.is_some()).collect();
        assert_eq!(blended, [9, 10, 11, 19, 20, 21]);
        // T = spi: every frame but the first and last photo's outer halves is a crossfade.
        let tl = Timeline::new(3, 1.0, 10, 1.0);
        assert_eq!(tl.transition_frames(), 10);
        assert_eq!((0..30).filter(|&f| tl.frame(f).blend.is_some()).count(), 20);
        assert_eq!(tl.span(1), 5..25);
        // Rounding gives 2- and 3-frame photos here; T is clamped to the shortest.
        let tl = Timeline::new(4, 0.25, 10, 0.25);
        assert_eq!(tl.transition_frames(), 2);
        // T = 0 and one photo: never a blend.
        let tl = Timeline::new(5, 1.0, 10, 0.0);
        assert!((0..50).all(|f| tl.frame(f).blend.is_none()));
        let tl = Timeline::new(1, 2.0, 10, 1.0);
        assert_eq!(tl.transition_frames(), 0);
        assert_eq!(tl.span(0), 0..20);
    }

    #[test]
    fn motion_is_continuous_through_a_crossfade() {
        let tl = Timeline::new(3, 2.0, 10, 1.0);
        let span = tl.span(1);
        let ts: Vec<f64> = span
            .clone()
            .map(|f| {
                let plan = tl.frame(f);
                if plan.base.photo == 1 {
                    plan.base.t
                } else {
                    plan.blend.map(|b| b.layer.t).unwrap_or(-1.0)
                }
            })
            .collect();
        let step = 1.0 / (span.end - span.start) as f64;
        for w in ts.windows(2) {
            assert!((w[1] - w[0] - step).abs() < 1e-9, "{ts:?}");
        }
    }

    #[test]
    fn poster_is_inside_the_first_photo_alone() {
        let tl = Timeline::new(3, 1.0, 10, 0.3);
        assert_eq!(tl.poster_frame(), 4);
        assert!(tl.frame(tl.poster_frame()).blend.is_none());
        assert_eq!(Timeline::new(1, 3.0, 30, 0.0).poster_frame(), 45);
    }

    #[test]
    fn durations_give_each_photo_its_own_frames() {
        let spec = RenderSpec {
            fps: 12,
            durations: Some(vec![1.0, 2.5, 0.5]),
            transition: minimoto_common::spec::TransitionSpec {
                kind: TransitionKind::Crossfade,
                seconds: 0.25,
            },
            ..RenderSpec::default()
        };
        let tl = Timeline::for_spec(3, &spec);
        // Starts at 0, 1 and 3.5 s: frames 0, 12 and 42 of 48.
        assert_eq!(tl.total_frames(), 48);
        assert_eq!(tl.frame(5).base.photo, 0);
        assert_eq!(tl.frame(30).base.photo, 1);
        assert_eq!(tl.frame(47).base.photo, 2);
        // 3-frame crossfades centred on frames 12 and 42.
        let blended: Vec<u64> = (0..48).filter(|&f| tl.frame(f).blend.is_some()).collect();
        assert_eq!(blended, [11, 12, 13, 41, 42, 43]);
    }
}
