//! Issue 9: the loss and duplicate paths closed in the engine, and the store-outage brake.
//! Each test failed before its fix.

use super::*;
use crate::engine::VISIBILITY_SLACK_SECONDS;

fn failed(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<&str> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
}

/// Item 2: a letter SQS has stored but not yet acknowledged at the cutoff used to be dropped
/// with its send and reported failed, so the message came back and was dead-lettered again.
#[tokio::test(start_paused = true)]
async fn a_dead_letter_send_under_way_at_the_cutoff_finishes_and_the_record_is_not_retried() {
    let queues = FakeQueues { dead_letter_answer_delay: Duration::from_millis(300), ..FakeQueues::default() };
    let settings = Settings { deadline_margin: Duration::from_millis(1000), ..Settings::default() };
    let engine = engine_with(settings, queues);
    // The handler decides at 900 ms; the cutoff is at 1000 ms; SQS answers at 1200 ms.
    let batch = batch(vec![sqs_record("a", "sleep:900:bad"), sqs_record("b", "ok")]);
    let deadline = Instant::now() + Duration::from_secs(2);
    let response = engine.process(&batch, deadline, &Scripted::default()).await.response().unwrap();
    assert_eq!(engine.queues().dead_letters.lock().unwrap().len(), 1);
    assert!(failed(&response).is_empty(), "dead-lettered and reported failed: {:?}", failed(&response));
}

/// Item 2, the other half: a handler that has not answered by the cutoff is still cut.
#[tokio::test(start_paused = true)]
async fn a_handler_still_running_at_the_cutoff_is_cut_and_sends_no_letter() {
    let settings = Settings { deadline_margin: Duration::from_millis(1000), ..Settings::default() };
    let engine = engine_with(settings, FakeQueues::default());
    let batch = batch(vec![sqs_record("a", "sleep:1500:bad")]);
    let response =
        engine.process(&batch, Instant::now() + Duration::from_secs(2), &Scripted::default()).await.response().unwrap();
    assert_eq!(failed(&response), ["a"]);
    assert!(engine.queues().dead_letters.lock().unwrap().is_empty());
}

/// Item 6: a record that fails late in a long batch may not ask for 12 hours any more.
#[tokio::test(start_paused = true)]
async fn a_delay_never_reaches_past_twelve_hours_from_the_receive() {
    let settings = Settings { backoff: Backoff::new(43_200, 43_200), brake_after: 0, ..Settings::default() };
    let engine = engine_with(settings, FakeQueues::default());
    let records = (0..23).map(|i| sqs_record(&format!("m{i}"), "sleep:20000000:transient")).collect();
    let batch = batch(records);
    let report = engine.process(&batch, Instant::now() + Duration::from_secs(50_000), &Scripted::default()).await;
    assert_eq!(report.response().unwrap().batch_item_failures.len(), 23);
    let limit = MAX_VISIBILITY_SECONDS - 20_000 - VISIBILITY_SLACK_SECONDS;
    let delays: Vec<u32> = visibility_of(&engine).into_iter().map(|(_, s)| s).collect();
    assert_eq!(delays.len(), 23);
    assert!(delays.iter().all(|s| *s <= limit), "limit {limit}: {delays:?}");
}

/// Item 10: visibility calls ran one after another (1,000 calls for 10,000 failed records).
#[tokio::test(start_paused = true)]
async fn visibility_calls_run_concurrently_up_to_the_concurrency_setting() {
    let queues = FakeQueues { visibility_delay: Duration::from_millis(100), ..FakeQueues::default() };
    let settings = Settings { max_concurrency: 4, brake_after: 0, ..Settings::default() };
    let engine = engine_with(settings, queues);
    let records = (0..100).map(|i| sqs_record(&format!("m{i}"), "transient")).collect();
    assert_eq!(failed_ids(&engine, &batch(records), &Scripted::default()).await.len(), 100);
    assert_eq!(engine.queues().visibility_calls.lock().unwrap().len(), 10);
    assert_eq!(engine.queues().visibility_max_in_flight.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn the_brake_stops_trying_after_k_transient_failures_in_a_row_and_backs_the_rest_off() {
    let settings = Settings { max_concurrency: 1, brake_after: 5, ..Settings::default() };
    let engine = engine_with(settings, FakeQueues::default());
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
        engine_with(Settings { max_concurrency: 1, brake_after: 3, ..Settings::default() }, FakeQueues::default());
    let handler = Scripted::default();
    failed_ids(&engine, &batch(records()), &handler).await;
    assert_eq!(handler.started.lock().unwrap().len(), pattern.len(), "never three in a row");

    let all_fail: Vec<_> = (0..10).map(|i| sqs_record(&format!("t{i}"), "transient")).collect();
    let engine =
        engine_with(Settings { max_concurrency: 1, brake_after: 0, ..Settings::default() }, FakeQueues::default());
    let handler = Scripted::default();
    failed_ids(&engine, &batch(all_fail), &handler).await;
    assert_eq!(handler.started.lock().unwrap().len(), 10, "brake off: every record tried");
}

#[tokio::test]
async fn fifo_groups_not_started_when_the_brake_engages_come_back_whole_and_in_order() {
    let settings = Settings { max_concurrency: 1, brake_after: 2, ..Settings::default() };
    let engine = engine_with(settings, FakeQueues::default());
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
