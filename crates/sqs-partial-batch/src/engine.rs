//! The batch engine: runs a record handler over an SQS batch and answers with a partial batch
//! response. Per record it catches panics, dead-letters permanent failures and backs off
//! transient ones; per batch it bounds concurrency, keeps FIFO group order, meets the
//! invocation deadline and brakes when a dependency is down. Everything runs on the invoking
//! task: no task is spawned per record.
//!
//! The time before the deadline is split in three (margin `m`): handlers run until
//! `deadline - m` (the cutoff); a dead-letter send already under way may finish until
//! `deadline - m/2`, because cutting it would report failed a letter SQS may already hold
//! (issue 9, item 2); visibility changes run until `deadline - m/4`; the rest carries the
//! response to Lambda.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use futures::{FutureExt, Stream, StreamExt, stream};
use tokio::sync::watch;
use tokio::time::Instant;

use super::age::MessageAges;
use super::deadline::now_epoch_ms;
use super::errors::error_chain;
use super::outcome::{Ack, BatchReport, Failure, Outcome, RecordError};
use super::queue::{DeadLetter, QueueOps};
use super::reason;
use super::record::{Batch, Record};
use super::report::{BatchLog, LogSink};
use super::settings::{FifoMode, Settings};
use super::visibility::visibility_cap;

/// Handles one record. The engine owns retries, dead-lettering and the response; a handler
/// only says what happened, with the error's variant deciding retry or dead-letter.
pub trait RecordHandler: Sync {
    /// Processes one record.
    fn handle(&self, record: &Record<'_>) -> impl Future<Output = Result<Ack, RecordError>> + Send;
}

/// A record's outcome and the seconds to hide it before its next delivery.
pub(crate) type Done = (Outcome, u32);

/// A [`RecordHandler`] from a closure, in the style of `lambda_runtime::service_fn`. The
/// closure reads what it needs from the record (parsing the body, usually) and returns a
/// future that owns it:
///
/// ```
/// use sqs_partial_batch::{Ack, RecordError, handler_fn};
///
/// let handler = handler_fn(|record| {
///     let body = record.body.as_deref().unwrap_or_default().to_owned();
///     async move {
///         if body.is_empty() {
///             return Err(RecordError::permanent("empty_body", "the message has no body"));
///         }
///         Ok(Ack::Applied)
///     }
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(&Record<'_>) -> Fut + Sync,
    Fut: Future<Output = Result<Ack, RecordError>> + Send,
{
    HandlerFn(f)
}

/// The [`RecordHandler`] made by [`handler_fn`].
#[derive(Debug, Clone, Copy)]
pub struct HandlerFn<F>(F);

impl<F, Fut> RecordHandler for HandlerFn<F>
where
    F: Fn(&Record<'_>) -> Fut + Sync,
    Fut: Future<Output = Result<Ack, RecordError>> + Send,
{
    fn handle(&self, record: &Record<'_>) -> impl Future<Output = Result<Ack, RecordError>> + Send {
        (self.0)(record)
    }
}

/// Seconds kept off the 12-hour visibility limit besides the time the batch has taken: SQS
/// counts the 12 hours from the receive, and Lambda's batching window (at most 300 s) and the
/// deadline margin (at most 60 s) may lie between that receive and the visibility call.
pub(crate) const VISIBILITY_SLACK_SECONDS: u32 = 360;

/// Runs batches. Built once per process; holds no per-invocation state.
#[derive(Debug)]
pub struct Engine<Q> {
    pub(super) settings: Settings,
    pub(super) queues: Q,
    log: LogSink,
}

/// One batch's state: when it started, whether it has been cut, the brake, and its log lines.
struct Run<'e> {
    started: Instant,
    cut: watch::Receiver<bool>,
    consecutive_transient: AtomicU32,
    braked: AtomicBool,
    log: BatchLog<'e>,
}

impl Run<'_> {
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
}

impl<Q: QueueOps> Engine<Q> {
    /// An engine with its settings and queue operations. It logs nothing until it is given a
    /// sink with [`Engine::with_log`]: the library writes to no stream on its own.
    pub fn new(settings: Settings, queues: Q) -> Self {
        Self { settings, queues, log: LogSink::off() }
    }

    /// The engine, writing its log lines and metrics to `log`.
    pub fn with_log(mut self, log: LogSink) -> Self {
        self.log = log;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The queue operations.
    pub fn queues(&self) -> &Q {
        &self.queues
    }

    /// Processes a batch that must be answered by `deadline`, and reports what happened to
    /// each record; [`BatchReport::response`] is the partial batch response for Lambda.
    pub async fn process<'b, H: RecordHandler>(
        &self,
        batch: &'b Batch<'b>,
        deadline: Instant,
        handler: &H,
    ) -> BatchReport<'b> {
        self.process_until(batch, deadline, std::future::pending(), handler).await
    }

    /// [`Engine::process`], cut early when `stop` resolves (poll mode's shutdown grace): the
    /// records then unfinished are reported failed exactly as at the deadline.
    pub async fn process_until<'b, H: RecordHandler>(
        &self,
        batch: &'b Batch<'b>,
        deadline: Instant,
        stop: impl Future<Output = ()>,
        handler: &H,
    ) -> BatchReport<'b> {
        let started = Instant::now();
        let started_at_ms = now_epoch_ms();
        let records = &batch.records[..];
        let margin = self.settings.deadline_margin;
        let cutoff = deadline.checked_sub(margin).unwrap_or(started);
        let letters_until = deadline.checked_sub(margin / 2).unwrap_or(cutoff).max(cutoff);
        let visibility_until = deadline.checked_sub(margin / 4).unwrap_or(letters_until).max(letters_until);
        let fifo = batch.is_fifo();
        let log = BatchLog::new(&self.log, self.settings.log_successes);
        log.batch(records.len(), fifo, cutoff.saturating_duration_since(started).as_millis() as u64);

        let (cut_tx, cut_rx) = watch::channel(false);
        let run =
            Run { started, cut: cut_rx, consecutive_transient: AtomicU32::new(0), braked: AtomicBool::new(false), log };
        let groups = if fifo { fifo_groups(records, self.settings.fifo_mode) } else { Vec::new() };
        let mut slots: Vec<Option<Done>> = records.iter().map(|_| None).collect();
        let work = async {
            if fifo {
                // One box per message group (a FIFO batch holds at most ten records).
                let streams =
                    stream::iter(&groups).map(|group| Box::pin(self.run_group(&run, records, group, handler)));
                drain(streams.flatten_unordered(self.settings.max_concurrency), &mut slots).await
            } else {
                let run = &run;
                let runs = stream::iter(0..records.len())
                    .map(|i| async move { (i, self.run_record(run, &records[i], handler).await) });
                drain(runs.buffer_unordered(self.settings.max_concurrency), &mut slots).await
            }
        };
        let cutter = async {
            tokio::select! {
                () = tokio::time::sleep_until(cutoff) => {}
                () = stop => tracing::warn!(event = "batch_cut", "stop requested: unfinished records are reported failed"),
            }
            cut_tx.send_replace(true);
            // Handlers now return at once; dead-letter sends under way get until here.
            tokio::time::sleep_until(letters_until).await;
            tracing::warn!(event = "dead_letter_cut", "dead-letter sends still running at deadline - margin/2");
        };
        tokio::select! {
            biased;
            () = work => {}
            () = cutter => {}
        }
        let done = self.time_out_unfinished(&run, records, &groups, slots);
        if run.braked.load(Ordering::SeqCst) {
            tracing::warn!(
                event = "brake_engaged",
                after = self.settings.brake_after,
                "untried records reported failed"
            );
        }

        self.back_off(records, &done, visibility_until).await;

        let report = BatchReport::new(records, done);
        let ages = MessageAges::of(records.iter().filter_map(Record::sent_at_ms), started_at_ms);
        run.log.metrics(&self.settings, report.counts(), ages, started.elapsed());
        // Every record's line is out before the response that acknowledges it is returned.
        run.log.flush();
        report
    }

    async fn run_record<H: RecordHandler>(&self, run: &Run<'_>, record: &Record<'_>, handler: &H) -> Done {
        let receive_count = record.receive_count();
        // Not started once the batch is cut or braked: cheaper, and honest about what ran.
        if run.is_cut() {
            return self.finish(run, record, receive_count, Outcome::Failed(Failure::TimedOut), None);
        }
        if run.braked.load(Ordering::SeqCst) {
            return self.finish(run, record, receive_count, Outcome::Failed(Failure::Braked), None);
        }
        let handled = tokio::select! {
            biased;
            result = AssertUnwindSafe(handler.handle(record)).catch_unwind() => Some(result),
            () = run.cut() => None,
        };
        let outcome = match handled {
            None => Outcome::Failed(Failure::TimedOut),
            Some(Ok(Ok(ack))) => Outcome::Succeeded(ack),
            Some(Ok(Err(RecordError::Transient { reason }))) => {
                Outcome::Failed(Failure::Transient(reason::clean(&reason)))
            }
            // Not raced against the cutoff: see the module header.
            Some(Ok(Err(RecordError::Permanent { kind, reason }))) => {
                self.dead_letter(record, receive_count, kind, reason::clean(&reason)).await
            }
            Some(Err(panic)) => Outcome::Failed(Failure::Panicked(reason::clean(&panic_message(panic.as_ref())))),
        };
        self.count_for_brake(run, &outcome);
        self.finish(run, record, receive_count, outcome, None)
    }

    /// The brake: after `brake_after` transient failures in a row (in the order they finish),
    /// records not yet started are not tried. A success resets the count; a bad message says
    /// nothing about the dependency and leaves it alone.
    fn count_for_brake(&self, run: &Run<'_>, outcome: &Outcome) {
        match outcome {
            Outcome::Failed(Failure::Transient(_)) => {
                let n = run.consecutive_transient.fetch_add(1, Ordering::SeqCst) + 1;
                if self.settings.brake_after > 0 && n >= self.settings.brake_after {
                    run.braked.store(true, Ordering::SeqCst);
                }
            }
            Outcome::Succeeded(_) => run.consecutive_transient.store(0, Ordering::SeqCst),
            _ => {}
        }
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
        run: &'s Run<'s>,
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
                    self.finish(run, record, record.receive_count(), skipped, Some(delay))
                }
                None => self.run_record(run, record, handler).await,
            };
            let head_delay = group_head_delay(head_delay, &done);
            Some(((i, done), (rest, head_delay)))
        })
    }

    /// Reports the records left unfinished (a dead-letter send cut at `deadline - m/2`) as
    /// timed out. In a FIFO group they take the delay of the group's first failure, for the
    /// same reason as skipped records do.
    fn time_out_unfinished(
        &self,
        run: &Run<'_>,
        records: &[Record<'_>],
        fifo_groups: &[Vec<usize>],
        mut slots: Vec<Option<Done>>,
    ) -> Vec<Done> {
        let timed_out = |i: usize, delay: Option<u32>| {
            let record = &records[i];
            self.finish(run, record, record.receive_count(), Outcome::Failed(Failure::TimedOut), delay)
        };
        for group in fifo_groups {
            let mut head_delay = None;
            for &i in group {
                let done = slots[i].get_or_insert_with(|| timed_out(i, head_delay));
                head_delay = group_head_delay(head_delay, done);
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
            source_message_id: record.id(),
            source_queue: record.event_source_arn.as_deref(),
            group_id: record.group_id(),
            kind,
            reason: &reason,
            receive_count,
        };
        match self.queues.dead_letter(&letter).await {
            Ok(()) => Outcome::DeadLettered { kind, reason },
            Err(e) => Outcome::Failed(Failure::DeadLetterUnavailable { kind, error: reason::clean(&error_chain(&e)) }),
        }
    }

    /// Picks the next delay (unless given) and logs the outcome: every outcome passes through
    /// here once. The delay never reaches past 12 hours from the receive, which SQS refuses.
    fn finish(
        &self,
        run: &Run<'_>,
        record: &Record<'_>,
        receive_count: u32,
        outcome: Outcome,
        delay: Option<u32>,
    ) -> Done {
        let delay =
            delay.unwrap_or_else(|| if outcome.is_failure() { self.settings.backoff.delay(receive_count) } else { 0 });
        let delay = delay.min(visibility_cap(run.started.elapsed()));
        let final_attempt = outcome.is_failure() && receive_count >= self.settings.max_receive_count;
        run.log.outcome(record, receive_count, &outcome, delay, final_attempt);
        (outcome, delay)
    }
}

/// FIFO: the delay a group's records take once one has failed, given the delay so far and the
/// next record's result: the first failure's own delay, kept for the rest of the group (why:
/// [`Engine::run_group`]).
fn group_head_delay(head_delay: Option<u32>, done: &Done) -> Option<u32> {
    head_delay.or(done.0.is_failure().then_some(done.1))
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
