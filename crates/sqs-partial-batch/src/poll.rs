//! Polling outside Lambda: long-polls a queue and runs the same engine on each batch, then
//! deletes what succeeded, as Lambda's event source mapping does. Failures are left to their
//! backoff; an empty short poll (`wait` 0) backs off before the next receive. A shutdown
//! signal stops receiving and gives a receive in flight and the batch in hand one short grace;
//! what is unfinished then is cut, reported failed and comes back after its visibility.
//! Receives from a FIFO queue carry a `ReceiveRequestAttemptId`, kept when a receive fails, so
//! the retry gets the messages SQS may have handed the failed attempt instead of leaving
//! them hidden.
//! Before the first receive it checks the queue, and refuses one that does not fit the
//! engine's settings ([`PollError`]).

use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use futures::FutureExt;
use tokio::time::Instant;

use crate::engine::Engine;
use crate::errors::error_chain;
use crate::event::{Batch, Record};
use crate::handler::RecordHandler;
use crate::queue::QueueOps;
pub use crate::queue_check::PollError;
use crate::queue_check::{QueueFacts, check_dead_letter_queue, check_queue, queue_arn, queue_facts};

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
    /// The message attributes to receive (`MessageAttributeNames`; default `All`): what the
    /// handler reads with `Record::message_attribute`, and what a dead letter carries.
    pub message_attribute_names: Vec<String>,
    /// The dead-letter queue the engine's letters go to, checked before the first receive
    /// against the source queue's redrive policy (default: not checked).
    pub dead_letter_queue_url: Option<String>,
}

impl PollOptions {
    /// Polls `queue_url` ten messages at a time, waiting up to 20 s for them.
    pub fn new(queue_url: impl Into<String>) -> Self {
        Self {
            queue_url: queue_url.into(),
            max_messages: 10,
            wait: Duration::from_secs(20),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            message_attribute_names: vec!["All".to_owned()],
            dead_letter_queue_url: None,
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

    /// The dead-letter queue the engine sends letters to: polling refuses to start unless the
    /// source queue's redrive policy names the same queue.
    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_queue_url = Some(url.into());
        self
    }

    /// The message attributes to receive: names, prefixes such as `owner.*`, or `All`; none
    /// receives none.
    pub fn with_message_attribute_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.message_attribute_names = names.into_iter().map(Into::into).collect();
        self
    }
}

/// Totals of a polling session, reported when it ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

/// Longest pause between receive attempts while SQS is unreachable.
const MAX_RECEIVE_BACKOFF: Duration = Duration::from_secs(30);

/// Longest pause between short polls (`wait` 0) that found the queue empty.
const MAX_EMPTY_BACKOFF: Duration = Duration::from_secs(20);

/// First pause after an empty short poll.
const FIRST_EMPTY_BACKOFF: Duration = Duration::from_millis(100);

/// What one receive gave, as far as the pause before the next one is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    /// At least one message.
    Some,
    /// None; `short_poll` when the receive did not wait (`wait` 0).
    Empty { short_poll: bool },
    /// SQS could not be reached or refused.
    Failed,
}

/// The pause before the next receive. An empty long poll already waited, so it needs none;
/// an empty short poll would otherwise repeat at once (a billed busy loop), so it backs off
/// exponentially up to [`MAX_EMPTY_BACKOFF`]; a failure backs off up to
/// [`MAX_RECEIVE_BACKOFF`]; messages reset the pause.
fn next_pause(pause: Duration, received: Received) -> Duration {
    match received {
        Received::Some | Received::Empty { short_poll: false } => Duration::ZERO,
        Received::Empty { short_poll: true } => (pause * 2).clamp(FIRST_EMPTY_BACKOFF, MAX_EMPTY_BACKOFF),
        Received::Failed => (pause * 2).clamp(Duration::from_secs(1), MAX_RECEIVE_BACKOFF),
    }
}

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
    check_queue(engine.settings(), &options.queue_url, &facts)?;
    if let Some(dlq_url) = &options.dead_letter_queue_url {
        check_dead_letter_queue(&options.queue_url, &facts, dlq_url, &queue_arn(sqs, dlq_url).await?)?;
    }
    let QueueFacts { arn: queue_arn, visibility, .. } = facts;
    tracing::info!(event = "poll_start", queue_arn, visibility_s = visibility.as_secs(), "polling");
    let shutdown = Box::pin(shutdown).shared();
    // One grace from the signal, for a receive in flight and the batch it brings together.
    let grace = options.shutdown_grace;
    let grace_over = shutdown
        .clone()
        .then(move |()| async move {
            tracing::info!(
                event = "shutdown_grace",
                grace_s = grace.as_secs(),
                "finishing the receive or batch in hand"
            );
            tokio::time::sleep(grace).await;
        })
        .shared();
    let fifo = queue_arn.ends_with(".fifo");
    let mut attempt = fifo.then(new_attempt_id);
    let mut totals = PollTotals::default();
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            biased;
            () = shutdown.clone() => break,
            () = tokio::time::sleep(pause) => {}
        }
        // A receive in flight is not dropped at the signal: SQS may already have handed it
        // messages, which would stay hidden for their visibility timeout with one more receive
        // counted. It has the grace to answer.
        let received = tokio::select! {
            biased;
            () = grace_over.clone() => break,
            received = receive(sqs, options, attempt.as_deref()) => received,
        };
        let received_at = Instant::now();
        let outcome = match &received {
            Ok(messages) if messages.is_empty() => Received::Empty { short_poll: options.wait.as_secs() == 0 },
            Ok(_) => Received::Some,
            Err(_) => Received::Failed,
        };
        pause = next_pause(pause, outcome);
        attempt = next_attempt(attempt, outcome);
        let messages = match received {
            Ok(messages) if !messages.is_empty() => messages,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(event = "receive_failed", error, retry_in_s = pause.as_secs(), "cannot receive");
                continue;
            }
        };
        let batch = Batch { records: messages.iter().map(|m| Record::from_message(m, &queue_arn)).collect() };
        // The messages reappear when their visibility timeout runs out: that is the deadline.
        let report = engine.process_until(&batch, received_at + visibility, grace_over.clone(), handler).await;
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

/// A new `ReceiveRequestAttemptId`: 32 hex digits (SQS allows up to 128 characters).
fn new_attempt_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The attempt id of the next FIFO receive: the same after a failed receive (SQS then answers
/// with the messages it handed the failed one, within five minutes), a new one after any
/// answer (the same id would return the batch just received).
fn next_attempt(attempt: Option<String>, received: Received) -> Option<String> {
    match received {
        Received::Failed => attempt,
        Received::Some | Received::Empty { .. } => attempt.map(|_| new_attempt_id()),
    }
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    options: &PollOptions,
    attempt: Option<&str>,
) -> Result<Vec<Message>, String> {
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
        .set_message_attribute_names(Some(options.message_attribute_names.clone()))
        // Also what the SDK's own retries of this call send: each gets the same messages.
        .set_receive_request_attempt_id(attempt.map(str::to_owned))
        .customize()
        .config_override(aws_sdk_sqs::config::Builder::default().timeout_config(timeouts))
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    Ok(out.messages.unwrap_or_default())
}

/// Deletes messages in calls of at most ten; returns how many SQS confirmed. A message whose
/// delete fails is delivered again later, where an idempotent handler finds it done.
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

    #[test]
    fn empty_short_polls_back_off_bounded_and_a_message_resets_the_pause() {
        let empty = Received::Empty { short_poll: true };
        let mut pause = Duration::ZERO;
        let mut pauses = Vec::new();
        for _ in 0..12 {
            pause = next_pause(pause, empty);
            pauses.push(pause);
        }
        assert!(pauses.iter().all(|p| *p > Duration::ZERO), "no busy loop: {pauses:?}");
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "growing: {pauses:?}");
        assert_eq!(pauses.last(), Some(&MAX_EMPTY_BACKOFF), "bounded");
        assert_eq!(next_pause(pause, Received::Some), Duration::ZERO, "reset by messages");
        assert_eq!(next_pause(pause, Received::Empty { short_poll: false }), Duration::ZERO, "a long poll waited");
        assert_eq!(next_pause(Duration::ZERO, Received::Failed), Duration::from_secs(1));
        assert_eq!(next_pause(Duration::from_secs(20), Received::Failed), MAX_RECEIVE_BACKOFF);
    }

    #[test]
    fn a_fifo_receive_keeps_its_attempt_id_only_when_it_failed() {
        let first = Some(new_attempt_id());
        assert_eq!(first.as_ref().map(String::len), Some(32));
        let retried = next_attempt(first.clone(), Received::Failed);
        assert_eq!(retried, first, "a retry asks for the failed attempt's messages");
        for answered in [Received::Some, Received::Empty { short_poll: false }] {
            let next = next_attempt(first.clone(), answered);
            assert!(next.is_some() && next != first, "{answered:?}: a new receive");
        }
        assert_eq!(next_attempt(None, Received::Some), None, "a standard queue sends none");
    }

    #[test]
    fn a_failed_delete_entry_is_named_by_its_message_id() {
        let messages = [Message::builder().message_id("m-0").build(), Message::builder().message_id("m-1").build()];
        let chunk: Vec<&Message> = messages.iter().collect();
        assert_eq!(entry_message_id(&chunk, "1"), "m-1");
        assert_eq!(entry_message_id(&chunk, "9"), "-");
    }

    #[test]
    fn a_received_message_becomes_a_record_with_its_attributes_borrowed() {
        use aws_sdk_sqs::types::MessageAttributeValue;
        let attribute =
            |t: &str, v: &str| MessageAttributeValue::builder().data_type(t).string_value(v).build().unwrap();
        let binary = MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(aws_sdk_sqs::primitives::Blob::new([1u8]))
            .build()
            .unwrap();
        let message = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "4")
            .message_attributes("owner", attribute("String", "alice"))
            .message_attributes("attempt", attribute("Number", "2"))
            .message_attributes("blob", binary)
            .build();
        let record = Record::from_message(&message, "arn:aws:sqs:us-east-1:1:q");
        assert_eq!((record.id(), record.receive_count()), (Some("m-1"), 4));
        assert_eq!(record.message_attribute("owner"), Some("alice"));
        let names: Vec<&str> = record.message_attributes.iter().map(|a| a.name.as_ref()).collect();
        assert_eq!(names, ["attempt", "owner"], "in name order; the binary one is not read");
    }
}
