//! Times in job JSON, shared by the in-process API tests and the end-to-end tests.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A job's time field (`finished_at`, `expires_at`, …).
pub fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {v}"))
}

/// Sleeps until `at` has passed.
pub async fn until(at: DateTime<Utc>) {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
}
