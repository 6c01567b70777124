//! The two SQS calls the engine makes besides answering Lambda: dead-lettering a permanent
//! failure and holding a transient one back. Behind a trait so the engine's tests can use a
//! fake; [`SqsQueues`] is the real thing.

use std::borrow::Cow;
use std::future::Future;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, MessageAttributeValue};

use super::reason::{self, sqs_text};
use crate::errors::error_chain;

/// A permanent failure on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The original body, unchanged, so that a redrive replays the same message. `None` for a
    /// record without one.
    pub body: Option<&'a str>,
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

/// The largest message SQS accepts (and the default of [`SqsQueues`]'s limit).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The body sent for a record without one: SQS refuses an empty body. The
/// `body_placeholder` attribute says so.
pub const PLACEHOLDER_BODY: &str = "-";

/// The order in which a dead letter's attributes are dropped when body and attributes would
/// exceed the dead-letter queue's `MaximumMessageSize`: the largest and least needed first,
/// the error kind and the marker of a placeholder body last.
pub const ATTRIBUTE_DROP_ORDER: [&str; 7] = [
    "error_reason",
    "source_queue",
    "source_message_id",
    "receive_count",
    "dead_letter_key",
    "error_kind",
    "body_placeholder",
];

/// A dead letter as it is sent: the body and `(name, data type, value)` attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterParts<'a> {
    /// The original body, or [`PLACEHOLDER_BODY`], or the body with refused characters escaped.
    pub body: Cow<'a, str>,
    /// The attributes that fit, in no particular order.
    pub attributes: Vec<(&'static str, &'static str, String)>,
    /// The attributes dropped to fit, in [`ATTRIBUTE_DROP_ORDER`].
    pub dropped: Vec<&'static str>,
}

impl<'a> LetterParts<'a> {
    /// Builds a letter's body and attributes, every value in SQS's character set, and drops
    /// attributes in [`ATTRIBUTE_DROP_ORDER`] until the whole fits in `max_message_bytes`
    /// (SQS counts the body and each attribute's name, type and value).
    ///
    /// `dead_letter_key` (`<source message id>:<receive count>`) is the same for every send
    /// of the same failure, so a letter sent twice (an SDK retry after a lost answer) is
    /// recognisable: standard queues do not deduplicate.
    pub fn of(letter: &DeadLetter<'a>, max_message_bytes: usize) -> Self {
        let (body, placeholder) = match letter.body {
            None => (Cow::Borrowed(PLACEHOLDER_BODY), Some("missing")),
            Some("") => (Cow::Borrowed(PLACEHOLDER_BODY), Some("empty")),
            Some(body) => match sqs_text(body) {
                Cow::Borrowed(body) => (Cow::Borrowed(body), None),
                escaped => (escaped, Some("escaped")),
            },
        };
        let text = |v: &str| sqs_text(v).into_owned();
        let mut attributes = vec![
            ("error_kind", "String", text(letter.kind)),
            ("error_reason", "String", reason::clean(letter.reason)),
            ("receive_count", "Number", letter.receive_count.to_string()),
        ];
        if let Some(id) = letter.source_message_id {
            attributes.push(("source_message_id", "String", text(id)));
            attributes.push(("dead_letter_key", "String", format!("{}:{}", text(id), letter.receive_count)));
        }
        if let Some(queue) = letter.source_queue {
            attributes.push(("source_queue", "String", text(queue)));
        }
        if let Some(placeholder) = placeholder {
            attributes.push(("body_placeholder", "String", placeholder.to_owned()));
        }
        let size = |attributes: &[(&str, &str, String)]| {
            body.len() + attributes.iter().map(|(n, t, v)| n.len() + t.len() + v.len()).sum::<usize>()
        };
        let mut dropped = Vec::new();
        for name in ATTRIBUTE_DROP_ORDER {
            if size(&attributes) <= max_message_bytes {
                break;
            }
            if let Some(i) = attributes.iter().position(|(n, _, _)| *n == name) {
                attributes.remove(i);
                dropped.push(name);
            }
        }
        Self { body, attributes, dropped }
    }
}

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

    fn letter(body: Option<&str>) -> DeadLetter<'_> {
        DeadLetter {
            body,
            source_message_id: Some("m-1"),
            source_queue: Some("arn:aws:sqs:us-east-1:1:notes"),
            group_id: None,
            kind: "invalid_message",
            reason: "op: unknown variant `\u{0}`",
            receive_count: 2,
        }
    }

    fn names(parts: &LetterParts<'_>) -> Vec<&'static str> {
        let mut names: Vec<_> = parts.attributes.iter().map(|(n, _, _)| *n).collect();
        names.sort();
        names
    }

    #[test]
    fn a_letter_carries_a_stable_deduplication_key_and_only_characters_sqs_accepts() {
        let parts = LetterParts::of(&letter(Some("x")), SQS_MAX_MESSAGE_BYTES);
        let value = |name| parts.attributes.iter().find(|(n, _, _)| *n == name).map(|(_, _, v)| v.as_str());
        assert_eq!(value("dead_letter_key"), Some("m-1:2"));
        assert_eq!(value("receive_count"), Some("2"));
        let bad = DeadLetter { reason: "op \u{0}\u{fffe}", kind: "k\u{1}", ..letter(Some("a\u{0}b")) };
        let parts = LetterParts::of(&bad, SQS_MAX_MESSAGE_BYTES);
        assert!(parts.body.chars().all(crate::batch::reason::sqs_accepts));
        assert!(parts.attributes.iter().all(|(_, _, v)| v.chars().all(crate::batch::reason::sqs_accepts)));
        assert_eq!(parts.attributes.iter().find(|(n, _, _)| *n == "body_placeholder").unwrap().2, "escaped");
        assert!(parts.dropped.is_empty());
    }

    #[test]
    fn a_missing_or_empty_body_is_sent_as_a_placeholder_and_said_so() {
        for (body, marker) in [(None, "missing"), (Some(""), "empty")] {
            let parts = LetterParts::of(&letter(body), SQS_MAX_MESSAGE_BYTES);
            assert_eq!(parts.body, PLACEHOLDER_BODY);
            assert!(parts.attributes.contains(&("body_placeholder", "String", marker.to_owned())), "{body:?}");
        }
    }

    #[test]
    fn a_letter_too_large_for_the_dlq_drops_attributes_in_the_documented_order() {
        let max = 256 * 1024;
        let body = "b".repeat(max - 80);
        let parts = LetterParts::of(&letter(Some(&body)), max);
        assert_eq!(parts.dropped, ["error_reason", "source_queue", "source_message_id"]);
        assert_eq!(names(&parts), ["dead_letter_key", "error_kind", "receive_count"]);
        let size =
            parts.body.len() + parts.attributes.iter().map(|(n, t, v)| n.len() + t.len() + v.len()).sum::<usize>();
        assert!(size <= max, "{size}");
        // Room for everything: nothing dropped.
        assert!(LetterParts::of(&letter(Some(&body)), SQS_MAX_MESSAGE_BYTES).dropped.is_empty());
    }
}
