//! The core of minimoto shared by the API, the worker and the CLI.
//!
//! - [`job`] and [`spec`]: the domain — a job's record and status machine, and the render spec a
//!   client asks for (validated here, so the API and the worker agree on what is valid).
//! - [`ports`]: the narrow traits the services use to reach storage ([`ports::BlobStore`],
//!   [`ports::JobStore`], [`ports::JobQueue`], [`ports::WorkerRegistry`]), shaped by what the app
//!   needs rather than by an SDK.
//! - [`retention`]: how long a job's files and record outlive it.
//! - [`webhook`]: the announcement of a job's end state to its `callback_url`, kept on the job.
//! - [`fleet`]: the worker registry's records (heartbeats, drain requests, scaler decisions).
//! - `contract` (feature `contract`): the test suites every adapter of a port must pass.

pub mod codes;
pub mod crash;
pub mod error;
pub mod fleet;
pub mod ids;
pub mod job;
pub mod layout;
pub mod limits;
pub mod ports;
pub mod problem;
pub mod reclaim;
pub mod record;
pub mod retention;
pub mod spec;
pub mod webhook;

#[cfg(feature = "contract")]
pub mod contract;

pub use codes::ErrorCode;
pub use error::{Error, Result};
pub use ids::JobId;
