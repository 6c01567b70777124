//! The bench's inputs: SQS events as Lambda delivers them (every attribute, ~1.3 KB per
//! record around a ~300-byte note message), the three cases, an in-memory note store that
//! fails the notes a case marks as flaky, and queue calls that do nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use notes_sync::notes::{NoteMessage, NoteStore, Owner, Rejection, StoreError, Written};
use serde_json::json;
use sqs_partial_batch::{DeadLetter, QueueError, QueueOps, VisibilityChange};

/// Note ids with this prefix fail in the store (transiently), in every consumer measured.
pub const FLAKY_PREFIX: &str = "flaky-";

/// What a batch holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// A standard queue, every note stored.
    StandardOk,
    /// A standard queue, every tenth note failed by the store (transient).
    StandardFlaky,
    /// A FIFO queue, records spread over ten message groups, every note stored.
    Fifo10Groups,
}

impl Case {
    pub const ALL: [Case; 3] = [Case::StandardOk, Case::StandardFlaky, Case::Fifo10Groups];

    /// The criterion group name (also a directory name under the criterion output).
    pub fn id(self) -> &'static str {
        match self {
            Case::StandardOk => "standard_ok",
            Case::StandardFlaky => "standard_10pct_transient",
            Case::Fifo10Groups => "fifo_10_groups",
        }
    }

    /// The table's label.
    pub fn label(self) -> &'static str {
        match self {
            Case::StandardOk => "standard, all ok",
            Case::StandardFlaky => "standard, 10% transient",
            Case::Fifo10Groups => "FIFO, 10 groups",
        }
    }

    /// Whether record `i`'s note is one the store fails.
    pub fn is_flaky(self, i: usize) -> bool {
        self == Case::StandardFlaky && i % 10 == 9
    }
}

/// The note message of record `i`: ~300 bytes, valid in the consumer's schema.
fn note_body(case: Case, i: usize) -> String {
    let prefix = if case.is_flaky(i) { FLAKY_PREFIX } else { "note-" };
    let text = format!(
        "Meeting notes {i}: agreed to ship the offline outbox first.\nFollow-ups: retry policy, alarm \
         thresholds, DLQ runbook; owners assigned, review on Friday. Item {i:06}."
    );
    json!({
        "schema": 1,
        "op": "upsert",
        "note": {
            "id": format!("{prefix}{i:08}"),
            "version": 1 + (i % 7) as u64,
            "updated_at": "2026-11-27T09:30:00.123Z",
            "title": format!("Weekly sync {i}"),
            "body": text,
        },
        "client_id": "laptop-7f3a9c2e",
    })
    .to_string()
}

/// A Lambda SQS event of `n` records for `case`, as JSON text.
pub fn event(case: Case, n: usize) -> String {
    let fifo = case == Case::Fifo10Groups;
    let arn = if fifo {
        "arn:aws:sqs:eu-west-1:123456789012:notes-sync-queue.fifo"
    } else {
        "arn:aws:sqs:eu-west-1:123456789012:notes-sync-queue"
    };
    let records: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut attributes = json!({
                "ApproximateReceiveCount": "1",
                "SentTimestamp": (1_795_772_400_000u64 + i as u64).to_string(),
                "SenderId": "AROAEXAMPLEROLEID123:notes-client",
                "ApproximateFirstReceiveTimestamp": (1_795_772_400_100u64 + i as u64).to_string(),
            });
            if fifo {
                attributes["MessageGroupId"] = json!(format!("group-{}", i % 10));
                attributes["MessageDeduplicationId"] = json!(format!("dedup-{i:08}"));
                attributes["SequenceNumber"] = json!(format!("{:020}", 18_000_000_000_000_000_000u64 + i as u64));
            }
            json!({
                "messageId": format!("0b6e8f1c-{:04x}-4000-8000-{:012x}", i % 0xffff, i),
                // Real receipt handles are ~380 characters of base64.
                "receiptHandle": format!("AQEB{}{i:08}", "Zm9vYmFyYmF6cXV4".repeat(23)),
                "body": note_body(case, i),
                "attributes": attributes,
                "messageAttributes": {"owner": {"stringValue": "3f9c2e57-owner-sub", "stringListValues": [], "binaryListValues": [], "dataType": "String"}},
                "md5OfBody": "e4d909c290d0fb1ca068ffaddf22cbd0",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "eu-west-1",
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// The message ids the response must list as failed for `case` with `n` records.
pub fn expected_failures(case: Case, n: usize) -> usize {
    (0..n).filter(|&i| case.is_flaky(i)).count()
}

/// Keeps the newest version per note id, like the DynamoDB store's conditional write;
/// fails flaky notes as a throttled or unreachable store would.
#[derive(Debug, Default)]
pub struct MemoryStore {
    versions: Mutex<HashMap<String, u64>>,
}

impl NoteStore for MemoryStore {
    async fn apply(&self, _owner: &Owner, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        let note = &message.note;
        if note.id.starts_with(FLAKY_PREFIX) {
            return Err(StoreError("ProvisionedThroughputExceededException: rate exceeded".into()));
        }
        let mut versions = self.versions.lock().expect("store lock");
        match versions.get_mut(note.id.as_ref()) {
            Some(v) if *v >= note.version => Ok(Written::Stale),
            Some(v) => {
                *v = note.version;
                Ok(Written::Applied)
            }
            None => {
                versions.insert(note.id.to_string(), note.version);
                Ok(Written::Applied)
            }
        }
    }

    async fn reject(&self, _owner: &Owner, _rejection: &Rejection<'_>) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Queue calls that succeed without doing anything: the bench measures the consumer, not SQS.
#[derive(Debug, Default)]
pub struct NoQueues;

impl QueueOps for NoQueues {
    async fn dead_letter(&self, _letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        Ok(())
    }

    async fn change_visibility(
        &self,
        _queue_url: &str,
        _changes: &[VisibilityChange<'_>],
    ) -> Result<Vec<(String, String)>, QueueError> {
        Ok(Vec::new())
    }
}
