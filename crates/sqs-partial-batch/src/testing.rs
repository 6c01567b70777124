//! Test support for handlers and for the engine itself (feature `testing`): one fake of the
//! queue operations that records what it was asked to do and can be made to fail or to be
//! slow, the invariants every processed batch keeps, and a capture of the engine's log lines.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::backoff::{Backoff, VISIBILITY_SLACK_SECONDS};
use crate::event::Record;
use crate::letter::{
    DeadLetter, LetterAttribute, LetterParts, MAX_MESSAGE_ATTRIBUTES, SQS_MAX_MESSAGE_BYTES, attribute,
};
use crate::outcome::Outcome;
use crate::queue::{QueueError, QueueOps, VisibilityChange, sqs_accepts};
use crate::reason::MAX_REASON_BYTES;
use crate::report::BatchReport;
use crate::telemetry::LogSink;

/// One dead letter as it would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentLetter {
    /// The source message id.
    pub source_message_id: Option<String>,
    /// The FIFO message group it would be sent with.
    pub group_id: Option<String>,
    /// The body sent.
    pub body: String,
    /// The attributes sent, in the order [`LetterParts::of`] put them.
    pub attributes: Vec<LetterAttribute<'static>>,
}

impl SentLetter {
    /// The value of the attribute `name`, if the letter carries it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|a| a.name == name).map(|a| a.value.as_ref())
    }
}

/// One `ChangeMessageVisibilityBatch` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibilityCall {
    /// The source queue's ARN.
    pub queue_arn: String,
    /// `(message id, receipt handle, seconds)` of each entry.
    pub entries: Vec<(String, String, u32)>,
}

/// Queue operations that record what they were asked to do, fitting each letter as the real
/// ones do ([`LetterParts::of`]); they can be made to fail, and to take their time.
#[derive(Debug)]
pub struct RecordingQueues {
    letters: Mutex<Vec<SentLetter>>,
    visibility_calls: Mutex<Vec<VisibilityCall>>,
    /// While set, dead-letter sends fail (after nothing is sent).
    pub dead_letter_down: AtomicBool,
    /// While set, visibility calls fail.
    pub visibility_down: AtomicBool,
    dead_letter_answer_delay: Duration,
    visibility_delay: Duration,
    max_message_bytes: usize,
    visibility_in_flight: AtomicUsize,
    visibility_max_in_flight: AtomicUsize,
}

impl Default for RecordingQueues {
    fn default() -> Self {
        Self {
            letters: Mutex::default(),
            visibility_calls: Mutex::default(),
            dead_letter_down: AtomicBool::new(false),
            visibility_down: AtomicBool::new(false),
            dead_letter_answer_delay: Duration::ZERO,
            visibility_delay: Duration::ZERO,
            max_message_bytes: SQS_MAX_MESSAGE_BYTES,
            visibility_in_flight: AtomicUsize::new(0),
            visibility_max_in_flight: AtomicUsize::new(0),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RecordingQueues {
    /// Dead-letter sends are stored at once and answered `delay` later (an SQS that has the
    /// letter but whose answer is on its way).
    pub fn with_dead_letter_answer_delay(mut self, delay: Duration) -> Self {
        self.dead_letter_answer_delay = delay;
        self
    }

    /// Visibility calls take `delay` each.
    pub fn with_visibility_delay(mut self, delay: Duration) -> Self {
        self.visibility_delay = delay;
        self
    }

    /// The dead-letter queue's `MaximumMessageSize` letters are fitted into.
    pub fn with_max_message_bytes(mut self, max_message_bytes: usize) -> Self {
        self.max_message_bytes = max_message_bytes;
        self
    }

    /// The letters sent so far.
    pub fn letters(&self) -> Vec<SentLetter> {
        lock(&self.letters).clone()
    }

    /// The visibility calls made so far.
    pub fn visibility_calls(&self) -> Vec<VisibilityCall> {
        lock(&self.visibility_calls).clone()
    }

    /// `(message id, seconds)` of every visibility change so far, in call order.
    pub fn visibility(&self) -> Vec<(String, u32)> {
        lock(&self.visibility_calls).iter().flat_map(|c| c.entries.iter().map(|(id, _, s)| (id.clone(), *s))).collect()
    }

    /// The most visibility calls that ran at once.
    pub fn max_visibility_calls_at_once(&self) -> usize {
        self.visibility_max_in_flight.load(Ordering::SeqCst)
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        lock(&self.letters).clear();
        lock(&self.visibility_calls).clear();
    }
}

impl QueueOps for RecordingQueues {
    async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        if self.dead_letter_down.load(Ordering::SeqCst) {
            return Err(QueueError::new("connection refused"));
        }
        let parts = LetterParts::of(letter, self.max_message_bytes);
        let owned = |c: std::borrow::Cow<'_, str>| std::borrow::Cow::Owned(c.into_owned());
        let sent = SentLetter {
            source_message_id: letter.source_message_id.map(str::to_owned),
            group_id: letter.group_id.map(str::to_owned),
            body: parts.body.into_owned(),
            attributes: parts
                .attributes
                .into_iter()
                .map(|a| LetterAttribute { name: owned(a.name), data_type: owned(a.data_type), value: owned(a.value) })
                .collect(),
        };
        lock(&self.letters).push(sent);
        if !self.dead_letter_answer_delay.is_zero() {
            tokio::time::sleep(self.dead_letter_answer_delay).await;
        }
        Ok(())
    }

    async fn change_visibility(
        &self,
        source_queue_arn: &str,
        changes: &[VisibilityChange<'_>],
    ) -> Result<Vec<(String, String)>, QueueError> {
        if self.visibility_down.load(Ordering::SeqCst) {
            return Err(QueueError::new("connection refused"));
        }
        let now = self.visibility_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.visibility_max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.visibility_delay.is_zero() {
            tokio::time::sleep(self.visibility_delay).await;
        }
        self.visibility_in_flight.fetch_sub(1, Ordering::SeqCst);
        let entries =
            changes.iter().map(|c| (c.message_id.to_owned(), c.receipt_handle.to_owned(), c.seconds)).collect();
        lock(&self.visibility_calls).push(VisibilityCall { queue_arn: source_queue_arn.to_owned(), entries });
        Ok(Vec::new())
    }
}

/// Checks what every processed batch must satisfy; `Err` says which invariant broke. The
/// response is held against the input records and against what was sent to the queues, not
/// only against the report it was built from:
///
/// - every record has exactly one outcome, and the response lists the ids of exactly the
///   retried records, in batch order, never an empty one: each an input id;
/// - an invocation error names the first retried record without a message id, by its index
///   in the batch;
/// - every retried record that can be backed off (it has a source ARN, a receipt handle and
///   an id) got exactly one visibility change, with its reported delay, and no other record
///   got one; none reaches past 12 hours from the receive;
/// - every letter sent is a dead-lettered record's, none twice, the record not in the
///   response, each with a body and attributes SQS accepts (at most ten) and a bounded reason.
pub fn check_batch(records: &[Record<'_>], report: &BatchReport<'_>, queues: &RecordingQueues) -> Result<(), String> {
    let reports = report.reports();
    if reports.len() != records.len() {
        return Err(format!("{} reports for {} records", reports.len(), records.len()));
    }
    let retried: Vec<usize> = (0..records.len()).filter(|&i| reports[i].outcome.is_retried()).collect();
    let unique_ids = {
        let ids: Vec<&str> = records.iter().filter_map(Record::id).collect();
        ids.iter().collect::<HashSet<_>>().len() == ids.len()
    };
    let response = report.response();
    let mut listed: HashSet<&str> = HashSet::new();
    match &response {
        Ok(response) => {
            let ids: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
            if ids.iter().any(|id| id.is_empty()) {
                return Err("an empty itemIdentifier".into());
            }
            let expected: Vec<&str> = retried.iter().map(|&i| records[i].id().unwrap_or("")).collect();
            if ids != expected {
                return Err(format!("response {ids:?}, retried records {expected:?}"));
            }
            listed.extend(ids);
        }
        Err(e) => {
            let first = retried.iter().copied().find(|&i| records[i].id().is_none());
            if first != Some(e.index) {
                let index = e.index;
                return Err(format!(
                    "invocation failed naming record {index}; the first retried one without an id: {first:?}"
                ));
            }
        }
    }

    let calls = queues.visibility_calls();
    let limit = Backoff::MAX_SECONDS - VISIBILITY_SLACK_SECONDS;
    let mut changed: HashMap<&str, Vec<u32>> = HashMap::new();
    for call in &calls {
        if call.entries.len() > crate::queue::VISIBILITY_BATCH_LIMIT {
            return Err(format!("a visibility call of {} entries", call.entries.len()));
        }
        for (_, receipt_handle, seconds) in &call.entries {
            if *seconds > limit {
                return Err(format!("visibility {seconds} s past the 12-hour limit"));
            }
            changed.entry(receipt_handle).or_default().push(*seconds);
        }
    }
    for (i, record) in records.iter().enumerate() {
        let backable = record.event_source_arn.is_some() && record.id().is_some();
        let Some(receipt_handle) = record.receipt_handle.as_deref().filter(|_| backable) else { continue };
        // Receipt handles are unique per delivery; a hand-written event may repeat one.
        if records.iter().filter(|r| r.receipt_handle.as_deref() == Some(receipt_handle)).count() > 1 {
            continue;
        }
        match (reports[i].outcome.is_retried(), changed.get(receipt_handle).map(Vec::as_slice)) {
            (true, None) => return Err(format!("retried record {i} was not backed off")),
            (false, Some(_)) => return Err(format!("record {i} is done but was backed off")),
            (true, Some(&[seconds])) if seconds != reports[i].next_delay_s => {
                return Err(format!("record {i} hidden {seconds} s, reported {} s", reports[i].next_delay_s));
            }
            (true, Some(changes)) if changes.len() > 1 => {
                return Err(format!("record {i} backed off {} times", changes.len()));
            }
            _ => {}
        }
    }

    let letters = queues.letters();
    let dead: Vec<usize> =
        (0..records.len()).filter(|&i| matches!(reports[i].outcome, Outcome::DeadLettered { .. })).collect();
    if letters.len() != dead.len() {
        return Err(format!("{} letters for {} dead-lettered records", letters.len(), dead.len()));
    }
    let mut keys: Vec<&str> = Vec::new();
    for letter in &letters {
        if letter.body.is_empty() || !letter.body.chars().all(sqs_accepts) {
            return Err(format!("a letter body SQS refuses: {:?}", letter.body.get(..40)));
        }
        for a in &letter.attributes {
            if a.value.is_empty() || !a.value.chars().all(sqs_accepts) {
                return Err(format!("attribute {} SQS refuses: {:?}", a.name, a.value));
            }
        }
        if letter.attributes.len() > MAX_MESSAGE_ATTRIBUTES {
            return Err(format!("a letter with {} attributes", letter.attributes.len()));
        }
        if letter.attribute(attribute::ERROR_REASON).is_some_and(|r| r.len() > MAX_REASON_BYTES) {
            return Err("a reason over the bound".into());
        }
        keys.extend(letter.attribute(attribute::DEAD_LETTER_KEY));
        if let Some(id) = letter.source_message_id.as_deref().filter(|_| unique_ids) {
            if listed.contains(id) {
                return Err(format!("{id} was dead-lettered and reported failed"));
            }
            let dead_ids: Vec<Option<&str>> = dead.iter().map(|&i| records[i].id()).collect();
            if !dead_ids.contains(&Some(id)) {
                return Err(format!("a letter for {id}, which was not dead-lettered"));
            }
        }
    }
    // Records with the same id in one batch are the same SQS message delivered twice only in
    // hand-written events; the key then repeats legitimately.
    if unique_ids {
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("a message dead-lettered twice: {keys:?}"));
        }
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
                lock(buffer).extend_from_slice(buf);
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
    let text = String::from_utf8(lock(&buffer).clone()).expect("UTF-8 logs");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {l}")))
        .collect()
}

struct SharedWriter(std::sync::Arc<Mutex<Vec<u8>>>);

impl std::io::Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
