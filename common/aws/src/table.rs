//! The DynamoDB table check shared by the job store and the worker registry.

use minimoto_common::error::{Error, Result};

use crate::sdk_error;

/// Checks that a DynamoDB table exists: its absence is `missing()`'s message (which says how to
/// create it), any other failure the SDK's.
pub(crate) async fn check_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    missing: impl FnOnce() -> String,
) -> Result<()> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Err(Error::Invalid(missing()))
        }
        Err(e) => Err(sdk_error("dynamodb", &format!("describe table {table}"), e)),
    }
}

/// Whether a DynamoDB write was refused by its condition expression (the compare-and-set lost,
/// or the item exists or does not): an answer, not a failure.
pub(crate) fn condition_failed(e: &impl aws_sdk_dynamodb::error::ProvideErrorMetadata) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}
