//! Test support for handlers and for the engine itself (feature `testing`): queue operations
//! that record what they were asked to do, the invariants every processed batch keeps, and a
//! capture of the engine's log lines.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::VISIBILITY_SLACK_SECONDS;
use crate::reason::{MAX_REASON_BYTES, sqs_accepts};
use crate::{
    BatchReport, DeadLetter, LetterParts, LogSink, MAX_VISIBILITY_SECONDS, Outcome, QueueError, QueueOps, Record,
    SQS_MAX_MESSAGE_BYTES, VisibilityChange,
};

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
            return Err(QueueError::new("connection refused"));
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
/// - every record has exactly one outcome: applied, unchanged, dead-lettered or failed;
/// - the response lists exactly the failed records, in order, never with an empty id (and
///   is an error only when a failed record has no id), so its ids are input ids;
/// - one letter per dead-lettered record, none twice, each with a body and attributes SQS
///   accepts and a bounded reason;
/// - no visibility change reaches past 12 hours from the receive.
pub fn check_batch(records: &[Record<'_>], report: &BatchReport<'_>, queues: &RecordingQueues) -> Result<(), String> {
    let outcomes: Vec<&Outcome> = report.records().iter().map(|r| &r.outcome).collect();
    let response = &report.response();
    if outcomes.len() != records.len() {
        return Err(format!("{} outcomes for {} records", outcomes.len(), records.len()));
    }
    let failed: Vec<&Record<'_>> =
        records.iter().zip(&outcomes).filter(|(_, o)| o.is_failure()).map(|(r, _)| r).collect();
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

thread_local! {
    /// The buffer of the [`capture_logs`] running on this thread, if one is.
    static CAPTURE: std::cell::RefCell<Option<std::sync::Arc<Mutex<Vec<u8>>>>> = const { std::cell::RefCell::new(None) };
}

/// A log sink for test engines: it writes into the [`capture_logs`] running on the writing
/// thread, and drops the lines when none is.
pub fn log_sink() -> LogSink {
    LogSink::new(CaptureWriter)
}

struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(buffer) = capture.borrow().as_ref() {
                buffer.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the JSON log lines written (on this thread) while `f` runs, by tracing and by
/// engines built with [`log_sink`]; panics on a line that is not JSON.
pub async fn capture_logs<F: std::future::Future<Output = ()>>(f: F) -> Vec<serde_json::Value> {
    let buffer = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = buffer.clone();
    let subscriber =
        tracing_subscriber::fmt().json().flatten_event(true).with_writer(move || SharedWriter(sink.clone())).finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let previous = CAPTURE.with(|capture| capture.replace(Some(buffer.clone())));
    f.await;
    CAPTURE.with(|capture| capture.replace(previous));
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
