//! Making photos and multipart job submissions, shared by the end-to-end tests (the real binary)
//! and the in-process API tests (`api/tests`). Depends on `image` and `reqwest` only.

#![allow(dead_code, reason = "each test binary uses part of these helpers")]

use image::{ImageFormat, Rgb, RgbImage};

/// A photo with a gradient and a corner mark, so orientation and cropping are visible.
pub fn photo(width: u32, height: u32, seed: u8, format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        if x < width / 8 && y < height / 8 {
            Rgb([255, 255, 255])
        } else {
            let r = (x * 255 / width.max(1)) as u8;
            let g = (y * 255 / height.max(1)) as u8;
            Rgb([r, g, seed.wrapping_mul(40)])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode photo");
    out.into_inner()
}

pub fn jpeg(width: u32, height: u32, seed: u8) -> Vec<u8> {
    photo(width, height, seed, ImageFormat::Jpeg)
}

/// A `POST /v1/jobs` body: one `images` part per photo, then `options` if given.
pub fn form(images: &[(&str, Vec<u8>)], options: Option<&str>) -> reqwest::multipart::Form {
    let mut form = reqwest::multipart::Form::new();
    for (name, bytes) in images {
        form = form.part(
            "images",
            reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    if let Some(o) = options {
        form = form.text("options", o.to_owned());
    }
    form
}
