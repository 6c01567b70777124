//! FIFO queues: per message group order, the group stop after a failure, batch mode, and
//! groups cut by the deadline.

use std::collections::BTreeMap;

use super::*;
use crate::settings::FifoMode;

#[tokio::test]
async fn fifo_a_failure_stops_the_rest_of_its_group_and_other_groups_go_on() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![
        fifo_record("a1", "ok", "A"),
        fifo_record("b1", "ok", "B"),
        fifo_record("a2", "transient", "A"),
        fifo_record("b2", "ok", "B"),
        fifo_record("a3", "ok", "A"),
        fifo_record("b3", "ok", "B"),
    ]);
    let handler = Scripted::default();
    assert_eq!(failed_ids(&engine, &batch, &handler).await, ["a2", "a3"]);
    let started = handler.started.lock().unwrap().clone();
    assert!(!started.contains(&"a3".to_owned()), "a3 must not run after a2 failed: {started:?}");
    let group_a: Vec<_> = started.iter().filter(|id| id.starts_with('a')).collect();
    assert_eq!(group_a, ["a1", "a2"], "a group runs in delivery order");
    // The failed head backs off; the skipped record comes back with it, so the group returns in order.
    let visibility: BTreeMap<String, u32> = visibility_of(&engine).into_iter().collect();
    assert_eq!(visibility.len(), 2);
    assert!(visibility["a2"] >= 2, "{visibility:?}");
    assert_eq!(visibility["a3"], visibility["a2"]);
}

#[tokio::test]
async fn fifo_a_dead_lettered_record_does_not_stop_its_group() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![fifo_record("a1", "bad", "A"), fifo_record("a2", "ok", "A")]);
    assert!(failed_ids(&engine, &batch, &Scripted::default()).await.is_empty());
    assert_eq!(engine.queues().letters()[0].group_id.as_deref(), Some("A"));
}

#[tokio::test]
async fn fifo_batch_mode_stops_every_later_record_after_the_first_failure() {
    let engine = engine_with(Settings::default().with_fifo_mode(FifoMode::Batch), RecordingQueues::default());
    let batch =
        batch(vec![fifo_record("a1", "ok", "A"), fifo_record("b1", "transient", "B"), fifo_record("a2", "ok", "A")]);
    assert_eq!(failed_ids(&engine, &batch, &Scripted::default()).await, ["b1", "a2"]);
}

#[tokio::test(start_paused = true)]
async fn fifo_records_cut_by_the_deadline_come_back_with_their_group_head() {
    let engine = engine(RecordingQueues::default());
    let batch = batch(vec![
        with_receive_count(fifo_record("a1", "sleep:60000", "A"), 3),
        fifo_record("a2", "ok", "A"),
        fifo_record("b1", "ok", "B"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let response = engine.process(&batch, deadline, &Scripted::default()).await.response().unwrap();
    let ids: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    let visibility: BTreeMap<String, u32> = visibility_of(&engine).into_iter().collect();
    assert!(visibility["a1"] >= 10, "backoff from receive count 3: {visibility:?}");
    assert_eq!(visibility["a2"], visibility["a1"], "the group returns whole and in order");
}
