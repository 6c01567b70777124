//! The consumer binary in its Lambda mode, under `cargo lambda watch`: what reaches the
//! engine from each invocation (the payload, once, and its deadline) and what Lambda is
//! answered. No record here reaches AWS: the endpoints refuse every connection, so a record
//! that needs its dead-letter queue is reported failed.

mod common;

use common::function::LocalFunction;
use serde_json::{Value, json};

/// GIVEN the consumer under the watcher, its AWS endpoints refusing every connection.
fn consumer() -> LocalFunction {
    let nowhere = "http://127.0.0.1:9".to_owned();
    LocalFunction::start(
        env!("CARGO_BIN_EXE_consumer"),
        &[
            ("TABLE_NAME", "notes".to_owned()),
            ("DLQ_URL", format!("{nowhere}/000000000000/notes-dlq")),
            ("AWS_ENDPOINT_URL", nowhere),
        ],
    )
}

fn batch_lines(function: &LocalFunction) -> Vec<Value> {
    function.logs.lock().unwrap().iter().filter(|l| l["event"] == "batch").cloned().collect()
}

#[tokio::test]
async fn each_invocation_payload_reaches_the_engine_with_its_deadline_warm_starts_included() {
    let function = consumer();
    // WHEN an empty batch is invoked, then a batch whose one record is not a note message
    // (its id has an escape: unescaped, not borrowed from the payload)
    let (status, answer) = function.invoke(r#"{"Records":[]}"#).await;
    assert_eq!((status, answer), (200, json!({"batchItemFailures": []})));
    let record = json!({"messageId": "m\"1", "receiptHandle": "rh-1", "body": "not json",
        "attributes": {"ApproximateReceiveCount": "1"}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:notes"});
    let (status, answer) = function.invoke(json!({"Records": [record]}).to_string()).await;
    // THEN each is answered with its own partial batch response: the record that could not be
    // dead-lettered (no queue answers) is reported failed by its message id
    assert_eq!((status, answer), (200, json!({"batchItemFailures": [{"itemIdentifier": "m\"1"}]})));
    // AND the engine saw each batch, with a budget from the invocation's deadline (the
    // watcher's default timeout is 600 s)
    let lines = batch_lines(&function);
    assert_eq!(lines.iter().map(|l| l["records"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1], "{lines:?}");
    for line in &lines {
        let budget = line["budget_ms"].as_u64().unwrap();
        assert!(budget > 0 && budget <= 600_000, "budget {budget} ms from the deadline");
    }
}

#[tokio::test]
async fn a_payload_that_is_not_an_sqs_event_fails_the_invocation_with_where_reading_stopped() {
    let function = consumer();
    // WHEN an SNS event, then a truncated one, are invoked
    let (status, answer) = function.invoke(r#"{"Records":[{"eventSource":"aws:sns"}]}"#).await;
    // THEN each is posted as the invocation's error, naming the JSON path or the position
    assert_eq!(status, 500, "{answer}");
    let message = answer["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("the invocation payload is not an SQS event: Records[0].eventSource:"), "{message}");
    let (status, answer) = function.invoke(r#"{"Records":["#).await;
    assert_eq!(status, 500, "{answer}");
    assert!(answer["errorMessage"].as_str().unwrap().contains("line 1 column 12"), "{answer}");
    // AND the function still serves the next invocation
    assert_eq!(function.invoke(r#"{"Records":[]}"#).await, (200, json!({"batchItemFailures": []})));
}

#[tokio::test]
async fn a_payload_that_is_not_utf8_fails_the_invocation_before_the_engine() {
    let function = consumer();
    // WHEN a payload with a byte that is not UTF-8 is invoked
    let (status, answer) = function.invoke(b"{\"Records\":[],\"x\":\"\xff\"}".to_vec()).await;
    // THEN it is posted as the invocation's error, saying where, and no batch was started
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["errorMessage"], "the invocation payload is not UTF-8 (from byte 19)");
    assert_eq!(function.invoke(r#"{"Records":[]}"#).await.0, 200);
    assert_eq!(batch_lines(&function).len(), 1, "only the second invocation reached the engine");
}
