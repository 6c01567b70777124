//! Adversarial events through the real parser, engine and notes handler, with an in-memory
//! store and recording queues (issue 9): each case asserts the exact response. The same
//! batch invariants as the property tests hold in every case.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::notes::NotesHandler;
use crate::testing::{MemoryStore, RecordingQueues, SentLetter, check_batch};
use sqs_partial_batch::{Batch, Engine, Outcome, Settings, attribute};

const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:notes";

fn note(id: &str, version: Value, title: &str, body: &str) -> String {
    json!({"schema": 1, "op": "upsert", "client_id": "c",
        "note": {"id": id, "version": version, "title": title, "body": body, "updated_at": "2026-11-27T10:00:00Z"}})
    .to_string()
}

/// An SQS record; `None` leaves a field out.
fn record(id: Option<&str>, body: Option<Value>) -> Value {
    let mut r = json!({"receiptHandle": "rh", "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {"owner": {"stringValue": "alice", "dataType": "String"}},
        "eventSource": "aws:sqs", "eventSourceARN": ARN});
    if let Some(id) = id {
        r["messageId"] = json!(id);
    }
    if let Some(body) = body {
        r["body"] = body;
    }
    r
}

struct Run {
    failed: Result<Vec<String>, usize>,
    outcomes: Vec<Outcome>,
    letters: Vec<SentLetter>,
    store_calls: usize,
}

fn letter_attribute<'l>(letter: &'l SentLetter, name: &str) -> Option<&'l str> {
    letter.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

async fn run_with(event: &str, store_down: bool) -> Run {
    let batch = Batch::parse(event).expect("an SQS event");
    let engine = Engine::new(Settings::default(), RecordingQueues::default()).with_log(crate::testing::log_sink());
    let store = MemoryStore::default();
    store.failing.store(store_down, Ordering::SeqCst);
    let handler = NotesHandler::new(store);
    let deadline = Instant::now() + Duration::from_secs(60);
    let report = engine.process(&batch, deadline, &handler).await;
    check_batch(&batch.records, &report, engine.queues()).expect("batch invariants");
    let outcomes: Vec<Outcome> = report.records().iter().map(|r| r.outcome.clone()).collect();
    let response = report.response();
    let failed =
        response.map(|r| r.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()).map_err(|e| e.index);
    let letters = engine.queues().letters.lock().unwrap().clone();
    let store_calls = handler.store().calls.load(Ordering::SeqCst);
    Run { failed, outcomes, letters, store_calls }
}

async fn run(records: Vec<Value>) -> Run {
    run_with(&json!({ "Records": records }).to_string(), false).await
}

#[tokio::test]
async fn an_empty_records_list_is_an_empty_response() {
    let run = run(vec![]).await;
    assert_eq!(run.failed, Ok(vec![]));
    assert!(run.outcomes.is_empty() && run.letters.is_empty());
}

#[tokio::test]
async fn duplicate_message_ids_each_get_their_own_outcome_and_each_failure_is_listed() {
    let valid = note("n", json!(1), "t", "b");
    let run = run(vec![record(Some("dup"), Some(json!(valid))), record(Some("dup"), Some(json!("not json")))]).await;
    assert_eq!(run.failed, Ok(vec![]));
    assert_eq!(run.outcomes.iter().map(Outcome::name).collect::<Vec<_>>(), ["succeeded", "dead_lettered"]);
    let event = json!({"Records": [record(Some("dup"), Some(json!(valid))), record(Some("dup"), Some(json!(valid)))]});
    let run = run_with(&event.to_string(), true).await;
    assert_eq!(run.failed, Ok(vec!["dup".to_owned(), "dup".to_owned()]));
}

#[tokio::test]
async fn a_failing_record_without_or_with_an_empty_message_id_fails_the_invocation() {
    let valid = note("n", json!(1), "t", "b");
    for id in [None, Some("")] {
        let event = json!({"Records": [record(Some("a"), Some(json!(valid))), record(id, Some(json!(valid)))]});
        assert_eq!(run_with(&event.to_string(), true).await.failed, Err(1), "{id:?}: never an empty itemIdentifier");
        // Succeeding, it is harmless.
        assert_eq!(run_with(&event.to_string(), false).await.failed, Ok(vec![]));
    }
}

#[tokio::test]
async fn missing_null_and_empty_bodies_are_dead_lettered_with_a_placeholder() {
    let run = run(vec![
        record(Some("missing"), None),
        record(Some("null"), Some(Value::Null)),
        record(Some("empty"), Some(json!(""))),
    ])
    .await;
    assert_eq!(run.failed, Ok(vec![]));
    let markers: Vec<_> =
        run.letters.iter().map(|l| (l.body.as_str(), letter_attribute(l, attribute::BODY_PLACEHOLDER))).collect();
    assert_eq!(markers, [("-", Some("missing")), ("-", Some("missing")), ("-", Some("empty"))]);
    assert!(run.letters.iter().all(|l| letter_attribute(l, attribute::ERROR_KIND) == Some("invalid_json")));
}

#[tokio::test]
async fn json_that_is_not_a_note_object_is_dead_lettered_with_its_kind() {
    let bodies = ["null", "[]", "\"\"", "{}", "{\"note\":\"\\ud800\"}", "7"];
    let records = bodies.iter().enumerate().map(|(i, b)| record(Some(&format!("m{i}")), Some(json!(b)))).collect();
    let run = run(records).await;
    assert_eq!(run.failed, Ok(vec![]));
    let kinds: Vec<_> = run.letters.iter().map(|l| letter_attribute(l, attribute::ERROR_KIND).unwrap()).collect();
    assert_eq!(
        kinds,
        ["invalid_message", "invalid_message", "invalid_message", "invalid_message", "invalid_json", "invalid_message"]
    );
    assert_eq!(run.store_calls, 0);
}

#[tokio::test]
async fn nul_and_emoji_in_fields_are_stored_and_a_lone_surrogate_is_refused() {
    let run = run(vec![
        record(Some("nul"), Some(json!(note("n1", json!(1), "a\u{0}b", "🎉\u{0}")))),
        record(Some("emoji"), Some(json!(note("🎉", json!(1), "🎉", "🎉")))),
        record(Some("id-nul"), Some(json!(note("n\u{0}", json!(1), "t", "b")))),
        record(Some("surrogate"), Some(json!(note("n3", json!(1), "t", "b").replace("\"t\"", "\"\\ud800\"")))),
    ])
    .await;
    let names: Vec<_> = run.outcomes.iter().map(Outcome::name).collect();
    assert_eq!(names, ["succeeded", "succeeded", "dead_lettered", "dead_lettered"]);
    assert_eq!(
        letter_attribute(&run.letters[0], attribute::ERROR_REASON),
        Some("note.id contains a control character")
    );
    let surrogate = letter_attribute(&run.letters[1], attribute::ERROR_REASON).unwrap();
    assert!(surrogate.starts_with("unexpected end of hex escape"), "{surrogate}");
}

#[tokio::test]
async fn a_one_mib_body_is_dead_lettered_without_its_content_in_the_reason() {
    let huge = note("n", json!(1), "t", &"secret".repeat(180_000));
    let run = run(vec![record(Some("big"), Some(json!(huge)))]).await;
    assert_eq!(run.failed, Ok(vec![]));
    let reason = letter_attribute(&run.letters[0], attribute::ERROR_REASON).unwrap_or_default();
    assert!(reason.is_empty() || !reason.contains("secret"), "{reason}");
    assert!(run.letters[0].body.len() > 1_000_000, "the body is never cut");
}

#[tokio::test]
async fn versions_beyond_u64_negative_or_fractional_are_invalid_messages() {
    let versions = [json!(18446744073709551616u128.to_string().parse::<f64>().unwrap()), json!(-1), json!(1.5)];
    let mut bodies: Vec<String> = versions.iter().map(|v| note("n", v.clone(), "t", "b")).collect();
    bodies.push(note("n", json!(1), "t", "b").replace("\"version\":1", "\"version\":18446744073709551616"));
    let records = bodies.iter().enumerate().map(|(i, b)| record(Some(&format!("m{i}")), Some(json!(b)))).collect();
    let run = run(records).await;
    assert_eq!(run.failed, Ok(vec![]));
    let reasons: Vec<_> = run.letters.iter().map(|l| letter_attribute(l, attribute::ERROR_REASON).unwrap()).collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons.iter().all(|r| r.starts_with("note.version: invalid")), "{reasons:#?}");
}

#[tokio::test]
async fn a_missing_receive_count_reads_as_a_first_delivery() {
    let mut r = record(Some("m"), Some(json!("not json")));
    r["attributes"] = json!({});
    let run = run(vec![r]).await;
    assert_eq!(letter_attribute(&run.letters[0], attribute::RECEIVE_COUNT), Some("1"));
    assert_eq!(letter_attribute(&run.letters[0], attribute::DEAD_LETTER_KEY), Some("m:1"));
}

#[tokio::test]
async fn a_ten_thousand_record_event_of_six_megabytes_is_answered_whole() {
    let records: Vec<Value> = (0..10_000)
        .map(|i| record(Some(&format!("m{i}")), Some(json!(note(&format!("n{i}"), json!(1), "t", &"x".repeat(450))))))
        .collect();
    let event = json!({ "Records": records }).to_string();
    assert!(event.len() > 6_000_000, "{} bytes", event.len());
    let run = run_with(&event, false).await;
    assert_eq!(run.failed, Ok(vec![]));
    assert_eq!(run.store_calls, 10_000);
    // The store down: the brake spares it, and every record is still reported.
    let run = run_with(&event, true).await;
    assert_eq!(run.failed.map(|f| f.len()), Ok(10_000));
    assert!(run.store_calls < 10_000 / 100, "{} store calls", run.store_calls);
}

#[test]
fn events_of_other_services_are_refused_whole_naming_what_is_wrong() {
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Message": "hello", "TopicArn": "arn:aws:sns:us-east-1:1:t"}}]});
    let s3 = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]});
    let api = json!({"httpMethod": "GET", "path": "/", "body": null});
    let cases = [
        (sns, "Records[0]: missing field `eventSource`"),
        (s3, "Records[0].eventSource: expected `aws:sqs`, found `aws:s3`"),
        (api, "missing field `Records`"),
    ];
    for (event, expected) in cases {
        let err = Batch::parse(&event.to_string()).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

/// Log hygiene: distinctive titles and bodies, in valid and invalid messages, with the store
/// up and down: no log line and no dead-letter attribute carries them, and every attempt and
/// outcome line is JSON with the message id, the receive count and (outcomes) the outcome.
#[tokio::test]
async fn no_log_line_or_letter_attribute_carries_a_title_or_body() {
    const TITLE: &str = "Title-Zq7Kx-private";
    const BODY: &str = "Body-Wm3Pv-private";
    let valid = note("n1", json!(1), TITLE, BODY);
    let bodies = [
        valid.clone(),
        valid.replace("\"version\":1", "\"version\":\"1\""),
        valid.replace("\"op\":\"upsert\"", "\"op\":\"merge\""),
        valid.replace("\"schema\":1", "\"schema\":9"),
        valid.replace("2026-11-27T10:00:00Z", "tomorrow"),
        note("n2", json!(1), TITLE, &format!("{BODY}{}", "x".repeat(300_000))),
        valid.replace("\"client_id\":\"c\"", "\"client_id\":\"\""),
        format!("{{\"schema\":1,\"note\":{{\"title\":\"{TITLE}\",\"body\":\"{BODY}\""),
    ];
    let records: Vec<Value> =
        bodies.iter().enumerate().map(|(i, b)| record(Some(&format!("m{i}")), Some(json!(b)))).collect();
    let event = json!({ "Records": records }).to_string();
    for store_down in [false, true] {
        let mut letters = Vec::new();
        let lines = crate::testing::capture_logs(async {
            letters = run_with(&event, store_down).await.letters;
        })
        .await;
        if store_down {
            // An invalid change whose note id and version can be read is retried until its
            // rejection can be recorded for its author (and the outage brake holds back the
            // rest): only changes nobody can be told of are dead-lettered at once.
            assert!(!letters.is_empty());
            for letter in &letters {
                let i: usize = letter.source_message_id.as_deref().unwrap()[1..].parse().unwrap();
                assert_eq!(crate::notes::Identity::peek(&bodies[i]), None, "m{i} dead-lettered untold");
            }
        } else {
            assert_eq!(letters.len(), bodies.len() - 1, "every invalid message dead-lettered");
        }
        for line in &lines {
            let text = line.to_string();
            assert!(!text.contains("Zq7Kx") && !text.contains("Wm3Pv"), "a log line carries note content: {text}");
            if line["event"] == "attempt" || line["event"] == "outcome" {
                assert!(line["message_id"].as_str().is_some_and(|id| id.starts_with('m')), "{text}");
                assert!(line["receive_count"].as_u64().is_some(), "{text}");
            }
            if line["event"] == "outcome" {
                assert!(line["outcome"].as_str().is_some(), "{text}");
            }
        }
        assert_eq!(lines.iter().filter(|l| l["event"] == "outcome").count(), bodies.len());
        for letter in &letters {
            for (name, value) in &letter.attributes {
                assert!(!value.contains("Zq7Kx") && !value.contains("Wm3Pv"), "attribute {name} carries note content");
            }
        }
    }
}
