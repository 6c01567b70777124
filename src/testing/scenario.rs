//! Generated scenarios for the property tests and the fuzz targets: a byte-driven generator
//! of SQS events, faults and settings, and the checks each fuzz target runs.

use std::sync::atomic::Ordering;

use super::{MemoryStore, RecordingQueues, check_batch};
use crate::notes::{NoteMessage, change_order};
use sqs_partial_batch::reason::{MAX_REASON_BYTES, sqs_accepts};
use sqs_partial_batch::{Backoff, Batch, Engine, FifoMode, Settings};

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
    pub settings: Settings,
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
    // One choice each, in this order (the fuzz seeds depend on it).
    let max_concurrency = 1 + usize::from(c.next() % 4);
    let brake_after = u32::from(c.next() % 7);
    let fifo_mode = if c.next().is_multiple_of(3) { FifoMode::Batch } else { FifoMode::Group };
    let backoff = Backoff::new(u32::from(c.next()), 43_200);
    let settings = Settings::default()
        .with_max_concurrency(max_concurrency)
        .with_brake_after(brake_after)
        .with_fifo_mode(fifo_mode)
        .with_backoff(backoff);
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
        // Mostly an owner, as trusted senders set it; sometimes none or an empty one.
        let owner = c.mostly(&["alice", "bob"], &["", "-"]);
        if owner != "-" {
            record.insert("messageAttributes".into(), json!({"owner": {"stringValue": owner, "dataType": "String"}}));
        }
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
    let Ok(batch) = Batch::parse(&scenario.event) else {
        return Ok(());
    };
    let queues = RecordingQueues::default();
    queues.dead_letter_down.store(scenario.dlq_down, Ordering::SeqCst);
    let store = MemoryStore::default();
    store.failing.store(scenario.store_down, Ordering::SeqCst);
    let engine = Engine::new(scenario.settings.clone(), queues).with_log(super::log_sink());
    let handler = crate::notes::NotesHandler::new(store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| e.to_string())?;
    let report = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        engine.process(&batch, deadline, &handler).await
    });
    check_batch(&batch.records, &report, engine.queues())
}

/// The message fuzz target's check: a body is parsed without panic; an accepted message is
/// valid (version in range, `updated_at` an instant the store can order, ids non-empty); a
/// refusal's reason is short, has no raw NUL, and cleans to a bounded SQS-safe attribute.
pub fn check_message(data: &[u8]) -> Result<(), String> {
    use sqs_partial_batch::reason;
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
