//! Putting changes on the notes queue, as a trusted sender does (the sync API; a trusted service):
//! the body is the note message, the owner rides in the [`OWNER_ATTRIBUTE`] message attribute,
//! and on a FIFO queue each (owner, note) is its own message group, deduplicated per change.

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use sha2::{Digest, Sha256};

use super::owner::{OWNER_ATTRIBUTE, Owner};

/// SQS accepts at most ten entries in one `SendMessageBatch`.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS accepts at most 256 KiB of payload in one `SendMessageBatch` (all entries together,
/// bodies and attributes).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The FIFO message group of an owner's note: its changes stay in order, other notes go on.
/// A hash, because an owner and a note id together may exceed the 128 characters SQS allows.
pub fn fifo_group_id(owner: &Owner, note_id: &str) -> String {
    hex(&digest(&[owner.as_str().as_bytes(), note_id.as_bytes()]))
}

/// The FIFO deduplication id of one change: a hash of its owner and whole body, so a resend of
/// the same change within SQS's five minutes is dropped, and two different changes (two clients
/// writing the same version, say) never are.
pub fn fifo_deduplication_id(owner: &Owner, body: &str) -> String {
    hex(&digest(&[owner.as_str().as_bytes(), body.as_bytes()]))
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SQS's answer for one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// SQS has it.
    Accepted,
    /// SQS refused it as the sender's fault (`SenderFault`): sending it again cannot help.
    Refused {
        /// SQS's code and message.
        reason: String,
    },
    /// SQS failed (throttled, unavailable, no answer for this entry): send it again.
    Retry {
        /// What failed.
        reason: String,
    },
}

/// One change to send: its owner and its body (a note message).
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The owner, set in the message attribute.
    pub owner: &'a Owner,
    /// The note id (the FIFO group, with the owner).
    pub note_id: &'a str,
    /// The message body.
    pub body: &'a str,
}

impl Outgoing<'_> {
    /// Bytes SQS counts for this message: body, and the attribute's name, type and value.
    pub fn size(&self) -> usize {
        self.body.len() + OWNER_ATTRIBUTE.len() + "String".len() + self.owner.as_str().len()
    }
}

/// Splits changes into `SendMessageBatch` calls of at most ten entries and 256 KiB, in order.
pub fn batches<'o, 'a>(changes: &'o [Outgoing<'a>]) -> Vec<&'o [Outgoing<'a>]> {
    let mut calls = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, change) in changes.iter().enumerate() {
        let full = i - start == MAX_BATCH_ENTRIES || (i > start && bytes + change.size() > MAX_BATCH_BYTES);
        if full {
            calls.push(&changes[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += change.size();
    }
    if start < changes.len() {
        calls.push(&changes[start..]);
    }
    calls
}

/// Sends changes to the notes queue with `SendMessageBatch`.
#[derive(Debug, Clone)]
pub struct QueueSender {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl QueueSender {
    /// Sends to `queue_url` through `client`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    /// Sends one batch (at most [`MAX_BATCH_ENTRIES`] changes and [`MAX_BATCH_BYTES`], as
    /// [`batches`] makes them); one answer per change, in order.
    pub async fn send_batch(&self, changes: &[Outgoing<'_>]) -> Vec<Sent> {
        let fifo = self.queue_url.ends_with(".fifo");
        let entries = changes
            .iter()
            .enumerate()
            .map(|(i, change)| {
                let owner = MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(change.owner.as_str())
                    .build()
                    .expect("data type and value are set");
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(change.body)
                    .message_attributes(OWNER_ATTRIBUTE, owner);
                if fifo {
                    entry = entry
                        .message_group_id(fifo_group_id(change.owner, change.note_id))
                        .message_deduplication_id(fifo_deduplication_id(change.owner, change.body));
                }
                entry.build().expect("id and body are set")
            })
            .collect();
        let out =
            match self.client.send_message_batch().queue_url(&self.queue_url).set_entries(Some(entries)).send().await {
                Ok(out) => out,
                Err(e) => {
                    let reason = crate::errors::error_chain(&e);
                    return changes.iter().map(|_| Sent::Retry { reason: reason.clone() }).collect();
                }
            };
        let mut answers: Vec<Option<Sent>> = vec![None; changes.len()];
        for ok in out.successful {
            if let Some(slot) = ok.id.parse::<usize>().ok().and_then(|i| answers.get_mut(i)) {
                *slot = Some(Sent::Accepted);
            }
        }
        for failed in out.failed {
            if let Some(slot) = failed.id.parse::<usize>().ok().and_then(|i| answers.get_mut(i)) {
                let reason = format!("{}: {}", failed.code, failed.message.unwrap_or_default());
                *slot = Some(if failed.sender_fault { Sent::Refused { reason } } else { Sent::Retry { reason } });
            }
        }
        // An entry SQS did not mention is not known to have arrived.
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Sent::Retry { reason: "no answer for this entry".into() }))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(o: &str) -> Owner {
        Owner::parse(o).unwrap()
    }

    #[test]
    fn fifo_ids_separate_owners_notes_and_changes_within_sqs_limits() {
        let (a, b) = (owner("alice"), owner("bob"));
        assert_ne!(fifo_group_id(&a, "n"), fifo_group_id(&b, "n"));
        assert_ne!(fifo_group_id(&owner("ab"), "c"), fifo_group_id(&owner("a"), "bc"));
        assert_eq!(fifo_group_id(&a, "n"), fifo_group_id(&a, "n"));
        assert_ne!(
            fifo_deduplication_id(&a, r#"{"client_id":"x"}"#),
            fifo_deduplication_id(&a, r#"{"client_id":"y"}"#)
        );
        let long = owner(&"o".repeat(128));
        for id in [fifo_group_id(&long, &"n".repeat(128)), fifo_deduplication_id(&long, "body")] {
            assert_eq!(id.len(), 64);
            assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn batches_hold_at_most_ten_changes_and_256_kib_in_order() {
        let alice = owner("alice");
        let small: Vec<String> = (0..23).map(|i| format!("b{i}")).collect();
        let changes: Vec<Outgoing<'_>> =
            small.iter().map(|b| Outgoing { owner: &alice, note_id: "n", body: b }).collect();
        let sizes: Vec<usize> = batches(&changes).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [10, 10, 3]);

        let big = "x".repeat(100 * 1024);
        let changes: Vec<Outgoing<'_>> = (0..5).map(|_| Outgoing { owner: &alice, note_id: "n", body: &big }).collect();
        let calls = batches(&changes);
        assert_eq!(calls.iter().map(|c| c.len()).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(calls.iter().all(|c| c.iter().map(Outgoing::size).sum::<usize>() <= MAX_BATCH_BYTES));
        assert!(batches(&[]).is_empty());
    }
}
