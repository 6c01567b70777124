//! Backoff applied: each retried record's next delay (from the batch's report) set with
//! `ChangeMessageVisibilityBatch`, at most ten messages of one queue per call, with bounded
//! concurrency, cut at the time the engine allows.

use futures::{StreamExt, stream};
use tokio::time::Instant;

use crate::errors::error_chain;
use crate::queue::{QueueOps, VISIBILITY_BATCH_LIMIT, VisibilityChange};
use crate::report::BatchReport;

/// Applies each retried record's delay, up to `concurrency` calls at once (10,000 retried
/// records are 1,000 calls), until `until`. A failure here is logged and otherwise ignored:
/// the message then retries after the queue's default visibility timeout, which is later
/// than planned but loses nothing.
pub(crate) async fn back_off<Q: QueueOps>(queues: &Q, concurrency: usize, report: &BatchReport<'_>, until: Instant) {
    let mut changes: Vec<(&str, VisibilityChange<'_>)> = Vec::new();
    for (record, record_report) in report.iter() {
        if !record_report.outcome.is_retried() {
            continue;
        }
        match (record.event_source_arn.as_deref(), record.receipt_handle.as_deref(), record.id()) {
            (Some(arn), Some(receipt_handle), Some(message_id)) => changes
                .push((arn, VisibilityChange { message_id, receipt_handle, seconds: record_report.next_delay_s })),
            _ => tracing::warn!(
                event = "visibility_skipped",
                message_id = record.id().unwrap_or("-"),
                "record lacks a source ARN, receipt handle or message id: it retries after the queue default"
            ),
        }
    }
    if changes.is_empty() {
        return;
    }
    changes.sort_by_key(|(arn, _)| *arn);
    let mut calls: Vec<(&str, Vec<VisibilityChange<'_>>)> = Vec::new();
    for same_queue in changes.chunk_by(|a, b| a.0 == b.0) {
        for chunk in same_queue.chunks(VISIBILITY_BATCH_LIMIT) {
            calls.push((chunk[0].0, chunk.iter().map(|(_, c)| c.clone()).collect()));
        }
    }
    let calls = stream::iter(calls).for_each_concurrent(concurrency, |(arn, entries)| async move {
        match queues.change_visibility(arn, &entries).await {
            Ok(refused) => {
                for (message_id, error) in refused {
                    tracing::warn!(event = "visibility_failed", message_id, error, "backoff not applied");
                }
            }
            Err(e) => {
                let ids: Vec<&str> = entries.iter().map(|c| c.message_id).collect();
                tracing::warn!(event = "visibility_failed", message_ids = ?ids, error = error_chain(&e), "backoff not applied")
            }
        }
    });
    if tokio::time::timeout_at(until, calls).await.is_err() {
        tracing::warn!(event = "visibility_failed", "visibility changes cut short by the invocation deadline");
    }
}
