//! In-memory fakes behind the project's own traits, and the invariants every batch must
//! keep: shared by the property tests (`cargo test`) and the fuzz targets (`fuzz/`, which
//! enable the `testing` feature). Not part of the consumer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use aws_lambda_events::event::sqs::SqsBatchResponse;

use crate::batch::reason::{MAX_REASON_BYTES, sqs_accepts};
use crate::batch::{
    DeadLetter, LetterParts, MAX_VISIBILITY_SECONDS, MissingMessageId, Outcome, QueueError, QueueOps, Record,
    SQS_MAX_MESSAGE_BYTES, VISIBILITY_SLACK_SECONDS, VisibilityChange,
};
use crate::notes::{NoteMessage, NoteStore, StoreError, Written, change_order};

/// A note store in memory with the DynamoDB store's total order; it can be made to fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Note id → the winning change's `(version, updated_at in ns, client id)`.
    notes: Mutex<HashMap<String, (u64, i128, String)>>,
    /// Calls made, failed ones included.
    pub calls: AtomicUsize,
    /// While set, every call fails as a store outage does.
    pub failing: AtomicBool,
}

impl MemoryStore {
    /// The winning change of a note: `(version, updated_at in ns, client id)`.
    pub fn winner(&self, id: &str) -> Option<(u64, i128, String)> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

impl NoteStore for MemoryStore {
    async fn apply(&self, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("ProvisionedThroughputExceededException: store down".into()));
        }
        let (version, updated, client) = change_order(message).ok_or_else(|| StoreError("bad updated_at".into()))?;
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let new = (version, updated, client.to_owned());
        match notes.get(message.note.id.as_ref()) {
            Some(old) if *old >= new => Ok(Written::Stale),
            _ => {
                notes.insert(message.note.id.to_string(), new);
                Ok(Written::Applied)
            }
        }
    }
}

/// One dead letter as it would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentLetter {
    /// The source message id.
    pub source_message_id: Option<String>,
    /// The body sent.
    pub body: String,
    /// `(name, value)` of the attributes sent.
    pub attributes: Vec<(String, String)>,
}

/// Queue operations that record what they were asked to do; dead letters can be made to fail.
#[derive(Debug, Default)]
pub struct RecordingQueues {
    /// Letters sent.
    pub letters: Mutex<Vec<SentLetter>>,
    /// `(queue url, message id, seconds)` of each visibility change.
    pub visibility: Mutex<Vec<(String, String, u32)>>,
    /// While set, dead-letter sends fail.
    pub dead_letter_down: AtomicBool,
}

impl QueueOps for RecordingQueues {
    async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        if self.dead_letter_down.load(Ordering::SeqCst) {
            return Err(QueueError("connection refused".into()));
        }
        let parts = LetterParts::of(letter, SQS_MAX_MESSAGE_BYTES);
        let sent = SentLetter {
            source_message_id: letter.source_message_id.map(str::to_owned),
            body: parts.body.into_owned(),
            attributes: parts.attributes.into_iter().map(|(n, _, v)| (n.to_owned(), v)).collect(),
        };
        self.letters.lock().unwrap_or_else(|e| e.into_inner()).push(sent);
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue_url: &str,
        changes: &[VisibilityChange<'_>],
    ) -> Result<Vec<(String, String)>, QueueError> {
        let mut visibility = self.visibility.lock().unwrap_or_else(|e| e.into_inner());
        visibility.extend(changes.iter().map(|c| (queue_url.to_owned(), c.message_id.to_owned(), c.seconds)));
        Ok(Vec::new())
    }
}

/// Checks what every processed batch must satisfy; `Err` says which invariant broke.
///
/// - every record has exactly one outcome: applied, stale, dead-lettered or failed;
/// - the response lists exactly the failed records, in order, never with an empty id (and
///   is an error only when a failed record has no id), so its ids are input ids;
/// - one letter per dead-lettered record, none twice, each with a body and attributes SQS
///   accepts and a bounded reason;
/// - no visibility change reaches past 12 hours from the receive.
pub fn check_batch(
    records: &[Record<'_>],
    outcomes: &[Outcome],
    response: &Result<SqsBatchResponse, MissingMessageId>,
    queues: &RecordingQueues,
) -> Result<(), String> {
    if outcomes.len() != records.len() {
        return Err(format!("{} outcomes for {} records", outcomes.len(), records.len()));
    }
    let failed: Vec<&Record<'_>> =
        records.iter().zip(outcomes).filter(|(_, o)| o.is_failure()).map(|(r, _)| r).collect();
    match response {
        Ok(response) => {
            let ids: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
            let expected: Vec<&str> = failed.iter().map(|r| r.id().unwrap_or("")).collect();
            if ids != expected {
                return Err(format!("response {ids:?}, failed records {expected:?}"));
            }
            if ids.iter().any(|id| id.is_empty()) {
                return Err("an empty itemIdentifier".into());
            }
        }
        Err(e) => {
            if failed.get(e.index).is_none() && records.get(e.index).is_none_or(|r| r.id().is_some()) {
                return Err(format!("invocation failed for record {} which has an id or did not fail", e.index));
            }
        }
    }
    let letters = queues.letters.lock().unwrap_or_else(|e| e.into_inner());
    let dead = outcomes.iter().filter(|o| matches!(o, Outcome::DeadLettered { .. })).count();
    if letters.len() != dead {
        return Err(format!("{} letters for {dead} dead-lettered records", letters.len()));
    }
    let mut keys: Vec<&str> = Vec::new();
    for letter in letters.iter() {
        if letter.body.is_empty() || !letter.body.chars().all(sqs_accepts) {
            return Err(format!("a letter body SQS refuses: {:?}", letter.body.get(..40)));
        }
        for (name, value) in &letter.attributes {
            if !value.chars().all(sqs_accepts) || value.is_empty() {
                return Err(format!("attribute {name} SQS refuses: {value:?}"));
            }
            if name == "error_reason" && value.len() > MAX_REASON_BYTES {
                return Err(format!("a reason of {} bytes", value.len()));
            }
            if name == "dead_letter_key" {
                keys.push(value);
            }
        }
    }
    // Records with the same id in one batch are the same SQS message delivered twice only in
    // hand-written events; the key then repeats legitimately.
    let distinct_ids: std::collections::HashSet<_> = records.iter().filter_map(Record::id).collect();
    if distinct_ids.len() == records.iter().filter(|r| r.id().is_some()).count() {
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("a message dead-lettered twice: {keys:?}"));
        }
    }
    let limit = MAX_VISIBILITY_SECONDS - VISIBILITY_SLACK_SECONDS;
    if let Some(v) = queues.visibility.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|v| v.2 > limit) {
        return Err(format!("visibility {} s past the 12-hour limit", v.2));
    }
    Ok(())
}

/// The engine settings and faults of one generated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The SQS event, as Lambda would pass it.
    pub event: String,
    /// The store fails every call.
    pub store_down: bool,
    /// Dead-letter sends fail.
    pub dlq_down: bool,
    /// Engine settings.
    pub settings: crate::batch::Settings,
}

/// Reads choices from bytes; past the end every choice is 0.
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn next(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }

    fn pick<'t>(&mut self, options: &[&'t str]) -> &'t str {
        options[usize::from(self.next()) % options.len()]
    }

    /// Mostly (7 in 8) one of `valid`, else one of `invalid`: most records must get as far as
    /// the store for the brake and the order to be exercised.
    fn mostly<'t>(&mut self, valid: &[&'t str], invalid: &[&'t str]) -> &'t str {
        if self.next().is_multiple_of(8) { self.pick(invalid) } else { self.pick(valid) }
    }

    /// A short string of arbitrary characters, some of them ones SQS or JSON treat specially.
    fn text(&mut self) -> String {
        let len = usize::from(self.next() % 12);
        (0..len)
            .map(|_| match self.next() % 8 {
                0 => '\u{0}',
                1 => '\u{1F389}',
                2 => '"',
                3 => '\\',
                4 => '\u{FFFE}',
                _ => char::from(b'a' + self.next() % 26),
            })
            .collect()
    }
}

/// Builds a scenario from arbitrary bytes: the fuzz targets' and property tests' generator.
/// Records mix valid notes, near-valid ones and junk; ids, receive counts, groups and
/// bodies include missing, empty, duplicate and malformed values.
pub fn scenario_from_bytes(data: &[u8]) -> Scenario {
    use serde_json::{Value, json};
    let mut c = Choices(data);
    let fifo = c.next().is_multiple_of(4);
    let arn = if fifo { "arn:aws:sqs:us-east-1:1:notes.fifo" } else { "arn:aws:sqs:us-east-1:1:notes" };
    let settings = crate::batch::Settings {
        max_concurrency: 1 + usize::from(c.next() % 4),
        brake_after: u32::from(c.next() % 7),
        fifo_mode: if c.next().is_multiple_of(3) {
            crate::batch::FifoMode::Batch
        } else {
            crate::batch::FifoMode::Group
        },
        backoff: crate::batch::Backoff::new(u32::from(c.next()), 43_200),
        ..crate::batch::Settings::default()
    };
    let (store_down, dlq_down) = (c.next().is_multiple_of(3), c.next().is_multiple_of(5));
    let count = usize::from(c.next() % 12);
    let mut records = Vec::new();
    for i in 0..count {
        let mut record = serde_json::Map::new();
        let message_id = match c.next() % 6 {
            0 => None,
            1 => Some(String::new()),
            2 => Some(c.pick(&["a", "b"]).to_owned()),
            _ => Some(format!("m-{i}")),
        };
        if let Some(id) = message_id {
            record.insert("messageId".into(), json!(id));
        }
        record.insert("receiptHandle".into(), json!(format!("rh-{i}")));
        let version = match c.next() % 16 {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(1e30),
            3 => json!("7"),
            4 => json!(u64::MAX),
            n => json!(n % 4 + 1),
        };
        let note = json!({
            "schema": if c.next().is_multiple_of(8) { json!(2) } else { json!(1) },
            "op": c.mostly(&["upsert", "upsert", "delete"], &["merge", "\u{0}", ""]),
            "client_id": c.mostly(&["laptop", "phone"], &[""]),
            "note": {
                "id": c.mostly(&["n1", "n2"], &["", "n\u{7}"]),
                "version": version,
                "title": c.text(),
                "body": c.text(),
                "updated_at": c.mostly(&["2026-11-27T10:00:00Z", "2026-11-27T11:00:00+01:00"], &["yesterday"]),
            }
        });
        let body = match c.next() % 8 {
            0 => None,
            1 => Some(String::new()),
            2 => Some(c.text()),
            3 => Some(c.pick(&["null", "[]", "\"\"", "{}", "{\"schema\":1"]).to_owned()),
            _ => Some(note.to_string()),
        };
        if let Some(body) = body {
            record.insert("body".into(), json!(body));
        }
        let mut attributes = serde_json::Map::new();
        if let Some(n) =
            Some(c.pick(&["1", "2", "5", "6", "x", "-1", "99999999999", ""])).filter(|_| !c.next().is_multiple_of(5))
        {
            attributes.insert("ApproximateReceiveCount".into(), json!(n));
        }
        if fifo {
            attributes.insert("MessageGroupId".into(), json!(c.pick(&["g1", "g2", "g3"])));
        }
        record.insert("attributes".into(), Value::Object(attributes));
        record.insert("eventSourceARN".into(), json!(arn));
        record.insert("eventSource".into(), json!("aws:sqs"));
        records.push(Value::Object(record));
    }
    Scenario { event: json!({ "Records": records }).to_string(), store_down, dlq_down, settings }
}

/// Runs a scenario through the engine and the notes handler on a paused-clock runtime and
/// checks [`check_batch`]. An event that is not an SQS event must be refused by the parser,
/// never panic.
pub fn run_scenario(scenario: &Scenario) -> Result<(), String> {
    let Ok(batch) = crate::batch::Batch::parse(&scenario.event) else {
        return Ok(());
    };
    let queues = RecordingQueues::default();
    queues.dead_letter_down.store(scenario.dlq_down, Ordering::SeqCst);
    let store = MemoryStore::default();
    store.failing.store(scenario.store_down, Ordering::SeqCst);
    let engine = crate::batch::Engine::new(scenario.settings.clone(), queues);
    let handler = crate::notes::NotesHandler::new(store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    let (outcomes, response) = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        engine.process_detailed(&batch, deadline, std::future::pending(), &handler).await
    });
    check_batch(&batch.records, &outcomes, &response, engine.queues())
}

/// Captures the JSON log lines written (on this thread) while `f` runs; panics on a line
/// that is not JSON.
pub async fn capture_logs<F: std::future::Future<Output = ()>>(f: F) -> Vec<serde_json::Value> {
    let buffer = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = buffer.clone();
    let subscriber =
        tracing_subscriber::fmt().json().flatten_event(true).with_writer(move || SharedWriter(sink.clone())).finish();
    let guard = tracing::subscriber::set_default(subscriber);
    f.await;
    drop(guard);
    let text = String::from_utf8(buffer.lock().unwrap_or_else(|e| e.into_inner()).clone()).expect("UTF-8 logs");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect()
}

struct SharedWriter(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The message fuzz target's check: a body is parsed without panic; an accepted message is
/// valid (version in range, `updated_at` an instant the store can order, ids non-empty); a
/// refusal's reason is short, has no raw NUL, and cleans to a bounded SQS-safe attribute.
pub fn check_message(data: &[u8]) -> Result<(), String> {
    use crate::batch::reason;
    let Ok(body) = std::str::from_utf8(data) else {
        return Ok(());
    };
    match NoteMessage::parse(body) {
        Ok(message) => {
            let note = &message.note;
            if !(1..=1 << 53).contains(&note.version) || note.id.is_empty() || message.client_id.is_empty() {
                return Err(format!("accepted an invalid message: {message:?}"));
            }
            if change_order(&message).is_none() {
                return Err(format!("accepted an updated_at the store cannot order: {:?}", note.updated_at));
            }
        }
        Err(invalid) => {
            let text = invalid.to_string();
            // A quoted value is at most a 16-character escaped excerpt; the rest is short.
            if text.len() > 512 || text.contains('\u{0}') {
                return Err(format!("a reason of {} bytes or with a raw NUL: {text:?}", text.len()));
            }
            let cleaned = reason::clean(&text);
            if cleaned.len() > MAX_REASON_BYTES || !cleaned.chars().all(sqs_accepts) {
                return Err(format!("a cleaned reason SQS refuses: {cleaned:?}"));
            }
        }
    }
    Ok(())
}

/// The engine fuzz target's check: input starting with `{` is the event itself (any JSON
/// shape, SQS or not); anything else drives [`scenario_from_bytes`]. Then [`run_scenario`].
pub fn check_event(data: &[u8]) -> Result<(), String> {
    let scenario = match data.split_first() {
        Some((b'{', _)) => match std::str::from_utf8(data) {
            Ok(event) => Scenario { event: event.to_owned(), ..scenario_from_bytes(&[]) },
            Err(_) => return Ok(()),
        },
        _ => scenario_from_bytes(data),
    };
    run_scenario(&scenario).map_err(|broken| format!("{broken}\nevent: {}", scenario.event))
}
