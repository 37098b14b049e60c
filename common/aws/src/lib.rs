//! The AWS adapters: S3 ([`blob::S3BlobStore`]), DynamoDB ([`jobs::DynamoJobStore`], and the
//! worker registry [`registry::DynamoRegistry`] in a table of its own) and SQS
//! ([`queue::SqsQueue`], and the events queue [`events::SqsEvents`]): the hot path. Creating and removing the resources is `minimoto-aws-admin`.
//!
//! Credentials, region and endpoint come from the standard AWS chain (environment, profile,
//! instance role; `AWS_ENDPOINT_URL` points every client at an emulator such as LocalStack or
//! moto). Resource names come from [`AwsSettings`]; a missing one is a startup error, never a
//! silent fallback to the embedded backend.

pub mod blob;
pub mod events;
pub mod jobs;
pub mod queue;
pub mod registry;
mod table;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig, timeout::TimeoutConfig};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};

use minimoto_common::error::{Error, Result};

/// Names of the AWS resources minimoto uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The stack the resources belong to: `setup` tags each with it, `cleanup` finds them by it.
    pub stack: String,
    /// S3 bucket for photos and outputs.
    pub bucket: String,
    /// DynamoDB table of job records.
    pub table: String,
    /// SQS queue of job ids; its dead-letter queue is `<queue>-dlq`.
    pub queue: String,
    /// SQS queue of ended jobs' events, for consumers of a queue (`--publish-events`).
    pub events_queue: String,
    /// DynamoDB table of the worker registry (workers' heartbeats, the scaler's decisions).
    pub workers_table: String,
    /// Receives of a message before SQS moves it to the dead-letter queue (the redrive policy's
    /// `maxReceiveCount`); minimoto sets it to `receive_limit(max_attempts)`, max attempts + 5.
    pub max_receives: u32,
}

impl AwsSettings {
    pub fn dead_letter_queue(&self) -> String {
        format!("{}-dlq", self.queue)
    }

    /// Checks the names before any call, so a typo is reported as such rather than as an AWS error.
    pub fn validate(&self) -> Result<()> {
        let stack_ok = (1..=40).contains(&self.stack.len())
            && self
                .stack
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !stack_ok {
            return Err(Error::Invalid(format!(
                "stack `{}`: use 1–40 lowercase letters, digits or `-` (it names the bucket too)",
                self.stack
            )));
        }
        let bucket_ok = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(Error::Invalid(format!(
                "S3 bucket `{}`: use 3–63 lowercase letters, digits, `-` or `.`",
                self.bucket
            )));
        }
        let name_ok = |n: &str, max: usize| {
            (1..=max).contains(&n.len())
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.table, 255) {
            return Err(Error::Invalid(format!(
                "DynamoDB table `{}`: use letters, digits, `-` or `_`",
                self.table
            )));
        }
        if !name_ok(&self.workers_table, 255) {
            return Err(Error::Invalid(format!(
                "DynamoDB workers table `{}`: use letters, digits, `-` or `_`",
                self.workers_table
            )));
        }
        if self.workers_table == self.table {
            return Err(Error::Invalid(format!(
                "DynamoDB table `{}` is named for both the jobs and the workers: give each its own",
                self.table
            )));
        }
        if !name_ok(&self.queue, 76) {
            return Err(Error::Invalid(format!(
                "SQS queue `{}`: use at most 76 letters, digits, `-` or `_`",
                self.queue
            )));
        }
        if !name_ok(&self.events_queue, 80) {
            return Err(Error::Invalid(format!(
                "SQS events queue `{}`: use at most 80 letters, digits, `-` or `_`",
                self.events_queue
            )));
        }
        if [self.queue.clone(), self.dead_letter_queue()].contains(&self.events_queue) {
            return Err(Error::Invalid(format!(
                "SQS queue `{}` is named for both the jobs and the events: give each its own",
                self.events_queue
            )));
        }
        if !(1..=1000).contains(&self.max_receives) {
            return Err(Error::Invalid(format!(
                "max receives {}: must be 1–1000",
                self.max_receives
            )));
        }
        Ok(())
    }
}

/// How long a connection to AWS may take: an unreachable endpoint fails a call in seconds (with
/// the SDK's three attempts, well under 15 s) instead of hanging a request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a response may go silent: above SQS's 20 s long poll, so receives are not cut short.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The SDK configuration from the standard chain (env, profile, instance metadata), with bounded
/// connect and read timeouts.
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// An SDK error as a [`Error::Backend`], keeping the service's error code and message.
pub fn sdk_error<E, R>(
    service: &'static str,
    what: &str,
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    Error::backend(service, format!("{what}: {}", DisplayErrorContext(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AwsSettings {
        AwsSettings {
            stack: "minimoto".into(),
            bucket: "minimoto-media".into(),
            table: "minimoto-jobs".into(),
            queue: "minimoto-jobs".into(),
            events_queue: "minimoto-events".into(),
            workers_table: "minimoto-workers".into(),
            max_receives: 4,
        }
    }

    #[test]
    fn names_are_checked_before_any_call() {
        assert!(settings().validate().is_ok());
        assert_eq!(settings().dead_letter_queue(), "minimoto-jobs-dlq");
        for bad in [
            AwsSettings {
                bucket: "My_Bucket".into(),
                ..settings()
            },
            AwsSettings {
                bucket: "ab".into(),
                ..settings()
            },
            AwsSettings {
                table: "".into(),
                ..settings()
            },
            AwsSettings {
                workers_table: "no/slash".into(),
                ..settings()
            },
            AwsSettings {
                workers_table: "minimoto-jobs".into(),
                ..settings()
            },
            AwsSettings {
                queue: "has space".into(),
                ..settings()
            },
            AwsSettings {
                events_queue: "minimoto-jobs".into(),
                ..settings()
            },
            AwsSettings {
                events_queue: "minimoto-jobs-dlq".into(),
                ..settings()
            },
            AwsSettings {
                max_receives: 0,
                ..settings()
            },
            AwsSettings {
                stack: "Prod Stack".into(),
                ..settings()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?} must be refused");
        }
    }
}
