//! The minimoto render worker.
//!
//! - [`consume::Worker`]: the queue consumer (claim, heartbeat, render, upload, settle).
//! - The render itself (decode, fit, compose frames, encode with ffmpeg) is the `minimoto-render`
//!   crate, re-exported here as [`render`].
//! - [`presence`]: the process in the worker registry (heartbeats, drain requests).
//! - [`spot`]: the EC2 Spot interruption notice, polled from instance metadata.
//! - [`cli`]: running workers as a process (the `minimoto-worker` binary, and `minimoto serve`).

pub mod cli;
pub mod config;
pub mod consume;
pub mod heartbeat;
pub mod outcome;
pub mod presence;
pub mod spot;

pub use config::WorkerConfig;
pub use consume::Worker;
pub use minimoto_render as render;
