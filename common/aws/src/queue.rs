//! [`JobQueue`] on Amazon SQS: a standard queue of job ids plus its dead-letter queue, which SQS
//! itself fills through the main queue's redrive policy (`maxReceiveCount` = the settings'
//! `max_receives`, max attempts + 5), so a poison job leaves the queue even if every worker
//! crashes on it.
//!
//! SQS speaks whole seconds: waits and visibilities are rounded *up* (a consumer asking for 1.2 s
//! must not get its message back after 1 s), waits are capped at SQS's 20 s per call (longer waits
//! are several calls) and visibilities clamped to 0–43200 s (12 h).
//!
//! A message body that is not a job id (a stray producer, a hand-sent test message) is logged and
//! deleted rather than delivered or left to bounce: it can never become a job, and leaving it
//! would burn receives until the redrive moved it.
//!
//! Dropping a [`JobQueue::receive`] future mid-poll (shutdown) can still leave a message received
//! on the server side; it reappears after the visibility timeout, which at-least-once delivery
//! already allows for.

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    types::{MessageSystemAttributeName, QueueAttributeName},
};

use crate::{AwsSettings, sdk_error};
use minimoto_common::{
    error::{Error, Result},
    ids::JobId,
    ports::{Delivery, Depth, JobQueue},
};

const SERVICE: &str = "sqs";
/// SQS's longest long poll per `ReceiveMessage` call.
const MAX_WAIT_SECS: i32 = 20;
/// SQS's longest visibility timeout (12 h).
const MAX_VISIBILITY_SECS: i32 = 43_200;
/// The SQS adapter of [`JobQueue`]. Cheap to clone (the SDK client is shared).
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dlq_url: String,
}

impl fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsQueue")
            .field("queue_url", &self.queue_url)
            .field("dlq_url", &self.dlq_url)
            .finish_non_exhaustive()
    }
}

impl SqsQueue {
    /// Resolves the queue and its dead-letter queue. Missing queues are a startup error that says
    /// to run `minimoto setup`, rather than a failure at the first send.
    pub async fn connect(config: &SdkConfig, settings: &AwsSettings) -> Result<Self> {
        let client = Client::new(config);
        let queue_url = existing_queue_url(&client, &settings.queue).await?;
        let dlq_url = existing_queue_url(&client, &settings.dead_letter_queue()).await?;
        Ok(Self {
            client,
            queue_url,
            dlq_url,
        })
    }

    /// One `ReceiveMessage` call.
    async fn receive_once(&self, wait_secs: i32, visibility_secs: i32) -> Result<Received> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(1)
            // Always explicit: otherwise the queue's default (20 s) applies to a zero wait.
            .wait_time_seconds(wait_secs)
            .visibility_timeout(visibility_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "ReceiveMessage", e))?;
        let Some(message) = out.messages.unwrap_or_default().into_iter().next() else {
            return Ok(Received::Empty);
        };
        let Some(receipt) = message.receipt_handle else {
            return Err(Error::backend(
                SERVICE,
                "ReceiveMessage returned a message without a receipt handle",
            ));
        };
        let body = message.body.unwrap_or_default();
        let job_id = match body.parse::<JobId>() {
            Ok(id) => id,
            Err(e) => {
                let shown: String = body.chars().take(200).collect();
                tracing::warn!(
                    message_id = message.message_id.as_deref().unwrap_or("?"),
                    body = %shown,
                    error = %e,
                    "deleting a queue message that is not a job id"
                );
                if let Err(e) = self.delete(&receipt).await {
                    // It comes back after the visibility timeout, and the redrive policy moves
                    // it to the dead-letter queue eventually: still no poison.
                    tracing::warn!(error = %e, "could not delete the message that is not a job id");
                }
                return Ok(Received::Discarded);
            }
        };
        let count = message
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse::<u32>().ok());
        let receive_count = count.unwrap_or_else(|| {
            // SQS always sends it when asked; a count of 1 only delays the worker's own give-up,
            // the redrive policy still applies.
            tracing::warn!(%job_id, "SQS gave no ApproximateReceiveCount; assuming 1");
            1
        });
        Ok(Received::Job(Delivery {
            job_id,
            receipt,
            receive_count,
        }))
    }

    /// `DeleteMessage`, treating a receipt that is gone as done.
    async fn delete(&self, receipt: &str) -> Result<()> {
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if receipt_is_gone(&e) => {
                tracing::debug!(receipt = %short(receipt), "ack of a message that is already gone");
                Ok(())
            }
            Err(e) => Err(sdk_error(SERVICE, "DeleteMessage", e)),
        }
    }
}

enum Received {
    Job(Delivery),
    /// A message that was not a job id, now deleted.
    Discarded,
    Empty,
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn send(&self, job: JobId) -> Result<()> {
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(job.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "SendMessage", e))?;
        Ok(())
    }

    /// Polls until a job arrives or `wait` has passed, in calls of at most 20 s; a discarded
    /// non-job message does not end the wait.
    async fn receive(&self, wait: Duration, visibility: Duration) -> Result<Option<Delivery>> {
        let visibility = whole_secs(visibility, MAX_VISIBILITY_SECS);
        // `None`: a wait too long to represent, i.e. forever.
        let deadline = Instant::now().checked_add(wait);
        loop {
            let left = deadline.map_or(Duration::MAX, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if let Received::Job(d) = self
                .receive_once(whole_secs(left, MAX_WAIT_SECS), visibility)
                .await?
            {
                return Ok(Some(d));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_secs(visibility, MAX_VISIBILITY_SECS))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if receipt_is_gone(&e) => Err(Error::NotFound(format!(
                "SQS message with receipt {}",
                short(receipt)
            ))),
            Err(e) => Err(sdk_error(SERVICE, "ChangeMessageVisibility", e)),
        }
    }

    /// Like SQS (and the local adapter), acking a receipt that is gone (already acked,
    /// dead-lettered, or expired) is not an error: the message is no longer ours either way.
    async fn ack(&self, receipt: &str) -> Result<()> {
        self.delete(receipt).await
    }

    /// SQS deletes a message only by the receipt of a receive, which would take it from a worker
    /// just as well: the message stays, and workers drop it once its record is overdue.
    async fn withdraw(&self, _job: JobId) -> Result<bool> {
        Ok(false)
    }

    /// Read straight from `GetQueueAttributes` (CloudWatch's SQS metrics lag by minutes). SQS's
    /// counts are approximate: eventually consistent for a few seconds on a busy queue.
    async fn depth(&self) -> Result<Depth> {
        let (main, dead) = tokio::join!(
            queue_counts(
                &self.client,
                &self.queue_url,
                &[
                    QueueAttributeName::ApproximateNumberOfMessages,
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ],
            ),
            queue_counts(
                &self.client,
                &self.dlq_url,
                &[QueueAttributeName::ApproximateNumberOfMessages],
            ),
        );
        let (main, dead) = (main?, dead?);
        Ok(Depth {
            visible: main[0],
            in_flight: main[1],
            dead: dead[0],
        })
    }
}

/// The queue's URL, or `None` if there is no such queue.
pub async fn queue_url(client: &Client, name: &str) -> Result<Option<String>> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => out.queue_url.map(Some).ok_or_else(|| {
            Error::backend(
                SERVICE,
                format!("GetQueueUrl {name}: the answer has no URL"),
            )
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(sdk_error(SERVICE, &format!("GetQueueUrl {name}"), e)),
    }
}

pub(crate) async fn existing_queue_url(client: &Client, name: &str) -> Result<String> {
    queue_url(client, name).await?.ok_or_else(|| {
        Error::Invalid(format!(
            "SQS queue `{name}` does not exist: run `minimoto setup` to create the AWS resources"
        ))
    })
}

pub async fn queue_attributes(
    client: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> Result<HashMap<QueueAttributeName, String>> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| sdk_error(SERVICE, "GetQueueAttributes", e))?;
    Ok(out.attributes.unwrap_or_default())
}

/// The named counters, in order.
async fn queue_counts(
    client: &Client,
    url: &str,
    names: &[QueueAttributeName],
) -> Result<Vec<u64>> {
    let attributes = queue_attributes(client, url, names).await?;
    names
        .iter()
        .map(|name| {
            attributes
                .get(name)
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    Error::backend(
                        SERVICE,
                        format!(
                            "GetQueueAttributes of {url}: no number for {}",
                            name.as_str()
                        ),
                    )
                })
        })
        .collect()
}

/// Whether SQS refused a receipt because the message is no longer ours: deleted, moved to the
/// dead-letter queue, visible again, or the receipt expired.
pub(crate) fn receipt_is_gone<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    let Some(e) = e.as_service_error() else {
        return false;
    };
    match e.code() {
        Some(
            "ReceiptHandleIsInvalid"
            | "AWS.SimpleQueueService.MessageNotInflight"
            | "MessageNotInflight",
        ) => true,
        // Real SQS reports an expired receipt as "Value … for parameter ReceiptHandle is
        // invalid. Reason: The receipt handle has expired." (not for other parameters).
        Some("InvalidParameterValue") => e.message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("receipthandle") || m.contains("receipt handle")
        }),
        _ => false,
    }
}

/// `d` in whole seconds, rounded up, at most `max`.
pub(crate) fn whole_secs(d: Duration, max: i32) -> i32 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i32::try_from(secs).unwrap_or(i32::MAX).min(max)
}

/// The start of a receipt handle (they run to hundreds of characters), for messages and logs.
fn short(receipt: &str) -> String {
    let head: String = receipt.chars().take(16).collect();
    if head.len() < receipt.len() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(whole_secs(Duration::ZERO, MAX_WAIT_SECS), 0);
        assert_eq!(whole_secs(Duration::from_millis(1), MAX_WAIT_SECS), 1);
        assert_eq!(whole_secs(Duration::from_millis(1200), MAX_WAIT_SECS), 2);
        assert_eq!(whole_secs(Duration::from_secs(3), MAX_WAIT_SECS), 3);
        assert_eq!(whole_secs(Duration::from_secs(60), MAX_WAIT_SECS), 20);
        assert_eq!(whole_secs(Duration::MAX, MAX_VISIBILITY_SECS), 43_200);
    }

    #[test]
    fn receipts_are_shortened_for_messages() {
        assert_eq!(short("abc"), "abc");
        assert_eq!(short(&"x".repeat(300)), format!("{}…", "x".repeat(16)));
    }
}
