//! Job ids: UUIDv7, so ids sort by creation time (useful for listing and for keys in storage).

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// How long ago the id was made: ids are UUIDv7, so they carry their creation time (to the
    /// millisecond). An id without one (not made by [`JobId::new`]) counts as infinitely old.
    pub fn age(&self) -> std::time::Duration {
        let Some(ts) = self.0.get_timestamp() else {
            return std::time::Duration::MAX;
        };
        let (secs, nanos) = ts.to_unix();
        let made = std::time::UNIX_EPOCH + std::time::Duration::new(secs, nanos);
        std::time::SystemTime::now()
            .duration_since(made)
            .unwrap_or(std::time::Duration::ZERO)
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

impl utoipa::PartialSchema for JobId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .description(Some("A job id (UUIDv7: ids sort by creation time)."))
            .into()
    }
}

impl utoipa::ToSchema for JobId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_time_ordered() {
        let a = JobId::new();
        let b = JobId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.to_string().parse::<JobId>().ok(), Some(a));
    }
}
