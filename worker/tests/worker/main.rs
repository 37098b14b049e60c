//! The worker's tests, one binary: the consume loop (`consume`), renders with the real ffmpeg
//! (`render`, `encoder_failure`) and the `minimoto-worker` binary itself (`binary`).

mod binary;
mod consume;
mod encoder_failure;
mod render;
