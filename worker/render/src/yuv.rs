//! RGBx → yuv420p, BT.709 limited range: the only pixel format every browser decodes, converted
//! here because ffmpeg's own RGB→YUV path costs several times more CPU per frame (and untagged
//! BT.601 output would shift colours on HD players).
//!
//! Plates are converted once per photo ([`YuvPlate`]) and frames are sampled from them plane by
//! plane, so no frame is ever converted: the conversion is affine and the sampling and blends
//! linear, so the order changes nothing but rounding.

use yuvutils_rs::{
    BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix,
    rgba_to_yuv420,
};

use super::{
    RenderError,
    fit::{Plate, internal},
};

/// A plate in yuv420p: the full-size luma plane and two half-size chroma planes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YuvPlate {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl YuvPlate {
    /// Converts an RGBx plate of even width and height.
    pub fn from_rgbx(plate: &Plate) -> Result<Self, RenderError> {
        let (w, h) = (plate.width, plate.height);
        if w % 2 != 0 || h % 2 != 0 {
            return Err(internal(format!(
                "a {w}x{h} plate: yuv420p needs even sides"
            )));
        }
        let mut frame = vec![0; frame_len(w, h)];
        rgbx_to_yuv420(&plate.pixels, w, h, &mut frame)?;
        let luma = w as usize * h as usize;
        let v = frame.split_off(luma + luma / 4);
        let u = frame.split_off(luma);
        // The luma plane keeps the whole frame's allocation otherwise (a third more).
        frame.shrink_to_fit();
        Ok(Self {
            width: w,
            height: h,
            y: frame,
            u,
            v,
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The chroma planes' size.
    pub fn half(&self) -> (usize, usize) {
        (self.width as usize / 2, self.height as usize / 2)
    }
}

/// Bytes of one yuv420p frame (even width and height): Y, then U, then V, as ffmpeg reads them.
pub fn frame_len(width: u32, height: u32) -> usize {
    let (w, h) = (width as usize, height as usize);
    w * h + 2 * (w / 2) * (h / 2)
}

/// The Y, U and V planes of a yuv420p frame (of at least [`frame_len`] bytes).
pub fn planes(frame: &[u8], width: u32, height: u32) -> [&[u8]; 3] {
    let (luma, chroma) = plane_lens(width, height);
    let (y, uv) = frame.split_at(luma);
    let (u, v) = uv.split_at(chroma);
    [y, u, v]
}

/// [`planes`], writable.
pub fn planes_mut(frame: &mut [u8], width: u32, height: u32) -> [&mut [u8]; 3] {
    let (luma, chroma) = plane_lens(width, height);
    let (y, uv) = frame.split_at_mut(luma);
    let (u, v) = uv.split_at_mut(chroma);
    [y, u, v]
}

/// Bytes of the luma plane and of each chroma plane.
fn plane_lens(width: u32, height: u32) -> (usize, usize) {
    let (w, h) = (width as usize, height as usize);
    (w * h, (w / 2) * (h / 2))
}

/// Converts `rgbx` (`width × height × 4` bytes; the 4th byte is ignored) into `out`
/// ([`frame_len`] bytes).
pub fn rgbx_to_yuv420(
    rgbx: &[u8],
    width: u32,
    height: u32,
    out: &mut [u8],
) -> Result<(), RenderError> {
    let luma = width as usize * height as usize;
    if out.len() != frame_len(width, height) || rgbx.len() != luma * 4 {
        return Err(internal("frame buffers do not match the canvas"));
    }
    let [y, u, v] = planes_mut(out, width, height);
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: width / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: width / 2,
        width,
        height,
    };
    rgba_to_yuv420(
        &mut planar,
        rgbx,
        width * 4,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
        YuvConversionMode::Balanced,
    )
    .map_err(internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(rgb: [u8; 3]) -> (u8, u8, u8) {
        let (w, h) = (4, 2);
        let rgbx = [rgb[0], rgb[1], rgb[2], 255].repeat(w * h);
        let mut out = vec![0; frame_len(w as u32, h as u32)];
        rgbx_to_yuv420(&rgbx, w as u32, h as u32, &mut out).expect("convert");
        assert!(out[..8].iter().all(|&y| y == out[0]));
        (out[0], out[8], out[10])
    }

    fn close(a: (u8, u8, u8), b: (u8, u8, u8)) -> bool {
        let d = |x: u8, y: u8| (i16::from(x) - i16::from(y)).abs() <= 1;
        d(a.0, b.0) && d(a.1, b.1) && d(a.2, b.2)
    }

    #[test]
    fn bt709_limited_range_reference_colours() {
        assert!(
            close(convert([0, 0, 0]), (16, 128, 128)),
            "{:?}",
            convert([0, 0, 0])
        );
        assert!(
            close(convert([255, 255, 255]), (235, 128, 128)),
            "{:?}",
            convert([255, 255, 255])
        );
        // BT.709 red: Y = 16 + 219·0.2126, Cb = 128 − 224·0.2126/1.8556, Cr = 240.
        assert!(
            close(convert([255, 0, 0]), (63, 102, 240)),
            "{:?}",
            convert([255, 0, 0])
        );
        // BT.709 green: Y = 16 + 219·0.7152 (BT.601 would give 145).
        assert!(
            close(convert([0, 255, 0]), (173, 42, 26)),
            "{:?}",
            convert([0, 255, 0])
        );
    }

    #[test]
    fn a_plate_converts_into_its_three_planes() {
        let plate = Plate {
            width: 4,
            height: 2,
            pixels: [[255, 0, 0, 255], [0, 255, 0, 255]].concat().repeat(4),
        };
        let yuv = YuvPlate::from_rgbx(&plate).expect("convert");
        assert_eq!((yuv.y.len(), yuv.u.len(), yuv.v.len()), (8, 2, 2));
        let mut frame = vec![0; frame_len(4, 2)];
        rgbx_to_yuv420(&plate.pixels, 4, 2, &mut frame).expect("convert");
        assert_eq!([yuv.y, yuv.u, yuv.v].concat(), frame);
        let odd = Plate {
            width: 3,
            height: 2,
            pixels: vec![0; 24],
        };
        assert!(YuvPlate::from_rgbx(&odd).is_err());
    }

    #[test]
    fn mismatched_buffers_are_an_error_not_a_panic() {
        let mut out = vec![0; 10];
        assert!(rgbx_to_yuv420(&[0; 32], 4, 2, &mut out).is_err());
    }
}
