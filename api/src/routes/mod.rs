//! The HTTP routes, one file per resource.

pub mod files;
pub mod health;
pub mod jobs;
