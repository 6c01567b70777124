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
        .attributes(MessageSystemAttributeName::SenderId, "AROACONSUMER:notes-consumer")
        .build();
    let letter = DeadLetter::from_message_by(consumer, 61_000, Some("AROACONSUMER"));
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
    let letter = DeadLetter::from_message_by(
        Message::builder()
            .message_id("d-1")
            .message_attributes("error_kind", attribute("invalid_field"))
            .message_attributes("source_message_id", attribute("s-1"))
            .attributes(MessageSystemAttributeName::SenderId, "c")
            .build(),
        0,
        Some("c"),
    );
    assert!(Selection::Kind("invalid_field".into()).matches(&letter));
    assert!(!Selection::Kind("invalid_json".into()).matches(&letter));
    assert!(Selection::Ids(vec!["x".into(), "d-1".into()]).matches(&letter));
    assert!(Selection::Ids(vec!["s-1".into()]).matches(&letter));
    assert!(!Selection::Ids(vec!["s-2".into()]).matches(&letter));
}

fn forged(sender: &str) -> Message {
    Message::builder()
        .message_id("d-9")
        .body("{}")
        .message_attributes("error_kind", attribute("invalid_field"))
        .message_attributes("error_reason", attribute("\u{1b}[2Jall fine\nok"))
        .message_attributes("receive_count", attribute("1"))
        .attributes(MessageSystemAttributeName::SenderId, sender)
        .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "7")
        .build()
}

#[test]
fn dead_letter_metadata_from_any_sender_but_the_consumer_is_unverified() {
    let letter = DeadLetter::from_message_by(forged("AIDAOTHER"), 0, Some("AROACONSUMER"));
    assert_eq!((letter.kind.as_str(), letter.reason.as_deref()), (UNVERIFIED_KIND, None));
    assert_eq!(letter.receive_count, Some(7), "SQS's count, not the claimed one");
    let unconfigured = DeadLetter::from_message_by(forged("AROACONSUMER:fn"), 0, None);
    assert_eq!(unconfigured.kind, UNVERIFIED_KIND, "nothing to compare with: unverified");
    let consumer = DeadLetter::from_message_by(forged("AROACONSUMER:fn"), 0, Some("AROACONSUMER"));
    assert_eq!(consumer.kind, "invalid_field");
}

#[test]
fn a_sender_id_is_the_consumer_s_when_equal_or_its_role_before_the_session() {
    assert!(sent_by("000000000000", "000000000000"));
    assert!(sent_by("AROAX:notes-consumer", "AROAX"));
    assert!(!sent_by("AROAXY:notes-consumer", "AROAX"));
    assert!(!sent_by("AIDAOTHER", "AROAX"));
}

#[test]
fn escaping_writes_control_and_invisible_characters_as_escapes() {
    assert_eq!(escape("\u{1b}[2Jx\ny\u{202e}z"), "\\u{1b}[2Jx\\ny\\u{202e}z");
    assert_eq!(escape("plain é"), "plain é");
}

#[test]
fn the_started_move_task_is_found_by_its_handle_not_as_the_newest() {
    use aws_sdk_sqs::types::ListMessageMoveTasksResultEntry as Entry;
    let newest =
        Entry::builder().task_handle("other").status("RUNNING").approximate_number_of_messages_moved(9).build();
    let ours = Entry::builder().task_handle("ours").status("RUNNING").approximate_number_of_messages_moved(2).build();
    let task = task_with_handle(vec![newest, ours], "ours").unwrap();
    assert_eq!(task.moved, 2);
}
