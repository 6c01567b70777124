//! The bench's inputs: SQS events as Lambda delivers them (every attribute, ~1.3 KB per
//! record around a ~300-byte note message), and the three cases. The store is the tests' one
//! in-memory store, failing the notes a case marks as flaky; the queue calls are the tests'
//! recording fake.

use serde_json::json;

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

    /// The case whose [`id`](Case::id) is `id`.
    pub fn named(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }

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
