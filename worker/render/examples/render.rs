//! Renders photos into a video without the service around it, for measuring the pipeline:
//!
//! ```sh
//! cargo run --release -p minimoto-render --example render -- OUT_DIR '{"fps": 30}' a.jpg b.jpg …
//! ```
//!
//! Prints one JSON line: frames, seconds, frames per second. Peak memory: run it under
//! `/usr/bin/time -v`.

use std::{path::PathBuf, sync::atomic::AtomicBool, time::Instant};

use minimoto_common::{limits::Limits, spec::RenderSpec};
use minimoto_render::{EncoderSettings, RenderInput, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: render OUT_DIR OPTIONS_JSON PHOTO…";
    let out_dir = PathBuf::from(args.next().ok_or(usage)?);
    let spec =
        RenderSpec::from_json(args.next().ok_or(usage)?.as_bytes()).map_err(|v| v.message)?;
    let photos: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let limits = Limits::default();
    // The worker's `--ffmpeg` setting, as its environment variable (the benchmark points it at a
    // wrapper that keeps a copy of the frames).
    let ffmpeg = std::env::var_os("MINIMOTO_FFMPEG").map(PathBuf::from);
    let started = Instant::now();
    let input = RenderInput {
        spec: &spec,
        photos: &photos,
        audio: None,
        limits: &limits,
        out_dir: &out_dir,
        encoder: &EncoderSettings::new(minimoto_render::ffmpeg::resolve(ffmpeg.as_deref())),
    };
    let rendered = render(&input, &|_| {}, &AtomicBool::new(false))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"photos\": {}, \"frames\": {}, \"seconds\": {seconds:.3}, \"fps\": {:.1}}}",
        photos.len(),
        rendered.frames,
        rendered.frames as f64 / seconds
    );
    Ok(())
}
