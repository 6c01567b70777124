//! Reading dead letters and choosing them for a selective redrive.
use aws_sdk_sqs::types::MessageAttributeValue;

use super::*;

fn attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
}

#[test]
fn a_consumer_dead_letter_shows_its_attributes_and_a_moved_one_its_sqs_receive_count() {
    let consumer = Message::builder()
        .message_id("d-1")
        .body("not json")
        .message_attributes("error_kind", attribute("invalid_json"))
        .message_attributes("error_reason", attribute("invalid_json: expected value"))
        .message_attributes("source_message_id", attribute("s-1"))
        .message_attributes("receive_count", attribute("1"))
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "4")
        .attributes(MessageSystemAttributeName::SentTimestamp, "1000")
        .build();
    let letter = DeadLetter::from_message(consumer, 61_000);
    assert_eq!(letter.kind, "invalid_json");
    assert_eq!(letter.reason.as_deref(), Some("invalid_json: expected value"));
    assert_eq!(letter.source_message_id.as_deref(), Some("s-1"));
    assert_eq!(letter.receive_count, Some(1), "the consumer's count, not the DLQ's");
    assert_eq!(letter.age_s, Some(60));
    assert_eq!(letter.attributes.len(), 4);

    let moved = Message::builder()
        .message_id("d-2")
        .body("{}")
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "6")
        .build();
    let letter = DeadLetter::from_message(moved, 0);
    assert_eq!((letter.kind.as_str(), letter.receive_count, letter.reason), (REDRIVE_POLICY_KIND, Some(6), None));
}

#[test]
fn a_selection_matches_by_kind_or_by_either_id() {
    let letter = DeadLetter::from_message(
        Message::builder()
            .message_id("d-1")
            .message_attributes("error_kind", attribute("invalid_field"))
            .message_attributes("source_message_id", attribute("s-1"))
            .build(),
        0,
    );
    assert!(Selection::Kind("invalid_field".into()).matches(&letter));
    assert!(!Selection::Kind("invalid_json".into()).matches(&letter));
    assert!(Selection::Ids(vec!["x".into(), "d-1".into()]).matches(&letter));
    assert!(Selection::Ids(vec!["s-1".into()]).matches(&letter));
    assert!(!Selection::Ids(vec!["s-2".into()]).matches(&letter));
}
