//! [`QueueOps`] over a real SQS endpoint, with the AWS SDK (feature `sdk`).

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue};

use crate::queue::{DeadLetter, LetterParts, QueueError, QueueOps, SQS_MAX_MESSAGE_BYTES, VisibilityChange};

/// [`QueueOps`] over a real SQS endpoint.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: aws_sdk_sqs::Client,
    dlq_url: String,
    max_message_bytes: usize,
}

impl SqsQueues {
    /// Sends dead letters to `dlq_url` through `client`, assuming the dead-letter queue takes
    /// messages up to the SQS maximum of 1 MiB.
    pub fn new(client: aws_sdk_sqs::Client, dlq_url: impl Into<String>) -> Self {
        Self { client, dlq_url: dlq_url.into(), max_message_bytes: SQS_MAX_MESSAGE_BYTES }
    }

    /// The dead-letter queue's `MaximumMessageSize`: letters are fitted into it.
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_message_bytes = max_message_bytes;
        self
    }
}

fn string_attribute(value: impl Into<String>, data_type: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type(data_type).string_value(value).build().expect("data_type is set")
}

impl QueueOps for SqsQueues {
    async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        let parts = LetterParts::of(letter, self.max_message_bytes);
        if !parts.dropped.is_empty() {
            tracing::warn!(
                event = "dead_letter_trimmed",
                message_id = letter.source_message_id.unwrap_or("-"),
                dropped = ?parts.dropped,
                "attributes dropped so the letter fits the dead-letter queue's maximum message size"
            );
        }
        let mut send = self.client.send_message().queue_url(&self.dlq_url).message_body(parts.body);
        for (name, data_type, value) in parts.attributes {
            send = send.message_attributes(name, string_attribute(value, data_type));
        }
        // A FIFO source has a FIFO dead-letter queue, which needs a group and a deduplication
        // id; the source message id makes a repeated send after a timeout a no-op.
        if self.dlq_url.ends_with(".fifo") {
            send = send
                .message_group_id(letter.group_id.unwrap_or("dead-letters"))
                .set_message_deduplication_id(letter.source_message_id.map(str::to_owned));
        }
        send.send().await.map_err(QueueError::new)?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange<'_>],
    ) -> Result<Vec<(String, String)>, QueueError> {
        let entries = changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(c.receipt_handle)
                    .visibility_timeout(c.seconds as i32)
                    .build()
                    .expect("id and receipt handle are set")
            })
            .collect();
        let output = self
            .client
            .change_message_visibility_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(QueueError::new)?;
        Ok(output
            .failed
            .into_iter()
            .map(|f| {
                let id =
                    f.id.parse::<usize>()
                        .ok()
                        .and_then(|i| changes.get(i))
                        .map_or(f.id.clone(), |c| c.message_id.to_owned());
                (id, format!("{}: {}", f.code, f.message.unwrap_or_default()))
            })
            .collect())
    }
}
