//! The sync pass and the watch loop against a scripted fake queue.

use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::*;
use crate::outbox::{OpenOptions, State};
use crate::sender::{Limits, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, PullResult, TransportError};

/// A queue that answers each call from a script (then acknowledges everything), recording
/// the note ids of every batch.
#[derive(Default)]
struct FakeQueue {
    script: Mutex<Vec<Answer>>,
    batches: Mutex<Vec<Vec<(String, u64)>>>,
}

#[derive(Clone)]
enum Answer {
    Unreachable,
    /// Refuse the entries at these positions.
    Refuse(Vec<usize>),
}

impl Transport for FakeQueue {
    fn limits(&self) -> Limits {
        Limits { max_entries: MAX_BATCH_ENTRIES, max_bytes: MAX_BATCH_BYTES }
    }

    fn pull_origin(&self) -> Option<String> {
        None
    }

    fn pull(&self, _since: Option<&str>) -> Option<impl std::future::Future<Output = PullResult> + Send> {
        None::<std::future::Ready<PullResult>>
    }

    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<Vec<EntryResult>, TransportError> {
        self.batches.lock().unwrap().push(batch.iter().map(|m| (m.note_id.to_owned(), m.version)).collect());
        let answer = {
            let mut script = self.script.lock().unwrap();
            if script.is_empty() { None } else { Some(script.remove(0)) }
        };
        match answer {
            Some(Answer::Unreachable) => Err(TransportError::unreachable("dispatch failure: connection refused")),
            Some(Answer::Refuse(positions)) => Ok((0..batch.len())
                .map(|i| {
                    if positions.contains(&i) {
                        EntryResult::Retry("InternalError: try again".into())
                    } else {
                        EntryResult::Accepted
                    }
                })
                .collect()),
            None => Ok(vec![EntryResult::Accepted; batch.len()]),
        }
    }
}

fn outbox(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap()
}

fn lease() -> Lease {
    Lease::new(Duration::from_secs(60))
}

#[tokio::test]
async fn sync_sends_oldest_first_in_batches_of_ten_and_removes_exactly_the_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = outbox(&dir);
    let ids: Vec<String> = (0..23).map(|i| outbox.add(&format!("t{i}"), "b").unwrap().id).collect();
    let queue = FakeQueue::default();
    queue.script.lock().unwrap().extend([Answer::Refuse(vec![]), Answer::Refuse(vec![3])]);
    let mut seen = Vec::new();
    let report = sync_once(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &AtomicBool::new(false), confirm_within: Duration::ZERO },
        &mut |p| seen.push(p),
    )
    .await
    .unwrap();

    let batches = queue.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10], "stops after a refusal");
    let sent_order: Vec<String> = batches.concat().into_iter().map(|(id, _)| id).collect();
    assert_eq!(sent_order, ids[..20]);
    assert_eq!(report, SyncReport { sent: 19, failed: 1, pending: 4, ..SyncReport::default() });
    let left: Vec<String> = outbox.pending().unwrap().into_iter().map(|p| p.note_id).collect();
    assert_eq!(left, vec![ids[13].clone(), ids[20].clone(), ids[21].clone(), ids[22].clone()]);
    assert_eq!(outbox.pending().unwrap()[0].attempts, 1);
    assert_eq!(outbox.note(&ids[0]).unwrap().unwrap().state, State::Sent);
    assert_eq!(seen.last(), Some(&Progress { done: 20, total: 23 }));

    let report = sync_once(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &AtomicBool::new(false), confirm_within: Duration::ZERO },
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.sent, report.pending), (4, 0), "the refused one goes first next time");
    assert_eq!(queue.batches.lock().unwrap()[2][0].0, ids[13]);
}

/// Issue 18: `notes add` with a long backlog tried to drain all of it before returning.
#[tokio::test]
async fn a_write_sends_its_own_change_first_and_one_batch_at_most_leaving_the_rest_to_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = outbox(&dir);
    let older: Vec<String> = (0..25).map(|i| outbox.add(&format!("t{i}"), "b").unwrap().id).collect();
    let written = outbox.add("just written", "b").unwrap().id;
    let queue = FakeQueue::default();
    let run = Run { lease: &lease(), stop: &AtomicBool::new(false), confirm_within: Duration::ZERO };

    let report = sync_after_write(&mut outbox, &queue, &run, &written).await.unwrap();

    let batches = queue.batches.lock().unwrap().clone();
    assert_eq!(batches.len(), 1, "one batch, however much is waiting");
    let sent: Vec<String> = batches[0].iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(sent[0], written, "the written note's change goes first");
    assert_eq!(sent[1..], older[..9], "then the oldest");
    assert_eq!((report.sent, report.pending), (10, 16));
    assert_eq!(outbox.note(&written).unwrap().unwrap().state, State::Sent);

    let report = sync_once(&mut outbox, &queue, &run, &mut |_| {}).await.unwrap();
    assert_eq!((report.sent, report.pending), (16, 0), "notes sync sends the rest");
}

#[tokio::test]
async fn an_unreachable_queue_keeps_every_note_pending_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = outbox(&dir);
    for i in 0..15 {
        outbox.add(&format!("t{i}"), "b").unwrap();
    }
    let queue = FakeQueue::default();
    queue.script.lock().unwrap().push(Answer::Unreachable);
    let report = sync_once(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &AtomicBool::new(false), confirm_within: Duration::ZERO },
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.unreachable.as_deref(), Some("dispatch failure: connection refused"));
    assert_eq!((report.sent, report.failed, report.pending), (0, 10, 15));
    assert_eq!(queue.batches.lock().unwrap().len(), 1, "no second call while unreachable");
    assert_eq!(outbox.status().unwrap().last_error.as_deref(), Some("dispatch failure: connection refused"));
}

#[tokio::test]
async fn a_stop_request_ends_the_sync_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = outbox(&dir);
    for i in 0..15 {
        outbox.add(&format!("t{i}"), "b").unwrap();
    }
    let stop = AtomicBool::new(false);
    let queue = FakeQueue::default();
    let report = sync_once(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &stop, confirm_within: Duration::ZERO },
        &mut |p| {
            if p.done == 10 {
                stop.store(true, Ordering::SeqCst);
            }
        },
    )
    .await
    .unwrap();
    assert_eq!((report.sent, report.pending), (10, 5));
}

#[test]
fn backoff_grows_while_unreachable_but_is_never_faster_than_the_interval() {
    let interval = Duration::from_secs(10);
    assert_eq!(backoff(interval, 0), interval);
    for failures in 1..30 {
        let delay = backoff(interval, failures);
        assert!(delay >= interval, "{failures}: {delay:?}");
        assert!(delay <= MAX_BACKOFF, "{failures}: {delay:?}");
    }
    assert!(backoff(interval, 4) >= Duration::from_secs(80), "equal jitter keeps at least half of 160 s");
    let long = Duration::from_secs(3600);
    assert_eq!(backoff(long, 5), long, "an interval above the cap is still honoured");
}

/// The flags file is rewritten from inside the loop's callback, so each change is seen on
/// the very next cycle; tokio's paused clock runs the waits instantly.
#[tokio::test(start_paused = true)]
async fn watch_rereads_the_flags_every_cycle_and_a_change_takes_effect_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = outbox(&dir);
    outbox.add("a", "b").unwrap();
    let flags = dir.path().join("flags.json");
    let write = |on: bool, every: u32| {
        std::fs::write(
            &flags,
            format!(r#"{{"features":{{"retry_pending_notes":{on},"retry_interval_seconds":{every}}}}}"#),
        )
        .unwrap()
    };
    write(false, 7);
    let queue = FakeQueue::default();
    queue.script.lock().unwrap().push(Answer::Unreachable);
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let source = FlagsSource::File(flags.clone());
    watch(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &stop, confirm_within: Duration::ZERO },
        &source,
        &mut |event| {
            match &event {
                WatchEvent::Paused { .. } => write(true, 5),
                WatchEvent::Synced { report, .. } if report.unreachable.is_some() => {
                    std::fs::write(&flags, "{").unwrap()
                }
                WatchEvent::Synced { .. } => stop.store(true, Ordering::SeqCst),
                WatchEvent::FlagsWarning(_) | WatchEvent::Locked { .. } => {}
            }
            events.push(event);
        },
        &mut |_| {},
    )
    .await
    .unwrap();

    assert!(matches!(&events[0], WatchEvent::Paused { next_in, .. } if *next_in == Duration::from_secs(7)));
    let WatchEvent::Synced { report, next_in, .. } = &events[1] else { panic!("{:?}", events[1]) };
    assert!(report.unreachable.is_some());
    assert!(*next_in >= Duration::from_secs(5), "backs off, never below the interval: {next_in:?}");
    let WatchEvent::FlagsWarning(warning) = &events[2] else { panic!("{:?}", events[2]) };
    assert!(warning.contains("malformed flags") && warning.contains("retry_interval_seconds=5"), "{warning}");
    let WatchEvent::Synced { report, flags, .. } = &events[3] else { panic!("{:?}", events[3]) };
    assert_eq!((report.sent, report.pending), (1, 0), "the last good flags still drive retries");
    assert!(flags.problem.is_some());
    assert_eq!(events.len(), 4, "the warning is given once: {events:?}");
    assert_eq!(queue.batches.lock().unwrap().len(), 2, "nothing was sent while paused");
}

/// Another process holds the database past the busy timeout (a backup, a second sync): the
/// loop warns, waits and goes on, and sends once the lock is gone (tokio's paused clock runs
/// the waits instantly).
#[tokio::test(start_paused = true)]
async fn watch_survives_a_database_lock_held_past_the_busy_timeout_and_then_sends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let mut outbox = Outbox::open(&path, &OpenOptions::default().busy_timeout(Duration::from_millis(50))).unwrap();
    outbox.add("a", "b").unwrap();
    let flags = dir.path().join("flags.json");
    std::fs::write(&flags, r#"{"features":{"retry_pending_notes":true,"retry_interval_seconds":1}}"#).unwrap();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let holder = Mutex::new(Some(holder));
    let queue = FakeQueue::default();
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    watch(
        &mut outbox,
        &queue,
        &Run { lease: &lease(), stop: &stop, confirm_within: Duration::ZERO },
        &FlagsSource::File(flags),
        &mut |event| {
            match &event {
                // The lock is let go after the first warning.
                WatchEvent::Locked { .. } => drop(holder.lock().unwrap().take()),
                WatchEvent::Synced { report, .. } if report.sent == 1 => stop.store(true, Ordering::SeqCst),
                _ => {}
            }
            events.push(event);
        },
        &mut |_| {},
    )
    .await
    .expect("a lock is not the end of the loop");

    let WatchEvent::Locked { error, .. } = &events[0] else { panic!("first a lock: {events:?}") };
    assert!(error.contains("locked") || error.contains("busy"), "{error}");
    assert!(
        matches!(events.last(), Some(WatchEvent::Synced { report, .. }) if report.sent == 1 && report.pending == 0),
        "then the entry is sent: {events:?}"
    );
    assert_eq!(queue.batches.lock().unwrap().len(), 1);
}
