//! The embedded backend: everything under one data directory, no cloud. The port's error leaves
//! this crate as [`minimoto_common::Error`]; [`error::DbError`] lives only inside database calls.
//!
//! - [`blob::LocalBlobStore`]: files under `<data>/blobs`, downloaded through signed, expiring
//!   `/files/…` URLs ([`signing::UrlSigner`]) that `files::router` (feature `http`) serves.
//! - [`jobs::SqliteJobStore`] and [`queue::SqliteQueue`]: tables in `<data>/minimoto.db`
//!   (SQLite, WAL), so several processes (the API and worker processes) share them and they
//!   survive restarts.
//! - [`events::SqliteEvents`]: the events queue (each job's end, for consumers of a queue), a
//!   table of the same database.
//! - [`expiry::LocalExpiry`]: retention's sweep, deleting expired jobs' files, then records.
//! - [`registry::SqliteRegistry`]: the worker registry (heartbeats, drain requests, the scaler's
//!   last decisions) in the same database.

pub mod blob;
pub mod db;
pub mod error;
pub mod events;
pub mod expiry;
#[cfg(feature = "http")]
pub mod files;
pub mod jobs;
pub mod queue;
pub mod registry;
pub mod signing;
