//! The HTTP routes, one file per resource.

pub mod docs;
pub mod events;
pub mod health;
pub mod jobs;
pub mod limits;
pub mod list;
