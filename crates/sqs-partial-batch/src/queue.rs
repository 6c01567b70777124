//! The two SQS calls the engine makes besides answering Lambda: dead-lettering a permanent
//! failure and holding a transient one back. Behind a trait so that tests can use a fake;
//! `SqsQueues` (feature `sdk`) is the real thing.

use std::borrow::Cow;
use std::future::Future;

use super::reason::{self, sqs_text};

/// A permanent failure on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// The largest message SQS accepts (and the default limit of `SqsQueues`).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The body sent for a record without one: SQS refuses an empty body. The
/// `body_placeholder` attribute says so.
pub const PLACEHOLDER_BODY: &str = "-";

/// The order in which a dead letter's attributes are dropped when body and attributes would
/// exceed the dead-letter queue's `MaximumMessageSize`: the largest and least needed first,
/// the error kind and the marker of a placeholder body last.
pub const ATTRIBUTE_DROP_ORDER: [&str; 7] = [
    attribute::ERROR_REASON,
    attribute::SOURCE_QUEUE,
    attribute::SOURCE_MESSAGE_ID,
    attribute::RECEIVE_COUNT,
    attribute::DEAD_LETTER_KEY,
    attribute::ERROR_KIND,
    attribute::BODY_PLACEHOLDER,
];

/// The message attributes of a dead letter: what a person or a tool reading the dead-letter
/// queue filters on.
pub mod attribute {
    /// The error class, such as `invalid_json` (`RecordError::Permanent`'s `kind`).
    pub const ERROR_KIND: &str = "error_kind";
    /// What is wrong with the message: at most 1 KiB, in SQS's character set.
    pub const ERROR_REASON: &str = "error_reason";
    /// `ApproximateReceiveCount` when the record failed.
    pub const RECEIVE_COUNT: &str = "receive_count";
    /// The message id on the source queue.
    pub const SOURCE_MESSAGE_ID: &str = "source_message_id";
    /// `<source message id>:<receive count>`: the same for every send of the same failure.
    pub const DEAD_LETTER_KEY: &str = "dead_letter_key";
    /// The source queue's ARN.
    pub const SOURCE_QUEUE: &str = "source_queue";
    /// Set when the body is not the original: `missing`, `empty` or `escaped`.
    pub const BODY_PLACEHOLDER: &str = "body_placeholder";
}

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
            (attribute::ERROR_KIND, "String", text(letter.kind)),
            (attribute::ERROR_REASON, "String", reason::clean(letter.reason)),
            (attribute::RECEIVE_COUNT, "Number", letter.receive_count.to_string()),
        ];
        if let Some(id) = letter.source_message_id {
            attributes.push((attribute::SOURCE_MESSAGE_ID, "String", text(id)));
            attributes.push((attribute::DEAD_LETTER_KEY, "String", format!("{}:{}", text(id), letter.receive_count)));
        }
        if let Some(queue) = letter.source_queue {
            attributes.push((attribute::SOURCE_QUEUE, "String", text(queue)));
        }
        if let Some(placeholder) = placeholder {
            attributes.push((attribute::BODY_PLACEHOLDER, "String", placeholder.to_owned()));
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

/// The queue URL for a queue ARN. Lambda's event names the source queue only by ARN.
/// With an endpoint override (local emulators), the URL is `<endpoint>/<account>/<name>`.
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
        assert!(parts.body.chars().all(crate::reason::sqs_accepts));
        assert!(parts.attributes.iter().all(|(_, _, v)| v.chars().all(crate::reason::sqs_accepts)));
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
