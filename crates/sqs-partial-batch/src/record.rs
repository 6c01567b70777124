//! The SQS event as the engine reads it: borrowed from the invocation payload.
//!
//! `aws_lambda_events::SqsEvent` owns every string and keeps every attribute in a `HashMap`.
//! The engine needs five fields per record, so it reads them straight from the payload:
//! message ids, receipt handles and ARNs are borrowed (they never contain JSON escapes), and a
//! body is unescaped once, into the only allocation a record costs on the happy path.

use std::borrow::Cow;

use serde::Deserialize;

use crate::json::{self, option_cow};

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
    /// The message's own string attributes, set by its sender.
    #[serde(borrow, default)]
    pub message_attributes: std::collections::BTreeMap<Cow<'a, str>, MessageAttribute<'a>>,
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
            let excerpt = super::reason::excerpt(&source, 16);
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

/// One message attribute as Lambda's event carries it; only string values are read.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct MessageAttribute<'a> {
    /// The value of a `String` (or `Number`) attribute.
    #[serde(rename = "stringValue", borrow, default, deserialize_with = "option_cow")]
    pub string_value: Option<Cow<'a, str>>,
}

/// The payload was not an SQS event. The message names the JSON path where reading stopped.
#[derive(Debug, thiserror::Error)]
#[error("the invocation payload is not an SQS event: {0}")]
pub struct EventError(String);

impl<'a> Batch<'a> {
    /// Reads an SQS event from a Lambda payload, borrowing from it.
    pub fn parse(payload: &'a str) -> Result<Self, EventError> {
        json::parse(payload).map_err(|e| EventError(e.message))
    }

    /// Whether the records come from a FIFO queue (their source ARN ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.records.first().and_then(|r| r.event_source_arn.as_deref()).is_some_and(|arn| arn.ends_with(".fifo"))
    }
}

impl<'a> Record<'a> {
    #[cfg(feature = "sdk")]
    /// A record for a message received with `ReceiveMessage` (polling outside Lambda), which
    /// must have asked for the `ApproximateReceiveCount`, `MessageGroupId` and `SentTimestamp`
    /// attributes.
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
            message_attributes: message
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| {
                    (
                        Cow::Borrowed(name.as_str()),
                        MessageAttribute { string_value: value.string_value().map(Cow::Borrowed) },
                    )
                })
                .collect(),
            event_source_arn: Some(Cow::Borrowed(queue_arn)),
            event_source: SqsSource,
        }
    }

    /// A string message attribute the sender set, if any.
    pub fn message_attribute(&self, name: &str) -> Option<&str> {
        self.message_attributes.get(name).and_then(|a| a.string_value.as_deref())
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_with_escapes_are_unescaped_and_ids_are_borrowed() {
        let payload = r#"{"Records":[{"messageId":"m-1","receiptHandle":"rh","body":"{\"a\":1}",
            "attributes":{"ApproximateReceiveCount":"3","SentTimestamp":"1"},
            "messageAttributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-1:1:q"}]}"#;
        let batch = Batch::parse(payload).unwrap();
        let record = &batch.records[0];
        assert!(matches!(record.message_id, Some(Cow::Borrowed("m-1"))));
        assert_eq!(record.body.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(record.receive_count(), 3);
        assert!(!batch.is_fifo());
    }

    #[test]
    fn a_payload_that_is_not_an_sqs_event_is_an_error_naming_what_is_missing() {
        let err = Batch::parse(r#"{"httpMethod":"GET"}"#).unwrap_err().to_string();
        assert!(err.contains("missing field `Records`"), "{err}");
        let err = Batch::parse(r#"{"Records":[{"messageId":7}]}"#).unwrap_err().to_string();
        assert!(err.contains("Records[0].messageId"), "{err}");
        let err = Batch::parse(r#"{"Records":[{"EventSource":"aws:sns","Sns":{"Message":"x"}}]}"#).unwrap_err();
        assert!(err.to_string().contains("Records[0]: missing field `eventSource`"), "{err}");
        let err = Batch::parse(r#"{"Records":[{"eventSource":"aws:s3","s3":{}}]}"#).unwrap_err().to_string();
        assert!(err.contains("Records[0].eventSource: expected `aws:sqs`, found `aws:s3`"), "{err}");
        let err = Batch::parse("not json").unwrap_err().to_string();
        assert!(err.contains("expected ident") || err.contains("expected value"), "{err}");
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
