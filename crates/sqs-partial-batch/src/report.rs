//! What the engine did with a batch: a [`BatchReport`] of each record's [`RecordReport`]
//! (its [`Outcome`] and next delay), and the one place that turns it into Lambda's partial
//! batch response. The log lines, the metrics and a poller's deletes are all read from it.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

use crate::event::Record;
pub use crate::outcome::{Outcome, Retry};

/// One record's part of a [`BatchReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordReport {
    /// What happened.
    pub outcome: Outcome,
    /// Seconds until a retried record is visible again (0 for a record that is done): the
    /// `next_delay_s` of its log line.
    pub next_delay_s: u32,
}

impl RecordReport {
    pub(crate) fn new(outcome: Outcome, next_delay_s: u32) -> Self {
        Self { outcome, next_delay_s }
    }
}

/// A failed record has no message id, so a partial response cannot name it. An empty
/// `itemIdentifier` would make Lambda fail the whole batch anyway; failing the invocation
/// says so openly, and SQS retries every record of the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index} failed ({outcome}) and has no messageId, so the whole batch must be retried")]
#[non_exhaustive]
pub struct MissingMessageId {
    /// The record's position in the batch.
    pub index: usize,
    /// Its outcome's name.
    pub outcome: &'static str,
}

/// What the engine did with a batch: each record's outcome and the seconds it is hidden before
/// its next delivery, in batch order. The partial batch response is built from it.
#[derive(Debug, Clone)]
pub struct BatchReport<'b> {
    records: &'b [Record<'b>],
    reports: Vec<RecordReport>,
}

impl<'b> BatchReport<'b> {
    /// `reports[i]` is `records[i]`'s.
    pub(crate) fn new(records: &'b [Record<'b>], reports: Vec<RecordReport>) -> Self {
        debug_assert_eq!(records.len(), reports.len());
        Self { records, reports }
    }

    /// Each record's report, in batch order (index `i` is the batch's record `i`).
    pub fn reports(&self) -> &[RecordReport] {
        &self.reports
    }

    /// Each record with its report, in batch order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'b Record<'b>, &RecordReport)> + '_ {
        self.records.iter().zip(&self.reports)
    }

    /// The indices of the records that are done (succeeded, unchanged or dead-lettered): what
    /// a poller deletes from the source queue.
    pub fn done(&self) -> impl Iterator<Item = usize> + '_ {
        self.reports.iter().enumerate().filter(|(_, r)| !r.outcome.is_retried()).map(|(i, _)| i)
    }

    /// The partial batch response for Lambda: exactly the retried records, in batch order. A
    /// retried record without a message id fails the whole invocation, and says so in the log.
    pub fn response(&self) -> Result<SqsBatchResponse, MissingMessageId> {
        to_response(self.records, self.reports.iter().map(|r| &r.outcome))
            .inspect_err(|e| tracing::error!(event = "batch_error", error = %e, "failing the whole invocation"))
    }
}

/// Builds the partial batch response: exactly the retried records, in batch order.
fn to_response<'o>(
    records: &[Record<'_>],
    outcomes: impl IntoIterator<Item = &'o Outcome>,
) -> Result<SqsBatchResponse, MissingMessageId> {
    let mut response = SqsBatchResponse::default();
    for (index, (record, outcome)) in records.iter().zip(outcomes).enumerate() {
        if !outcome.is_retried() {
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
    fn partial_response_lists_only_retried_records_in_batch_order() {
        let records = [record(Some("a")), record(Some("b")), record(Some("c")), record(Some("d"))];
        let outcomes = [
            Outcome::Retried(Retry::TimedOut),
            Outcome::Succeeded,
            Outcome::DeadLettered { kind: "invalid_json", reason: "x".into() },
            Outcome::Retried(Retry::Transient("down".into())),
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
    fn never_an_empty_item_identifier_a_retried_record_without_id_fails_the_invocation() {
        for id in [None, Some("")] {
            let records = [record(Some("a")), record(id)];
            let outcomes = [Outcome::Succeeded, Outcome::Retried(Retry::TimedOut)];
            let err = to_response(&records, &outcomes).unwrap_err();
            assert_eq!(err, MissingMessageId { index: 1, outcome: "timed_out" });
        }
    }

    #[test]
    fn a_succeeded_record_without_id_is_harmless() {
        let records = [record(None)];
        let response = to_response(&records, &[Outcome::Unchanged]).unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
}
