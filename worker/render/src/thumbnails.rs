//! Thumbnails: the poster scaled down to each asked size (its longest side), as JPEGs, so a
//! gallery shows small, medium and large pictures of a video without downloading the poster.
//! Never upscaled: a size larger than the poster gives the poster's size.

use std::{
    fs,
    io::BufWriter,
    path::{Path, PathBuf},
};

use fast_image_resize::FilterType;
use image::{ExtendedColorType, ImageEncoder, RgbImage, codecs::jpeg::JpegEncoder};

use super::{
    RenderError,
    fit::{internal, resize, to_rgbx},
};

/// JPEG quality of a thumbnail: small files that still look clean at their size.
const QUALITY: u8 = 85;

/// One written thumbnail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumb {
    /// The size asked for.
    pub size: u32,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
}

/// The size of `size`'s thumbnail of a `width` × `height` picture: the longest side `size`, the
/// other in proportion (rounded, at least 1), or the picture's own size when it is smaller.
pub fn dimensions(width: u32, height: u32, size: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= size {
        return (width, height);
    }
    let scale = |side: u32| {
        ((f64::from(side) * f64::from(size) / f64::from(long)).round() as u32).clamp(1, size)
    };
    (scale(width), scale(height))
}

/// The file name of `size`'s thumbnail.
pub fn file_name(size: u32) -> String {
    format!("thumb-{size}.jpg")
}

/// The name it is written under until complete.
pub fn part_name(size: u32) -> String {
    format!("thumb-{size}.partial.jpg")
}

/// Writes a thumbnail of `poster` for each of `sizes` into `out_dir`, each under a temporary name
/// renamed once complete. Returns them in the order of `sizes`.
pub fn write(poster: &RgbImage, sizes: &[u32], out_dir: &Path) -> Result<Vec<Thumb>, RenderError> {
    if sizes.is_empty() {
        return Ok(Vec::new());
    }
    let rgbx = to_rgbx(poster)?;
    let mut out = Vec::with_capacity(sizes.len());
    for &size in sizes {
        let (width, height) = dimensions(rgbx.width(), rgbx.height(), size);
        let small = resize(&rgbx, width, height, false, FilterType::Lanczos3)?;
        let rgb: Vec<u8> = small
            .as_raw()
            .chunks_exact(4)
            .flat_map(|px| [px[0], px[1], px[2]])
            .collect();
        let rgb = RgbImage::from_raw(width, height, rgb)
            .ok_or_else(|| internal("thumbnail buffer size"))?;
        let path = out_dir.join(file_name(size));
        let part = out_dir.join(part_name(size));
        write_jpeg(&rgb, QUALITY, &part)?;
        fs::rename(&part, &path)?;
        out.push(Thumb {
            size,
            path,
            width,
            height,
        });
    }
    Ok(out)
}

/// Writes `picture` as a JPEG of `quality` to `path`, flushed and synced.
pub(crate) fn write_jpeg(picture: &RgbImage, quality: u8, path: &Path) -> Result<(), RenderError> {
    let mut file = BufWriter::new(fs::File::create(path)?);
    JpegEncoder::new_with_quality(&mut file, quality)
        .write_image(
            picture.as_raw(),
            picture.width(),
            picture.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| match e {
            image::ImageError::IoError(io) => RenderError::Io(io),
            other => internal(format!("encoding a JPEG failed ({other})")),
        })?;
    // Flushed here, not on drop, where a failed write (a full disk) would go unnoticed.
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_side_is_the_size_and_nothing_is_upscaled() {
        let cases = [
            ((1280, 720, 100), (100, 56)),
            ((1280, 720, 300), (300, 169)),
            ((720, 1280, 600), (338, 600)),
            ((1080, 1080, 300), (300, 300)),
            ((1280, 720, 1280), (1280, 720)),
            ((640, 360, 2048), (640, 360)),
            ((4096, 16, 100), (100, 1)),
        ];
        for ((w, h, size), expected) in cases {
            assert_eq!(dimensions(w, h, size), expected, "{w}x{h} at {size}");
        }
    }
}
