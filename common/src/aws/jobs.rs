//! [`JobStore`] on DynamoDB: one item per job, keyed by `id`, with the record as JSON beside the
//! attributes conditions need (`status`, `version`). Every write is conditional: creating requires
//! the id to be new, replacing requires the stored `version` to be the one read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
        ScalarAttributeType, TableStatus,
    },
};

use super::sdk_error;
use crate::{
    error::{Error, Result},
    ids::JobId,
    job::Job,
    ports::JobStore,
};

const SERVICE: &str = "dynamodb";

#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self {
            client: Client::new(config),
            table: table.into(),
        }
    }

    /// Fails with a message saying to run `minimoto setup` when the table does not exist.
    pub async fn check(&self) -> Result<()> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Err(Error::Invalid(format!(
                    "DynamoDB table `{}` does not exist: run `minimoto setup` first",
                    self.table
                )))
            }
            Err(e) => Err(sdk_error(SERVICE, "describe table", e)),
        }
    }

    fn item(job: &Job, version: u64) -> Result<HashMap<String, AttributeValue>> {
        let mut stored = job.clone();
        stored.version = version;
        let record = serde_json::to_string(&stored)
            .map_err(|e| Error::Invalid(format!("job {} does not serialize: {e}", job.id)))?;
        Ok(HashMap::from([
            ("id".to_owned(), AttributeValue::S(job.id.to_string())),
            (
                "status".to_owned(),
                AttributeValue::S(job.status.as_str().to_owned()),
            ),
            ("version".to_owned(), AttributeValue::N(version.to_string())),
            (
                "created_at".to_owned(),
                AttributeValue::S(job.created_at.to_rfc3339()),
            ),
            ("record".to_owned(), AttributeValue::S(record)),
        ]))
    }
}

fn parse(id: JobId, item: &HashMap<String, AttributeValue>) -> Result<Job> {
    let record = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| Error::Invalid(format!("stored job {id} has no record")))?;
    serde_json::from_str(record)
        .map_err(|e| Error::Invalid(format!("stored job {id} is unreadable: {e}")))
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job, job.version)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!("job {} already exists", job.id)))
            }
            Err(e) => Err(sdk_error(SERVICE, "put job", e)),
        }
    }

    async fn get(&self, id: JobId) -> Result<Option<Job>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "get job", e))?;
        out.item().map(|item| parse(id, item)).transpose()
    }

    async fn replace(&self, job: &Job) -> Result<Job> {
        let next_version = job.version + 1;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job, next_version)?))
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(job.version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                let mut next = job.clone();
                next.version = next_version;
                Ok(next)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "job {} changed since version {}",
                    job.id, job.version
                )))
            }
            Err(e) => Err(sdk_error(SERVICE, "replace job", e)),
        }
    }

    async fn delete(&self, id: JobId) -> Result<bool> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_string()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "delete job", e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

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
