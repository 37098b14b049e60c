//! [`JobStore`] on DynamoDB: one item per job, keyed by `id`, with the record as JSON beside the
//! attributes conditions need (`status`, `version`). Every write is conditional: creating requires
//! the id to be new, replacing requires the stored `version` to be the one read.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnValue},
};

use crate::sdk_error;
use minimoto_common::{
    error::{Error, Result},
    ids::JobId,
    job::Job,
    ports::JobStore,
    record,
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
        crate::table::check_table(&self.client, &self.table, || {
            format!(
                "DynamoDB table `{}` does not exist: run `minimoto setup` first",
                self.table
            )
        })
        .await
    }

    fn item(job: &Job, version: u64) -> Result<HashMap<String, AttributeValue>> {
        let mut stored = job.clone();
        stored.version = version;
        let record = record::encode(&stored)?;
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
    record::decode(id, record)
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

    async fn ready(&self) -> Result<()> {
        self.check().await
    }
}
