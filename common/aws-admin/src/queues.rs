//! The SQS queue of jobs and its dead-letter queue.

use aws_config::SdkConfig;
use aws_sdk_sqs::{Client, types::QueueAttributeName};
use minimoto_aws::{
    AwsSettings,
    queue::{queue_attributes, queue_url},
    sdk_error,
};
use minimoto_common::error::{Error, Result};

const SERVICE: &str = "sqs";
/// The main queue's default visibility: a consumer that forgets to pass one still gets a
/// heartbeat-sized window (see the fault-handling notes: 120 s, extended every ~60 s).
const DEFAULT_VISIBILITY_SECS: &str = "120";
/// Receives default to a full long poll, so stray callers do not busy-poll (and pay per call).
const DEFAULT_WAIT_SECS: &str = "20";
/// Dead letters are kept the longest SQS allows (14 days), for operators to inspect or redrive.
const DLQ_RETENTION_SECS: &str = "1209600";

/// Creates the dead-letter queue (14-day retention), then the main queue with its redrive policy,
/// a 120 s default visibility and 20 s long polls. Idempotent: existing queues are kept, except
/// that the main queue's redrive policy is brought in line with `settings.max_receives` (the
/// worker gives up after the same count). True if it created a queue.
pub async fn create_queues(config: &SdkConfig, settings: &AwsSettings) -> Result<bool> {
    let client = Client::new(config);
    let mut created = false;

    let dlq = settings.dead_letter_queue();
    let dlq_url = match queue_url(&client, &dlq).await? {
        Some(url) => url,
        None => {
            created = true;
            create_queue(
                &client,
                &dlq,
                &[(
                    QueueAttributeName::MessageRetentionPeriod,
                    DLQ_RETENTION_SECS,
                )],
            )
            .await?
        }
    };
    let dlq_arn = queue_attributes(&client, &dlq_url, &[QueueAttributeName::QueueArn])
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| Error::backend(SERVICE, format!("no QueueArn for SQS queue `{dlq}`")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receives,
    })
    .to_string();

    match queue_url(&client, &settings.queue).await? {
        None => {
            create_queue(
                &client,
                &settings.queue,
                &[
                    (QueueAttributeName::RedrivePolicy, redrive.as_str()),
                    (
                        QueueAttributeName::VisibilityTimeout,
                        DEFAULT_VISIBILITY_SECS,
                    ),
                    (
                        QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                        DEFAULT_WAIT_SECS,
                    ),
                ],
            )
            .await?;
            created = true;
        }
        Some(url) => {
            let current = queue_attributes(&client, &url, &[QueueAttributeName::RedrivePolicy])
                .await?
                .remove(&QueueAttributeName::RedrivePolicy);
            if !redrive_matches(current.as_deref(), &dlq_arn, settings.max_receives) {
                tracing::info!(
                    queue = %settings.queue,
                    was = current.as_deref().unwrap_or("none"),
                    now = %redrive,
                    "updating the SQS queue's redrive policy"
                );
                client
                    .set_queue_attributes()
                    .queue_url(&url)
                    .attributes(QueueAttributeName::RedrivePolicy, &redrive)
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_error(
                            SERVICE,
                            &format!("SetQueueAttributes {}", settings.queue),
                            e,
                        )
                    })?;
            }
        }
    }
    Ok(created)
}

/// Deletes the main queue, then its dead-letter queue, with any messages in them. False if
/// neither existed. (Real SQS refuses to recreate a queue name for 60 s after deleting it.)
pub async fn delete_queues(config: &SdkConfig, settings: &AwsSettings) -> Result<bool> {
    let client = Client::new(config);
    let mut deleted = false;
    for name in [settings.queue.clone(), settings.dead_letter_queue()] {
        let Some(url) = queue_url(&client, &name).await? else {
            continue;
        };
        match client.delete_queue().queue_url(&url).send().await {
            Ok(_) => deleted = true,
            // Someone else deleted it in between: the outcome we wanted.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) => {}
            Err(e) => return Err(sdk_error(SERVICE, &format!("DeleteQueue {name}"), e)),
        }
    }
    Ok(deleted)
}

async fn create_queue(
    client: &Client,
    name: &str,
    attributes: &[(QueueAttributeName, &str)],
) -> Result<String> {
    let mut request = client.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key.clone(), *value);
    }
    match request.send().await {
        Ok(out) => out.queue_url.ok_or_else(|| {
            Error::backend(
                SERVICE,
                format!("CreateQueue {name}: the answer has no URL"),
            )
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_deleted_recently()) =>
        {
            Err(Error::backend(
                SERVICE,
                format!(
                    "SQS queue `{name}` was deleted less than 60 s ago and SQS will not recreate \
                     it until then: retry in a minute"
                ),
            ))
        }
        Err(e) => Err(sdk_error(SERVICE, &format!("CreateQueue {name}"), e)),
    }
}

/// Whether a stored redrive policy already sends to `dlq_arn` after `max_receives` receives
/// (SQS may store the count as a number or a string).
fn redrive_matches(current: Option<&str>, dlq_arn: &str, max_receives: u32) -> bool {
    let Some(policy) = current.and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
    else {
        return false;
    };
    let count = match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    };
    policy["deadLetterTargetArn"].as_str() == Some(dlq_arn)
        && count == Some(u64::from(max_receives))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_compare_by_target_and_count() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:q-dlq";
        assert!(redrive_matches(
            Some(
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:q-dlq","maxReceiveCount":3}"#
            ),
            arn,
            3
        ));
        assert!(redrive_matches(
            Some(
                r#"{"maxReceiveCount":"3","deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:q-dlq"}"#
            ),
            arn,
            3
        ));
        assert!(!redrive_matches(
            Some(
                r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:q-dlq","maxReceiveCount":5}"#
            ),
            arn,
            3
        ));
        assert!(!redrive_matches(
            Some(r#"{"deadLetterTargetArn":"arn:other","maxReceiveCount":3}"#),
            arn,
            3
        ));
        assert!(!redrive_matches(None, arn, 3));
        assert!(!redrive_matches(Some("not json"), arn, 3));
    }
}
