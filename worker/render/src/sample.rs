//! Bilinear sampling of one 8-bit plane through a sub-pixel crop rectangle: the per-frame loop.
//!
//! Each frame of a moving photo is a fresh crop of its plate, scaled by at most the plate's
//! headroom (≤ 1.3×, [`crate::fit::headroom`]), so two taps a side are all a sample needs (no
//! widened filter as a general resizer uses). The price of two taps at a downscale is a little
//! aliasing: a sharp edge panning slowly pauses for a frame where it falls between two samples
//! and catches up on the next, never moving back or jumping (tested); a widened filter avoids it
//! at several times the cost per frame. Rows first: the two source rows around an output
//! row are mixed into one, with 7-bit weights (1/128 px); then columns: each output pixel mixes
//! its two neighbours in that row, with 8-bit weights (1/256 px: at 1/128 a slow pan of 0.05 px a
//! frame measurably alternated its steps; see tests/render/smooth.rs).
//!
//! The column pass is a gather. On x86-64 with SSSE3 it runs 8 pixels at a time: two byte
//! shuffles pick each pixel's left and right neighbours from 16 source bytes into 16-bit lanes,
//! two multiplies weigh them (`pshufb` + `pmullw`). The row pass runs 32 bytes at a time with
//! AVX2: interleave the two rows' bytes and weigh each pair with one multiply-add of unsigned
//! pixels by signed weights (`pmaddubsw`, which is why its weights are 7-bit). These two kernels
//! are the only `unsafe` of the render. Elsewhere, and for any 8 pixels whose sources span more
//! than 16 bytes (a downscale above ~1.8×), scalar loops do the same arithmetic, so every path
//! gives identical bytes.

use super::{RenderError, fit::internal, motion::CropRect};

/// Column weights are in 1/`ONE`: `255 · ONE` still fits the 16-bit lanes.
const ONE: u16 = 256;
/// Row weights are in 1/`ROW_ONE`: a weight below it fits a signed byte.
const ROW_ONE: u16 = 128;
/// Bytes past the end of the mixed row that the 16-byte loads may read (their weight is 0).
const PAD: usize = 16;

/// Working memory of one sampler, kept between frames: the column tables and the mixed row.
#[derive(Debug, Default)]
pub struct Sampler {
    /// The source rows of the current output row, mixed; `PAD` bytes longer than the source.
    row: Vec<u8>,
    /// Per output column: its left source column and the right one's weight (0..256).
    left: Vec<u32>,
    frac: Vec<u16>,
    /// Per 8 output columns: the shuffle and weights of the SIMD pass.
    groups: Vec<Group>,
    /// Per output row: its top source row and the next one's weight (0..128).
    rows: Vec<(u32, u16)>,
    /// The source plane size and the first and last source columns the tables read.
    src: (usize, usize),
    span: (usize, usize),
    dst: (usize, usize),
}

/// Eight output columns of the SIMD pass: their sources lie in the 16 bytes from `base`.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(16))]
struct Group {
    /// Byte `2k` of `lefts` picks column `k`'s left source (byte `2k + 1` is 0x80: zero), and
    /// the same in `rights` for its right one.
    lefts: [u8; 16],
    rights: [u8; 16],
    /// The matching weights: `256 − f` and `f`.
    keep: [u16; 8],
    take: [u16; 8],
    base: u32,
    /// Whether the sources fit in 16 bytes; if not, these columns take the scalar path.
    fits: bool,
}

impl Sampler {
    /// Prepares the tables to sample `rect` of a `src`-sized plane into a `dst`-sized one; the
    /// same tables then serve every plane of that size ([`Self::draw`]).
    pub fn prepare(
        &mut self,
        src: (usize, usize),
        rect: CropRect,
        dst: (usize, usize),
    ) -> Result<(), RenderError> {
        let usable = |v: f64| v.is_finite() && v > 0.0;
        if src.0 == 0 || src.1 == 0 || dst.0 == 0 || dst.1 == 0 {
            return Err(internal("sampling an empty plane"));
        }
        if !(usable(rect.width)
            && usable(rect.height)
            && rect.left.is_finite()
            && rect.top.is_finite())
        {
            return Err(internal(format!("unusable crop rectangle {rect:?}")));
        }
        let (sx, sy) = (rect.width / dst.0 as f64, rect.height / dst.1 as f64);
        self.left.clear();
        self.frac.clear();
        for i in 0..dst.0 {
            let (l, f) = taps(rect.left, sx, i, src.0, ONE);
            self.left.push(l as u32);
            self.frac.push(f);
        }
        self.rows.clear();
        self.rows.extend(
            (0..dst.1)
                .map(|j| taps(rect.top, sy, j, src.1, ROW_ONE))
                .map(|(r, w)| (r as u32, w)),
        );
        // Columns are non-decreasing, so the mixed row needs only this span.
        let first = self.left[0] as usize;
        let last = (self.left[dst.0 - 1] as usize + 1).min(src.0 - 1);
        self.groups.clear();
        for (lefts, fracs) in self.left.chunks_exact(8).zip(self.frac.chunks_exact(8)) {
            let base = lefts[0];
            let mut g = Group {
                base,
                fits: lefts[7] - base < 15,
                lefts: [0x80; 16],
                rights: [0x80; 16],
                ..Group::default()
            };
            if g.fits {
                for (k, (&l, &f)) in lefts.iter().zip(fracs).enumerate() {
                    let at = (l - base) as u8;
                    g.lefts[2 * k] = at;
                    g.rights[2 * k] = at + 1;
                    g.keep[k] = ONE - f;
                    g.take[k] = f;
                }
            }
            self.groups.push(g);
        }
        self.row.resize(src.0 + PAD, 0);
        (self.src, self.span, self.dst) = (src, (first, last), dst);
        Ok(())
    }

    /// Samples `plane` (of the prepared source size, rows packed) into `out` (of the prepared
    /// destination size).
    pub fn draw(&mut self, plane: &[u8], out: &mut [u8]) -> Result<(), RenderError> {
        let ((sw, sh), (dw, dh)) = (self.src, self.dst);
        if plane.len() != sw * sh || out.len() != dw * dh || self.rows.len() != dh {
            return Err(internal("planes do not match the prepared sampler"));
        }
        let (first, last) = self.span;
        let simd = simd_available();
        for (&(top, w), out_row) in self.rows.iter().zip(out.chunks_exact_mut(dw)) {
            let top = top as usize;
            let a = &plane[top * sw..][first..=last];
            let row = &mut self.row[first..=last];
            if w == 0 {
                row.copy_from_slice(a);
            } else {
                let b = &plane[(top + 1) * sw..][first..=last];
                mix_rows(a, b, w, row);
            }
            columns(
                &self.row,
                &self.left,
                &self.frac,
                &self.groups,
                simd,
                out_row,
            );
        }
        Ok(())
    }
}

/// The source position of output index `i` (pixel centres: `start + (i + ½)·step − ½`) as its
/// left source index and the next index's weight in 1/`one`, clamped to the plane's `len`.
fn taps(start: f64, step: f64, i: usize, len: usize, one: u16) -> (usize, u16) {
    let pos = start + (i as f64 + 0.5) * step - 0.5;
    let last = len - 1;
    if pos <= 0.0 {
        return (0, 0);
    }
    if pos >= last as f64 {
        return (last, 0);
    }
    let left = pos.floor();
    let w = ((pos - left) * f64::from(one)).round() as u16;
    let left = left as usize;
    if w == one { (left + 1, 0) } else { (left, w) }
}

/// `out = a·(1 − w) + b·w`, `w` in 1/128.
fn mix_rows(a: &[u8], b: &[u8], w: u16, out: &mut [u8]) {
    let len = out.len().min(a.len()).min(b.len());
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && (1..ROW_ONE).contains(&w) {
        let whole = len / 32 * 32;
        #[allow(unsafe_code)]
        // SAFETY: AVX2 is present (checked above); see `mix_rows_avx2` for its bounds.
        unsafe {
            mix_rows_avx2(&a[..whole], &b[..whole], w, &mut out[..whole]);
        }
        mix_rows_scalar(&a[whole..len], &b[whole..len], w, &mut out[whole..len]);
        return;
    }
    mix_rows_scalar(&a[..len], &b[..len], w, &mut out[..len]);
}

fn mix_rows_scalar(a: &[u8], b: &[u8], w: u16, out: &mut [u8]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        // ≤ 255·128 + 64: fits u16; wrapping ops keep overflow checks out of the loop.
        let v = u16::from(x)
            .wrapping_mul(ROW_ONE - w)
            .wrapping_add(u16::from(y).wrapping_mul(w))
            .wrapping_add(ROW_ONE / 2);
        *o = (v >> 7) as u8;
    }
}

/// 32 bytes at a time: interleave the rows' bytes, weigh each pair with one multiply-add
/// (`(128 − w)·a + w·b` ≤ 255·128: no saturation), round, shift, pack. Unpacking and packing
/// both work within each 128-bit lane, so the bytes come back in order.
///
/// # Safety
/// AVX2 must be present; `w` in 1..128 (so both weights fit a signed byte); `a`, `b` and `out`
/// of one length, a multiple of 32 (asserted).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2")]
unsafe fn mix_rows_avx2(a: &[u8], b: &[u8], w: u16, out: &mut [u8]) {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi16, _mm256_loadu_si256, _mm256_maddubs_epi16, _mm256_packus_epi16,
        _mm256_set1_epi16, _mm256_srli_epi16, _mm256_storeu_si256, _mm256_unpackhi_epi8,
        _mm256_unpacklo_epi8,
    };
    assert!(a.len() == out.len() && b.len() == out.len() && out.len().is_multiple_of(32));
    // Little-endian: the low byte of each 16-bit lane weighs `a`, the high one `b`.
    let weights = _mm256_set1_epi16(((w << 8) | (ROW_ONE - w)) as i16);
    let round = _mm256_set1_epi16(ROW_ONE as i16 / 2);
    for ((x, y), o) in a
        .chunks_exact(32)
        .zip(b.chunks_exact(32))
        .zip(out.chunks_exact_mut(32))
    {
        // SAFETY: each chunk is 32 bytes.
        let (x, y) = unsafe {
            (
                _mm256_loadu_si256(x.as_ptr().cast::<__m256i>()),
                _mm256_loadu_si256(y.as_ptr().cast::<__m256i>()),
            )
        };
        let lo = _mm256_maddubs_epi16(_mm256_unpacklo_epi8(x, y), weights);
        let hi = _mm256_maddubs_epi16(_mm256_unpackhi_epi8(x, y), weights);
        let lo = _mm256_srli_epi16(_mm256_add_epi16(lo, round), 7);
        let hi = _mm256_srli_epi16(_mm256_add_epi16(hi, round), 7);
        // SAFETY: `o` is 32 bytes.
        unsafe {
            _mm256_storeu_si256(
                o.as_mut_ptr().cast::<__m256i>(),
                _mm256_packus_epi16(lo, hi),
            )
        };
    }
}

/// The column pass of one output row.
fn columns(row: &[u8], left: &[u32], frac: &[u16], groups: &[Group], simd: bool, out: &mut [u8]) {
    let whole = groups.len() * 8;
    if simd {
        #[cfg(target_arch = "x86_64")]
        {
            #[allow(unsafe_code)]
            // SAFETY: `simd` is only true when SSSE3 is present; see `columns_ssse3` for bounds.
            unsafe {
                columns_ssse3(row, left, frac, groups, &mut out[..whole]);
            }
            columns_scalar(row, &left[whole..], &frac[whole..], &mut out[whole..]);
            return;
        }
    }
    columns_scalar(row, left, frac, out);
}

fn columns_scalar(row: &[u8], left: &[u32], frac: &[u16], out: &mut [u8]) {
    for ((o, &l), &f) in out.iter_mut().zip(left).zip(frac) {
        let l = l as usize;
        *o = mix(row[l], row[l + 1], f);
    }
}

/// `a·(1 − w) + b·w`, `w` in 1/256, rounded: the columns' mix.
#[inline(always)]
fn mix(a: u8, b: u8, w: u16) -> u8 {
    // ≤ 255·256 + 128: fits u16; wrapping ops keep overflow checks out of the loops.
    let v = u16::from(a)
        .wrapping_mul(ONE - w)
        .wrapping_add(u16::from(b).wrapping_mul(w))
        .wrapping_add(ONE / 2);
    (v >> 8) as u8
}

fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Eight output columns per group: load the 16 source bytes from the group's base, shuffle each
/// column's left and right neighbours into 16-bit lanes, weigh and add them (≤ 255·256 + 128:
/// the lanes do not wrap), shift, pack back to bytes.
///
/// # Safety
/// SSSE3 must be present. Every 16-byte load stays inside `row`: `base` ≤ the source width − 1
/// and `row` is [`PAD`] bytes longer than the source width (asserted).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "ssse3")]
unsafe fn columns_ssse3(row: &[u8], left: &[u32], frac: &[u16], groups: &[Group], out: &mut [u8]) {
    use std::arch::x86_64::{
        __m128i, _mm_add_epi16, _mm_load_si128, _mm_loadu_si128, _mm_mullo_epi16, _mm_packus_epi16,
        _mm_set1_epi16, _mm_shuffle_epi8, _mm_srli_epi16, _mm_storel_epi64,
    };
    let round = _mm_set1_epi16(ONE as i16 / 2);
    for ((g, o), (lefts, fracs)) in groups
        .iter()
        .zip(out.chunks_exact_mut(8))
        .zip(left.chunks_exact(8).zip(frac.chunks_exact(8)))
    {
        if !g.fits {
            columns_scalar(row, lefts, fracs, o);
            continue;
        }
        let base = g.base as usize;
        assert!(base + 16 <= row.len());
        // SAFETY: in bounds (asserted); `Group` is 16-byte aligned and made of 16-byte arrays.
        let (src, lefts, rights, keep, take) = unsafe {
            (
                _mm_loadu_si128(row.as_ptr().add(base).cast::<__m128i>()),
                _mm_load_si128(g.lefts.as_ptr().cast::<__m128i>()),
                _mm_load_si128(g.rights.as_ptr().cast::<__m128i>()),
                _mm_load_si128(g.keep.as_ptr().cast::<__m128i>()),
                _mm_load_si128(g.take.as_ptr().cast::<__m128i>()),
            )
        };
        let l = _mm_mullo_epi16(_mm_shuffle_epi8(src, lefts), keep);
        let r = _mm_mullo_epi16(_mm_shuffle_epi8(src, rights), take);
        let px = _mm_srli_epi16(_mm_add_epi16(_mm_add_epi16(l, r), round), 8);
        let packed = _mm_packus_epi16(px, px);
        // SAFETY: `o` is 8 bytes, the low half of `packed`.
        unsafe { _mm_storel_epi64(o.as_mut_ptr().cast::<__m128i>(), packed) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A noisy plane (a photo's grain), deterministic.
    fn noise(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..w * h)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 24) as u8
            })
            .collect()
    }

    fn rect(left: f64, top: f64, width: f64, height: f64) -> CropRect {
        CropRect {
            left,
            top,
            width,
            height,
        }
    }

    fn sample(plane: &[u8], src: (usize, usize), r: CropRect, dst: (usize, usize)) -> Vec<u8> {
        let mut s = Sampler::default();
        s.prepare(src, r, dst).expect("prepare");
        let mut out = vec![0; dst.0 * dst.1];
        s.draw(plane, &mut out).expect("draw");
        out
    }

    /// The same arithmetic in floating point, bilinear on pixel centres.
    fn reference(plane: &[u8], src: (usize, usize), r: CropRect, dst: (usize, usize)) -> Vec<f64> {
        let at = |x: usize, y: usize| f64::from(plane[y * src.0 + x]);
        let clamp = |p: f64, len: usize| p.clamp(0.0, (len - 1) as f64);
        let mut out = Vec::new();
        for j in 0..dst.1 {
            let y = clamp(
                r.top + (j as f64 + 0.5) * r.height / dst.1 as f64 - 0.5,
                src.1,
            );
            for i in 0..dst.0 {
                let x = clamp(
                    r.left + (i as f64 + 0.5) * r.width / dst.0 as f64 - 0.5,
                    src.0,
                );
                let (x0, y0) = (x.floor() as usize, y.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(src.0 - 1), (y0 + 1).min(src.1 - 1));
                let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                out.push(top * (1.0 - fy) + bottom * fy);
            }
        }
        out
    }

    #[test]
    fn a_whole_pixel_crop_at_scale_one_copies_the_plane() {
        let (w, h) = (40, 12);
        let plane = noise(w, h, 1);
        let out = sample(&plane, (w, h), rect(3.0, 2.0, 32.0, 8.0), (32, 8));
        for y in 0..8 {
            assert_eq!(
                &out[y * 32..][..32],
                &plane[(y + 2) * w + 3..][..32],
                "row {y}"
            );
        }
    }

    #[test]
    fn sub_pixel_crops_match_bilinear_interpolation() {
        let (w, h) = (173, 61);
        let plane = noise(w, h, 7);
        // Downscales up to 1.8×, upscales (the zoom transition), odd sizes and offsets, edges.
        for (r, dst) in [
            (rect(0.37, 0.81, 150.2, 50.9), (128, 44)),
            (rect(10.5, 3.25, 100.0, 40.0), (130, 52)),
            (rect(0.0, 0.0, 173.0, 61.0), (96, 34)),
            (rect(5.9, 1.1, 60.3, 21.7), (150, 54)),
        ] {
            let got = sample(&plane, (w, h), r, dst);
            let want = reference(&plane, (w, h), r, dst);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(&g, &e)| (f64::from(g) - e).abs())
                .fold(0.0, f64::max);
            // Two roundings (row, then column) and 1/256 px positions on noise: within 2 levels.
            assert!(worst <= 2.0, "{r:?} → {dst:?}: off by {worst}");
        }
    }

    #[test]
    fn the_simd_and_scalar_paths_give_identical_bytes() {
        let (w, h) = (301, 40);
        let plane = noise(w, h, 3);
        // 1.1× (every group fits 16 bytes) and 2.5× (none does: all scalar) downscales.
        for (r, dst) in [
            (rect(1.3, 0.7, 290.1, 38.0), (264, 36)),
            (rect(0.2, 0.0, 300.0, 40.0), (120, 16)),
        ] {
            let mut s = Sampler::default();
            s.prepare((w, h), r, dst).expect("prepare");
            let mut simd = vec![0; dst.0];
            let mut scalar = vec![0; dst.0];
            s.row[..w].copy_from_slice(&plane[..w]);
            columns(
                &s.row,
                &s.left,
                &s.frac,
                &s.groups,
                simd_available(),
                &mut simd,
            );
            columns(&s.row, &s.left, &s.frac, &s.groups, false, &mut scalar);
            assert_eq!(simd, scalar, "{r:?}");
        }
    }

    #[test]
    fn the_row_mix_gives_the_same_bytes_on_every_path() {
        let (a, b) = (noise(301, 1, 5), noise(301, 1, 6));
        for w in [1, 37, 64, 100, 127] {
            let mut fast = vec![0; 301];
            let mut scalar = vec![0; 301];
            mix_rows(&a, &b, w, &mut fast);
            mix_rows_scalar(&a, &b, w, &mut scalar);
            assert_eq!(fast, scalar, "weight {w}");
            // And each byte is the weighted mean, rounded.
            for ((&f, &x), &y) in fast.iter().zip(&a).zip(&b) {
                let want = (f64::from(x) * f64::from(ROW_ONE - w) + f64::from(y) * f64::from(w))
                    / f64::from(ROW_ONE);
                assert!((f64::from(f) - want).abs() <= 0.5, "{f} vs {want}");
            }
        }
    }

    #[test]
    fn a_moving_crop_moves_the_picture_by_fractions_of_a_pixel() {
        // A ramp 4 levels a column: shifting the crop a quarter pixel raises every value by 1.
        let (w, h) = (64, 4);
        let plane: Vec<u8> = (0..w * h).map(|i| (i % w * 4) as u8).collect();
        let a = sample(&plane, (w, h), rect(4.0, 0.0, 48.0, 4.0), (48, 4));
        let b = sample(&plane, (w, h), rect(4.25, 0.0, 48.0, 4.0), (48, 4));
        for (x, (&a, &b)) in a.iter().zip(&b).enumerate().take(40) {
            assert_eq!(i16::from(b) - i16::from(a), 1, "column {x}");
        }
    }

    /// The edge position, in source pixels, of each of 40 frames of a crop moving 0.05 px a
    /// frame (the slowest pans) across a sharp edge, along rows (`vertical`) or columns, scaled
    /// down by `scale`.
    fn edge_positions(vertical: bool, scale: f64) -> Vec<f64> {
        let (len, across) = (120, 16);
        let (w, h) = if vertical {
            (across, len)
        } else {
            (len, across)
        };
        let plane: Vec<u8> = (0..w * h)
            .map(|i| {
                let at = if vertical { i / w } else { i % w };
                if at < len / 2 { 0 } else { 255 }
            })
            .collect();
        let out_len = 80;
        (0..40)
            .map(|f| {
                let start = 10.0 + 0.05 * f64::from(f);
                let r = if vertical {
                    rect(0.0, start, across as f64, out_len as f64 * scale)
                } else {
                    rect(start, 0.0, out_len as f64 * scale, across as f64)
                };
                let dst = if vertical {
                    (across, out_len)
                } else {
                    (out_len, across)
                };
                let out = sample(&plane, (w, h), r, dst);
                let dark: f64 = out.iter().map(|&v| 1.0 - f64::from(v) / 255.0).sum();
                // Dark pixels of one line, in source pixels.
                dark / across as f64 * scale
            })
            .collect()
    }

    #[test]
    fn a_slow_crop_moves_an_edge_in_sub_pixel_steps_along_both_axes() {
        for vertical in [false, true] {
            // At the plate's own scale (a pan, the slowest motion): even steps, whatever the
            // weights' precision (1/128 px for rows, 1/256 for columns).
            let positions = edge_positions(vertical, 1.0);
            let steps: Vec<f64> = positions.windows(2).map(|p| p[0] - p[1]).collect();
            for pair in steps.windows(2) {
                assert!(
                    (pair[1] - pair[0]).abs() < 0.02,
                    "vertical {vertical}: uneven steps {pair:?} in {steps:?}"
                );
            }
            // Downscaled 1.1× (Ken Burns): two taps alias, so a sharp edge pauses for a frame or
            // two where it falls between two samples and catches up after, but never moves back
            // nor jumps, and travels exactly as far as the crop.
            let positions = edge_positions(vertical, 1.1);
            let steps: Vec<f64> = positions.windows(2).map(|p| p[0] - p[1]).collect();
            assert!(
                steps.iter().all(|s| (-1e-9..0.1).contains(s)),
                "vertical {vertical}: {steps:?}"
            );
            let travel = positions[0] - positions[39];
            assert!(
                (travel - 39.0 * 0.05).abs() < 0.1,
                "vertical {vertical}: {travel}"
            );
        }
    }

    #[test]
    fn mismatched_planes_and_empty_rectangles_are_errors() {
        let mut s = Sampler::default();
        assert!(s.prepare((0, 4), rect(0.0, 0.0, 1.0, 1.0), (2, 2)).is_err());
        assert!(s.prepare((4, 4), rect(0.0, 0.0, 0.0, 1.0), (2, 2)).is_err());
        assert!(
            s.prepare((4, 4), rect(f64::NAN, 0.0, 1.0, 1.0), (2, 2))
                .is_err()
        );
        s.prepare((4, 4), rect(0.0, 0.0, 4.0, 4.0), (2, 2))
            .expect("prepare");
        assert!(s.draw(&[0; 15], &mut [0; 4]).is_err());
        assert!(s.draw(&[0; 16], &mut [0; 5]).is_err());
    }
}
