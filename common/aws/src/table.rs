//! The DynamoDB table check shared by the job store and the worker registry.

use minimoto_common::error::{Error, Result};

use crate::sdk_error;

/// Checks that a DynamoDB table exists and has the global secondary `indexes` its queries need:
/// an absent table or index is `missing()`'s message (which says how to create them) with what
/// is absent, any other failure the SDK's. (A table made by an older `setup` lacks the indexes
/// added since; without this check every query on them would fail while the API takes jobs.)
pub(crate) async fn check_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    indexes: &[&str],
    missing: impl FnOnce() -> String,
) -> Result<()> {
    let described = match client.describe_table().table_name(table).send().await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Err(Error::Invalid(format!("{} (no table)", missing())));
        }
        Err(e) => return Err(sdk_error("dynamodb", &format!("describe table {table}"), e)),
    };
    let present: Vec<&str> = described
        .table()
        .map(|t| t.global_secondary_indexes())
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.index_name())
        .collect();
    let absent: Vec<&str> = indexes
        .iter()
        .copied()
        .filter(|name| !present.contains(name))
        .collect();
    if absent.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{} (the table has no index {})",
            missing(),
            absent.join(", ")
        )))
    }
}

/// Whether a DynamoDB write was refused by its condition expression (the compare-and-set lost,
/// or the item exists or does not): an answer, not a failure.
pub(crate) fn condition_failed(e: &impl aws_sdk_dynamodb::error::ProvideErrorMetadata) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}
