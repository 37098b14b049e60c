//! The minimoto render worker.
//!
//! - [`consume::Worker`]: the queue consumer (claim, heartbeat, render, upload, settle).
//! - [`render`]: the photo-to-video pipeline (decode, fit, compose frames, encode with ffmpeg).
//! - [`ffmpeg`]: finding ffmpeg and checking it at startup.
//! - [`presence`]: the process in the worker registry (heartbeats, drain requests).
//! - [`spot`]: the EC2 Spot interruption notice, polled from instance metadata.
//! - [`cli`]: running workers as a process (the `minimoto-worker` binary, and `minimoto serve`).

pub mod cli;
pub mod config;
pub mod consume;
pub mod ffmpeg;
pub mod heartbeat;
pub mod outcome;
pub mod presence;
pub mod render;
pub mod spot;

pub use config::WorkerConfig;
pub use consume::Worker;
