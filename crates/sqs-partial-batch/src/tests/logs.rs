//! The engine's log lines: one per delivery attempt, its outcome, never a body.

use super::*;

#[tokio::test]
async fn every_attempt_is_one_json_line_its_outcome_with_the_receive_count_and_without_the_body() {
    let engine = engine(RecordingQueues::default());
    let mut secret = sqs_record("s", "ok");
    secret.body = Some("sleep:1".into());
    let batch = batch(vec![secret, sqs_record("t", "transient"), with_receive_count(sqs_record("f", "transient"), 5)]);
    // Captured when `process` returns: the lines are out before the response is.
    let lines = capture_logs(async {
        engine.process(&batch, far_deadline(), &Scripted::default()).await.response().unwrap();
    })
    .await;
    let of = |event: &str| lines.iter().filter(|l| l["event"] == event).cloned().collect::<Vec<_>>();
    assert!(of("attempt").is_empty(), "the outcome line carries the attempt: no line of its own");
    let outcomes = of("outcome");
    assert_eq!(outcomes.len(), 3, "one line per attempt");
    assert!(outcomes.iter().all(|o| o["receive_count"].as_u64().is_some()), "{outcomes:?}");
    let s = outcomes.iter().find(|l| l["message_id"] == "s").unwrap();
    assert_eq!(
        (s["outcome"].as_str(), s["level"].as_str(), s["receive_count"].as_u64()),
        (Some("succeeded"), Some("INFO"), Some(1))
    );
    let t = outcomes.iter().find(|l| l["message_id"] == "t").unwrap();
    assert_eq!(t["outcome"], "transient");
    assert_eq!(t["receive_count"], 1);
    assert!(t["next_delay_s"].as_u64().unwrap() >= 2);
    assert_eq!(t["final_attempt"], false);
    assert_eq!(t["reason"], "store unavailable");
    let f = outcomes.iter().find(|l| l["message_id"] == "f").unwrap();
    assert_eq!(f["final_attempt"], true, "receive count 5 = MAX_RECEIVE_COUNT is the final attempt");
    assert_eq!(f["level"], "ERROR");
    assert_eq!(of("batch").len(), 1);
    assert_eq!(lines.iter().filter(|l| l["_aws"].is_object()).count(), 1, "one EMF document");
    assert!(lines.iter().all(|l| !l.to_string().contains("sleep:1")), "a body was logged");
}

#[tokio::test]
async fn a_dead_letter_line_names_its_kind_once_and_its_reason_apart() {
    let engine = engine(RecordingQueues::default());
    let lines = capture_logs(async {
        engine.process(&batch(vec![sqs_record("d", "bad")]), far_deadline(), &Scripted::default()).await;
    })
    .await;
    let line = lines.iter().find(|l| l["event"] == "outcome").unwrap();
    assert_eq!((line["outcome"].as_str(), line["error_kind"].as_str()), (Some("dead_lettered"), Some("invalid_json")));
    assert_eq!(line["reason"], "expected value at line 1 column 1");
}
