//! [`EventQueue`] on Amazon SQS: a standard queue of its own (`<stack>-events`, made by
//! `minimoto setup`), one message per ended job, its event name in the `event` message
//! attribute. Consumers read it with any SQS client; SQS may deliver a message twice, so they
//! deduplicate on the body's `id`.

use std::{fmt, time::Duration};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sqs::{Client, types::MessageAttributeValue};

use crate::{
    queue::{existing_queue_url, receipt_is_gone, whole_secs},
    sdk_error,
};
use minimoto_common::{
    error::{Error, Result},
    ports::{EventMessage, EventQueue, check_event_size},
};

const SERVICE: &str = "sqs";
/// SQS's longest long poll per call, and most messages per receive.
const MAX_WAIT_SECS: i32 = 20;
const MAX_MESSAGES: usize = 10;
const MAX_VISIBILITY_SECS: i32 = 43_200;

/// The SQS adapter of [`EventQueue`]. Cheap to clone.
#[derive(Clone)]
pub struct SqsEvents {
    client: Client,
    url: String,
}

impl fmt::Debug for SqsEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqsEvents")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl SqsEvents {
    /// Resolves the events queue `name`; a missing one is an error that says to run `setup`.
    pub async fn connect(config: &SdkConfig, name: &str) -> Result<Self> {
        let client = Client::new(config);
        let url = existing_queue_url(&client, name).await?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl EventQueue for SqsEvents {
    async fn publish(&self, event: &str, body: &str) -> Result<()> {
        check_event_size(body)?;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(event)
            .build()
            .map_err(|e| Error::Invalid(format!("the event attribute: {e}")))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("event", attribute)
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "SendMessage (events)", e))?;
        Ok(())
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<EventMessage>> {
        let max = i32::try_from(max.clamp(1, MAX_MESSAGES)).unwrap_or(1);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(whole_secs(wait, MAX_WAIT_SECS))
            .visibility_timeout(whole_secs(visibility, MAX_VISIBILITY_SECS))
            .send()
            .await
            .map_err(|e| sdk_error(SERVICE, "ReceiveMessage (events)", e))?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let receipt = m.receipt_handle.ok_or_else(|| {
                    Error::backend(
                        SERVICE,
                        "ReceiveMessage returned a message without a receipt handle",
                    )
                })?;
                Ok(EventMessage {
                    receipt,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if receipt_is_gone(&e) => Ok(()),
            Err(e) => Err(sdk_error(SERVICE, "DeleteMessage (events)", e)),
        }
    }

    async fn ready(&self) -> Result<()> {
        crate::queue::queue_attributes(
            &self.client,
            &self.url,
            &[aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages],
        )
        .await
        .map(|_| ())
    }
}
