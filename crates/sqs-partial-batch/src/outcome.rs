//! What happened to each record, and the one place that turns that into Lambda's response.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

use super::record::Record;
use super::report::Counts;

/// A record handler's success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ack {
    /// The message took effect.
    Applied,
    /// Succeeded without effect (a duplicate, or a change already superseded): nothing to
    /// do, and nothing to retry. Counted apart from [`Ack::Applied`].
    Unchanged,
}

/// Why a record handler failed. Retryable or not is decided here, once, by the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Something outside the message failed (a store, a network): retry later.
    #[error("transient: {reason}")]
    Transient {
        /// What failed; logged, so it must not carry message content.
        reason: String,
    },
    /// The message itself is bad: retrying cannot help, so it goes to the dead-letter queue.
    #[error("{kind}: {reason}")]
    Permanent {
        /// A short machine-readable class, such as `invalid_json`.
        kind: &'static str,
        /// What is wrong, for a person reading the dead-letter queue.
        reason: String,
    },
}

impl RecordError {
    /// A transient error: text, or an error whose sources are kept in the reason, joined by
    /// `: ` (an AWS SDK error's own message, "dispatch failure", says little; its sources say
    /// what failed).
    pub fn transient(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Transient { reason: crate::errors::error_chain(error.into().as_ref()) }
    }

    /// A permanent error of the given kind.
    pub fn permanent(kind: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Permanent { kind, reason: reason.to_string() }
    }
}

/// The result of one record in one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The handler succeeded: the record is deleted from the source queue.
    Succeeded(Ack),
    /// A permanent failure, now in the dead-letter queue with its reason: reported as
    /// success so that the source queue deletes it.
    DeadLettered {
        /// The error class.
        kind: &'static str,
        /// The reason, as recorded on the dead letter.
        reason: String,
    },
    /// The record stays on the source queue and is retried.
    Failed(Failure),
}

/// Why a record is reported failed (and so retried by SQS).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The handler returned a transient error.
    Transient(String),
    /// The handler panicked; treated as transient.
    Panicked(String),
    /// A permanent failure whose dead-letter send failed: keep it on the source queue rather
    /// than drop it. Its redrive policy still moves it to the DLQ in the end.
    DeadLetterUnavailable {
        /// The error class of the permanent failure.
        kind: &'static str,
        /// Why the send failed.
        error: String,
    },
    /// Still running when the invocation's deadline (less the safety margin) arrived.
    TimedOut,
    /// FIFO: an earlier record of the same message group failed, so this one was not run.
    SkippedAfterGroupFailure,
    /// Not tried: the brake engaged after too many transient failures in a row.
    Braked,
}

impl Outcome {
    /// Whether the record goes into `batchItemFailures`.
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }

    /// The name used in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Succeeded(Ack::Applied) => "succeeded",
            Self::Succeeded(Ack::Unchanged) => "unchanged",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::Failed(Failure::Transient(_)) => "retry",
            Self::Failed(Failure::Panicked(_)) => "panicked",
            Self::Failed(Failure::DeadLetterUnavailable { .. }) => "dead_letter_failed",
            Self::Failed(Failure::TimedOut) => "timed_out",
            Self::Failed(Failure::SkippedAfterGroupFailure) => "skipped",
            Self::Failed(Failure::Braked) => "braked",
        }
    }
}

/// A failed record has no message id, so a partial response cannot name it. An empty
/// `itemIdentifier` would make Lambda fail the whole batch anyway; failing the invocation
/// says so openly, and SQS retries every record of the batch.
#[derive(Debug, thiserror::Error)]
#[error("record {index} failed ({outcome}) and has no messageId, so the whole batch must be retried")]
pub struct MissingMessageId {
    /// The record's position in the batch.
    pub index: usize,
    /// Its outcome name.
    pub outcome: &'static str,
}

/// What the engine did with a batch: each record's outcome and the seconds it is hidden before
/// its next delivery, in batch order. The partial batch response is built from it.
#[derive(Debug, Clone)]
pub struct BatchReport<'b> {
    records: &'b [Record<'b>],
    outcomes: Vec<RecordReport>,
}

/// One record's part of a [`BatchReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordReport {
    /// What happened.
    pub outcome: Outcome,
    /// Seconds until a failed record is visible again (0 for a record that is done).
    pub delay_seconds: u32,
}

impl<'b> BatchReport<'b> {
    pub(crate) fn new(records: &'b [Record<'b>], done: Vec<crate::engine::Done>) -> Self {
        let outcomes =
            done.into_iter().map(|(outcome, delay_seconds)| RecordReport { outcome, delay_seconds }).collect();
        Self { records, outcomes }
    }

    /// Each record's report, in batch order (index `i` is the batch's record `i`).
    pub fn records(&self) -> &[RecordReport] {
        &self.outcomes
    }

    /// The indices of the records that are done (succeeded or dead-lettered): what a poller
    /// deletes from the source queue.
    pub fn done(&self) -> impl Iterator<Item = usize> + '_ {
        self.outcomes.iter().enumerate().filter(|(_, r)| !r.outcome.is_failure()).map(|(i, _)| i)
    }

    /// The batch's counts, as its metrics publish them.
    pub fn counts(&self) -> Counts {
        Counts::of(self.outcomes.iter().map(|r| &r.outcome))
    }

    /// The partial batch response for Lambda: exactly the failed records, in batch order. A
    /// failed record without a message id fails the whole invocation, and says so in the log.
    pub fn response(&self) -> Result<SqsBatchResponse, MissingMessageId> {
        to_response(self.records, self.outcomes.iter().map(|r| &r.outcome))
            .inspect_err(|e| tracing::error!(event = "batch_error", error = %e, "failing the whole invocation"))
    }
}

/// Builds the partial batch response: exactly the failed records, in batch order.
pub(crate) fn to_response<'o>(
    records: &[Record<'_>],
    outcomes: impl IntoIterator<Item = &'o Outcome>,
) -> Result<SqsBatchResponse, MissingMessageId> {
    let mut response = SqsBatchResponse::default();
    for (index, (record, outcome)) in records.iter().zip(outcomes).enumerate() {
        if !outcome.is_failure() {
            continue;
        }
        let id = record.id().ok_or(MissingMessageId { index, outcome: outcome.name() })?;
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id.to_owned();
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: Option<&'static str>) -> Record<'static> {
        Record { message_id: id.map(Into::into), ..Record::default() }
    }

    #[test]
    fn partial_response_lists_only_failed_records_in_batch_order() {
        let records = [record(Some("a")), record(Some("b")), record(Some("c")), record(Some("d"))];
        let outcomes = [
            Outcome::Failed(Failure::TimedOut),
            Outcome::Succeeded(Ack::Applied),
            Outcome::DeadLettered { kind: "invalid_json", reason: "x".into() },
            Outcome::Failed(Failure::Transient("down".into())),
        ];
        let ids: Vec<_> = to_response(&records, &outcomes)
            .unwrap()
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(ids, ["a", "d"]);
    }

    #[test]
    fn never_an_empty_item_identifier_a_failed_record_without_id_fails_the_invocation() {
        for id in [None, Some("")] {
            let records = [record(Some("a")), record(id)];
            let outcomes = [Outcome::Succeeded(Ack::Applied), Outcome::Failed(Failure::TimedOut)];
            let err = to_response(&records, &outcomes).unwrap_err();
            assert_eq!(err.index, 1);
        }
    }

    #[test]
    fn a_succeeded_record_without_id_is_harmless() {
        let records = [record(None)];
        let response = to_response(&records, &[Outcome::Succeeded(Ack::Unchanged)]).unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
}
