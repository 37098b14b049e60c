//! The SQS queue of jobs, its dead-letter queue, and the events queue.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::{Client, types::QueueAttributeName};
use minimoto_aws::{
    AwsSettings,
    queue::{queue_attributes, queue_url},
    sdk_error,
};
use minimoto_common::error::{Error, Result};

use crate::{Action, Change, Found, Kind, desired_tags, missing_tags};

const SERVICE: &str = "sqs";
/// The main queue's default visibility: a consumer that forgets to pass one still gets a
/// heartbeat-sized window (see the fault-handling notes: 120 s, extended every ~60 s).
const DEFAULT_VISIBILITY_SECS: &str = "120";
/// Receives default to a full long poll, so stray callers do not busy-poll (and pay per call).
const DEFAULT_WAIT_SECS: &str = "20";
/// Dead letters are kept the longest SQS allows (14 days), for operators to inspect or redrive;
/// events too, so a consumer that was down for days misses none.
const DLQ_RETENTION_SECS: &str = "1209600";

/// An attribute setup sets, how to name it in a report, and its value.
type Wanted<'a> = (QueueAttributeName, &'static str, &'a str);

/// Creates the dead-letter queue (14-day retention), then the main queue with its redrive policy
/// (`maxReceiveCount` = `settings.max_receives`, which is `receive_limit(max_attempts)`: max
/// attempts + 5), a 120 s default visibility and 20 s long polls; both tagged with the stack. Existing queues get these
/// attributes and tags back if they drifted. Then the events queue (14-day retention, 20 s long
/// polls). Returns the dead-letter queue's change, the main queue's, then the events queue's.
pub async fn ensure_queues(config: &SdkConfig, settings: &AwsSettings) -> Result<Vec<Change>> {
    let client = Client::new(config);
    let stack = &settings.stack;
    let dlq = settings.dead_letter_queue();
    let (dlq_url, dlq_action) = ensure_queue(
        &client,
        &dlq,
        stack,
        Kind::DeadLetterQueue,
        &[(
            QueueAttributeName::MessageRetentionPeriod,
            "retention",
            DLQ_RETENTION_SECS,
        )],
    )
    .await?;
    let dlq_arn = queue_attributes(&client, &dlq_url, &[QueueAttributeName::QueueArn])
        .await?
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| Error::backend(SERVICE, format!("no QueueArn for SQS queue `{dlq}`")))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receives,
    })
    .to_string();
    let (_, action) = ensure_queue(
        &client,
        &settings.queue,
        stack,
        Kind::Queue,
        &[
            (
                QueueAttributeName::RedrivePolicy,
                "redrive policy",
                redrive.as_str(),
            ),
            (
                QueueAttributeName::VisibilityTimeout,
                "visibility timeout",
                DEFAULT_VISIBILITY_SECS,
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "long-poll wait",
                DEFAULT_WAIT_SECS,
            ),
        ],
    )
    .await?;
    let (_, events_action) = ensure_queue(
        &client,
        &settings.events_queue,
        stack,
        Kind::EventsQueue,
        &[
            (
                QueueAttributeName::MessageRetentionPeriod,
                "retention",
                DLQ_RETENTION_SECS,
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "long-poll wait",
                DEFAULT_WAIT_SECS,
            ),
        ],
    )
    .await?;
    Ok(vec![
        Change {
            kind: Kind::DeadLetterQueue,
            name: dlq,
            action: dlq_action,
        },
        Change {
            kind: Kind::Queue,
            name: settings.queue.clone(),
            action,
        },
        Change {
            kind: Kind::EventsQueue,
            name: settings.events_queue.clone(),
            action: events_action,
        },
    ])
}

/// Creates the queue with `wanted` and the stack's tags, or brings an existing one in line;
/// returns its URL and what was done.
async fn ensure_queue(
    client: &Client,
    name: &str,
    stack: &str,
    kind: Kind,
    wanted: &[Wanted<'_>],
) -> Result<(String, Action)> {
    let Some(url) = queue_url(client, name).await? else {
        let url = create_queue(client, name, stack, kind, wanted).await?;
        return Ok((url, Action::Created));
    };
    let mut updated = Vec::new();
    // Tags first: a queue of another stack must be refused before anything is changed on it.
    let missing = missing_tags(kind, name, stack, &queue_tags(client, &url).await?)?;
    if !missing.is_empty() {
        client
            .tag_queue()
            .queue_url(&url)
            .set_tags(Some(
                missing
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("TagQueue {name}"), e))?;
        updated.push("tags".to_owned());
    }
    let names: Vec<_> = wanted.iter().map(|(n, _, _)| n.clone()).collect();
    let current = queue_attributes(client, &url, &names).await?;
    let drifted: Vec<_> = wanted
        .iter()
        .filter(|(attribute, _, value)| {
            let now = current.get(attribute).map(String::as_str);
            match attribute {
                QueueAttributeName::RedrivePolicy => !same_redrive(now, value),
                _ => now != Some(*value),
            }
        })
        .collect();
    if !drifted.is_empty() {
        for (attribute, _, value) in &drifted {
            tracing::info!(
                queue = name,
                attribute = attribute.as_str(),
                was = current.get(attribute).map_or("none", String::as_str),
                now = value,
                "updating an SQS queue attribute"
            );
        }
        client
            .set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(
                drifted
                    .iter()
                    .map(|(a, _, v)| (a.clone(), (*v).to_owned()))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, &format!("SetQueueAttributes {name}"), e))?;
        updated.extend(drifted.iter().map(|(_, what, _)| (*what).to_owned()));
    }
    let action = if updated.is_empty() {
        Action::Unchanged
    } else {
        Action::Updated(updated)
    };
    Ok((url, action))
}

/// Whether the stored redrive policy `now` says what `wanted` says.
fn same_redrive(now: Option<&str>, wanted: &str) -> bool {
    let wanted: serde_json::Value = serde_json::from_str(wanted).unwrap_or_default();
    let count = wanted["maxReceiveCount"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok());
    match (wanted["deadLetterTargetArn"].as_str(), count) {
        (Some(arn), Some(count)) => redrive_matches(now, arn, count),
        _ => false,
    }
}

async fn queue_tags(client: &Client, url: &str) -> Result<HashMap<String, String>> {
    let out = client
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(|e| sdk_error(SERVICE, &format!("ListQueueTags {url}"), e))?;
    Ok(out.tags.unwrap_or_default())
}

/// The queues in the configured region, with their tags (for `cleanup`); all of kind
/// [`Kind::Queue`], the caller tells dead-letter queues apart. A queue deleted while listing is
/// skipped.
pub async fn find_queues(config: &SdkConfig) -> Result<Vec<Found>> {
    let client = Client::new(config);
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list_queues()
            .max_results(1000)
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "ListQueues", e))?;
        for url in page.queue_urls() {
            let name = url.rsplit('/').next().unwrap_or(url);
            let tags = match queue_tags(&client, url).await {
                Ok(tags) => tags,
                Err(_) if queue_url(&client, name).await?.is_none() => continue,
                Err(e) => return Err(e),
            };
            found.push(Found {
                kind: Kind::Queue,
                name: name.to_owned(),
                id: url.clone(),
                tags,
            });
        }
        match page.next_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => return Ok(found),
        }
    }
}

/// Deletes a queue, with any messages in it; false if it was already gone. (Real SQS refuses to
/// recreate a queue name for 60 s after deleting it.)
pub async fn delete_queue(config: &SdkConfig, name: &str, url: &str) -> Result<bool> {
    match Client::new(config)
        .delete_queue()
        .queue_url(url)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Ok(false)
        }
        Err(e) => Err(sdk_error(SERVICE, &format!("DeleteQueue {name}"), e)),
    }
}

async fn create_queue(
    client: &Client,
    name: &str,
    stack: &str,
    kind: Kind,
    wanted: &[Wanted<'_>],
) -> Result<String> {
    let mut request = client.create_queue().queue_name(name);
    for (key, _, value) in wanted {
        request = request.attributes(key.clone(), *value);
    }
    for (key, value) in desired_tags(stack, kind) {
        request = request.tags(key, value);
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
