//! `minimoto setup` and `minimoto cleanup`: create and remove the AWS resources, idempotently, so
//! either can be run again after a partial failure.

pub mod bucket;
pub mod queues;
pub mod table;

use aws_config::SdkConfig;
use minimoto_aws::AwsSettings;
use minimoto_common::error::Result;

/// What a setup or cleanup did to each resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub lines: Vec<String>,
}

fn line(done: bool, yes: &str, no: &str, what: String) -> String {
    format!("{} {what}", if done { yes } else { no })
}

pub async fn setup(config: &SdkConfig, settings: &AwsSettings) -> Result<Report> {
    settings.validate()?;
    let bucket = bucket::create_bucket(config, &settings.bucket).await?;
    let table = table::create_table(config, &settings.table).await?;
    let queues = queues::create_queues(config, settings).await?;
    Ok(Report {
        lines: vec![
            line(
                bucket,
                "created",
                "kept existing",
                format!("S3 bucket {}", settings.bucket),
            ),
            line(
                table,
                "created",
                "kept existing",
                format!("DynamoDB table {}", settings.table),
            ),
            line(
                queues,
                "created",
                "kept existing",
                format!(
                    "SQS queue {} and dead-letter queue {}",
                    settings.queue,
                    settings.dead_letter_queue()
                ),
            ),
        ],
    })
}

/// Deletes everything `setup` made, data included.
pub async fn cleanup(config: &SdkConfig, settings: &AwsSettings) -> Result<Report> {
    settings.validate()?;
    let queues = queues::delete_queues(config, settings).await?;
    let table = table::delete_table(config, &settings.table).await?;
    let bucket = bucket::delete_bucket(config, &settings.bucket).await?;
    Ok(Report {
        lines: vec![
            line(
                queues,
                "deleted",
                "no",
                format!(
                    "SQS queues {} and {}",
                    settings.queue,
                    settings.dead_letter_queue()
                ),
            ),
            line(
                table,
                "deleted",
                "no",
                format!("DynamoDB table {}", settings.table),
            ),
            line(
                bucket,
                "deleted",
                "no",
                format!("S3 bucket {} (emptied first)", settings.bucket),
            ),
        ],
    })
}
