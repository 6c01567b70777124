//! The two SQS calls the engine makes besides answering Lambda: dead-lettering a permanent
//! failure and holding a transient one back. Behind a trait ([`QueueOps`]) so that tests can
//! use a fake; [`SqsQueues`] (feature `sdk`) is the real thing, and the transport (the
//! endpoint, the dead-letter queue's URL and size) is its business.

use std::future::Future;

pub use crate::charset::{sqs_accepts, sqs_text};
pub use crate::letter::{
    DeadLetter, LetterAttribute, LetterParts, MAX_MESSAGE_ATTRIBUTES, PLACEHOLDER_BODY, SQS_MAX_MESSAGE_BYTES,
    attribute,
};

/// A new visibility timeout for one in-flight message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisibilityChange<'a> {
    /// The message id (for logs; SQS identifies the message by its receipt handle).
    pub message_id: &'a str,
    /// The receipt handle of this delivery.
    pub receipt_handle: &'a str,
    /// Seconds until the message is visible again.
    pub seconds: u32,
}

/// A failed SQS call, with its cause as its source (formatted, sources and all, where the
/// engine logs it).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct QueueError(#[from] Box<dyn std::error::Error + Send + Sync>);

impl QueueError {
    /// A queue error caused by `source`: an SDK error, or text.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

/// The queue operations the engine needs.
pub trait QueueOps: Sync {
    /// Sends a permanent failure to the dead-letter queue.
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Changes the visibility of up to [`VISIBILITY_BATCH_LIMIT`] messages of the queue whose
    /// ARN is `source_queue_arn` (as the event names it). Returns the message ids SQS refused,
    /// with its reason.
    fn change_visibility(
        &self,
        source_queue_arn: &str,
        changes: &[VisibilityChange<'_>],
    ) -> impl Future<Output = Result<Vec<(String, String)>, QueueError>> + Send;
}

/// SQS limits `ChangeMessageVisibilityBatch` to ten entries.
pub const VISIBILITY_BATCH_LIMIT: usize = 10;

/// The queue URL for a queue ARN. Lambda's event names the source queue only by ARN.
/// With an endpoint override (local emulators), the URL is `<endpoint>/<account>/<name>`.
#[cfg_attr(not(feature = "sdk"), allow(dead_code))]
pub(crate) fn queue_url_from_arn(arn: &str, endpoint: Option<&str>) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("sqs"), Some(region), Some(account), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if region.is_empty() || account.is_empty() || name.is_empty() {
        return None;
    }
    Some(match endpoint {
        Some(endpoint) => format!("{}/{account}/{name}", endpoint.trim_end_matches('/')),
        None => {
            let domain = if partition == "aws-cn" { "amazonaws.com.cn" } else { "amazonaws.com" };
            format!("https://sqs.{region}.{domain}/{account}/{name}")
        }
    })
}

#[cfg(feature = "sdk")]
pub use sqs::SqsQueues;

#[cfg(feature = "sdk")]
mod sqs {
    use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue};

    use crate::letter::{DeadLetter, LetterParts, SQS_MAX_MESSAGE_BYTES};
    use crate::queue::{QueueError, QueueOps, VisibilityChange, queue_url_from_arn};

    /// [`QueueOps`] over a real SQS endpoint, with the AWS SDK (feature `sdk`).
    #[derive(Debug, Clone)]
    pub struct SqsQueues {
        client: aws_sdk_sqs::Client,
        dlq_url: String,
        max_message_bytes: usize,
        endpoint: Option<String>,
    }

    impl SqsQueues {
        /// Sends dead letters to `dlq_url` through `client`, assuming the dead-letter queue
        /// takes messages up to the SQS maximum of 1 MiB, and changes visibility on AWS's
        /// own queue URLs.
        pub fn new(client: aws_sdk_sqs::Client, dlq_url: impl Into<String>) -> Self {
            Self { client, dlq_url: dlq_url.into(), max_message_bytes: SQS_MAX_MESSAGE_BYTES, endpoint: None }
        }

        /// The dead-letter queue's `MaximumMessageSize`: letters are fitted into it.
        pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
            self.max_message_bytes = max_message_bytes;
            self
        }

        /// The SQS endpoint of a local emulator, if any: the source queues' URLs are then
        /// `<endpoint>/<account>/<name>` (the client must be pointed at it as well).
        pub fn with_endpoint(mut self, endpoint: Option<String>) -> Self {
            self.endpoint = endpoint;
            self
        }

        /// The URL of the queue whose ARN is `arn`.
        pub fn queue_url(&self, arn: &str) -> Result<String, QueueError> {
            queue_url_from_arn(arn, self.endpoint.as_deref())
                .ok_or_else(|| QueueError::new(format!("{arn} is not an SQS queue ARN")))
        }
    }

    impl QueueOps for SqsQueues {
        async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
            let parts = LetterParts::of(letter, self.max_message_bytes);
            if !parts.dropped.is_empty() {
                tracing::warn!(
                    event = "dead_letter_trimmed",
                    message_id = letter.source_message_id.unwrap_or("-"),
                    dropped = ?parts.dropped,
                    "attributes left off the dead letter: a name the engine writes, more than SQS's 10, \
                     or over the dead-letter queue's maximum message size"
                );
            }
            let mut send = self.client.send_message().queue_url(&self.dlq_url).message_body(parts.body);
            for attribute in parts.attributes {
                let value = MessageAttributeValue::builder()
                    .data_type(attribute.data_type)
                    .string_value(attribute.value)
                    .build()
                    .expect("data_type is set");
                send = send.message_attributes(attribute.name, value);
            }
            // A FIFO source has a FIFO dead-letter queue, which needs a group and a
            // deduplication id; the source message id makes a repeated send after a timeout a
            // no-op.
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
            source_queue_arn: &str,
            changes: &[VisibilityChange<'_>],
        ) -> Result<Vec<(String, String)>, QueueError> {
            let queue_url = self.queue_url(source_queue_arn)?;
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

    #[cfg(test)]
    mod tests {
        use super::*;

        fn queues(endpoint: Option<&str>) -> SqsQueues {
            let config = aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .build();
            SqsQueues::new(aws_sdk_sqs::Client::from_conf(config), "dlq").with_endpoint(endpoint.map(Into::into))
        }

        #[test]
        fn local_endpoints_turn_the_source_arn_into_an_emulator_queue_url() {
            let arn = "arn:aws:sqs:us-east-1:000000000000:orders";
            assert_eq!(queues(None).queue_url(arn).unwrap(), "https://sqs.us-east-1.amazonaws.com/000000000000/orders");
            let local = queues(Some("http://127.0.0.1:4566"));
            assert_eq!(local.queue_url(arn).unwrap(), "http://127.0.0.1:4566/000000000000/orders");
            let err = local.queue_url("arn:aws:sns:us-east-1:1:topic").unwrap_err().to_string();
            assert!(err.contains("is not an SQS queue ARN"), "{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_url_from_arn_covers_aws_china_and_local_endpoints() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:orders";
        assert_eq!(queue_url_from_arn(arn, None).unwrap(), "https://sqs.eu-west-1.amazonaws.com/123456789012/orders");
        assert_eq!(
            queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:1:q.fifo", None).unwrap(),
            "https://sqs.cn-north-1.amazonaws.com.cn/1/q.fifo"
        );
        assert_eq!(
            queue_url_from_arn(arn, Some("http://127.0.0.1:4566/")).unwrap(),
            "http://127.0.0.1:4566/123456789012/orders"
        );
        assert_eq!(queue_url_from_arn("arn:aws:sns:eu-west-1:1:topic", None), None);
        assert_eq!(queue_url_from_arn("orders", None), None);
    }
}
