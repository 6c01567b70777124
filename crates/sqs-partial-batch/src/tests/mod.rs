//! The engine's semantics, one test each, with a scripted handler and the one queue fake
//! (`testing::RecordingQueues`). GIVEN a batch, WHEN the engine processes it, THEN the
//! response, the dead letters and the visibility changes are exactly the documented ones.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::event::{Attributes, MessageAttribute};
use crate::settings::{Backoff, LogSuccesses};
use crate::testing::{RecordingQueues, capture_logs};
use crate::{Ack, Batch, Engine, Record, RecordError, RecordHandler, Settings};

mod fifo;
mod logs;
mod reliability;

const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:orders";
const FIFO_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:orders.fifo";

fn sqs_record(id: &str, body: &str) -> Record<'static> {
    record(id, body, ARN, None)
}

fn fifo_record(id: &str, body: &str, group: &str) -> Record<'static> {
    record(id, body, FIFO_ARN, Some(group))
}

fn record(id: &str, body: &str, arn: &str, group: Option<&str>) -> Record<'static> {
    Record {
        message_id: Some(id.to_owned().into()),
        receipt_handle: Some(format!("rh-{id}").into()),
        body: Some(body.to_owned().into()),
        attributes: Attributes {
            approximate_receive_count: Some("1".into()),
            message_group_id: group.map(|g| g.to_owned().into()),
            ..Attributes::default()
        },
        event_source_arn: Some(arn.to_owned().into()),
        ..Record::default()
    }
}

fn with_receive_count(mut record: Record<'static>, n: u32) -> Record<'static> {
    record.attributes.approximate_receive_count = Some(n.to_string().into());
    record
}

/// Behaves as its body says: `ok`, `unchanged`, `transient`, `bad`, `panic`, or `sleep:<ms>`
/// followed by `:<one of those>` (default `ok`).
#[derive(Default)]
struct Scripted {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    started: Mutex<Vec<String>>,
}

impl RecordHandler for Scripted {
    async fn handle(&self, record: &Record<'_>) -> Result<Ack, RecordError> {
        self.started.lock().unwrap().push(record.id().unwrap_or("-").to_owned());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut body = record.body.as_deref().unwrap_or_default();
        if let Some(rest) = body.strip_prefix("sleep:") {
            let (ms, then) = rest.split_once(':').unwrap_or((rest, "ok"));
            tokio::time::sleep(Duration::from_millis(ms.parse().expect("scripted sleep"))).await;
            body = then;
        }
        let result = match body {
            "ok" => Ok(Ack::Succeeded),
            "unchanged" => Ok(Ack::Unchanged),
            "transient" => Err(RecordError::transient("store unavailable")),
            "bad" => Err(RecordError::permanent("invalid_json", "expected value at line 1 column 1")),
            "panic" => panic!("scripted panic"),
            other => panic!("unknown scripted body {other}"),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn engine(queues: RecordingQueues) -> Engine<RecordingQueues> {
    engine_with(Settings::default(), queues)
}

fn engine_with(settings: Settings, queues: RecordingQueues) -> Engine<RecordingQueues> {
    Engine::new(settings, queues).with_log(crate::testing::log_sink())
}

fn dlq_down() -> RecordingQueues {
    let queues = RecordingQueues::default();
    queues.dead_letter_down.store(true, Ordering::SeqCst);
    queues
}

fn batch(records: Vec<Record<'static>>) -> Batch<'static> {
    Batch { records }
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(900)
}

async fn failed_ids<H: RecordHandler>(engine: &Engine<RecordingQueues>, batch: &Batch<'_>, handler: &H) -> Vec<String> {
    let response = engine.process(batch, far_deadline(), handler).await.response().expect("a response");
    response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
}

fn visibility_of(engine: &Engine<RecordingQueues>) -> Vec<(String, u32)> {
    engine.queues().visibility()
}

#[tokio::test]
async fn partial_response_lists_only_the_failed_records() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![
        sqs_record("a", "ok"),
        sqs_record("b", "transient"),
        sqs_record("c", "unchanged"),
        sqs_record("d", "bad"),
        sqs_record("e", "transient"),
    ]);
    assert_eq!(failed_ids(&engine, &batch, &Scripted::default()).await, ["b", "e"]);
}

#[tokio::test]
async fn a_warm_start_carries_nothing_over_between_invocations() {
    let engine = engine(RecordingQueues::default());
    let handler = Scripted::default();
    assert_eq!(failed_ids(&engine, &batch(vec![sqs_record("a", "transient")]), &handler).await, ["a"]);
    assert!(failed_ids(&engine, &batch(vec![sqs_record("b", "ok")]), &handler).await.is_empty());
}

#[tokio::test]
async fn a_failed_record_without_message_id_fails_the_whole_invocation() {
    let engine = engine(RecordingQueues::default());
    let mut nameless = sqs_record("x", "transient");
    nameless.message_id = None;
    let batch = batch(vec![sqs_record("a", "ok"), nameless]);
    let err = engine.process(&batch, far_deadline(), &Scripted::default()).await.response().unwrap_err();
    assert_eq!(err.index, 1);
}

#[tokio::test]
async fn the_lambda_entry_point_answers_a_payload_or_fails_the_invocation_naming_why() {
    let engine = engine(RecordingQueues::default());
    let payload = format!(
        r#"{{"Records":[{{"messageId":"a","receiptHandle":"rh","body":"transient","eventSource":"aws:sqs","eventSourceARN":"{ARN}"}},
            {{"messageId":"b","body":"ok","eventSource":"aws:sqs","eventSourceARN":"{ARN}"}}]}}"#
    );
    // The relative form of Lambda's deadline (as `cargo lambda watch` sends it): 60 s.
    let response = engine.invoke(&payload, 60_000, &Scripted::default()).await.unwrap();
    let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(ids, ["a"]);
    let err = engine.invoke(r#"{"httpMethod":"GET"}"#, 60_000, &Scripted::default()).await.unwrap_err();
    assert!(matches!(err, crate::InvocationError::Event(_)));
    assert_eq!(
        err.to_string(),
        "the invocation payload is not an SQS event: missing field `Records` at line 1 column 20"
    );
    let nameless = payload.replace(r#""messageId":"a","#, "");
    let err = engine.invoke(&nameless, 60_000, &Scripted::default()).await.unwrap_err();
    assert!(err.to_string().starts_with("record 0 failed (transient) and has no messageId"), "{err}");
}

#[tokio::test]
async fn a_panic_fails_only_its_own_record_as_transient_and_is_backed_off() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![sqs_record("a", "ok"), sqs_record("b", "panic"), sqs_record("c", "ok")]);
    assert_eq!(failed_ids(&engine, &batch, &Scripted::default()).await, ["b"]);
    assert_eq!(visibility_of(&engine).len(), 1);
}

/// A closure given to `handler_fn` runs its synchronous part in the call, before there is a
/// future: a panic there must be caught as well, and must not take the batch's lines with it.
#[tokio::test]
async fn a_panic_in_a_handler_fn_closure_body_fails_only_its_record_and_the_other_lines_still_reach_the_sink() {
    let engine = engine(RecordingQueues::default());
    let handler = crate::handler_fn(|record: &Record<'_>| {
        let body = record.body.as_deref().unwrap_or_default();
        assert_ne!(body, "panic-in-call", "the body cannot be parsed");
        let transient = body == "transient";
        async move { if transient { Err(RecordError::transient("store unavailable")) } else { Ok(Ack::Succeeded) } }
    });
    let batch = batch(vec![
        sqs_record("a", "ok"),
        sqs_record("b", "panic-in-call"),
        sqs_record("c", "transient"),
        sqs_record("d", "ok"),
    ]);
    let mut failed = Vec::new();
    let lines = capture_logs(async { failed = failed_ids(&engine, &batch, &handler).await }).await;
    assert_eq!(failed, ["b", "c"]);
    let outcome = |id: &str| {
        lines
            .iter()
            .find(|l| l["event"] == "outcome" && l["message_id"] == id)
            .unwrap_or_else(|| panic!("no line for {id}"))
    };
    assert_eq!(
        (outcome("a")["outcome"].as_str(), outcome("d")["outcome"].as_str()),
        (Some("succeeded"), Some("succeeded"))
    );
    assert_eq!(outcome("c")["outcome"], "transient");
    let b = outcome("b");
    assert_eq!(b["outcome"], "panicked");
    assert!(b["reason"].as_str().unwrap().starts_with("handler panicked: assertion `left != right` failed"), "{b}");
    assert!(b["next_delay_s"].as_u64().unwrap() >= 2, "backed off like a transient failure");
    assert_eq!(lines.iter().filter(|l| l["_aws"].is_object()).count(), 1, "the batch's metrics too");
    let backed_off: Vec<String> = visibility_of(&engine).into_iter().map(|(id, _)| id).collect();
    assert_eq!(backed_off, ["b", "c"]);
}

#[tokio::test]
async fn permanent_failures_are_dead_lettered_with_their_reason_and_reported_as_success() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![with_receive_count(sqs_record("a", "bad"), 2), sqs_record("b", "ok")]);
    assert!(failed_ids(&engine, &batch, &Scripted::default()).await.is_empty());
    let letters = engine.queues().letters();
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(
        (letter.body.as_str(), letter.source_message_id.as_deref(), letter.group_id.as_deref()),
        ("bad", Some("a"), None)
    );
    let attributes: Vec<(&str, &str)> = letter.attributes.iter().map(|a| (a.name.as_ref(), a.value.as_ref())).collect();
    assert_eq!(
        attributes,
        [
            ("error_kind", "invalid_json"),
            ("error_reason", "expected value at line 1 column 1"),
            ("receive_count", "2"),
            ("source_message_id", "a"),
            ("dead_letter_key", "a:2"),
            ("source_queue", ARN),
        ]
    );
    assert!(visibility_of(&engine).is_empty(), "a dead-lettered record needs no backoff");
}

#[tokio::test]
async fn a_dead_letter_carries_the_source_messages_own_attributes() {
    let engine = engine(RecordingQueues::default());
    let mut record = sqs_record("a", "bad");
    record.message_attributes =
        [MessageAttribute::string("owner", "alice"), MessageAttribute::string("error_kind", "forged")]
            .into_iter()
            .collect();
    assert!(failed_ids(&engine, &batch(vec![record]), &Scripted::default()).await.is_empty());
    let letter = &engine.queues().letters()[0];
    assert_eq!(letter.attribute("owner"), Some("alice"), "a redrive by resending keeps it");
    assert_eq!(letter.attribute("error_kind"), Some("invalid_json"), "the engine's attribute wins");
}

#[tokio::test]
async fn a_permanent_failure_whose_dead_letter_send_fails_is_reported_failed_not_dropped() {
    let engine = engine(dlq_down());
    let batch = batch(vec![sqs_record("a", "bad"), sqs_record("b", "ok")]);
    assert_eq!(failed_ids(&engine, &batch, &Scripted::default()).await, ["a"]);
}

#[tokio::test]
async fn concurrency_is_bounded_by_the_setting() {
    let engine = engine_with(Settings::default().with_max_concurrency(3), RecordingQueues::default());
    let records = (0..10).map(|i| sqs_record(&format!("m{i}"), "sleep:10")).collect();
    let handler = Scripted::default();
    assert!(failed_ids(&engine, &batch(records), &handler).await.is_empty());
    // Both bounds matter: never more than the limit, and the limit actually used.
    assert_eq!(handler.max_in_flight.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn records_still_running_at_the_deadline_less_margin_are_reported_failed_in_time() {
    let settings = Settings::default().with_deadline_margin(Duration::from_millis(1000));
    let engine = engine_with(settings, RecordingQueues::default());
    let batch = batch(vec![sqs_record("fast", "sleep:100"), sqs_record("slow", "sleep:60000"), sqs_record("b", "ok")]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let response = engine.process(&batch, deadline, &Scripted::default()).await.response().unwrap();
    let answered = Instant::now();
    let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(ids, ["slow"]);
    assert!(
        answered <= deadline - Duration::from_millis(500),
        "answered {:?} before the deadline",
        deadline - answered
    );
    assert!(answered >= deadline - Duration::from_millis(1000), "the slow record had until deadline - margin");
    assert_eq!(visibility_of(&engine).len(), 1, "a timed-out record is backed off like a transient one");
}

#[tokio::test]
async fn transient_failures_back_off_exponentially_from_the_receive_count() {
    let engine = engine_with(Settings::default().with_backoff(Backoff::new(10, 43_200)), RecordingQueues::default());
    let records = (1..=5).map(|n| with_receive_count(sqs_record(&format!("r{n}"), "transient"), n)).collect();
    failed_ids(&engine, &batch(records), &Scripted::default()).await;
    let calls = engine.queues().visibility_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].queue_arn, ARN, "the source queue, by the ARN the event names it by");
    for (n, (id, _, seconds)) in (1..=5u32).zip(&calls[0].entries) {
        let ceiling = 10 * 2u32.pow(n - 1);
        assert_eq!(id, &format!("r{n}"));
        assert!(
            (ceiling / 2..=ceiling).contains(seconds),
            "receive {n}: {seconds}s not in [{}, {ceiling}]",
            ceiling / 2
        );
    }
}

/// SQS counts the 12 hours from the receive, so the bound is 12 hours less the slack for time
/// between receive and call (the batch itself takes no time here: the clock is paused).
#[tokio::test(start_paused = true)]
async fn visibility_changes_go_in_calls_of_at_most_ten_and_never_past_twelve_hours_from_the_receive() {
    let settings = Settings::default().with_backoff(Backoff::new(3600, 1_000_000));
    let engine = engine_with(settings, RecordingQueues::default());
    let records = (0..23).map(|i| with_receive_count(sqs_record(&format!("m{i}"), "transient"), 30)).collect();
    assert_eq!(failed_ids(&engine, &batch(records), &Scripted::default()).await.len(), 23);
    let calls = engine.queues().visibility_calls();
    let sizes: Vec<_> = calls.iter().map(|c| c.entries.len()).collect();
    assert_eq!(sizes, [10, 10, 3]);
    let limit = Backoff::MAX_SECONDS - crate::backoff::VISIBILITY_SLACK_SECONDS;
    assert!(calls.iter().flat_map(|c| &c.entries).all(|(_, _, s)| *s < limit && *s >= Backoff::MAX_SECONDS / 2));
}

#[tokio::test]
async fn a_failed_visibility_change_leaves_the_response_unchanged() {
    let queues = RecordingQueues::default();
    queues.visibility_down.store(true, Ordering::SeqCst);
    let engine = engine(queues);
    let batch = batch(vec![sqs_record("a", "transient"), sqs_record("b", "ok")]);
    assert_eq!(failed_ids(&engine, &batch, &Scripted::default()).await, ["a"]);
}

#[tokio::test]
async fn log_successes_none_drops_only_the_success_lines() {
    let engine = engine_with(Settings::default().with_log_successes(LogSuccesses::None), RecordingQueues::default());
    let batch = batch(vec![
        sqs_record("ok", "ok"),
        sqs_record("unchanged", "unchanged"),
        sqs_record("retry", "transient"),
        sqs_record("bad", "bad"),
    ]);
    let lines = capture_logs(async {
        engine.process(&batch, far_deadline(), &Scripted::default()).await.response().unwrap();
    })
    .await;
    let mut logged: Vec<&str> =
        lines.iter().filter(|l| l["event"] == "outcome").map(|l| l["message_id"].as_str().unwrap()).collect();
    logged.sort_unstable();
    assert_eq!(logged, ["bad", "retry"], "failures and dead letters keep their lines");
    let emf = lines.iter().find(|l| l["_aws"].is_object()).expect("metrics still written");
    assert_eq!((emf["Succeeded"].as_u64(), emf["Unchanged"].as_u64()), (Some(1), Some(1)));
}
