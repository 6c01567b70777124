//! Operator tools for the dead-letter queue: look, move everything back, move chosen messages
//! back, purge.
//!
//! SQS has no true peek. [`Dlq::peek`] receives every message with a short visibility
//! timeout (so it sees each once) and then makes each visible again at once. What that
//! changes: each message's `ApproximateReceiveCount` on the DLQ rises by one per look; the
//! DLQ has no redrive policy, so that moves nothing, and the consumer's own `receive_count`
//! attribute (the count that mattered) is untouched. For a moment the messages are in flight,
//! not visible; if the process dies then, they become visible again after the hold (60 s).
//! Standard queues promise no order; on a FIFO DLQ the release restores each group's head.
//! Limits: SQS lets at most 120,000 messages of a standard queue be in flight (20,000 for
//! FIFO), so a larger DLQ is listed in part; and a FIFO queue hands out no more of a message
//! group while some of it is in flight, so a FIFO DLQ shows each group's first batch.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use serde::Serialize;

use super::error_chain;
use notes_sync::notes::OWNER_ATTRIBUTE;
use sqs_partial_batch::queue::attribute;

/// How long a peek hides the messages it has seen (until it releases them): long enough to
/// read a large DLQ without meeting the first messages again.
const HOLD_SECONDS: i32 = 60;

/// The kind shown for messages that SQS's redrive policy moved (they carry no attributes).
pub const REDRIVE_POLICY_KIND: &str = "max_receive_count";

/// The kind shown for letters whose dead-letter attributes the consumer did not write.
pub const UNVERIFIED_KIND: &str = "unverified";

/// Whether a letter's `SenderId` is the consumer's identity `consumer`: the same id, or for
/// an assumed role (`AROA…:session`, a Lambda function's identity) the role's id before the
/// session name.
pub fn sent_by(sender_id: &str, consumer: &str) -> bool {
    sender_id == consumer || sender_id.split_once(':').is_some_and(|(role, _)| role == consumer)
}

/// What went wrong in a DLQ command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DlqError {
    /// A failed SQS call.
    #[error("{action}: {reason}")]
    Sqs {
        /// What was being done.
        action: &'static str,
        /// The SDK's error chain.
        reason: String,
    },
    /// The queue given as the DLQ is not one; nothing was received, moved or purged.
    #[error("refusing {url}: {why}")]
    NotADeadLetterQueue {
        /// The queue URL given.
        url: String,
        /// Why it is not a dead-letter queue.
        why: String,
    },
}

fn fail<E: std::error::Error>(action: &'static str) -> impl FnOnce(E) -> DlqError {
    move |e| DlqError::Sqs { action, reason: error_chain(&e) }
}

/// One dead letter, as seen by [`Dlq::peek`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The DLQ message id.
    pub message_id: String,
    /// `error_kind`, or [`REDRIVE_POLICY_KIND`] for messages the redrive policy moved.
    pub kind: String,
    /// `error_reason`, if the consumer gave one.
    pub reason: Option<String>,
    /// The message id it had on the source queue.
    pub source_message_id: Option<String>,
    /// The consumer's `receive_count` attribute, else SQS's count (which each peek raises).
    pub receive_count: Option<u64>,
    /// Seconds since it was first sent.
    pub age_s: Option<u64>,
    /// When it was sent to the DLQ (SQS's `SentTimestamp`, ms since the epoch).
    pub sent_timestamp_ms: Option<i64>,
    /// SQS's `ApproximateReceiveCount` on the DLQ (each look raises it by one).
    pub dlq_receive_count: Option<u64>,
    /// SQS's `SenderId`: who sent it to the DLQ.
    pub sender_id: Option<String>,
    /// Every message attribute, as text (whatever the consumer writes).
    pub attributes: BTreeMap<String, String>,
    /// The original body.
    pub body: String,
    #[serde(skip)]
    receipt_handle: String,
    #[serde(skip)]
    group_id: Option<String>,
}

impl DeadLetter {
    #[cfg(test)]
    fn from_message(m: Message, now_ms: i64) -> Self {
        Self::from_message_by(m, now_ms, None)
    }

    /// The letter, its dead-letter metadata trusted only when `consumer` sent it.
    fn from_message_by(m: Message, now_ms: i64, consumer: Option<&str>) -> Self {
        let attributes: BTreeMap<String, String> = m
            .message_attributes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
            .collect();
        let system = m.attributes.unwrap_or_default();
        let sys = |name: MessageSystemAttributeName| system.get(&name).cloned();
        let sent_ms = sys(MessageSystemAttributeName::SentTimestamp).and_then(|t| t.parse::<i64>().ok());
        let sender = sys(MessageSystemAttributeName::SenderId);
        // The consumer's attributes count only on a letter the consumer sent: any sender can
        // set them, and a redrive-policy move keeps them. Without the consumer's id to compare
        // with, they are all unverified.
        let trusted = consumer.is_some_and(|c| sender.as_deref().is_some_and(|s| sent_by(s, c)));
        let claimed = |name: &str| attributes.get(name).filter(|_| trusted).cloned();
        let kind = match (claimed(attribute::ERROR_KIND), attributes.contains_key(attribute::ERROR_KIND)) {
            (Some(kind), _) => kind,
            (None, true) => UNVERIFIED_KIND.to_owned(),
            (None, false) => REDRIVE_POLICY_KIND.to_owned(),
        };
        Self {
            message_id: m.message_id.unwrap_or_default(),
            kind,
            reason: claimed(attribute::ERROR_REASON),
            source_message_id: claimed(attribute::SOURCE_MESSAGE_ID),
            receive_count: claimed(attribute::RECEIVE_COUNT)
                .or_else(|| sys(MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok()),
            age_s: sent_ms.map(|t| ((now_ms - t).max(0) / 1000) as u64),
            sent_timestamp_ms: sent_ms,
            dlq_receive_count: sys(MessageSystemAttributeName::ApproximateReceiveCount).and_then(|c| c.parse().ok()),
            sender_id: sender.clone(),
            attributes,
            body: m.body.unwrap_or_default(),
            receipt_handle: m.receipt_handle.unwrap_or_default(),
            group_id: sys(MessageSystemAttributeName::MessageGroupId),
        }
    }
}

/// Which dead letters a selective redrive takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Those with this `error_kind`.
    Kind(String),
    /// Those with these ids (DLQ message id or source message id).
    Ids(Vec<String>),
    /// Every one (with [`Ages`], those of an age).
    All,
}

impl Selection {
    /// Whether `letter` is one of those chosen.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        match self {
            Self::Kind(kind) => letter.kind == *kind,
            Self::Ids(ids) => ids
                .iter()
                .any(|id| *id == letter.message_id || Some(id.as_str()) == letter.source_message_id.as_deref()),
            Self::All => true,
        }
    }
}

/// Bounds on a letter's age, from its `SentTimestamp` (for a letter the redrive policy moved,
/// when it was first sent to the source queue); an unset bound always holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ages {
    /// Only letters sent longer ago than this.
    pub older_than: Option<Duration>,
    /// Only letters sent more recently than this.
    pub newer_than: Option<Duration>,
}

impl Ages {
    /// Whether `letter`'s age at `now_ms` lies within the bounds (a letter with no sent time
    /// only when neither is set).
    pub fn admit(&self, letter: &DeadLetter, now_ms: i64) -> bool {
        within_age(letter.sent_timestamp_ms, now_ms, self.older_than, self.newer_than)
    }
}

/// What one look at the DLQ received, and how much SQS says it holds.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every letter received, once each, left in place.
    pub letters: Vec<DeadLetter>,
    /// SQS's approximate count of messages in the DLQ (visible and in flight) when the look
    /// ended, these included.
    pub approximate_depth: u64,
}

impl Listing {
    /// `Some(approximate depth)` when the DLQ holds more than the look received: letters held
    /// by another reader (or by a redrive under way), or more than one look gets before its
    /// first holds run out.
    pub fn partial(&self) -> Option<u64> {
        (self.approximate_depth > self.letters.len() as u64).then_some(self.approximate_depth)
    }

    /// The letters whose age now lies within `ages`.
    pub fn aged(self, ages: Ages) -> Vec<DeadLetter> {
        let now = super::outbox::now_ms();
        self.letters.into_iter().filter(|l| ages.admit(l, now)).collect()
    }
}

/// What a selective redrive did. `resent = deleted` unless a delete failed (then that
/// message is in both queues: a duplicate, which the consumer's version check absorbs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SelectiveReport {
    /// Dead letters that matched.
    pub matched: u64,
    /// Of those, sent to the source queue.
    pub resent: u64,
    /// Of those, deleted from the DLQ after their resend was acknowledged.
    pub deleted: u64,
    /// Dead letters left in the DLQ (not matched, or not resent).
    pub kept: u64,
    /// Messages in the DLQ the look did not receive, so could not choose (SQS's approximate
    /// count): held by another reader, or more than one look gets. Run it again for those.
    pub not_looked_at: u64,
    /// The bodies that were resent (a client marks its own notes as no longer rejected).
    #[serde(skip)]
    pub resent_bodies: Vec<String>,
}

/// A move task's state, from `ListMessageMoveTasks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveTask {
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED.
    pub status: String,
    /// Messages moved so far.
    pub moved: u64,
    /// Messages to move, when known.
    pub to_move: Option<u64>,
    /// Why it failed, if it did.
    pub failure_reason: Option<String>,
}

/// The dead-letter queue and the source queue it drains into.
#[derive(Debug, Clone)]
pub struct Dlq {
    client: aws_sdk_sqs::Client,
    dlq_url: String,
    consumer_sender_id: Option<String>,
}

impl Dlq {
    /// The DLQ at `dlq_url`.
    pub fn new(client: aws_sdk_sqs::Client, dlq_url: impl Into<String>) -> Self {
        Self { client, dlq_url: dlq_url.into(), consumer_sender_id: None }
    }

    /// Trusts the dead-letter attributes of letters whose `SenderId` is `id` (the consumer's
    /// role id; on LocalStack its account id); without it they show as unverified.
    pub fn with_consumer_sender_id(mut self, id: Option<String>) -> Self {
        self.consumer_sender_id = id;
        self
    }

    /// Checks that the queue is a dead-letter queue: it has no redrive policy of its own and
    /// some queue names it as its dead-letter target (`ListDeadLetterSourceQueues`). Every
    /// command calls this first, so a source queue given by mistake is never received from
    /// (which would raise its receive counts towards its own redrive) nor purged.
    pub async fn verify(&self) -> Result<(), DlqError> {
        let refuse = |why: String| DlqError::NotADeadLetterQueue { url: self.dlq_url.clone(), why };
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(fail("read the DLQ's redrive policy"))?;
        if let Some(policy) = out.attributes.unwrap_or_default().get(&QueueAttributeName::RedrivePolicy) {
            return Err(refuse(format!(
                "it has a redrive policy of its own ({policy}): it is a source queue, not a dead-letter queue"
            )));
        }
        let sources = self
            .client
            .list_dead_letter_source_queues()
            .queue_url(&self.dlq_url)
            .max_results(1)
            .send()
            .await
            .map_err(fail("list the DLQ's source queues"))?;
        if sources.queue_urls.is_empty() {
            return Err(refuse(
                "no queue names it as its dead-letter target (ListDeadLetterSourceQueues is empty)".into(),
            ));
        }
        Ok(())
    }

    /// Every message in the DLQ, left in place (see the module docs for what a look changes),
    /// and whether that was all of them.
    pub async fn peek(&self) -> Result<Listing, DlqError> {
        let listing = self.look().await?;
        self.release(&listing.letters).await?;
        Ok(listing)
    }

    /// Receives every letter it can, held, and then reads the depth: the letters held count
    /// in it, so more than those means some were not received.
    async fn look(&self) -> Result<Listing, DlqError> {
        let letters = self.receive_all().await?;
        match self.depth().await {
            Ok(approximate_depth) => Ok(Listing { letters, approximate_depth }),
            Err(e) => {
                let _ = self.release(&letters).await;
                Err(e)
            }
        }
    }

    /// Receives until the queue answers empty, holding what it got for [`HOLD_SECONDS`].
    async fn receive_all(&self) -> Result<Vec<DeadLetter>, DlqError> {
        let mut letters: Vec<DeadLetter> = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let out = self
                .client
                .receive_message()
                .queue_url(&self.dlq_url)
                .max_number_of_messages(10)
                .visibility_timeout(HOLD_SECONDS)
                // A long poll asks every SQS server; a short one may answer empty while
                // messages remain. One second is enough to tell "empty" reliably.
                .wait_time_seconds(1)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(fail("receive from the DLQ"))?;
            let batch = out.messages.unwrap_or_default();
            if batch.is_empty() {
                break;
            }
            let now = super::outbox::now_ms();
            let mut new = 0;
            for m in batch {
                let letter = DeadLetter::from_message_by(m, now, self.consumer_sender_id.as_deref());
                if seen.insert(letter.message_id.clone()) {
                    letters.push(letter);
                    new += 1;
                }
            }
            // Only messages seen before: the hold ran out on a very large queue; stop here
            // rather than go round again.
            if new == 0 {
                break;
            }
        }
        Ok(letters)
    }

    /// Makes held messages visible again at once.
    async fn release(&self, letters: &[DeadLetter]) -> Result<(), DlqError> {
        for chunk in letters.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&l.receipt_handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            self.client
                .change_message_visibility_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(fail("release DLQ messages"))?;
        }
        Ok(())
    }

    /// Resends the chosen dead letters' original bodies to `source_url`, then deletes each
    /// one whose resend SQS acknowledged; the others are released untouched. Resend first: a
    /// crash between the two leaves a duplicate, never a loss.
    pub async fn redrive_selected(
        &self,
        source_url: &str,
        selection: &Selection,
        ages: Ages,
    ) -> Result<SelectiveReport, DlqError> {
        let listing = self.look().await?;
        let not_looked_at = listing.partial().map_or(0, |depth| depth - listing.letters.len() as u64);
        let now = super::outbox::now_ms();
        let (chosen, others): (Vec<_>, Vec<_>) =
            listing.letters.into_iter().partition(|l| selection.matches(l) && ages.admit(l, now));
        self.release(&others).await?;
        let mut report = SelectiveReport {
            matched: chosen.len() as u64,
            kept: others.len() as u64,
            not_looked_at,
            ..Default::default()
        };
        for (i, chunk) in chosen.chunks(10).enumerate() {
            if let Err(e) = self.redrive_chunk(source_url, chunk, &mut report).await {
                // Whatever is still held goes back at once, not after the hold: this chunk
                // (a resent one then shows twice, which the consumer's version check absorbs)
                // and every later one.
                let _ = self.release(&chosen[i * 10..]).await;
                return Err(e);
            }
        }
        Ok(report)
    }

    /// Resends one chunk (≤ 10), deletes what SQS acknowledged, releases the rest.
    async fn redrive_chunk(
        &self,
        source_url: &str,
        chunk: &[DeadLetter],
        report: &mut SelectiveReport,
    ) -> Result<(), DlqError> {
        let fifo = source_url.ends_with(".fifo");
        {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut e = SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(&l.body);
                    // The owner travels with the change: without it the consumer would
                    // dead-letter the resend as `missing_owner`.
                    if let Some(owner) = l.attributes.get(OWNER_ATTRIBUTE) {
                        let owner = MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(owner)
                            .build()
                            .expect("data type and value are set");
                        e = e.message_attributes(OWNER_ATTRIBUTE, owner);
                    }
                    if fifo {
                        // A fresh deduplication id: the original one may still be inside SQS's
                        // 5-minute window, which would swallow the redrive silently.
                        e = e
                            .message_group_id(l.group_id.as_deref().unwrap_or("redrive"))
                            .message_deduplication_id(format!("redrive-{}", l.message_id));
                    }
                    e.build().expect("id and body are set")
                })
                .collect();
            let out = self
                .client
                .send_message_batch()
                .queue_url(source_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(fail("resend to the source queue"))?;
            let acked_ids: HashSet<usize> = out.successful.iter().filter_map(|s| s.id.parse::<usize>().ok()).collect();
            let (acked, refused): (Vec<_>, Vec<_>) = chunk.iter().enumerate().partition(|(i, _)| acked_ids.contains(i));
            let acked: Vec<&DeadLetter> = acked.into_iter().map(|(_, l)| l).collect();
            let refused: Vec<DeadLetter> = refused.into_iter().map(|(_, l)| l.clone()).collect();
            report.resent += acked.len() as u64;
            report.resent_bodies.extend(acked.iter().map(|l| l.body.clone()));
            report.kept += refused.len() as u64;
            // Not resent: visible again now, not hidden for the rest of the hold.
            self.release(&refused).await?;
            if acked.is_empty() {
                return Ok(());
            }
            let deletes = acked
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&l.receipt_handle)
                        .build()
                        .expect("id and handle are set")
                })
                .collect();
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(deletes))
                .send()
                .await
                .map_err(fail("delete resent messages from the DLQ"))?;
            report.deleted += out.successful.len() as u64;
        }
        Ok(())
    }

    /// Starts `StartMessageMoveTask` from the DLQ to `source_url` (named explicitly: dead
    /// letters the consumer wrote itself record no source queue). Returns the task handle.
    pub async fn start_redrive(&self, source_url: &str, max_per_second: Option<i32>) -> Result<String, DlqError> {
        let source_arn = self.arn(&self.dlq_url).await?;
        let destination_arn = self.arn(source_url).await?;
        let out = self
            .client
            .start_message_move_task()
            .source_arn(source_arn)
            .destination_arn(destination_arn)
            .set_max_number_of_messages_per_second(max_per_second)
            .send()
            .await
            .map_err(fail("start the move task"))?;
        Ok(out.task_handle.unwrap_or_default())
    }

    /// The move task started with `handle` (not merely the newest: another operator may
    /// have started one since), if SQS still lists it.
    pub async fn redrive_progress(&self, handle: &str) -> Result<Option<MoveTask>, DlqError> {
        let source_arn = self.arn(&self.dlq_url).await?;
        let out = self
            .client
            .list_message_move_tasks()
            .source_arn(source_arn)
            // SQS keeps the last 10 tasks per source queue.
            .max_results(10)
            .send()
            .await
            .map_err(fail("list move tasks"))?;
        Ok(task_with_handle(out.results.unwrap_or_default(), handle))
    }

    /// Deletes every message in the DLQ (`PurgeQueue`; SQS may take up to 60 s).
    pub async fn purge(&self) -> Result<(), DlqError> {
        self.client.purge_queue().queue_url(&self.dlq_url).send().await.map_err(fail("purge the DLQ"))?;
        Ok(())
    }

    /// Visible plus in-flight messages in the DLQ.
    pub async fn depth(&self) -> Result<u64, DlqError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.dlq_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(fail("read the DLQ depth"))?;
        Ok(out.attributes.unwrap_or_default().values().filter_map(|v| v.parse::<u64>().ok()).sum())
    }

    async fn arn(&self, url: &str) -> Result<String, DlqError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(fail("read a queue ARN"))?;
        out.attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| DlqError::Sqs { action: "read a queue ARN", reason: format!("{url} has no QueueArn") })
    }
}

/// The listed task whose handle is `handle`. A finished task is listed without its handle
/// (SQS returns one only while it runs), so when none carries it, the newest finished task
/// is the one started: it cannot be older than the start, as SQS lists the newest first and
/// refuses a second running task per source.
fn task_with_handle(tasks: Vec<aws_sdk_sqs::types::ListMessageMoveTasksResultEntry>, handle: &str) -> Option<MoveTask> {
    let by_handle = tasks.iter().position(|t| t.task_handle.as_deref() == Some(handle));
    let index = by_handle
        .or_else(|| tasks.iter().position(|t| t.task_handle.is_none() && t.status.as_deref() != Some("RUNNING")))?;
    let t = tasks.into_iter().nth(index)?;
    Some(MoveTask {
        status: t.status.unwrap_or_default(),
        moved: t.approximate_number_of_messages_moved.max(0) as u64,
        to_move: t.approximate_number_of_messages_to_move.map(|n| n.max(0) as u64),
        failure_reason: t.failure_reason,
    })
}

/// `text` with every control character (and the invisible ones that reorder or hide text:
/// bidirectional overrides, zero-width marks) written as an escape, so that a dead letter's
/// fields, which any sender chooses, cannot move a terminal's cursor, clear it or fake lines.
pub fn escape(text: &str) -> String {
    let invisible =
        |c: char| matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || invisible(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits between two progress reads of a move task.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Parses a duration such as `90s`, `15m`, `2h` or `7d` (a positive whole number and one unit).
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected a number and s, m, h or d (e.g. 15m)");
    let unit = text.chars().last().ok_or_else(bad)?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = text[..text.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(scale).map(std::time::Duration::from_secs).ok_or_else(bad)
}

/// Whether a letter sent at `sent_ms` is older than `older` and newer than `newer` at `now_ms`
/// (an unset bound always holds; a letter with no sent time passes only when both are unset).
pub fn within_age(
    sent_ms: Option<i64>,
    now_ms: i64,
    older: Option<std::time::Duration>,
    newer: Option<std::time::Duration>,
) -> bool {
    if older.is_none() && newer.is_none() {
        return true;
    }
    let Some(sent) = sent_ms else { return false };
    let age = now_ms.saturating_sub(sent);
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    older.is_none_or(|d| age > ms(d)) && newer.is_none_or(|d| age < ms(d))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod age_tests {
    use super::{parse_age, within_age};
    use std::time::Duration;

    #[test]
    fn parse_age_reads_each_unit_and_names_a_bad_value() {
        assert_eq!(parse_age("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_age("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "7", "d", "-1h", "1.5h", "3w", "1 h"] {
            assert!(parse_age(bad).unwrap_err().contains(&format!("{bad:?}")), "{bad}");
        }
    }

    #[test]
    fn within_age_keeps_letters_between_the_bounds() {
        let now = 10_000_000;
        let hour = Some(Duration::from_secs(3600));
        let old = Some(now - 7_200_000);
        let young = Some(now - 60_000);
        assert!(within_age(old, now, hour, None) && !within_age(young, now, hour, None));
        assert!(within_age(young, now, None, hour) && !within_age(old, now, None, hour));
        assert!(within_age(None, now, None, None) && !within_age(None, now, hour, None));
    }
}
