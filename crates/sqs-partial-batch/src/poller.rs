//! Polling outside Lambda: long-polls a queue and runs the same engine on each batch, then
//! deletes what succeeded, as Lambda's event source mapping does. Failures are left to their
//! backoff. A shutdown signal stops receiving and gives the batch in hand a short grace; what
//! is unfinished then is cut, reported failed and comes back after its visibility.
//!
//! Before the first receive it checks the queue: a queue without a redrive policy would retry
//! a failing message until retention drops it, a `maxReceiveCount` other than the engine's
//! would mislabel the final attempt, and a deadline margin not shorter than the visibility
//! timeout would cut every record before it ran.

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName};
use futures::FutureExt;
use tokio::time::Instant;

use super::engine::{Engine, RecordHandler};
use super::queue::{QueueError, QueueOps};
use super::record::{Batch, Record};
use crate::errors::error_chain;

/// How long the batch in hand may still run after a shutdown signal, unless set otherwise.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What to poll and how: [`PollOptions::new`] and its `with_` methods.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PollOptions {
    /// The source queue.
    pub queue_url: String,
    /// Messages per receive, 1 to 10 (default 10).
    pub max_messages: u8,
    /// Long-poll wait, at most 20 seconds (default 20).
    pub wait: Duration,
    /// After a shutdown signal, how long the batch in hand may still run (default 10 s).
    pub shutdown_grace: Duration,
}

impl PollOptions {
    /// Polls `queue_url` ten messages at a time, waiting up to 20 s for them.
    pub fn new(queue_url: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            max_messages: 10,
            wait: Duration::from_secs(20),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Messages per receive, clamped to SQS's 1 to 10.
    pub fn with_max_messages(mut self, max_messages: u8) -> Self {
        self.max_messages = max_messages.clamp(1, 10);
        self
    }

    /// The long-poll wait, whole seconds, clamped to SQS's 20 s.
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait.min(Duration::from_secs(20));
        self
    }

    /// How long the batch in hand may still run after a shutdown signal.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
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
    /// Messages done but whose delete SQS did not confirm: they come back, and an idempotent handler finds them done.
    pub delete_failed: usize,
}

/// The poller cannot start: the queue's attributes cannot be read, or they do not fit the
/// engine's settings. The variants carry the values, so that an application can name its own
/// configuration for them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// `GetQueueAttributes` failed, or its answer lacks the queue's ARN.
    #[error("{queue_url}: cannot read the queue's attributes")]
    Attributes {
        /// The source queue.
        queue_url: String,
        /// Why.
        #[source]
        source: QueueError,
    },
    /// Without a redrive policy a failing message is retried until retention drops it.
    #[error(
        "{queue_url}: the queue has no redrive policy: a message that keeps failing would be retried until its \
         retention period drops it. Give it a RedrivePolicy to a dead-letter queue"
    )]
    NoRedrivePolicy {
        /// The source queue.
        queue_url: String,
    },
    /// The redrive policy's `maxReceiveCount` cannot be read.
    #[error("{queue_url}: its RedrivePolicy has no readable maxReceiveCount: {policy}")]
    UnreadableRedrivePolicy {
        /// The source queue.
        queue_url: String,
        /// The policy, cleaned for a log line.
        policy: String,
    },
    /// The queue's `maxReceiveCount` is not [`crate::Settings::max_receive_count`].
    #[error(
        "{queue_url}: the queue's redrive policy has maxReceiveCount={queue} but the engine's max_receive_count={engine}: \
         set them equal, so the consumer knows which failure is the last"
    )]
    MaxReceiveCount {
        /// The source queue.
        queue_url: String,
        /// The queue's.
        queue: u32,
        /// The engine's.
        engine: u32,
    },
    /// The deadline margin is not shorter than the queue's visibility timeout.
    #[error(
        "{queue_url}: the deadline margin ({} ms) must be less than the queue's VisibilityTimeout={} s ({} ms): {}",
        margin.as_millis(), visibility.as_secs(), visibility.as_millis(), crate::settings::MARGIN_CONFLICT
    )]
    MarginTooLong {
        /// The source queue.
        queue_url: String,
        /// [`crate::Settings::deadline_margin`].
        margin: Duration,
        /// The queue's `VisibilityTimeout`.
        visibility: Duration,
    },
}

/// Longest pause between receive attempts while SQS is unreachable.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(30);

/// How much longer than its wait a receive's HTTP attempt may take: SQS answers a long poll
/// at the end of the wait, and the answer needs time to arrive.
const RECEIVE_ATTEMPT_EXTRA: Duration = Duration::from_secs(10);

/// Polls until `shutdown` resolves. A batch in hand then has `options.shutdown_grace` to
/// finish before it is cut.
pub async fn poll<Q: QueueOps, H: RecordHandler>(
    engine: &Engine<Q>,
    handler: &H,
    sqs: &aws_sdk_sqs::Client,
    options: &PollOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<PollTotals, PollError> {
    let facts = queue_facts(sqs, &options.queue_url).await?;
    check_queue(engine, &options.queue_url, &facts)?;
    let QueueFacts { arn: queue_arn, visibility, .. } = facts;
    tracing::info!(event = "poll_start", queue_arn, visibility_s = visibility.as_secs(), "polling");
    let shutdown = Box::pin(shutdown).shared();
    let mut totals = PollTotals::default();
    let mut pause = Duration::ZERO;
    loop {
        let received = tokio::select! {
            biased;
            () = shutdown.clone() => break,
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
        let grace = options.shutdown_grace;
        let stop = shutdown.clone().then(|()| async move {
            tracing::info!(event = "shutdown_grace", grace_s = grace.as_secs(), "finishing the batch in hand");
            tokio::time::sleep(grace).await;
        });
        // The messages reappear when their visibility timeout runs out: that is the deadline.
        let report = engine.process_until(&batch, received_at + visibility, stop, handler).await;
        // The batch's records are the messages, in order: a report's index is a message's.
        let done: Vec<&Message> = report.done().map(|i| &messages[i]).collect();
        totals.received += messages.len();
        totals.failed += messages.len() - done.len();
        let deleted = delete(sqs, &options.queue_url, &done).await;
        totals.deleted += deleted;
        totals.delete_failed += done.len() - deleted;
    }
    tracing::info!(
        event = "poll_stop",
        received = totals.received,
        deleted = totals.deleted,
        failed = totals.failed,
        delete_failed = totals.delete_failed,
        "stopped polling"
    );
    Ok(totals)
}

/// What the poller needs to know about its queue.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueFacts {
    arn: String,
    visibility: Duration,
    /// The redrive policy's `maxReceiveCount`, if the queue has one.
    max_receive_count: Option<u32>,
}

async fn queue_facts(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<QueueFacts, PollError> {
    let unreadable = |source: QueueError| PollError::Attributes { queue_url: queue_url.to_owned(), source };
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| unreadable(QueueError::new(e)))?;
    let attributes = out.attributes.unwrap_or_default();
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .ok_or_else(|| unreadable(QueueError::new("no QueueArn")))?;
    let visibility = attributes.get(&QueueAttributeName::VisibilityTimeout).and_then(|v| v.parse().ok()).unwrap_or(30);
    let max_receive_count = match attributes.get(&QueueAttributeName::RedrivePolicy) {
        None => None,
        Some(policy) => Some(redrive_max_receive_count(policy).ok_or_else(|| PollError::UnreadableRedrivePolicy {
            queue_url: queue_url.to_owned(),
            policy: crate::reason::clean(policy),
        })?),
    };
    Ok(QueueFacts { arn, visibility: Duration::from_secs(visibility), max_receive_count })
}

/// `maxReceiveCount` of a redrive policy; SQS writes it as a number or as a string.
fn redrive_max_receive_count(policy: &str) -> Option<u32> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    match &policy["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn check_queue<Q: QueueOps>(engine: &Engine<Q>, queue_url: &str, facts: &QueueFacts) -> Result<(), PollError> {
    let queue_url = queue_url.to_owned();
    let settings = engine.settings();
    match facts.max_receive_count {
        None => return Err(PollError::NoRedrivePolicy { queue_url }),
        Some(queue) if queue != settings.max_receive_count => {
            return Err(PollError::MaxReceiveCount { queue_url, queue, engine: settings.max_receive_count });
        }
        Some(_) => {}
    }
    if settings.deadline_margin >= facts.visibility {
        return Err(PollError::MarginTooLong {
            queue_url,
            margin: settings.deadline_margin,
            visibility: facts.visibility,
        });
    }
    Ok(())
}

async fn receive(sqs: &aws_sdk_sqs::Client, options: &PollOptions, pause: Duration) -> Result<Vec<Message>, String> {
    tokio::time::sleep(pause).await;
    // The client's attempt timeout is short (seconds) for every other call; a long poll waits
    // up to 20 s by design. Cut early, the receive is retried while SQS may already have handed
    // a message to the abandoned attempt: invisible for its visibility timeout, one more
    // receive counted, and after enough of those, redriven without ever being processed.
    let wait = Duration::from_secs(options.wait.as_secs());
    let timeouts = TimeoutConfig::builder().operation_attempt_timeout(wait + RECEIVE_ATTEMPT_EXTRA).build();
    let out = sqs
        .receive_message()
        .queue_url(&options.queue_url)
        .max_number_of_messages(i32::from(options.max_messages))
        // At most 20 (PollOptions::with_wait): always fits.
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_attribute_names("All")
        .customize()
        .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
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
                        message_id = entry_message_id(chunk, &failed.id),
                        code = failed.code,
                        "message will be redelivered"
                    );
                }
            }
            Err(e) => {
                let ids: Vec<&str> = chunk.iter().map(|m| m.message_id().unwrap_or("-")).collect();
                tracing::warn!(
                    event = "delete_failed",
                    message_ids = ?ids,
                    error = error_chain(&e),
                    "messages will be redelivered"
                )
            }
        }
    }
    deleted
}

/// The message id behind a batch entry id (its index in the chunk).
fn entry_message_id<'m>(chunk: &[&'m Message], entry_id: &str) -> &'m str {
    entry_id.parse::<usize>().ok().and_then(|i| chunk.get(i)).and_then(|m| m.message_id()).unwrap_or("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;

    struct NoQueues;

    impl QueueOps for NoQueues {
        async fn dead_letter(&self, _: &crate::DeadLetter<'_>) -> Result<(), crate::QueueError> {
            unreachable!()
        }
        async fn change_visibility(
            &self,
            _: &str,
            _: &[crate::VisibilityChange<'_>],
        ) -> Result<Vec<(String, String)>, crate::QueueError> {
            unreachable!()
        }
    }

    fn facts(max_receive_count: Option<u32>, visibility_s: u64) -> QueueFacts {
        QueueFacts { arn: "arn".into(), visibility: Duration::from_secs(visibility_s), max_receive_count }
    }

    #[test]
    fn redrive_policies_give_their_max_receive_count_as_number_or_string() {
        assert_eq!(redrive_max_receive_count(r#"{"deadLetterTargetArn":"a","maxReceiveCount":5}"#), Some(5));
        assert_eq!(redrive_max_receive_count(r#"{"deadLetterTargetArn":"a","maxReceiveCount":"7"}"#), Some(7));
        assert_eq!(redrive_max_receive_count(r#"{"deadLetterTargetArn":"a"}"#), None);
    }

    #[test]
    fn a_queue_without_redrive_a_max_receive_count_mismatch_or_a_margin_too_long_is_refused() {
        let engine = Engine::new(Settings::default(), NoQueues);
        assert!(check_queue(&engine, "q", &facts(Some(5), 30)).is_ok());
        let err = check_queue(&engine, "q", &facts(None, 30)).unwrap_err().to_string();
        assert!(err.starts_with("q: the queue has no redrive policy"), "{err}");
        let err = check_queue(&engine, "q", &facts(Some(3), 30)).unwrap_err().to_string();
        assert!(err.contains("maxReceiveCount=3 but the engine's max_receive_count=5"), "{err}");
        let err = check_queue(&engine, "q", &facts(Some(5), 2)).unwrap_err().to_string();
        assert!(
            err.contains("the deadline margin (2000 ms) must be less than the queue's VisibilityTimeout=2 s"),
            "{err}"
        );
    }

    #[test]
    fn a_failed_delete_entry_is_named_by_its_message_id() {
        let messages = [Message::builder().message_id("m-0").build(), Message::builder().message_id("m-1").build()];
        let chunk: Vec<&Message> = messages.iter().collect();
        assert_eq!(entry_message_id(&chunk, "1"), "m-1");
        assert_eq!(entry_message_id(&chunk, "9"), "-");
    }
}
