//! The notes handler alone, over the in-memory store: what it says for a note, a replay, a
//! bad message and a store that is down.

use notes_sync::notes::NotesHandler;
use notes_testing::MemoryStore;
use sqs_partial_batch::{Ack, Record, RecordError, RecordHandler};

fn record(body: &str) -> Record<'static> {
    Record { message_id: Some("m".into()), body: Some(body.to_owned().into()), ..Record::default() }
}

fn upsert(version: u64) -> String {
    format!(
        r#"{{"schema":1,"op":"upsert","client_id":"c","note":{{"id":"n","version":{version},"title":"t","body":"b","updated_at":"2026-11-27T10:00:00Z"}}}}"#
    )
}

#[tokio::test]
async fn a_replay_or_an_older_version_is_stale_success() {
    let handler = NotesHandler::new(MemoryStore::default());
    assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Succeeded));
    assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Unchanged));
    assert_eq!(handler.handle(&record(&upsert(1))).await, Ok(Ack::Unchanged));
    assert_eq!(handler.handle(&record(&upsert(3))).await, Ok(Ack::Succeeded));
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
    let err = handler.handle(&Record::default()).await.unwrap_err();
    assert!(matches!(err, RecordError::Permanent { kind: "invalid_json", .. }), "a missing body: {err:?}");
}

#[tokio::test]
async fn store_errors_are_transient_so_a_misconfiguration_does_not_flood_the_dlq() {
    let handler = NotesHandler::new(MemoryStore::default());
    handler.store().failing.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = handler.handle(&record(&upsert(1))).await.unwrap_err();
    assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
}
