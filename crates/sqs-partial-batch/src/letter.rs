//! A dead letter: what the engine sends for a permanent failure, and how it is fitted into
//! what SQS accepts (its character set, at most [`MAX_MESSAGE_ATTRIBUTES`] attributes, and the
//! dead-letter queue's maximum message size).
//!
//! A letter carries the original body and the source message's own string-valued attributes,
//! so that a redrive by resending replays the message as it was sent, beside the engine's
//! attributes ([`attribute`]), which say why it is there.

use std::borrow::Cow;

use crate::attributes::MessageAttributes;
use crate::charset::sqs_text;
use crate::reason;

/// The largest message SQS accepts (and the default limit of `SqsQueues`).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// SQS accepts at most this many message attributes on one message.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html>
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;

/// The body sent for a record without one: SQS refuses an empty body. The
/// `body_placeholder` attribute says so.
pub const PLACEHOLDER_BODY: &str = "-";

/// A permanent failure on its way to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<'a> {
    /// The original body, unchanged, so that a redrive replays the same message. `None` for a
    /// record without one.
    pub body: Option<&'a str>,
    /// The source message's own string-valued attributes, carried on the letter.
    pub message_attributes: &'a MessageAttributes<'a>,
    /// The names of the source attributes carried before any other, in this order
    /// ([`Settings::carried_first`](crate::Settings::carried_first)).
    pub carried_first: &'a [String],
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

/// The message attributes the engine writes on a dead letter: what a person or a tool reading
/// the dead-letter queue filters on. These names are the engine's on a letter: a source
/// message attribute of the same name is not carried.
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

    /// Every name the engine writes.
    pub const ALL: [&str; 7] =
        [ERROR_KIND, ERROR_REASON, RECEIVE_COUNT, SOURCE_MESSAGE_ID, DEAD_LETTER_KEY, SOURCE_QUEUE, BODY_PLACEHOLDER];
}

/// What a letter too large for the queue loses first, before the source's own attributes.
const DROPPED_FIRST: [&str; 5] = [
    attribute::ERROR_REASON,
    attribute::SOURCE_QUEUE,
    attribute::SOURCE_MESSAGE_ID,
    attribute::RECEIVE_COUNT,
    attribute::DEAD_LETTER_KEY,
];

/// What it loses last, after the source's own attributes: what says what the letter is.
const DROPPED_LAST: [&str; 2] = [attribute::ERROR_KIND, attribute::BODY_PLACEHOLDER];

/// One message attribute of a letter as it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LetterAttribute<'a> {
    /// Its name.
    pub name: Cow<'a, str>,
    /// `String`, `Number`, or the source attribute's own data type.
    pub data_type: Cow<'a, str>,
    /// Its value, in SQS's character set.
    pub value: Cow<'a, str>,
}

impl LetterAttribute<'_> {
    /// The bytes SQS counts against the message size: name, data type and value.
    fn size(&self) -> usize {
        self.name.len() + self.data_type.len() + self.value.len()
    }
}

/// A dead letter as it is sent: the body and the attributes that fit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LetterParts<'a> {
    /// The original body, or [`PLACEHOLDER_BODY`], or the body with refused characters escaped.
    pub body: Cow<'a, str>,
    /// The attributes that fit: the engine's, then the source message's in name order.
    pub attributes: Vec<LetterAttribute<'a>>,
    /// The names of the attributes left off, in the order they were dropped.
    pub dropped: Vec<Cow<'a, str>>,
}

impl<'a> LetterParts<'a> {
    /// Builds a letter's body and attributes, every value in SQS's character set, within
    /// SQS's limits:
    ///
    /// - The engine's attributes ([`attribute`], up to seven) always come first; a source
    ///   attribute named like one of them is dropped: the engine's wins.
    /// - The source message's attributes fill the room left under [`MAX_MESSAGE_ATTRIBUTES`]:
    ///   those named in `carried_first` first, in that order, then the others in name order;
    ///   those beyond it (the last in that order) are dropped.
    /// - While body and attributes exceed `max_message_bytes` (SQS counts the body and each
    ///   attribute's name, type and value), attributes are dropped in this order:
    ///   `error_reason`, `source_queue`, `source_message_id`, `receive_count`,
    ///   `dead_letter_key`, then the source's own (the last in that order first), then
    ///   `error_kind` and `body_placeholder`. The body is never cut.
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
        let engine = |name: &'static str, data_type: &'static str, value: String| LetterAttribute {
            name: Cow::Borrowed(name),
            data_type: Cow::Borrowed(data_type),
            value: Cow::Owned(value),
        };
        let text = |v: &str| sqs_text(v).into_owned();
        let mut ours = vec![
            engine(attribute::ERROR_KIND, "String", text(letter.kind)),
            engine(attribute::ERROR_REASON, "String", reason::clean(letter.reason)),
            engine(attribute::RECEIVE_COUNT, "Number", letter.receive_count.to_string()),
        ];
        if let Some(id) = letter.source_message_id {
            ours.push(engine(attribute::SOURCE_MESSAGE_ID, "String", text(id)));
            ours.push(engine(attribute::DEAD_LETTER_KEY, "String", format!("{}:{}", text(id), letter.receive_count)));
        }
        // SQS refuses an empty attribute value (and with it the whole letter).
        if let Some(queue) = letter.source_queue.filter(|q| !q.is_empty()) {
            ours.push(engine(attribute::SOURCE_QUEUE, "String", text(queue)));
        }
        if let Some(placeholder) = placeholder {
            ours.push(engine(attribute::BODY_PLACEHOLDER, "String", placeholder.to_owned()));
        }

        let mut dropped = Vec::new();
        let room = MAX_MESSAGE_ATTRIBUTES.saturating_sub(ours.len());
        let mut theirs: Vec<LetterAttribute<'a>> = Vec::new();
        let first = |name: &str| letter.carried_first.iter().position(|n| n == name).unwrap_or(usize::MAX);
        let mut sources: Vec<_> = letter.message_attributes.iter().collect();
        // Stable: the others keep their name order.
        sources.sort_by_key(|a| first(&a.name));
        for source in sources {
            let name: &'a str = &source.name;
            let refused = !sqs_takes(name, &source.data_type, &source.value);
            if refused || attribute::ALL.contains(&name) || theirs.len() == room {
                dropped.push(Cow::Borrowed(name));
                continue;
            }
            let (data_type, value): (&'a str, &'a str) = (&source.data_type, &source.value);
            theirs.push(LetterAttribute {
                name: sqs_text(name),
                data_type: sqs_text(data_type),
                value: sqs_text(value),
            });
        }

        let mut size = body.len() + ours.iter().chain(&theirs).map(LetterAttribute::size).sum::<usize>();
        drop_until_fits(&mut ours, &DROPPED_FIRST, &mut size, max_message_bytes, &mut dropped);
        while size > max_message_bytes {
            let Some(gone) = theirs.pop() else { break };
            size -= gone.size();
            dropped.push(gone.name);
        }
        drop_until_fits(&mut ours, &DROPPED_LAST, &mut size, max_message_bytes, &mut dropped);
        ours.extend(theirs);
        Self { body, attributes: ours, dropped }
    }
}

/// Whether `SendMessage` takes a message attribute of this name, data type and value: SQS set
/// them on a message it delivered, but a hand-written event may carry anything, and one
/// attribute SQS refuses fails the whole letter.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html>
fn sqs_takes(name: &str, data_type: &str, value: &str) -> bool {
    let name_ok = (1..=256).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !["aws.", "amazon."].iter().any(|p| name.len() >= p.len() && name[..p.len()].eq_ignore_ascii_case(p));
    let (base, custom) = data_type.split_once('.').unwrap_or((data_type, ""));
    let type_ok =
        data_type.len() <= 256 && matches!(base, "String" | "Number") && custom.chars().all(|c| c.is_ascii_graphic());
    let value_ok = !value.is_empty() && (base != "Number" || value.parse::<f64>().is_ok_and(f64::is_finite));
    name_ok && type_ok && value_ok
}

/// Drops the attributes `names`, in that order, until `size` fits in `max`.
fn drop_until_fits<'a>(
    attributes: &mut Vec<LetterAttribute<'a>>,
    names: &[&str],
    size: &mut usize,
    max: usize,
    dropped: &mut Vec<Cow<'a, str>>,
) {
    for name in names {
        if *size <= max {
            return;
        }
        if let Some(i) = attributes.iter().position(|a| a.name == *name) {
            let gone = attributes.remove(i);
            *size -= gone.size();
            dropped.push(gone.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::MessageAttribute;
    use crate::charset::sqs_accepts;

    static NONE: MessageAttributes<'static> = MessageAttributes::new();

    fn letter<'a>(body: Option<&'a str>, message_attributes: &'a MessageAttributes<'a>) -> DeadLetter<'a> {
        DeadLetter {
            body,
            message_attributes,
            carried_first: &[],
            source_message_id: Some("m-1"),
            source_queue: Some("arn:aws:sqs:us-east-1:1:orders"),
            group_id: None,
            kind: "invalid_message",
            reason: "op: unknown variant `\u{0}`",
            receive_count: 2,
        }
    }

    fn value<'p>(parts: &'p LetterParts<'_>, name: &str) -> Option<&'p str> {
        parts.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_ref())
    }

    fn names(parts: &LetterParts<'_>) -> Vec<String> {
        parts.attributes.iter().map(|a| a.name.to_string()).collect()
    }

    fn size(parts: &LetterParts<'_>) -> usize {
        parts.body.len() + parts.attributes.iter().map(LetterAttribute::size).sum::<usize>()
    }

    fn sent_by(names: &[&'static str]) -> MessageAttributes<'static> {
        names.iter().map(|n| MessageAttribute::string(*n, format!("value of {n}"))).collect()
    }

    #[test]
    fn a_letter_carries_a_stable_deduplication_key_and_only_characters_sqs_accepts() {
        let parts = LetterParts::of(&letter(Some("x"), &NONE), SQS_MAX_MESSAGE_BYTES);
        assert_eq!(value(&parts, "dead_letter_key"), Some("m-1:2"));
        assert_eq!(value(&parts, "receive_count"), Some("2"));
        let bad = DeadLetter { reason: "op \u{0}\u{fffe}", kind: "k\u{1}", ..letter(Some("a\u{0}b"), &NONE) };
        let parts = LetterParts::of(&bad, SQS_MAX_MESSAGE_BYTES);
        assert!(parts.body.chars().all(sqs_accepts));
        assert!(parts.attributes.iter().all(|a| a.value.chars().all(sqs_accepts)));
        assert_eq!(value(&parts, "body_placeholder"), Some("escaped"));
        assert!(parts.dropped.is_empty());
    }

    /// Found by `an_event_with_a_part_changed_…` (tests/properties.rs): a record whose
    /// `eventSourceARN` is "" made a letter SQS refuses whole.
    #[test]
    fn an_empty_source_queue_is_left_out_not_sent_empty() {
        let parts = LetterParts::of(&DeadLetter { source_queue: Some(""), ..letter(Some("x"), &NONE) }, 1 << 20);
        assert_eq!(value(&parts, "source_queue"), None);
        assert!(parts.attributes.iter().all(|a| !a.value.is_empty()));
    }

    #[test]
    fn a_missing_or_empty_body_is_sent_as_a_placeholder_and_said_so() {
        for (body, marker) in [(None, "missing"), (Some(""), "empty")] {
            let parts = LetterParts::of(&letter(body, &NONE), SQS_MAX_MESSAGE_BYTES);
            assert_eq!(parts.body, PLACEHOLDER_BODY);
            assert_eq!(value(&parts, "body_placeholder"), Some(marker), "{body:?}");
        }
    }

    #[test]
    fn a_letter_too_large_for_the_dlq_drops_attributes_in_the_documented_order() {
        let max = 256 * 1024;
        let body = "b".repeat(max - 80);
        let parts = LetterParts::of(&letter(Some(&body), &NONE), max);
        assert_eq!(parts.dropped, ["error_reason", "source_queue", "source_message_id"]);
        assert_eq!(names(&parts), ["error_kind", "receive_count", "dead_letter_key"]);
        assert!(size(&parts) <= max, "{}", size(&parts));
        // Room for everything: nothing dropped.
        assert!(LetterParts::of(&letter(Some(&body), &NONE), SQS_MAX_MESSAGE_BYTES).dropped.is_empty());
    }

    #[test]
    fn the_source_messages_attributes_ride_along_with_their_types_and_the_engines_names_win() {
        let source: MessageAttributes<'_> = [
            MessageAttribute::string("owner", "alice"),
            MessageAttribute { data_type: "Number".into(), ..MessageAttribute::string("priority", "3") },
            MessageAttribute::string("error_kind", "forged"),
        ]
        .into_iter()
        .collect();
        let parts = LetterParts::of(&letter(Some("x"), &source), SQS_MAX_MESSAGE_BYTES);
        assert_eq!(value(&parts, "owner"), Some("alice"));
        let priority = parts.attributes.iter().find(|a| a.name == "priority").unwrap();
        assert_eq!((priority.data_type.as_ref(), priority.value.as_ref()), ("Number", "3"));
        assert_eq!(value(&parts, "error_kind"), Some("invalid_message"), "the engine's attribute wins");
        assert_eq!(parts.attributes.iter().filter(|a| a.name == "error_kind").count(), 1);
        assert_eq!(parts.dropped, ["error_kind"]);
    }

    #[test]
    fn a_source_attribute_sqs_would_refuse_is_left_off_rather_than_failing_the_letter() {
        let attribute = |name: &'static str, data_type: &'static str, value: &'static str| MessageAttribute {
            name: name.into(),
            data_type: data_type.into(),
            value: value.into(),
        };
        let source: MessageAttributes<'_> = [
            attribute("empty", "String", ""),
            attribute("not a name", "String", "x"),
            attribute("AWS.trace", "String", "x"),
            attribute("count", "Number", "many"),
            attribute("blob", "Binary", "AAE="),
            attribute("ok.id", "String.custom", "x"),
            attribute("n", "Number", "-1.5e3"),
        ]
        .into_iter()
        .collect();
        let parts = LetterParts::of(&letter(Some("x"), &source), SQS_MAX_MESSAGE_BYTES);
        assert_eq!(&names(&parts)[6..], ["n", "ok.id"]);
        let mut dropped: Vec<&str> = parts.dropped.iter().map(|n| n.as_ref()).collect();
        dropped.sort_unstable();
        assert_eq!(dropped, ["AWS.trace", "blob", "count", "empty", "not a name"]);
    }

    #[test]
    fn beyond_ten_attributes_the_source_attributes_last_in_name_order_are_dropped() {
        let source = sent_by(&["a1", "a2", "a3", "a4", "a5", "owner"]);
        // Six of the engine's (a body, a source id and queue): room for four of the source's.
        let parts = LetterParts::of(&letter(Some("x"), &source), SQS_MAX_MESSAGE_BYTES);
        assert_eq!(parts.attributes.len(), MAX_MESSAGE_ATTRIBUTES);
        assert_eq!(&names(&parts)[6..], ["a1", "a2", "a3", "a4"]);
        assert_eq!(parts.dropped, ["a5", "owner"]);
        // Seven of the engine's (a placeholder body too): room for three.
        let parts = LetterParts::of(&letter(None, &source), SQS_MAX_MESSAGE_BYTES);
        assert_eq!(parts.attributes.len(), MAX_MESSAGE_ATTRIBUTES);
        assert_eq!(parts.dropped, ["a4", "a5", "owner"]);
        assert_eq!(value(&parts, "body_placeholder"), Some("missing"));
    }

    #[test]
    fn the_attributes_named_carried_first_survive_the_ten_attribute_limit() {
        let source = sent_by(&["a1", "a2", "a3", "a4", "a5", "owner"]);
        let carried_first = ["owner".to_owned(), "a5".to_owned()];
        let parts = LetterParts::of(
            &DeadLetter { carried_first: &carried_first, ..letter(Some("x"), &source) },
            SQS_MAX_MESSAGE_BYTES,
        );
        assert_eq!(&names(&parts)[6..], ["owner", "a5", "a1", "a2"]);
        assert_eq!(parts.dropped, ["a3", "a4"], "the rest in name order, the last dropped");
    }

    #[test]
    fn a_letter_too_large_loses_the_source_attributes_after_the_engines_diagnostics_and_before_its_kind() {
        let source = sent_by(&["a", "b"]);
        let with_all = size(&LetterParts::of(&letter(Some("x"), &source), SQS_MAX_MESSAGE_BYTES));
        let kind_only = "error_kind".len() + "String".len() + "invalid_message".len();
        let source_sizes = ["a", "b"].map(|n| n.len() + "String".len() + format!("value of {n}").len());
        // Room for the body, the kind and the source attribute `a`: everything else goes.
        let max = 1 + kind_only + source_sizes[0];
        assert!(max < with_all);
        let parts = LetterParts::of(&letter(Some("x"), &source), max);
        assert_eq!(
            parts.dropped,
            ["error_reason", "source_queue", "source_message_id", "receive_count", "dead_letter_key", "b"]
        );
        assert_eq!(names(&parts), ["error_kind", "a"]);
        assert_eq!(size(&parts), max);
        // One byte less: the source's attributes are gone before the kind is.
        let parts = LetterParts::of(&letter(Some("x"), &source), max - 1);
        assert_eq!(names(&parts), ["error_kind"]);
        assert_eq!(parts.dropped.last().map(|n| n.as_ref()), Some("a"));
    }
}
