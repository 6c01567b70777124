//! The batch engine: runs a record handler over an SQS batch and answers with a partial batch
//! response. Per record it catches panics, dead-letters permanent failures and backs off
//! transient ones; per batch it bounds concurrency, keeps FIFO group order and meets the
//! invocation deadline. Everything runs on the invoking task: no task is spawned per record.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use futures::{FutureExt, Stream, StreamExt, stream};
use tokio::time::Instant;

use super::outcome::{Ack, Failure, MissingMessageId, Outcome, RecordError, to_response};
use super::queue::{DeadLetter, QueueOps, VISIBILITY_BATCH_LIMIT, VisibilityChange, queue_url_from_arn};
use super::record::{Batch, Record};
use super::report::{self, Counts};
use super::settings::{FifoMode, Settings};

/// Handles one record. The engine owns retries, dead-lettering and the response; a handler
/// only says what happened, with the error's variant deciding retry or dead-letter.
pub trait RecordHandler: Sync {
    /// Processes one record.
    fn handle(&self, record: &Record<'_>) -> impl Future<Output = Result<Ack, RecordError>> + Send;
}

/// A record's outcome and the seconds to hide it before its next delivery.
type Done = (Outcome, u32);

/// Runs batches. Built once per process; holds no per-invocation state.
#[derive(Debug)]
pub struct Engine<Q> {
    settings: Settings,
    queues: Q,
}

impl<Q: QueueOps> Engine<Q> {
    /// An engine with its settings and queue operations.
    pub fn new(settings: Settings, queues: Q) -> Self {
        Self { settings, queues }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The queue operations.
    pub fn queues(&self) -> &Q {
        &self.queues
    }

    /// Processes a batch that must be answered by `deadline`. The only error is a failed
    /// record without a message id, which a partial response cannot express.
    pub async fn process<H: RecordHandler>(
        &self,
        batch: &Batch<'_>,
        deadline: Instant,
        handler: &H,
    ) -> Result<SqsBatchResponse, MissingMessageId> {
        let started = Instant::now();
        let records = &batch.records[..];
        let margin = self.settings.deadline_margin;
        let cutoff = deadline.checked_sub(margin).unwrap_or(started);
        let fifo = batch.is_fifo();
        tracing::info!(
            event = "batch",
            records = records.len(),
            fifo,
            budget_ms = cutoff.saturating_duration_since(started).as_millis() as u64,
            "processing batch"
        );

        let groups = if fifo { fifo_groups(records, self.settings.fifo_mode) } else { Vec::new() };
        let mut slots: Vec<Option<Done>> = records.iter().map(|_| None).collect();
        let run = async {
            if fifo {
                // One box per message group (a FIFO batch holds at most ten records).
                let streams = stream::iter(&groups).map(|group| Box::pin(self.run_group(records, group, handler)));
                drain(streams.flatten_unordered(self.settings.max_concurrency), &mut slots).await
            } else {
                let runs = stream::iter(0..records.len())
                    .map(|i| async move { (i, self.run_record(&records[i], handler).await) });
                drain(runs.buffer_unordered(self.settings.max_concurrency), &mut slots).await
            }
        };
        // At the cutoff the unfinished record futures are dropped, which cancels them.
        let _ = tokio::time::timeout_at(cutoff, run).await;
        let done = self.time_out_unfinished(records, &groups, slots);

        // Half the margin for the visibility calls, half for the response to reach Lambda.
        self.back_off(records, &done, deadline.checked_sub(margin / 2).unwrap_or(cutoff)).await;

        let outcomes: Vec<Outcome> = done.into_iter().map(|(outcome, _)| outcome).collect();
        report::publish_metrics(&self.settings.metrics_namespace, Counts::of(&outcomes), started.elapsed());
        to_response(records, &outcomes)
            .inspect_err(|e| tracing::error!(event = "batch_error", error = %e, "failing the whole invocation"))
    }

    async fn run_record<H: RecordHandler>(&self, record: &Record<'_>, handler: &H) -> Done {
        let receive_count = record.receive_count();
        report::attempt(record, receive_count);
        let outcome = match AssertUnwindSafe(handler.handle(record)).catch_unwind().await {
            Ok(Ok(ack)) => Outcome::Succeeded(ack),
            Ok(Err(RecordError::Transient { reason })) => Outcome::Failed(Failure::Transient(reason)),
            Ok(Err(RecordError::Permanent { kind, reason })) => {
                self.dead_letter(record, receive_count, kind, reason).await
            }
            Err(panic) => Outcome::Failed(Failure::Panicked(panic_message(panic.as_ref()))),
        };
        self.finish(record, receive_count, outcome, None)
    }

    /// FIFO: one group's records in order; after the first failure the rest are skipped.
    ///
    /// A skipped record is hidden exactly as long as the failed record ahead of it, set in the
    /// same call, so the whole group becomes visible again at once and returns in order. SQS
    /// holds a group back while any of its messages is in flight, so there any delay would do;
    /// LocalStack was seen handing out the visible rest of a group while its head was hidden
    /// (and the head while the rest was hidden), which breaks the order unless they match.
    fn run_group<'s, H: RecordHandler>(
        &'s self,
        records: &'s [Record<'s>],
        group: &'s [usize],
        handler: &'s H,
    ) -> impl Stream<Item = (usize, Done)> + 's {
        stream::unfold((group.iter(), None), move |(mut rest, head_delay): (_, Option<u32>)| async move {
            let i = *rest.next()?;
            let record = &records[i];
            let done = match head_delay {
                Some(delay) => {
                    let skipped = Outcome::Failed(Failure::SkippedAfterGroupFailure);
                    self.finish(record, record.receive_count(), skipped, Some(delay))
                }
                None => self.run_record(record, handler).await,
            };
            let head_delay = head_delay.or(done.0.is_failure().then_some(done.1));
            Some(((i, done), (rest, head_delay)))
        })
    }

    /// Reports the records the cutoff left unfinished as timed out. In a FIFO group they take
    /// the delay of the group's first failure, for the same reason as skipped records do.
    fn time_out_unfinished(
        &self,
        records: &[Record<'_>],
        fifo_groups: &[Vec<usize>],
        mut slots: Vec<Option<Done>>,
    ) -> Vec<Done> {
        let timed_out = |i: usize, delay: Option<u32>| {
            let record = &records[i];
            self.finish(record, record.receive_count(), Outcome::Failed(Failure::TimedOut), delay)
        };
        for group in fifo_groups {
            let mut head_delay = None;
            for &i in group {
                let done = slots[i].get_or_insert_with(|| timed_out(i, head_delay));
                if head_delay.is_none() && done.0.is_failure() {
                    head_delay = Some(done.1);
                }
            }
        }
        slots.into_iter().enumerate().map(|(i, slot)| slot.unwrap_or_else(|| timed_out(i, None))).collect()
    }

    async fn dead_letter(
        &self,
        record: &Record<'_>,
        receive_count: u32,
        kind: &'static str,
        reason: String,
    ) -> Outcome {
        let letter = DeadLetter {
            body: record.body.as_deref().unwrap_or_default(),
            source_message_id: record.id(),
            source_queue: record.event_source_arn.as_deref(),
            group_id: record.group_id(),
            kind,
            reason: &reason,
            receive_count,
        };
        match self.queues.dead_letter(&letter).await {
            Ok(()) => Outcome::DeadLettered { kind, reason },
            Err(e) => Outcome::Failed(Failure::DeadLetterUnavailable { kind, error: e.to_string() }),
        }
    }

    /// Picks the next delay (unless given) and logs the outcome: every outcome passes through
    /// here once.
    fn finish(&self, record: &Record<'_>, receive_count: u32, outcome: Outcome, delay: Option<u32>) -> Done {
        let delay =
            delay.unwrap_or_else(|| if outcome.is_failure() { self.settings.backoff.delay(receive_count) } else { 0 });
        let final_attempt = outcome.is_failure() && receive_count >= self.settings.max_receive_count;
        report::outcome(record, receive_count, &outcome, delay, final_attempt);
        (outcome, delay)
    }

    /// Applies each failed record's delay with `ChangeMessageVisibilityBatch`. A failure here
    /// is logged and otherwise ignored: the message then retries after the queue's default
    /// visibility timeout, which is later than planned but loses nothing.
    async fn back_off(&self, records: &[Record<'_>], done: &[Done], until: Instant) {
        let mut changes: Vec<(&str, VisibilityChange<'_>)> = Vec::new();
        for (record, (outcome, seconds)) in records.iter().zip(done) {
            if !outcome.is_failure() {
                continue;
            }
            match (record.event_source_arn.as_deref(), record.receipt_handle.as_deref(), record.id()) {
                (Some(arn), Some(receipt_handle), Some(message_id)) => {
                    changes.push((arn, VisibilityChange { message_id, receipt_handle, seconds: *seconds }))
                }
                _ => tracing::warn!(
                    event = "visibility_skipped",
                    message_id = record.id().unwrap_or("-"),
                    "record lacks a source ARN, receipt handle or message id: it retries after the queue default"
                ),
            }
        }
        changes.sort_by_key(|(arn, _)| *arn);
        let calls = async {
            for same_queue in changes.chunk_by(|a, b| a.0 == b.0) {
                let arn = same_queue[0].0;
                let Some(url) = queue_url_from_arn(arn, self.settings.sqs_endpoint.as_deref()) else {
                    tracing::warn!(event = "visibility_skipped", arn, "event source is not an SQS queue ARN");
                    continue;
                };
                for chunk in same_queue.chunks(VISIBILITY_BATCH_LIMIT) {
                    let entries: Vec<VisibilityChange<'_>> = chunk.iter().map(|(_, c)| c.clone()).collect();
                    match self.queues.change_visibility(&url, &entries).await {
                        Ok(refused) => {
                            for (message_id, error) in refused {
                                tracing::warn!(event = "visibility_failed", message_id, error, "backoff not applied");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(event = "visibility_failed", count = entries.len(), error = %e, "backoff not applied")
                        }
                    }
                }
            }
        };
        if tokio::time::timeout_at(until, calls).await.is_err() {
            tracing::warn!(event = "visibility_failed", "visibility changes cut short by the invocation deadline");
        }
    }
}

/// Collects `(index, done)` pairs into their slots as they finish.
async fn drain(results: impl Stream<Item = (usize, Done)>, slots: &mut [Option<Done>]) {
    let mut results = std::pin::pin!(results);
    while let Some((i, done)) = results.next().await {
        slots[i] = Some(done);
    }
}

/// Splits a FIFO batch into message groups, each in delivery order, groups in order of first
/// appearance. `FifoMode::Batch` makes the whole batch one group.
fn fifo_groups(records: &[Record<'_>], mode: FifoMode) -> Vec<Vec<usize>> {
    if mode == FifoMode::Batch {
        return vec![(0..records.len()).collect()];
    }
    let mut keys: Vec<Option<&str>> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        match keys.iter().position(|k| *k == record.group_id()) {
            Some(g) => groups[g].push(i),
            None => {
                keys.push(record.group_id());
                groups.push(vec![i]);
            }
        }
    }
    groups
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload");
    format!("handler panicked: {text}")
}

/// The deadline of a Lambda invocation (`Lambda-Runtime-Deadline-Ms`, milliseconds since the
/// Unix epoch) as an instant of tokio's clock.
///
/// `cargo lambda watch` sends the function timeout itself (600000) instead of an epoch time.
/// Any value before 2001 cannot be an epoch deadline, so it is read as a duration from now:
/// otherwise every record of a local run would time out at once.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    const EPOCH_2001_MS: u64 = 978_307_200_000;
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let left_ms = if deadline_ms < EPOCH_2001_MS { deadline_ms } else { deadline_ms.saturating_sub(now_ms) };
    Instant::now() + Duration::from_millis(left_ms)
}

#[cfg(test)]
mod deadline_tests {
    use super::*;

    fn epoch_ms() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn an_epoch_deadline_leaves_the_time_until_it() {
        let left = deadline_from_epoch_ms(epoch_ms() + 30_000) - Instant::now();
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30), "{left:?}");
        assert!(deadline_from_epoch_ms(epoch_ms() - 5_000) <= Instant::now(), "a past deadline leaves nothing");
    }

    #[test]
    fn a_relative_deadline_from_a_local_emulator_is_read_as_a_duration() {
        let left = deadline_from_epoch_ms(600_000) - Instant::now();
        assert!(left > Duration::from_secs(599) && left <= Duration::from_secs(600), "{left:?}");
    }
}
