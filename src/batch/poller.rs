//! Polling outside Lambda: long-polls a queue and runs the same engine on each batch, then
//! deletes what succeeded, as Lambda's event source mapping does. Failures are left to their
//! backoff; a shutdown signal stops receiving, lets the batch in hand finish, and returns.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use tokio::time::Instant;

use super::engine::{Engine, RecordHandler};
use super::queue::{QueueOps, error_chain};
use super::record::{Batch, Record};

/// What to poll and how.
#[derive(Debug, Clone)]
pub struct PollOptions {
    /// The source queue.
    pub queue_url: String,
    /// Messages per receive, 1 to 10.
    pub max_messages: i32,
    /// Long-poll wait, 0 to 20 seconds.
    pub wait_seconds: i32,
}

/// Totals of a polling session, reported when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollTotals {
    /// Messages received (a redelivery counts again).
    pub received: usize,
    /// Messages deleted after success or dead-lettering.
    pub deleted: usize,
    /// Messages left on the queue to be retried.
    pub failed: usize,
}

/// The poller could not start: the queue's attributes could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the attributes of {queue_url}: {reason}")]
pub struct PollError {
    queue_url: String,
    reason: String,
}

/// Longest pause between receive attempts while SQS is unreachable.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(30);

/// Polls until `shutdown` resolves. A batch in hand when it does is finished first (it is
/// bounded by the queue's visibility timeout, like an invocation by its deadline).
pub async fn poll<Q: QueueOps, H: RecordHandler>(
    engine: &Engine<Q>,
    handler: &H,
    sqs: &aws_sdk_sqs::Client,
    options: &PollOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<PollTotals, PollError> {
    let (queue_arn, visibility) = queue_facts(sqs, &options.queue_url).await?;
    tracing::info!(event = "poll_start", queue_arn, visibility_s = visibility.as_secs(), "polling");
    let mut shutdown = std::pin::pin!(shutdown);
    let mut totals = PollTotals::default();
    let mut pause = Duration::ZERO;
    loop {
        let received = tokio::select! {
            biased;
            () = &mut shutdown => break,
            received = receive(sqs, options, pause) => received,
        };
        let received_at = Instant::now();
        let messages = match received {
            Ok(messages) => {
                pause = Duration::ZERO;
                messages
            }
            Err(error) => {
                pause = (pause * 2).clamp(Duration::from_secs(1), MAX_RECEIVE_BACKOFF);
                tracing::warn!(event = "receive_failed", error, retry_in_s = pause.as_secs(), "cannot receive");
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let batch = Batch { records: messages.iter().map(|m| Record::from_message(m, &queue_arn)).collect() };
        // The messages reappear when their visibility timeout runs out: that is the deadline.
        let failed = match engine.process(&batch, received_at + visibility, handler).await {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            // Cannot happen with received messages (they all have ids); retry them all.
            Err(_) => messages.iter().filter_map(|m| m.message_id.clone()).collect::<Vec<_>>(),
        };
        let done: Vec<&Message> =
            messages.iter().filter(|m| m.message_id().is_none_or(|id| !failed.iter().any(|f| f == id))).collect();
        totals.received += messages.len();
        totals.failed += messages.len() - done.len();
        totals.deleted += delete(sqs, &options.queue_url, &done).await;
    }
    tracing::info!(
        event = "poll_stop",
        received = totals.received,
        deleted = totals.deleted,
        failed = totals.failed,
        "stopped polling"
    );
    Ok(totals)
}

async fn queue_facts(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(String, Duration), PollError> {
    let error = |reason: String| PollError { queue_url: queue_url.to_owned(), reason };
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| error(error_chain(&e)))?;
    let attributes = out.attributes.unwrap_or_default();
    let arn = attributes.get(&QueueAttributeName::QueueArn).cloned().ok_or_else(|| error("no QueueArn".into()))?;
    let visibility = attributes.get(&QueueAttributeName::VisibilityTimeout).and_then(|v| v.parse().ok()).unwrap_or(30);
    Ok((arn, Duration::from_secs(visibility)))
}

async fn receive(sqs: &aws_sdk_sqs::Client, options: &PollOptions, pause: Duration) -> Result<Vec<Message>, String> {
    tokio::time::sleep(pause).await;
    let out = sqs
        .receive_message()
        .queue_url(&options.queue_url)
        .max_number_of_messages(options.max_messages)
        .wait_time_seconds(options.wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(out.messages.unwrap_or_default())
}

/// Deletes messages in calls of at most ten; returns how many SQS confirmed. A message whose
/// delete fails is delivered again later, and the store's version check makes that harmless.
async fn delete(sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: &[&Message]) -> usize {
    let mut deleted = 0;
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .set_receipt_handle(m.receipt_handle.clone())
                    .build()
                    .ok()
            })
            .collect();
        match sqs.delete_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                deleted += out.successful.len();
                for failed in out.failed {
                    tracing::warn!(
                        event = "delete_failed",
                        entry = failed.id,
                        code = failed.code,
                        "message will be redelivered"
                    );
                }
            }
            Err(e) => tracing::warn!(
                event = "delete_failed",
                count = chunk.len(),
                error = error_chain(&e),
                "messages will be redelivered"
            ),
        }
    }
    deleted
}
