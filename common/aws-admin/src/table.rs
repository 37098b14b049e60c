//! The DynamoDB table of jobs.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TableStatus,
    },
};
use minimoto_aws::sdk_error;
use minimoto_common::error::{Error, Result};

const SERVICE: &str = "dynamodb";

/// Creates the jobs table (on-demand billing) and waits until it is active; false if it existed.
pub async fn create_table(config: &SdkConfig, table: &str) -> Result<bool> {
    let client = Client::new(config);
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| Error::Invalid(e.to_string()))?,
        )
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => return Err(sdk_error(SERVICE, "create table", e)),
    };
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "describe table", e))?;
        if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            return Ok(created);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Err(Error::backend(
        SERVICE,
        format!("table {table} did not become active within 2 minutes"),
    ))
}

/// Deletes the jobs table; false if it did not exist.
pub async fn delete_table(config: &SdkConfig, table: &str) -> Result<bool> {
    match Client::new(config)
        .delete_table()
        .table_name(table)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(SERVICE, "delete table", e)),
    }
}
