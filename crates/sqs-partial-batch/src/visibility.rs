//! Backoff applied: each failed record's next delay set with `ChangeMessageVisibilityBatch`,
//! with bounded concurrency and never past the 12 hours SQS allows from the receive.

use std::time::Duration;

use futures::{StreamExt, stream};
use tokio::time::Instant;

use super::backoff::MAX_VISIBILITY_SECONDS;
use super::engine::{Done, Engine, VISIBILITY_SLACK_SECONDS};
use super::errors::error_chain;
use super::queue::{QueueOps, VISIBILITY_BATCH_LIMIT, VisibilityChange, queue_url_from_arn};
use super::record::Record;

impl<Q: QueueOps> Engine<Q> {
    /// Applies each failed record's delay with `ChangeMessageVisibilityBatch`, up to
    /// `max_concurrency` calls at once (10,000 failed records are 1,000 calls). A failure here
    /// is logged and otherwise ignored: the message then retries after the queue's default
    /// visibility timeout, which is later than planned but loses nothing.
    pub(super) async fn back_off(&self, records: &[Record<'_>], done: &[Done], until: Instant) {
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
        let mut calls: Vec<(String, Vec<VisibilityChange<'_>>)> = Vec::new();
        for same_queue in changes.chunk_by(|a, b| a.0 == b.0) {
            let arn = same_queue[0].0;
            let Some(url) = queue_url_from_arn(arn, self.settings.sqs_endpoint.as_deref()) else {
                tracing::warn!(event = "visibility_skipped", arn, "event source is not an SQS queue ARN");
                continue;
            };
            for chunk in same_queue.chunks(VISIBILITY_BATCH_LIMIT) {
                calls.push((url.clone(), chunk.iter().map(|(_, c)| c.clone()).collect()));
            }
        }
        let calls = stream::iter(calls).for_each_concurrent(self.settings.max_concurrency, |(url, entries)| async move {
            match self.queues.change_visibility(&url, &entries).await {
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
}

/// The longest visibility SQS still accepts `elapsed` after the batch started.
pub(super) fn visibility_cap(elapsed: Duration) -> u32 {
    let elapsed = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX).saturating_add(1);
    MAX_VISIBILITY_SECONDS.saturating_sub(VISIBILITY_SLACK_SECONDS).saturating_sub(elapsed)
}
