//! Where outbox entries go: the [`Transport`] trait, behind which the sync logic is tested with
//! fakes. Two real ones share the one outbox: [`SqsTransport`] (a trusted service, straight to
//! the queue with `SendMessageBatch`; it cannot pull) and `crate::api::ApiTransport` (an end
//! user, through the sync API: push and pull).

use std::future::Future;

use aws_sdk_sqs::types::{BatchResultErrorEntry, MessageAttributeValue, SendMessageBatchRequestEntry};
use notes_sync::notes::{OWNER_ATTRIBUTE, Owner};

use crate::changes::Page;

/// SQS accepts at most ten entries in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS accepts at most 256 KiB of payload in one `SendMessageBatch` (all entries together).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// SQS accepts at most 256 KiB in one message. A larger one would be refused on every try and,
/// being oldest, hold back the outbox behind it; the outbox refuses it when it is written.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// The note id: the FIFO message group, so one note's changes stay in order.
    pub note_id: &'a str,
    /// The version: with the note id, the FIFO deduplication id.
    pub version: u64,
    /// The message body.
    pub body: &'a str,
}

/// How much one [`Transport::send_batch`] may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries per call.
    pub max_entries: usize,
    /// Message bytes per call, all entries together.
    pub max_bytes: usize,
}

/// The remote's answer for one entry of a batch, in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryResult {
    /// Taken: the API accepted it, or SQS acknowledged it.
    Accepted,
    /// Refused for good; resending the same change cannot help.
    Rejected {
        /// The error class (`invalid_field`, `refused_by_queue`, ...).
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// Not taken this time (throttled, unavailable): resend later. The text says why.
    Retry(String),
}

/// The whole call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Nothing in the call is known to have arrived: the endpoint could not be reached, timed
    /// out or answered with an error. The text is the error chain.
    #[error("{reason}")]
    Unreachable {
        /// What went wrong.
        reason: String,
    },
    /// The user's sign-in no longer works (a refresh token revoked or expired, or no session):
    /// only signing in again helps. Local notes are kept.
    #[error("sign in again (notes login): {reason}")]
    SignInAgain {
        /// What the identity provider or the API said.
        reason: String,
    },
}

impl TransportError {
    /// [`TransportError::Unreachable`] with this reason.
    pub fn unreachable(reason: impl Into<String>) -> Self {
        Self::Unreachable { reason: reason.into() }
    }
}

/// A pull in flight, as [`Transport::pull`] starts it.
pub type PullResult = Result<Page, TransportError>;

/// Sends batches of changes, and (for the API) pulls what the server holds.
pub trait Transport: Sync {
    /// How much one batch may carry.
    fn limits(&self) -> Limits;

    /// Sends up to [`Limits::max_entries`] changes; one result per change, in order.
    fn send_batch(
        &self,
        batch: &[Outgoing<'_>],
    ) -> impl Future<Output = Result<Vec<EntryResult>, TransportError>> + Send;

    /// Where pulls come from (the API and the user), so that a cursor is never used for
    /// another; `None` if this transport cannot pull.
    fn pull_origin(&self) -> Option<String>;

    /// One page of the owner's changes since `since` (`None`: from the beginning); `None` if
    /// this transport cannot pull.
    fn pull(&self, since: Option<&str>) -> Option<impl Future<Output = PullResult> + Send>;
}

/// [`Transport`] over a real SQS queue, for a trusted service: it sends straight to the queue
/// (the stack's managed client policy, and a role the queue policy names) and sets the owner of
/// its notes itself, in the `owner` message attribute the consumer keys them by.
#[derive(Debug, Clone)]
pub struct SqsTransport {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    owner: MessageAttributeValue,
}

impl SqsTransport {
    /// Sends to `queue_url` through `client`, every note owned by `owner`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>, owner: &Owner) -> Self {
        let owner = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(owner.as_str())
            .build()
            .expect("data type and value are set");
        Self { client, queue_url: queue_url.into(), owner }
    }

    fn fifo(&self) -> bool {
        self.queue_url.ends_with(".fifo")
    }
}

impl Transport for SqsTransport {
    fn limits(&self) -> Limits {
        Limits { max_entries: MAX_BATCH_ENTRIES, max_bytes: MAX_BATCH_BYTES }
    }

    fn pull_origin(&self) -> Option<String> {
        None
    }

    /// A trusted service only sends: the queue has nothing to read back.
    fn pull(&self, _since: Option<&str>) -> Option<impl Future<Output = PullResult> + Send> {
        None::<std::future::Ready<PullResult>>
    }

    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<Vec<EntryResult>, TransportError> {
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body)
                    .message_attributes(OWNER_ATTRIBUTE, self.owner.clone());
                if self.fifo() {
                    // One group per note keeps its changes in order; the deduplication id makes
                    // a resend after a lost acknowledgement a no-op within SQS's 5 minutes.
                    entry = entry
                        .message_group_id(m.note_id)
                        .message_deduplication_id(dedup_id(m.note_id, m.version, m.body));
                }
                entry.build().expect("id and body are set")
            })
            .collect();
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| TransportError::unreachable(super::error_chain(&e)))?;
        let mut results = vec![None; batch.len()];
        for ok in out.successful {
            if let Some(slot) = ok.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Some(EntryResult::Accepted);
            }
        }
        for failed in out.failed {
            if let Some(slot) = failed.id.parse::<usize>().ok().and_then(|i| results.get_mut(i)) {
                *slot = Some(failed_entry(&failed));
            }
        }
        // An entry SQS did not mention is not known to have arrived: it stays pending.
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| EntryResult::Retry("no answer for this entry".into())))
            .collect())
    }
}

/// One entry SQS did not take. A sender fault (`InvalidMessageContents`, a body too large) is
/// SQS saying this message can never be taken: resending it would fail forever and hold the
/// entries behind it, so it is refused for good with SQS's reason. Anything else (throttling,
/// an internal error) is tried again.
fn failed_entry(failed: &BatchResultErrorEntry) -> EntryResult {
    let reason = format!("{}: {}", failed.code, failed.message.as_deref().unwrap_or_default());
    if failed.sender_fault {
        EntryResult::Rejected { kind: "refused_by_queue".into(), reason }
    } else {
        EntryResult::Retry(reason)
    }
}

/// The FIFO deduplication id of one change: its note id and version, and a hash of its body
/// (edits made while one is in flight keep the version, and must not be taken for a resend; the
/// body has the client id too). Ids are at most 128 characters of
/// `[A-Za-z0-9!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~]`; other characters (and long note ids) are
/// replaced by a hash.
fn dedup_id(note_id: &str, version: u64, body: &str) -> String {
    let body = fnv1a(body.as_bytes());
    let plain = format!("{note_id}:{version}:{body:016x}");
    if plain.len() <= 128 && plain.chars().all(|c| c.is_ascii_graphic()) {
        return plain;
    }
    format!("h{:016x}:{version}:{body:016x}", fnv1a(note_id.as_bytes()))
}

/// FNV-1a, 64 bits: stable across runs and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::{BatchResultErrorEntry, EntryResult, dedup_id, failed_entry};

    fn failed(code: &str, sender_fault: bool) -> BatchResultErrorEntry {
        BatchResultErrorEntry::builder()
            .id("0")
            .code(code)
            .message("the message contains characters outside the allowed set")
            .sender_fault(sender_fault)
            .build()
            .unwrap()
    }

    #[test]
    fn a_sender_fault_is_refused_for_good_and_a_server_fault_tried_again() {
        assert_eq!(
            failed_entry(&failed("InvalidMessageContents", true)),
            EntryResult::Rejected {
                kind: "refused_by_queue".into(),
                reason: "InvalidMessageContents: the message contains characters outside the allowed set".into()
            }
        );
        assert!(
            matches!(failed_entry(&failed("InternalError", false)), EntryResult::Retry(r) if r.starts_with("InternalError"))
        );
    }

    #[test]
    fn two_clients_writing_one_note_at_one_version_get_two_deduplication_ids() {
        let body = |client: &str| {
            format!(
                r#"{{"schema":1,"op":"upsert","client_id":"{client}","note":{{"id":"n-1","version":2,"title":"t","body":"b","updated_at":"2026-12-02T10:00:00Z"}}}}"#
            )
        };
        assert_ne!(dedup_id("n-1", 2, &body("laptop")), dedup_id("n-1", 2, &body("phone")));
    }

    #[test]
    fn fifo_deduplication_ids_are_one_per_change_within_sqs_rules() {
        let id = dedup_id("n-1", 3, "{a}");
        assert!(id.starts_with("n-1:3:") && id.len() == "n-1:3:".len() + 16, "{id}");
        assert_eq!(id, dedup_id("n-1", 3, "{a}"), "a resend of the same change is deduplicated");
        assert_ne!(id, dedup_id("n-1", 3, "{b}"), "a later edit at the same version is not");
        let odd = dedup_id("notes with spaces", 2, "{}");
        assert!(odd.starts_with('h') && odd.contains(":2:"), "{odd}");
        assert_ne!(odd, dedup_id("notes with spaces!", 2, "{}"));
        assert!(dedup_id(&"x".repeat(128), 1, "{}").len() <= 128);
    }
}
