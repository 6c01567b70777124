//! The batch engine, and a batch's path through it, one way: the payload parsed, the records
//! run, their reports made the batch's report, the backoff applied from it, its log lines and
//! metrics written from it in one pass, and only then the response returned.

use std::future::Future;

use aws_lambda_events::event::sqs::SqsBatchResponse;
use tokio::time::Instant;

use crate::deadline::{deadline_from_epoch_ms, now_epoch_ms};
use crate::event::{Batch, EventError};
use crate::handler::RecordHandler;
use crate::queue::QueueOps;
use crate::report::{BatchReport, MissingMessageId};
use crate::run::{Cutoffs, run_records};
use crate::settings::Settings;
use crate::telemetry::{LogSink, batch_started, write_report};
use crate::visibility::back_off;

/// Runs batches. Built once per process; holds no per-invocation state.
#[derive(Debug)]
pub struct Engine<Q> {
    settings: Settings,
    queues: Q,
    log: LogSink,
}

/// Why an invocation fails as a whole, so that Lambda retries every record of its batch. Its
/// message is its cause's, which Lambda reports as the invocation's `errorMessage`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvocationError {
    /// The payload is not an SQS event.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A failed record has no message id, so the partial response cannot name it.
    #[error(transparent)]
    MissingMessageId(#[from] MissingMessageId),
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

    /// One Lambda invocation, whole: the payload as Lambda sent it, its deadline
    /// (`Lambda-Runtime-Deadline-Ms`, as [`deadline_from_epoch_ms`] reads it) and the handler
    /// in; the partial batch response out, or the reason the whole invocation fails.
    pub async fn invoke<H: RecordHandler>(
        &self,
        payload: &str,
        deadline_ms: u64,
        handler: &H,
    ) -> Result<SqsBatchResponse, InvocationError> {
        let batch = Batch::parse(payload)?;
        let report = self.process(&batch, deadline_from_epoch_ms(deadline_ms), handler).await;
        Ok(report.response()?)
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
        let fifo = batch.is_fifo();
        let cutoffs = Cutoffs::new(deadline, self.settings.deadline_margin(), started);
        let budget_ms = cutoffs.records.saturating_duration_since(started).as_millis() as u64;
        batch_started(&self.log, records.len(), fifo, budget_ms);

        let reports = run_records(&self.settings, &self.queues, handler, records, fifo, started, cutoffs, stop).await;
        let report = BatchReport::new(records, reports);
        back_off(&self.queues, self.settings.max_concurrency(), &report, cutoffs.visibility).await;
        // Every record's line is out before the response that acknowledges it is returned.
        write_report(&self.log, &self.settings, &report, started_at_ms, started.elapsed());
        report
    }
}
