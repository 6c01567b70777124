//! The notes handler alone, over the in-memory store: whose change it is, what it says for a
//! note, a replay, a bad message, a rejection it must record, and a store that is down.

use std::sync::atomic::Ordering;

use notes_sync::notes::NotesHandler;
use notes_testing::MemoryStore;
use sqs_partial_batch::{Ack, Batch, Record, RecordError, RecordHandler};

/// A record as Lambda's event carries it; `None` leaves the attribute or the body out.
fn record_with(owner: Option<&str>, body: Option<&str>) -> Record<'static> {
    let attributes = owner.map_or(String::new(), |o| format!(r#""owner":{{"stringValue":"{o}","dataType":"String"}}"#));
    let body = body.map_or(String::new(), |b| format!(r#""body":{},"#, serde_json::to_string(b).unwrap()));
    let event = format!(
        r#"{{"Records":[{{"messageId":"m",{body}"messageAttributes":{{{attributes}}},"eventSource":"aws:sqs"}}]}}"#
    );
    let event: &'static str = Box::leak(event.into_boxed_str());
    Batch::parse(event).unwrap().records.remove(0)
}

fn record_of(owner: Option<&str>, body: &str) -> Record<'static> {
    record_with(owner, Some(body))
}

fn record(body: &str) -> Record<'static> {
    record_of(Some("alice"), body)
}

fn upsert(version: u64) -> String {
    format!(
        r#"{{"schema":1,"op":"upsert","client_id":"c","note":{{"id":"n","version":{version},"title":"t","body":"b","updated_at":"2026-11-27T10:00:00Z"}}}}"#
    )
}

fn down() -> MemoryStore {
    let store = MemoryStore::default();
    store.failing.store(true, Ordering::SeqCst);
    store
}

#[tokio::test]
async fn a_replay_or_an_older_version_is_stale_success() {
    let handler = NotesHandler::new(MemoryStore::default());
    assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Succeeded));
    assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Unchanged));
    assert_eq!(handler.handle(&record(&upsert(1))).await, Ok(Ack::Unchanged));
    assert_eq!(handler.handle(&record(&upsert(3))).await, Ok(Ack::Succeeded));
}

#[tokio::test]
async fn the_same_note_id_of_two_owners_is_two_notes() {
    let handler = NotesHandler::new(MemoryStore::default());
    assert_eq!(handler.handle(&record_of(Some("alice"), &upsert(5))).await, Ok(Ack::Succeeded));
    // Bob's lower version of "n" is not stale: Alice's note is not his.
    assert_eq!(handler.handle(&record_of(Some("bob"), &upsert(1))).await, Ok(Ack::Succeeded));
    let (alice, bob) = (handler.store().winner("alice", "n"), handler.store().winner("bob", "n"));
    assert_eq!((alice.map(|w| w.0), bob.map(|w| w.0)), (Some(5), Some(1)), "two notes");
}

#[tokio::test]
async fn a_message_without_an_owner_is_permanent_missing_owner_and_nothing_is_stored() {
    let handler = NotesHandler::new(MemoryStore::default());
    let err = handler.handle(&record_of(None, &upsert(1))).await.unwrap_err();
    assert!(matches!(err, RecordError::Permanent { kind: "missing_owner", .. }), "{err:?}");
    let err = handler.handle(&record_of(Some(""), &upsert(1))).await.unwrap_err();
    assert!(matches!(err, RecordError::Permanent { kind: "invalid_owner", .. }), "{err:?}");
    assert_eq!(handler.store().winner("", "n"), None);
    assert_eq!(handler.store().calls.load(Ordering::SeqCst), 0, "the store was never asked");
    assert!(handler.store().rejections.lock().unwrap().is_empty(), "no owner to tell");
}

/// The kind goes to the letter's `error_kind` and the log line's; the reason once said it
/// again (`invalid_json: invalid_json: …` where both were shown together).
#[tokio::test]
async fn a_body_that_is_not_json_is_permanent_with_a_reason_that_does_not_repeat_its_kind() {
    let handler = NotesHandler::new(MemoryStore::default());
    let err = handler.handle(&record("hello")).await.unwrap_err();
    assert_eq!(
        err,
        RecordError::Permanent { kind: "invalid_json", reason: "expected value at line 1 column 1".into() }
    );
    let err = handler.handle(&record(&upsert(1).replace("\"schema\":1", "\"schema\":9"))).await.unwrap_err();
    assert_eq!(
        err,
        RecordError::Permanent { kind: "unsupported_schema", reason: "schema 9 is not supported (expected 1)".into() }
    );
    let err = handler.handle(&record_with(Some("alice"), None)).await.unwrap_err();
    assert!(matches!(err, RecordError::Permanent { kind: "invalid_json", .. }), "a missing body: {err:?}");
}

#[tokio::test]
async fn an_invalid_change_with_a_readable_id_is_recorded_as_its_owners_rejection() {
    let handler = NotesHandler::new(MemoryStore::default());
    let bad = upsert(4).replace("2026-11-27T10:00:00Z", "yesterday");
    let err = handler.handle(&record(&bad)).await.unwrap_err();
    assert!(matches!(err, RecordError::Permanent { kind: "invalid_field", .. }), "{err:?}");
    let rejections = handler.store().rejections.lock().unwrap().clone();
    assert_eq!(rejections, [("alice".to_owned(), "n".to_owned(), 4, "invalid_field".to_owned())]);
}

#[tokio::test]
async fn a_rejection_that_cannot_be_recorded_is_retried_not_dead_lettered() {
    let handler = NotesHandler::new(down());
    let bad = upsert(4).replace("2026-11-27T10:00:00Z", "yesterday");
    let err = handler.handle(&record(&bad)).await.unwrap_err();
    assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
}

#[tokio::test]
async fn store_errors_are_transient_so_a_misconfiguration_does_not_flood_the_dlq() {
    let handler = NotesHandler::new(down());
    let err = handler.handle(&record(&upsert(1))).await.unwrap_err();
    assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
}
