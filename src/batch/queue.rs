//! The two SQS calls the engine makes besides answering Lambda: dead-lettering a permanent
//! failure and holding a transient one back. Behind a trait so the engine's tests can use a
//! fake; [`SqsQueues`] is the real thing.

use std::future::Future;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue};

/// A permanent failure on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The original body, unchanged, so that a redrive replays the same message.
    pub body: &'a str,
    /// The source message id.
    pub source_message_id: Option<&'a str>,
    /// The source queue ARN.
    pub source_queue: Option<&'a str>,
    /// The FIFO message group, kept so a FIFO dead-letter queue accepts the message.
    pub group_id: Option<&'a str>,
    /// The error class, such as `invalid_json`.
    pub kind: &'a str,
    /// What is wrong with the message.
    pub reason: &'a str,
    /// `ApproximateReceiveCount` at the time of failure.
    pub receive_count: u32,
}

/// A new visibility timeout for one in-flight message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityChange<'a> {
    /// The message id (for logs; SQS identifies the message by its receipt handle).
    pub message_id: &'a str,
    /// The receipt handle of this delivery.
    pub receipt_handle: &'a str,
    /// Seconds until the message is visible again.
    pub seconds: u32,
}

/// A failed SQS call.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// The queue operations the engine needs.
pub trait QueueOps: Sync {
    /// Sends a permanent failure to the dead-letter queue.
    fn dead_letter(&self, letter: &DeadLetter<'_>) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Changes the visibility of up to ten messages of one queue. Returns the message ids
    /// SQS refused, with its reason.
    fn change_visibility(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange<'_>],
    ) -> impl Future<Output = Result<Vec<(String, String)>, QueueError>> + Send;
}

/// SQS limits `ChangeMessageVisibilityBatch` to ten entries.
pub const VISIBILITY_BATCH_LIMIT: usize = 10;

/// A dead-letter reason longer than this is cut, so it always fits in a message attribute.
const MAX_REASON_BYTES: usize = 1024;

/// [`QueueOps`] over a real SQS endpoint.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: aws_sdk_sqs::Client,
    dlq_url: String,
}

impl SqsQueues {
    /// Sends dead letters to `dlq_url` through `client`.
    pub fn new(client: aws_sdk_sqs::Client, dlq_url: impl Into<String>) -> Self {
        Self { client, dlq_url: dlq_url.into() }
    }
}

fn string_attribute(value: impl Into<String>, data_type: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type(data_type).string_value(value).build().expect("data_type is set")
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl QueueOps for SqsQueues {
    async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(letter.body)
            .message_attributes("error_kind", string_attribute(letter.kind, "String"))
            .message_attributes("error_reason", string_attribute(truncate(letter.reason, MAX_REASON_BYTES), "String"))
            .message_attributes("receive_count", string_attribute(letter.receive_count.to_string(), "Number"));
        if let Some(id) = letter.source_message_id {
            send = send.message_attributes("source_message_id", string_attribute(id, "String"));
        }
        if let Some(queue) = letter.source_queue {
            send = send.message_attributes("source_queue", string_attribute(queue, "String"));
        }
        // A FIFO source has a FIFO dead-letter queue, which needs a group and a deduplication
        // id; the source message id makes a repeated send after a timeout a no-op.
        if self.dlq_url.ends_with(".fifo") {
            send = send
                .message_group_id(letter.group_id.unwrap_or("dead-letters"))
                .set_message_deduplication_id(letter.source_message_id.map(str::to_owned));
        }
        send.send().await.map_err(|e| QueueError(error_chain(&e)))?;
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
            .map_err(|e| QueueError(error_chain(&e)))?;
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

/// An SDK error with its sources, which say what actually went wrong.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The queue URL for a queue ARN. Lambda's event names the source queue only by ARN.
/// With an endpoint override (local emulators), the URL is `<endpoint>/<account>/<name>`.
pub fn queue_url_from_arn(arn: &str, endpoint: Option<&str>) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_url_from_arn_covers_aws_china_and_local_endpoints() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:notes";
        assert_eq!(queue_url_from_arn(arn, None).unwrap(), "https://sqs.eu-west-1.amazonaws.com/123456789012/notes");
        assert_eq!(
            queue_url_from_arn("arn:aws-cn:sqs:cn-north-1:1:q.fifo", None).unwrap(),
            "https://sqs.cn-north-1.amazonaws.com.cn/1/q.fifo"
        );
        assert_eq!(
            queue_url_from_arn(arn, Some("http://127.0.0.1:4566/")).unwrap(),
            "http://127.0.0.1:4566/123456789012/notes"
        );
        assert_eq!(queue_url_from_arn("arn:aws:sns:eu-west-1:1:topic", None), None);
        assert_eq!(queue_url_from_arn("notes", None), None);
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let reason = "é".repeat(600);
        let cut = truncate(&reason, MAX_REASON_BYTES);
        assert!(cut.len() <= MAX_REASON_BYTES && cut.chars().all(|c| c == 'é'));
    }
}
