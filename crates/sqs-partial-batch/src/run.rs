//! Running a batch's records, and nothing else: each record through the handler (a panic
//! caught around the call and around its future), with bounded concurrency, FIFO group
//! order, the brake and the cut. The result is one [`RecordReport`] per record, in batch
//! order. Everything runs on the invoking task: no task is spawned per record.
//!
//! The time before the deadline is split in three (margin `m`): handlers run until
//! `deadline - m` (the cutoff); a dead-letter send already under way may finish until
//! `deadline - m/2`, because cutting it would report failed a letter SQS may already hold, and
//! the message would come back to be dead-lettered again; visibility changes run until
//! `deadline - m/4`; the rest carries the response to Lambda.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt, stream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::next_delay;
use crate::errors::error_chain;
use crate::event::Record;
use crate::handler::RecordHandler;
use crate::letter::DeadLetter;
use crate::outcome::{Outcome, RecordError, Retry};
use crate::queue::QueueOps;
use crate::reason;
use crate::report::RecordReport;
use crate::settings::{FifoMode, Settings};

/// When a batch's stages must end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cutoffs {
    /// Handlers still running are cut: `deadline - margin`.
    pub(crate) records: Instant,
    /// Dead-letter sends under way are cut: `deadline - margin/2`.
    pub(crate) letters: Instant,
    /// Visibility changes are cut: `deadline - margin/4`.
    pub(crate) visibility: Instant,
}

impl Cutoffs {
    pub(crate) fn new(deadline: Instant, margin: Duration, started: Instant) -> Self {
        let records = deadline.checked_sub(margin).unwrap_or(started);
        let letters = deadline.checked_sub(margin / 2).unwrap_or(records).max(records);
        let visibility = deadline.checked_sub(margin / 4).unwrap_or(letters).max(letters);
        Self { records, letters, visibility }
    }
}

/// Runs `records` (FIFO: in message groups) until they are done or `cutoffs` or `stop` cut
/// them; reports each, in batch order.
#[allow(clippy::too_many_arguments)] // each stage's inputs, passed once from the engine
pub(crate) async fn run_records<Q: QueueOps, H: RecordHandler>(
    settings: &Settings,
    queues: &Q,
    handler: &H,
    records: &[Record<'_>],
    fifo: bool,
    started: Instant,
    cutoffs: Cutoffs,
    stop: impl Future<Output = ()>,
) -> Vec<RecordReport> {
    let (cut_tx, cut) = watch::channel(false);
    let runner = Runner {
        settings,
        queues,
        handler,
        started,
        cut,
        consecutive_transient: AtomicU32::new(0),
        braked: AtomicBool::new(false),
    };
    let groups = if fifo { fifo_groups(records, settings.fifo_mode()) } else { Vec::new() };
    let mut slots: Vec<Option<RecordReport>> = vec![None; records.len()];
    let work = async {
        let runner = &runner;
        if fifo {
            // One box per message group (a FIFO batch holds at most ten records).
            let streams = stream::iter(&groups).map(|group| Box::pin(runner.run_group(records, group)));
            drain(streams.flatten_unordered(settings.max_concurrency()), &mut slots).await
        } else {
            let runs = stream::iter(0..records.len()).map(|i| async move { (i, runner.run_record(&records[i]).await) });
            drain(runs.buffer_unordered(settings.max_concurrency()), &mut slots).await
        }
    };
    let cutter = async {
        tokio::select! {
            () = tokio::time::sleep_until(cutoffs.records) => {}
            () = stop => tracing::warn!(event = "batch_cut", "stop requested: unfinished records are reported failed"),
        }
        cut_tx.send_replace(true);
        // Handlers now return at once; dead-letter sends under way get until here.
        tokio::time::sleep_until(cutoffs.letters).await;
        tracing::warn!(event = "dead_letter_cut", "dead-letter sends still running at deadline - margin/2");
    };
    tokio::select! {
        biased;
        () = work => {}
        () = cutter => {}
    }
    runner.time_out_unfinished(records, &groups, slots)
}

/// One batch's run: what it needs, whether it has been cut, and the brake.
struct Runner<'r, Q, H> {
    settings: &'r Settings,
    queues: &'r Q,
    handler: &'r H,
    started: Instant,
    cut: watch::Receiver<bool>,
    consecutive_transient: AtomicU32,
    braked: AtomicBool,
}

impl<Q: QueueOps, H: RecordHandler> Runner<'_, Q, H> {
    fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Resolves when the batch is cut (deadline or stop); never before.
    async fn cut(&self) {
        let mut cut = self.cut.clone();
        if cut.wait_for(|c| *c).await.is_err() {
            // A dropped sender (cannot happen while the batch runs) must not end the wait.
            std::future::pending::<()>().await;
        }
    }

    async fn run_record(&self, record: &Record<'_>) -> RecordReport {
        let receive_count = record.receive_count();
        // Not started once the batch is cut or braked: cheaper, and honest about what ran.
        if self.is_cut() {
            return self.report(Outcome::Retried(Retry::TimedOut), receive_count, None);
        }
        if self.braked.load(Ordering::SeqCst) {
            return self.report(Outcome::Retried(Retry::Braked), receive_count, None);
        }
        // Caught around the call and around its future, as lambda_runtime's panic layer does:
        // a closure given to `handler_fn` does its synchronous part (parsing the body, say)
        // in the call, before there is a future to catch anything.
        let handled = match std::panic::catch_unwind(AssertUnwindSafe(|| self.handler.handle(record))) {
            Err(panic) => Some(Err(panic)),
            Ok(future) => tokio::select! {
                biased;
                result = AssertUnwindSafe(future).catch_unwind() => Some(result),
                () = self.cut() => None,
            },
        };
        let outcome = match handled {
            None => Outcome::Retried(Retry::TimedOut),
            Some(Ok(Ok(ack))) => Outcome::from(ack),
            Some(Ok(Err(RecordError::Transient { reason }))) => {
                Outcome::Retried(Retry::Transient(reason::clean(&reason)))
            }
            // Not raced against the cutoff: see the module header.
            Some(Ok(Err(RecordError::Permanent { kind, reason }))) => {
                self.dead_letter(record, receive_count, kind, reason::clean(&reason)).await
            }
            Some(Err(panic)) => Outcome::Retried(Retry::Panicked(reason::clean(&panic_message(panic.as_ref())))),
        };
        self.count_for_brake(&outcome);
        self.report(outcome, receive_count, None)
    }

    /// The brake: after `brake_after` transient failures in a row (in the order they finish),
    /// records not yet started are not tried. A success resets the count; a bad message says
    /// nothing about the dependency and leaves it alone.
    fn count_for_brake(&self, outcome: &Outcome) {
        match outcome {
            Outcome::Retried(Retry::Transient(_)) => {
                let n = self.consecutive_transient.fetch_add(1, Ordering::SeqCst) + 1;
                let after = self.settings.brake_after();
                if after > 0 && n >= after {
                    self.braked.store(true, Ordering::SeqCst);
                }
            }
            Outcome::Succeeded | Outcome::Unchanged => self.consecutive_transient.store(0, Ordering::SeqCst),
            _ => {}
        }
    }

    /// A record's report: a retried record's next delay is its backoff, or `shared`.
    fn report(&self, outcome: Outcome, receive_count: u32, shared: Option<u32>) -> RecordReport {
        let delay = if outcome.is_retried() {
            next_delay(self.settings.backoff(), receive_count, shared, self.started.elapsed())
        } else {
            0
        };
        RecordReport::new(outcome, delay)
    }

    /// FIFO: one group's records in order; after the first failure the rest are skipped.
    ///
    /// A skipped record is hidden exactly as long as the failed record ahead of it, set in the
    /// same call, so the whole group becomes visible again at once and returns in order. SQS
    /// holds a group back while any of its messages is in flight, so there any delay would do;
    /// LocalStack was seen handing out the visible rest of a group while its head was hidden
    /// (and the head while the rest was hidden), which breaks the order unless they match.
    fn run_group<'s>(
        &'s self,
        records: &'s [Record<'s>],
        group: &'s [usize],
    ) -> impl Stream<Item = (usize, RecordReport)> + 's {
        stream::unfold((group.iter(), None), move |(mut rest, head_delay): (_, Option<u32>)| async move {
            let i = *rest.next()?;
            let record = &records[i];
            let report = match head_delay {
                Some(delay) => self.report(Outcome::Retried(Retry::Skipped), record.receive_count(), Some(delay)),
                None => self.run_record(record).await,
            };
            let head_delay = group_head_delay(head_delay, &report);
            Some(((i, report), (rest, head_delay)))
        })
    }

    /// Reports the records left unfinished (a dead-letter send cut at `deadline - m/2`) as
    /// timed out. In a FIFO group they take the delay of the group's first failure, for the
    /// same reason as skipped records do.
    fn time_out_unfinished(
        &self,
        records: &[Record<'_>],
        fifo_groups: &[Vec<usize>],
        mut slots: Vec<Option<RecordReport>>,
    ) -> Vec<RecordReport> {
        let timed_out = |i: usize, delay: Option<u32>| {
            self.report(Outcome::Retried(Retry::TimedOut), records[i].receive_count(), delay)
        };
        for group in fifo_groups {
            let mut head_delay = None;
            for &i in group {
                let report = slots[i].get_or_insert_with(|| timed_out(i, head_delay));
                head_delay = group_head_delay(head_delay, report);
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
            body: record.body.as_deref(),
            message_attributes: &record.message_attributes,
            carried_first: self.settings.carried_first(),
            source_message_id: record.id(),
            source_queue: record.event_source_arn.as_deref(),
            group_id: record.group_id(),
            kind,
            reason: &reason,
            receive_count,
        };
        match self.queues.dead_letter(&letter).await {
            Ok(()) => Outcome::DeadLettered { kind, reason },
            Err(e) => Outcome::Retried(Retry::DeadLetterFailed { kind, error: reason::clean(&error_chain(&e)) }),
        }
    }
}

/// FIFO: the delay a group's records take once one has failed, given the delay so far and the
/// next record's report: the first failure's own delay, kept for the rest of the group (why:
/// [`Runner::run_group`]).
fn group_head_delay(head_delay: Option<u32>, report: &RecordReport) -> Option<u32> {
    head_delay.or(report.outcome.is_retried().then_some(report.next_delay_s))
}

/// Collects `(index, report)` pairs into their slots as they finish.
async fn drain(results: impl Stream<Item = (usize, RecordReport)>, slots: &mut [Option<RecordReport>]) {
    let mut results = std::pin::pin!(results);
    while let Some((i, report)) = results.next().await {
        slots[i] = Some(report);
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
