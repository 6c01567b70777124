//! The SQS event as the engine reads it: borrowed from the invocation payload.
//!
//! `aws_lambda_events::SqsEvent` owns every string and keeps every attribute in a `HashMap`.
//! The engine needs a few fields per record, so it reads them straight from the payload:
//! message ids, receipt handles, ARNs and message attributes are borrowed (they rarely contain
//! JSON escapes), and a body is unescaped once, into the only allocation a record costs on the
//! happy path.

use std::borrow::Cow;

use serde::Deserialize;

pub use crate::attributes::{MessageAttribute, MessageAttributes};
use crate::json::{self, PathError, option_cow};

/// A batch of SQS records, borrowed from the Lambda payload it was parsed from.
#[derive(Debug, Deserialize)]
pub struct Batch<'a> {
    /// The records, in the order SQS delivered them.
    #[serde(rename = "Records", borrow)]
    pub records: Vec<Record<'a>>,
}

/// One SQS message as Lambda's event source mapping (or the poller) hands it over.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record<'a> {
    /// The SQS message id: the `itemIdentifier` of a partial batch response.
    #[serde(borrow, default, deserialize_with = "option_cow")]
    pub message_id: Option<Cow<'a, str>>,
    /// Needed to change the message's visibility.
    #[serde(borrow, default, deserialize_with = "option_cow")]
    pub receipt_handle: Option<Cow<'a, str>>,
    /// The message body, as sent.
    #[serde(borrow, default, deserialize_with = "option_cow")]
    pub body: Option<Cow<'a, str>>,
    /// The system attributes the engine uses.
    #[serde(borrow, default)]
    pub attributes: Attributes<'a>,
    /// The attributes the message's sender set (`messageAttributes`), string-valued ones only.
    #[serde(borrow, default)]
    pub message_attributes: MessageAttributes<'a>,
    /// The queue the message came from: `arn:aws:sqs:<region>:<account>:<name>`.
    #[serde(rename = "eventSourceARN", borrow, default, deserialize_with = "option_cow")]
    pub event_source_arn: Option<Cow<'a, str>>,
    /// `eventSource`, which must be `aws:sqs`: an SNS, S3 or other event is refused whole
    /// rather than dead-lettered record by record as bodiless messages.
    #[serde(rename = "eventSource")]
    pub event_source: SqsSource,
}

/// The `eventSource` of an SQS record: reading anything but `aws:sqs` is an error.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SqsSource;

impl<'de> Deserialize<'de> for SqsSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = Cow::<'de, str>::deserialize(deserializer)?;
        if source == "aws:sqs" {
            Ok(SqsSource)
        } else {
            let excerpt = crate::reason::excerpt(&source, 16);
            Err(serde::de::Error::custom(format_args!("expected `aws:sqs`, found `{excerpt}`")))
        }
    }
}

/// The SQS system attributes the engine reads; all others are skipped without being copied.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Attributes<'a> {
    /// How many times SQS has handed this message out, this delivery included.
    #[serde(rename = "ApproximateReceiveCount", borrow, default, deserialize_with = "option_cow")]
    pub approximate_receive_count: Option<Cow<'a, str>>,
    /// FIFO queues only: the ordering group.
    #[serde(rename = "MessageGroupId", borrow, default, deserialize_with = "option_cow")]
    pub message_group_id: Option<Cow<'a, str>>,
    /// When SQS accepted the message, in milliseconds since the epoch.
    #[serde(rename = "SentTimestamp", borrow, default, deserialize_with = "option_cow")]
    pub sent_timestamp: Option<Cow<'a, str>>,
}

/// The payload was not an SQS event. Its message ends with the parser's, which names the
/// JSON path where reading stopped (the same convention as [`PathError`]'s).
#[derive(Debug)]
pub struct EventError(PathError);

impl EventError {
    /// Where and why reading stopped.
    pub fn path_error(&self) -> &PathError {
        &self.0
    }
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the invocation payload is not an SQS event: {}", self.0)
    }
}

impl std::error::Error for EventError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<'a> Batch<'a> {
    /// Reads an SQS event from a Lambda payload, borrowing from it.
    pub fn parse(payload: &'a str) -> Result<Self, EventError> {
        json::parse(payload).map_err(EventError)
    }

    /// Whether the records come from a FIFO queue (their source ARN ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.records.first().and_then(|r| r.event_source_arn.as_deref()).is_some_and(|arn| arn.ends_with(".fifo"))
    }
}

impl<'a> Record<'a> {
    /// A record for a message received with `ReceiveMessage` (polling outside Lambda), which
    /// must have asked for the `ApproximateReceiveCount`, `MessageGroupId` and `SentTimestamp`
    /// system attributes, and for the message attributes the handler reads.
    #[cfg(feature = "sdk")]
    pub fn from_message(message: &'a aws_sdk_sqs::types::Message, queue_arn: &'a str) -> Self {
        use aws_sdk_sqs::types::MessageSystemAttributeName;
        let attribute = |name| message.attributes().and_then(|a| a.get(&name)).map(|v| Cow::Borrowed(v.as_str()));
        Record {
            message_id: message.message_id().map(Cow::Borrowed),
            receipt_handle: message.receipt_handle().map(Cow::Borrowed),
            body: message.body().map(Cow::Borrowed),
            attributes: Attributes {
                approximate_receive_count: attribute(MessageSystemAttributeName::ApproximateReceiveCount),
                message_group_id: attribute(MessageSystemAttributeName::MessageGroupId),
                sent_timestamp: attribute(MessageSystemAttributeName::SentTimestamp),
            },
            message_attributes: MessageAttributes::of_message(message),
            event_source_arn: Some(Cow::Borrowed(queue_arn)),
            event_source: SqsSource,
        }
    }

    /// The message id, if SQS gave one (it always does; a hand-written event may not).
    pub fn id(&self) -> Option<&str> {
        self.message_id.as_deref().filter(|id| !id.is_empty())
    }

    /// `ApproximateReceiveCount`, or 1 when absent or unreadable: a first delivery is the
    /// safe assumption (the shortest backoff, and never a premature "final attempt").
    pub fn receive_count(&self) -> u32 {
        self.attributes.approximate_receive_count.as_deref().and_then(|n| n.parse().ok()).unwrap_or(1).max(1)
    }

    /// The FIFO message group, if any.
    pub fn group_id(&self) -> Option<&str> {
        self.attributes.message_group_id.as_deref()
    }

    /// `SentTimestamp` (milliseconds since the epoch), if present and readable.
    pub fn sent_at_ms(&self) -> Option<u64> {
        self.attributes.sent_timestamp.as_deref().and_then(|ms| ms.parse().ok())
    }

    /// The value of the string-valued message attribute `name` its sender set, if any.
    pub fn message_attribute(&self, name: &str) -> Option<&str> {
        self.message_attributes.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and its sources, as a log line or Lambda's error message shows them.
    fn chain(err: &EventError) -> String {
        crate::errors::error_chain(err)
    }

    #[test]
    fn bodies_with_escapes_are_unescaped_and_ids_and_message_attributes_are_borrowed() {
        let payload = r#"{"Records":[{"messageId":"m-1","receiptHandle":"rh","body":"{\"a\":1}",
            "attributes":{"ApproximateReceiveCount":"3","SentTimestamp":"1"},
            "messageAttributes":{"owner":{"stringValue":"alice","dataType":"String"}},
            "eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q"}]}"#;
        let batch = Batch::parse(payload).unwrap();
        let record = &batch.records[0];
        assert!(matches!(record.message_id, Some(Cow::Borrowed("m-1"))));
        assert_eq!(record.body.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(record.receive_count(), 3);
        assert_eq!(record.message_attribute("owner"), Some("alice"));
        assert_eq!(record.message_attribute("other"), None);
        assert!(!batch.is_fifo());
    }

    #[test]
    fn a_payload_that_is_not_an_sqs_event_is_an_error_naming_what_is_missing() {
        let err = Batch::parse(r#"{"httpMethod":"GET"}"#).unwrap_err();
        assert!(chain(&err).contains("not an SQS event: missing field `Records`"), "{err}");
        let err = Batch::parse(r#"{"Records":[{"messageId":7}]}"#).unwrap_err();
        assert!(chain(&err).contains("Records[0].messageId"), "{err}");
        assert_eq!(err.path_error().path(), Some("Records[0].messageId"));
        let err = Batch::parse(r#"{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"x"}}]}"#).unwrap_err();
        assert!(chain(&err).contains("Records[0]: missing field `eventSource`"), "{err}");
        let err = Batch::parse(r#"{"Records":[{"eventSource":"aws:s3","s3":{}}]}"#).unwrap_err();
        assert!(chain(&err).contains("Records[0].eventSource: expected `aws:sqs`, found `aws:s3`"), "{err}");
        let err = Batch::parse("not json").unwrap_err();
        assert!(chain(&err).contains("expected ident") || chain(&err).contains("expected value"), "{err}");
    }

    #[test]
    fn a_missing_or_bad_receive_count_reads_as_a_first_delivery() {
        let record = Record::default();
        assert_eq!(record.receive_count(), 1);
        let mut record = Record::default();
        record.attributes.approximate_receive_count = Some("x".into());
        assert_eq!(record.receive_count(), 1);
    }
}
