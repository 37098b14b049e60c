//! The poster: one JPEG frame taken from the finished video (not re-rendered), so it matches
//! exactly what plays.

use std::path::Path;

use super::{RenderError, encode};

/// Arguments that write the frame at `seconds` of `video` to `output` as a JPEG.
///
/// The video is BT.709 limited range, while JPEG (JFIF) means BT.601 full range: without the
/// explicit conversion ffmpeg would copy the samples across and shift colours (pure green comes out
/// with a red cast). `-strict unofficial` lets the encoder take that full-range yuv420p as is.
pub fn poster_args(video: &Path, seconds: f64, output: &Path) -> Vec<String> {
    let mut args = encode::common_args();
    // Seeking before `-i` is fast, and frame-accurate since the frame is decoded anyway.
    let (at, video) = (format!("{seconds:.6}"), video.to_string_lossy());
    encode::push_pairs(&mut args, &[("-ss", &at), ("-i", &video)]);
    encode::push_pairs(
        &mut args,
        &[
            ("-frames:v", "1"),
            (
                "-vf",
                "scale=in_color_matrix=bt709:in_range=tv:out_color_matrix=bt601:out_range=pc",
            ),
            ("-pix_fmt", "yuv420p"),
            ("-strict", "unofficial"),
            ("-q:v", "2"),
            ("-update", "1"),
            ("-f", "image2"),
        ],
    );
    args.push("-y".into());
    args.push(output.to_string_lossy().into_owned());
    args
}

/// Extracts frame `frame` of `video` (at `fps`) into `output`.
pub fn extract(
    ffmpeg: &Path,
    video: &Path,
    frame: u64,
    fps: u32,
    output: &Path,
) -> Result<(), RenderError> {
    let args = poster_args(video, frame as f64 / f64::from(fps), output);
    encode::run_writing(ffmpeg, &args, output, "poster frame")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn poster_args_table() {
        let cases = [
            (0.0, "0.000000"),
            (0.4, "0.400000"),
            (45.0 / 30.0, "1.500000"),
            (1.0 / 3.0, "0.333333"),
        ];
        for (seconds, shown) in cases {
            let args = poster_args(
                &PathBuf::from("/j/video.mp4"),
                seconds,
                &PathBuf::from("/j/poster.partial.jpg"),
            );
            let at = |flag: &str| args.iter().position(|a| a == flag).expect(flag);
            // Seek before the input (fast, and frame-accurate when transcoding).
            assert_eq!(args[at("-ss") + 1], shown);
            assert!(at("-ss") < at("-i"));
            assert_eq!(args[at("-i") + 1], "/j/video.mp4");
            assert_eq!(args[at("-frames:v") + 1], "1");
            assert!(args[at("-vf") + 1].contains("out_color_matrix=bt601:out_range=pc"));
            assert_eq!(args[at("-f") + 1], "image2");
            assert_eq!(
                args.last().map(String::as_str),
                Some("/j/poster.partial.jpg")
            );
        }
    }
}
