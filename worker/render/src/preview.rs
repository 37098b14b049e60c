//! The animated preview: the whole finished video sped up into a few seconds of a small looping
//! GIF or animated WebP, cut by ffmpeg from the video itself (so it shows what plays).

use std::path::Path;

use minimoto_common::spec::{PREVIEW_FPS, PreviewFormat, PreviewSpec};

use super::{RenderError, encode};

/// The preview's size for a `width` × `height` video: the asked width (never more than the
/// video's), the height in proportion rounded to an even number.
pub fn dimensions(width: u32, height: u32, spec: &PreviewSpec) -> (u32, u32) {
    let w = spec.width.min(width);
    let h = (f64::from(w) * f64::from(height) / f64::from(width) / 2.0).round() as u32 * 2;
    (w, h.max(2))
}

/// Its frame count: `spec.seconds` (or the video's length, when shorter) at [`PREVIEW_FPS`].
pub fn frames(spec: &PreviewSpec, video_seconds: f64) -> u64 {
    ((spec.seconds.min(video_seconds) * f64::from(PREVIEW_FPS)).round() as u64).max(1)
}

/// The file name of a preview.
pub fn file_name(format: PreviewFormat) -> String {
    format!("preview.{}", format.extension())
}

/// The name it is written under until complete.
pub fn part_name(format: PreviewFormat) -> String {
    format!("preview.partial.{}", format.extension())
}

/// Arguments that write the preview of `video` (`size`, `video_seconds` long) to `output`.
///
/// Timestamps are compressed so the whole video fits `spec.seconds`, then frames are sampled at
/// [`PREVIEW_FPS`]. The video is BT.709 limited range: the conversion to RGB says so, so colours
/// match the video. A GIF gets one palette for the whole preview, made from its own frames.
pub fn preview_args(
    video: &Path,
    size: (u32, u32),
    video_seconds: f64,
    spec: &PreviewSpec,
    output: &Path,
) -> Vec<String> {
    let speed = (spec.seconds / video_seconds).min(1.0);
    let (w, h) = dimensions(size.0, size.1, spec);
    let pixels = match spec.format {
        PreviewFormat::Gif => "rgb24",
        PreviewFormat::Webp => "bgra",
    };
    let mut filter = format!(
        "setpts=PTS*{speed:.9},fps={PREVIEW_FPS},\
         scale={w}:{h}:flags=lanczos:in_color_matrix=bt709:in_range=tv,format={pixels}"
    );
    if spec.format == PreviewFormat::Gif {
        filter.push_str(
            ",split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=sierra2_4a",
        );
    }
    let frames = frames(spec, video_seconds).to_string();
    let mut args = encode::common_args();
    let video = video.to_string_lossy();
    encode::push_pairs(&mut args, &[("-i", &video)]);
    args.extend(["-an".to_owned(), "-sn".to_owned()]);
    encode::push_pairs(
        &mut args,
        &[
            ("-filter_complex", &filter),
            ("-frames:v", &frames),
            ("-loop", "0"),
        ],
    );
    let codec: &[(&str, &str)] = match spec.format {
        PreviewFormat::Gif => &[("-f", "gif")],
        PreviewFormat::Webp => &[
            ("-c:v", "libwebp_anim"),
            ("-lossless", "0"),
            ("-quality", "75"),
            ("-f", "webp"),
        ],
    };
    encode::push_pairs(&mut args, codec);
    args.push("-y".into());
    args.push(output.to_string_lossy().into_owned());
    args
}

/// Writes the preview of `video` to `output`.
pub fn write(
    ffmpeg: &Path,
    video: &Path,
    size: (u32, u32),
    video_seconds: f64,
    spec: &PreviewSpec,
    output: &Path,
) -> Result<(), RenderError> {
    let args = preview_args(video, size, video_seconds, spec, output);
    encode::run_writing(ffmpeg, &args, output, "preview")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn spec(format: PreviewFormat, seconds: f64, width: u32) -> PreviewSpec {
        PreviewSpec {
            format,
            seconds,
            width,
        }
    }

    #[test]
    fn size_and_length_follow_the_video() {
        let gif = spec(PreviewFormat::Gif, 3.0, 320);
        assert_eq!(dimensions(1280, 720, &gif), (320, 180));
        assert_eq!(dimensions(720, 1280, &gif), (320, 568));
        assert_eq!(dimensions(200, 100, &gif), (200, 100));
        assert_eq!(frames(&gif, 45.0), 30);
        // A video shorter than the preview plays at its own speed, and is as long as it is.
        assert_eq!(frames(&gif, 1.5), 15);
    }

    #[test]
    fn preview_args_table() {
        let (video, out) = (PathBuf::from("/j/video.mp4"), PathBuf::from("/j/p.gif"));
        for (format, seconds, video_seconds, speed, codec) in [
            (PreviewFormat::Gif, 3.0, 45.0, "0.066666667", "gif"),
            (PreviewFormat::Webp, 5.0, 2.0, "1.000000000", "libwebp_anim"),
        ] {
            let s = spec(format, seconds, 320);
            let args = preview_args(&video, (1280, 720), video_seconds, &s, &out);
            let at = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
            let filter = &args[at("-filter_complex") + 1];
            assert!(
                filter.starts_with(&format!("setpts=PTS*{speed},fps=10,")),
                "{filter}"
            );
            assert!(filter.contains("scale=320:180:") && filter.contains("in_color_matrix=bt709"));
            assert_eq!(filter.contains("palettegen"), format == PreviewFormat::Gif);
            let expected = (seconds.min(video_seconds) * 10.0).to_string();
            assert_eq!(args[at("-frames:v") + 1], expected);
            assert_eq!(args[at("-loop") + 1], "0");
            let encoder = match format {
                PreviewFormat::Gif => &args[at("-f") + 1],
                PreviewFormat::Webp => &args[at("-c:v") + 1],
            };
            assert_eq!(encoder, codec);
            assert_eq!(args.last().map(String::as_str), Some("/j/p.gif"));
        }
    }
}
