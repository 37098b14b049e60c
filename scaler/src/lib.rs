//! The scaler: keeps the worker fleet as small as it can be while queue waits stay short.
//!
//! - [`control`]: the loop — observe, decide, act — with the drain handshake.
//! - [`cli`] and [`status`]: the `minimoto-scaler` binary (`run`, `status`, `simulate`).
//! - [`metrics`]: Prometheus metrics of each round.
//! - [`policy`]: observations → decisions, pure and table-tested; the same code the simulator runs.
//! - [`estimate`]: arrival rate and job time from counters, the same in the binary and simulator.
//! - [`fleet`]: where workers run (`local` processes, or `ec2` instances with the `aws` feature).
//! - [`simulate`]: `scaler simulate`, the seeded simulation that compares the policies.

pub mod cli;
pub mod control;
pub mod error;
pub mod estimate;
pub mod fleet;
pub mod metrics;
pub mod policy;
#[cfg(feature = "simulate")]
pub mod simulate;
pub mod status;

pub use error::{Error, Result};
