//! The loss and duplicate paths closed in the engine, and the store-outage brake. Each test is
//! named after the failure it rules out.

use std::collections::BTreeMap;

use super::*;
use crate::backoff::VISIBILITY_SLACK_SECONDS;

fn failed(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}

/// A letter SQS has stored but not yet acknowledged at the cutoff must not be dropped with its
/// send and reported failed: the message would come back and be dead-lettered again.
#[tokio::test(start_paused = true)]
async fn a_dead_letter_send_under_way_at_the_cutoff_finishes_and_the_record_is_not_retried() {
    let queues = RecordingQueues::default().with_dead_letter_answer_delay(Duration::from_millis(300));
    let engine = engine_with(Settings::default().with_deadline_margin(Duration::from_millis(1000)), queues);
    // The handler decides at 900 ms; the cutoff is at 1000 ms; SQS answers at 1200 ms.
    let batch = batch(vec![sqs_record("a", "sleep:900:bad"), sqs_record("b", "ok")]);
    let deadline = Instant::now() + Duration::from_secs(2);
    let response = engine.process(&batch, deadline, &Scripted::default()).await.response().unwrap();
    assert_eq!(engine.queues().letters().len(), 1);
    assert!(failed(&response).is_empty(), "dead-lettered and reported failed: {:?}", failed(&response));
}

/// The other half: a handler that has not answered by the cutoff is still cut.
#[tokio::test(start_paused = true)]
async fn a_handler_still_running_at_the_cutoff_is_cut_and_sends_no_letter() {
    let engine =
        engine_with(Settings::default().with_deadline_margin(Duration::from_millis(1000)), RecordingQueues::default());
    let batch = batch(vec![sqs_record("a", "sleep:1500:bad")]);
    let response =
        engine.process(&batch, Instant::now() + Duration::from_secs(2), &Scripted::default()).await.response().unwrap();
    assert_eq!(failed(&response), ["a"]);
    assert!(engine.queues().letters().is_empty());
}

/// A record that fails late in a long batch may not ask for 12 hours from the call: SQS
/// counts them from the receive and would refuse.
#[tokio::test(start_paused = true)]
async fn a_delay_never_reaches_past_twelve_hours_from_the_receive() {
    let settings = Settings::default().with_backoff(Backoff::new(43_200, 43_200)).with_brake_after(0);
    let engine = engine_with(settings, RecordingQueues::default());
    let records = (0..23).map(|i| sqs_record(&format!("m{i}"), "sleep:20000000:transient")).collect();
    let batch = batch(records);
    let report = engine.process(&batch, Instant::now() + Duration::from_secs(50_000), &Scripted::default()).await;
    assert_eq!(report.response().unwrap().batch_item_failures.len(), 23);
    let limit = Backoff::MAX_SECONDS - 20_000 - VISIBILITY_SLACK_SECONDS;
    let delays: Vec<u32> = visibility_of(&engine).into_iter().map(|(_, s)| s).collect();
    assert_eq!(delays.len(), 23);
    assert!(delays.iter().all(|s| *s <= limit), "limit {limit}: {delays:?}");
}

/// Visibility calls one after another would be 1,000 calls in a row for 10,000 failed records.
#[tokio::test(start_paused = true)]
async fn visibility_calls_run_concurrently_up_to_the_concurrency_setting() {
    let queues = RecordingQueues::default().with_visibility_delay(Duration::from_millis(100));
    let engine = engine_with(Settings::default().with_max_concurrency(4).with_brake_after(0), queues);
    let records = (0..100).map(|i| sqs_record(&format!("m{i}"), "transient")).collect();
    assert_eq!(failed_ids(&engine, &batch(records), &Scripted::default()).await.len(), 100);
    assert_eq!(engine.queues().visibility_calls().len(), 10);
    assert_eq!(engine.queues().max_visibility_calls_at_once(), 4);
}

#[tokio::test]
async fn the_brake_stops_trying_after_k_transient_failures_in_a_row_and_backs_the_rest_off() {
    let engine =
        engine_with(Settings::default().with_max_concurrency(1).with_brake_after(5), RecordingQueues::default());
    let records: Vec<_> = (0..20).map(|i| sqs_record(&format!("m{i:02}"), "transient")).collect();
    let ids: Vec<String> = records.iter().map(|r| r.id().unwrap().to_owned()).collect();
    let handler = Scripted::default();
    let batch = batch(records);
    let lines = capture_logs(async {
        assert_eq!(failed_ids(&engine, &batch, &handler).await, ids, "every record reported failed");
    })
    .await;
    assert_eq!(handler.started.lock().unwrap().len(), 5, "the store was called K times, not 20");
    let braked: Vec<_> = lines.iter().filter(|l| l["outcome"] == "braked").collect();
    assert_eq!(braked.len(), 15);
    assert!(braked.iter().all(|l| (2..=5).contains(&l["next_delay_s"].as_u64().unwrap())), "same backoff");
    assert_eq!(lines.iter().filter(|l| l["event"] == "brake_engaged").count(), 1);
    assert_eq!(visibility_of(&engine).len(), 20, "untried records back off like the failures");
}

#[tokio::test]
async fn a_success_resets_the_brake_and_zero_turns_it_off() {
    let pattern = ["transient", "transient", "ok", "transient", "transient", "ok", "transient", "transient"];
    let records = || pattern.iter().enumerate().map(|(i, b)| sqs_record(&format!("m{i}"), b)).collect::<Vec<_>>();
    let engine =
        engine_with(Settings::default().with_max_concurrency(1).with_brake_after(3), RecordingQueues::default());
    let handler = Scripted::default();
    failed_ids(&engine, &batch(records()), &handler).await;
    assert_eq!(handler.started.lock().unwrap().len(), pattern.len(), "never three in a row");

    let all_fail: Vec<_> = (0..10).map(|i| sqs_record(&format!("t{i}"), "transient")).collect();
    let engine =
        engine_with(Settings::default().with_max_concurrency(1).with_brake_after(0), RecordingQueues::default());
    let handler = Scripted::default();
    failed_ids(&engine, &batch(all_fail), &handler).await;
    assert_eq!(handler.started.lock().unwrap().len(), 10, "brake off: every record tried");
}

#[tokio::test]
async fn fifo_groups_not_started_when_the_brake_engages_come_back_whole_and_in_order() {
    let engine =
        engine_with(Settings::default().with_max_concurrency(1).with_brake_after(2), RecordingQueues::default());
    let mut records = Vec::new();
    for group in ["A", "B", "C"] {
        for n in 1..=2 {
            records.push(fifo_record(&format!("{}{n}", group.to_lowercase()), "transient", group));
        }
    }
    let handler = Scripted::default();
    assert_eq!(failed_ids(&engine, &batch(records), &handler).await, ["a1", "a2", "b1", "b2", "c1", "c2"]);
    assert_eq!(*handler.started.lock().unwrap(), ["a1", "b1"], "group C never reached the store");
    let visibility: BTreeMap<String, u32> = visibility_of(&engine).into_iter().collect();
    assert_eq!(visibility["c2"], visibility["c1"], "a braked group returns whole");
}
