//! Starting a minimoto process, written once for the `minimoto`, `minimoto-api` and
//! `minimoto-worker` binaries.
//!
//! - [`main`]: logging and the async runtime around a binary's `run`, with one exit-code rule.
//! - [`args`]: the settings every role shares (data directory, backend, attempts, limits).
//! - [`backend`]: choosing and opening the storage backend (`local`, or `aws` with the feature).
//! - [`scratch`]: per-process scratch space, and sweeping what dead processes left.
//! - [`signals`]: two-stage shutdown on SIGINT/SIGTERM.
//! - [`memory`]: giving freed memory back to the system after a burst.
//!
//! [`start`] runs the startup sequence in its one order: the role's own preflight (the worker's
//! ffmpeg check), the data directory, the backend, the scratch space, the signal handlers.

pub mod args;
pub mod backend;
pub mod memory;
pub mod scratch;
pub mod signals;

use std::{future::Future, process::ExitCode};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};

pub use args::{CommonArgs, LimitArgs};
pub use backend::Backend;
pub use scratch::Scratch;

/// Runs a binary: logs to stderr (`RUST_LOG`, default `info`; one JSON object a line with
/// `MINIMOTO_LOG_FORMAT=json`), runs `run` on a multi-threaded runtime, and prints its error
/// (with causes) before failing.
pub fn main<F>(run: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    // fmt's own ceiling is INFO; `Targets` does the filtering, so lift it.
    let logs = tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(std::io::stderr);
    if json_logs() {
        // The fields of the request's span (its id among them) on every line, for log stores.
        let logs = logs.json().with_current_span(true).with_span_list(false);
        logs.finish().with(log_filter()).init();
    } else {
        logs.finish().with(log_filter()).init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter from `RUST_LOG`: comma-separated `level` and `target=level` directives
/// (`info,minimoto_worker=debug`). `tracing`'s `Targets` rather than `EnvFilter`: the same
/// directives minus span-field regexes, without compiling a regex engine into every binary.
/// A value that does not parse is reported and the default used.
fn log_filter() -> Targets {
    const DEFAULT: &str = "info,tower_http=warn";
    let fallback = || DEFAULT.parse().unwrap_or_default();
    match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value.parse().unwrap_or_else(|e| {
            eprintln!(
                "warning: RUST_LOG=`{value}` is not a log filter ({e}); logging at `{DEFAULT}`"
            );
            fallback()
        }),
        _ => fallback(),
    }
}

/// `MINIMOTO_LOG_FORMAT`: `text` (the default, for people) or `json` (for log stores). Read here
/// with `RUST_LOG`, before anything else could log; a value that is neither is reported.
fn json_logs() -> bool {
    match std::env::var("MINIMOTO_LOG_FORMAT") {
        Ok(v) if v.eq_ignore_ascii_case("json") => true,
        Ok(v) if v.is_empty() || v.eq_ignore_ascii_case("text") => false,
        Ok(v) => {
            eprintln!(
                "warning: MINIMOTO_LOG_FORMAT=`{v}` is neither `text` nor `json`; logging text"
            );
            false
        }
        Err(_) => false,
    }
}

/// What a started process holds for its life.
#[derive(Debug)]
pub struct Started {
    pub backend: Backend,
    /// This process's scratch directory (locked while the process lives).
    pub scratch: Scratch,
    /// Fires on the first SIGINT/SIGTERM.
    pub shutdown: CancellationToken,
}

/// The startup sequence. `preflight` checks what the role needs besides storage (a failure stops
/// the process before anything is opened); `public_url` is the base of the embedded backend's
/// download links (`None` in a process that hands out none).
pub async fn start(
    args: &CommonArgs,
    public_url: Option<&str>,
    preflight: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Started> {
    preflight()?;
    minimoto_common::crash::arm();
    let data = &args.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create the data directory {}", data.display()))?;
    let backend = Backend::open(args, public_url).await?;
    let scratch = Scratch::claim(&data.join("scratch"))?;
    let shutdown = signals::shutdown_on_signals();
    Ok(Started {
        backend,
        scratch,
        shutdown,
    })
}
