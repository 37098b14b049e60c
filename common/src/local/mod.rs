//! The embedded backend: everything under one data directory, no cloud.
//!
//! - [`blob::LocalBlobStore`]: files under `<data>/blobs`, downloaded through the API's signed,
//!   expiring `/files/…` URLs ([`signing::UrlSigner`]).
//! - [`jobs::SqliteJobStore`] and [`queue::SqliteQueue`]: tables in `<data>/minimoto.db`
//!   (SQLite, WAL), so several processes (the API and worker processes) share them and they
//!   survive restarts.

pub mod blob;
pub mod db;
pub mod jobs;
pub mod queue;
pub mod signing;
