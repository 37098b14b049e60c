//! The poster: the video's frame at the poster time, exactly as composed (the frame the encoder
//! was given, before its compression), written as a JPEG by a low-priority thread while the rest
//! of the video is still being encoded. Cutting it from the finished video instead took a second
//! ffmpeg run after the encoder (~0.25 s at 720p) that nothing else could overlap.

use std::path::Path;

use image::RgbImage;
use yuvutils_rs::{YuvPlanarImage, YuvRange, YuvStandardMatrix, yuv420_to_rgb};

use super::{RenderError, fit::internal, thumbnails, yuv};

/// JPEG quality of the poster: a full-size picture that should look like the video, or better.
const QUALITY: u8 = 92;

/// A yuv420p frame (BT.709 limited range, [`yuv::frame_len`] bytes) as RGB. The JPEG encoder then
/// writes JFIF's BT.601 full range: skipping the conversion would shift colours.
pub fn to_rgb(frame: &[u8], width: u32, height: u32) -> Result<RgbImage, RenderError> {
    if frame.len() != yuv::frame_len(width, height) {
        return Err(internal("the poster frame does not match the canvas"));
    }
    let luma = width as usize * height as usize;
    let [y, u, v] = yuv::planes(frame, width, height);
    let planar = YuvPlanarImage {
        y_plane: y,
        y_stride: width,
        u_plane: u,
        u_stride: width / 2,
        v_plane: v,
        v_stride: width / 2,
        width,
        height,
    };
    let mut rgb = vec![0; luma * 3];
    yuv420_to_rgb(
        &planar,
        &mut rgb,
        width * 3,
        YuvRange::Limited,
        YuvStandardMatrix::Bt709,
    )
    .map_err(internal)?;
    RgbImage::from_raw(width, height, rgb).ok_or_else(|| internal("poster buffer size"))
}

/// Writes `picture` to `output` as a JPEG, flushed to disk.
pub fn write(picture: &RgbImage, output: &Path) -> Result<(), RenderError> {
    thumbnails::write_jpeg(picture, QUALITY, output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_bt709_frames_become_their_rgb_colours() {
        // Red and green of yuv::tests' reference colours, 4×2 each.
        for ((y, u, v), rgb) in [((63, 102, 240), [255, 0, 0]), ((173, 42, 26), [0, 255, 0])] {
            let frame = [vec![y; 8], vec![u; 2], vec![v; 2]].concat();
            let picture = to_rgb(&frame, 4, 2).expect("convert");
            for px in picture.pixels() {
                let near = px.0.iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 3);
                assert!(near, "{:?} for {rgb:?}", px.0);
            }
        }
        assert!(to_rgb(&[0; 11], 4, 2).is_err());
    }
}
