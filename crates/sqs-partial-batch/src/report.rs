//! Everything the engine tells the outside world besides the response: one JSON log line per
//! record, its outcome, which carries the receive count (so an attempt needs no line of its
//! own), one line per batch, and CloudWatch Embedded Metric Format per batch. Message bodies
//! never appear here; ids, counts, outcomes and reasons do.
//!
//! The lines are written by the engine itself ([`super::logline`]) into a per-batch buffer and
//! handed to the [`LogSink`] its owner chose, in large writes and always before the batch's
//! response is returned: a record's line is out before the response that acknowledges it.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::age::MessageAges;
use super::logline::{Line, push_json_string};
use super::outcome::{Ack, Failure, Outcome};
use super::record::Record;
use super::settings::Settings;

/// Whether a successful record gets its line. A failure always does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogSuccesses {
    /// One line per successful record: the default.
    Each,
    /// No line for a success; the batch's metrics still count it.
    None,
}

/// Where an engine's log lines and metrics go: a writer (a Lambda function's stdout, which
/// CloudWatch Logs captures), or nowhere.
pub struct LogSink {
    out: Option<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.out.is_some() { "LogSink(writer)" } else { "LogSink(off)" })
    }
}

impl LogSink {
    /// Lines go to `out`, a batch's lines in a few large writes, each followed by a flush.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Some(Mutex::new(Box::new(out))) }
    }

    /// No lines and no metrics.
    pub fn off() -> Self {
        Self { out: None }
    }

    /// Whether lines are written at all.
    pub fn is_on(&self) -> bool {
        self.out.is_some()
    }

    /// A line that cannot be written must not fail the batch: the error is dropped.
    fn write(&self, bytes: &[u8]) {
        if let Some(out) = &self.out {
            let mut out = out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
    }
}

/// A batch's buffer is written out once it holds this much: a few syscalls per batch, and a
/// bounded buffer (10,000 records would otherwise hold ~1.5 MB of lines).
const FLUSH_BYTES: usize = 32 * 1024;

/// One batch's log lines, buffered until [`BatchLog::flush`] or until the buffer is full.
pub(crate) struct BatchLog<'s> {
    sink: &'s LogSink,
    successes: LogSuccesses,
    buffer: Mutex<String>,
}

impl<'s> BatchLog<'s> {
    pub(crate) fn new(sink: &'s LogSink, successes: LogSuccesses) -> Self {
        Self { sink, successes, buffer: Mutex::new(String::new()) }
    }

    fn push(&self, line: &str) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        buffer.push_str(line);
        if buffer.len() >= FLUSH_BYTES {
            self.sink.write(buffer.as_bytes());
            buffer.clear();
        }
    }

    /// Writes out whatever is buffered. The engine calls it before returning a response.
    pub(crate) fn flush(&self) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !buffer.is_empty() {
            self.sink.write(buffer.as_bytes());
            buffer.clear();
        }
    }

    /// The batch's first line, written at once: it says that a batch is in hand.
    pub(crate) fn batch(&self, records: usize, fifo: bool, budget_ms: u64) {
        if !self.sink.is_on() {
            return;
        }
        let mut line = Line::start("INFO", "batch");
        line.num("records", records as u64)
            .bool("fifo", fifo)
            .num("budget_ms", budget_ms)
            .str("message", "processing batch");
        self.sink.write(line.end().as_bytes());
    }

    /// A record's outcome with the delay before its next delivery. `final_attempt` marks a
    /// failure at `maxReceiveCount`: the queue's redrive policy dead-letters it on the next
    /// receive. A success line is the shortest (no message text: ~170 bytes).
    pub(crate) fn outcome(
        &self,
        record: &Record<'_>,
        receive_count: u32,
        outcome: &Outcome,
        next_delay_s: u32,
        final_attempt: bool,
    ) {
        if !self.sink.is_on() || (matches!(outcome, Outcome::Succeeded(_)) && self.successes == LogSuccesses::None) {
            return;
        }
        let message_id = record.id().unwrap_or("-");
        let line = match outcome {
            Outcome::Succeeded(_) => {
                let mut line = Line::start("INFO", "outcome");
                line.str("message_id", message_id)
                    .num("receive_count", receive_count.into())
                    .str("outcome", outcome.name());
                line
            }
            Outcome::DeadLettered { kind, reason } => {
                let mut line = Line::start("WARN", "outcome");
                line.str("message_id", message_id)
                    .num("receive_count", receive_count.into())
                    .str("outcome", outcome.name())
                    .str("error_kind", kind)
                    .str("reason", reason)
                    .str("message", "permanent failure sent to the dead-letter queue");
                line
            }
            Outcome::Failed(failure) => {
                let mut line = Line::start(if final_attempt { "ERROR" } else { "WARN" }, "outcome");
                line.str("message_id", message_id)
                    .num("receive_count", receive_count.into())
                    .str("outcome", outcome.name())
                    .str("reason", failure_reason(failure))
                    .num("next_delay_s", next_delay_s.into())
                    .bool("final_attempt", final_attempt)
                    .str(
                        "message",
                        if final_attempt {
                            "final attempt failed: the redrive policy moves the message to the dead-letter queue on its next receive"
                        } else {
                            "record will be retried"
                        },
                    );
                line
            }
        };
        self.push(&line.end());
    }

    /// The batch's metrics as one EMF document, after its records' lines.
    pub(crate) fn metrics(&self, settings: &Settings, counts: Counts, ages: Option<MessageAges>, duration: Duration) {
        if !self.sink.is_on() {
            return;
        }
        let mut line = emf(settings, counts, ages, duration, SystemTime::now());
        line.push('\n');
        self.push(&line);
    }
}

fn failure_reason(failure: &Failure) -> &str {
    match failure {
        Failure::Transient(r) | Failure::Panicked(r) => r.as_str(),
        Failure::DeadLetterUnavailable { error, .. } => error.as_str(),
        Failure::TimedOut => "unfinished when the batch was cut (deadline less margin, or shutdown)",
        Failure::SkippedAfterGroupFailure => "an earlier record of its message group failed",
        Failure::Braked => "not tried: the brake engaged after consecutive transient failures",
    }
}

/// Per-batch counts, published as CloudWatch metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Records in the batch.
    pub received: usize,
    /// Applied.
    pub succeeded: usize,
    /// Succeeded without effect ([`Ack::Unchanged`]).
    pub unchanged: usize,
    /// Reported failed, to be retried.
    pub retried: usize,
    /// Sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Reported failed untried because the brake engaged (also counted in `retried`).
    pub braked: usize,
}

impl Counts {
    /// Counts a batch's outcomes.
    pub fn of<'o>(outcomes: impl IntoIterator<Item = &'o Outcome>) -> Self {
        let mut counts = Self::default();
        for outcome in outcomes {
            counts.received += 1;
            match outcome {
                Outcome::Succeeded(Ack::Applied) => counts.succeeded += 1,
                Outcome::Succeeded(Ack::Unchanged) => counts.unchanged += 1,
                Outcome::DeadLettered { .. } => counts.dead_lettered += 1,
                Outcome::Failed(failure) => {
                    counts.retried += 1;
                    counts.braked += usize::from(*failure == Failure::Braked);
                }
            }
        }
        counts
    }
}

/// The names of the metrics in the EMF document, one constant each: the code that writes them
/// and the template's dashboard test (`tests/template.rs`) read the same list.
pub mod metric {
    /// Records in the batch.
    pub const RECEIVED: &str = "Received";
    /// Records applied.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Records that succeeded without effect ([`crate::Ack::Unchanged`]).
    pub const UNCHANGED: &str = "Unchanged";
    /// Records reported failed, to be retried.
    pub const RETRIED: &str = "Retried";
    /// Records sent to the dead-letter queue.
    pub const DEAD_LETTERED: &str = "DeadLettered";
    /// 1 for a batch in which the brake engaged: its Sum counts braked batches.
    pub const BRAKE_ENGAGED: &str = "BrakeEngaged";
    /// The batch's processing time, in milliseconds.
    pub const BATCH_DURATION: &str = "BatchDuration";
    /// Age of the batch's oldest record at processing time (ms); only when records carry `SentTimestamp`.
    pub const MESSAGE_AGE_MAX: &str = "MessageAgeMax";
    /// Median record age at processing time (ms); only when records carry `SentTimestamp`.
    pub const MESSAGE_AGE_P50: &str = "MessageAgeP50";
}

/// Every metric name the EMF document may carry.
pub const METRIC_NAMES: [&str; 9] = [
    metric::RECEIVED,
    metric::SUCCEEDED,
    metric::UNCHANGED,
    metric::RETRIED,
    metric::DEAD_LETTERED,
    metric::BRAKE_ENGAGED,
    metric::BATCH_DURATION,
    metric::MESSAGE_AGE_MAX,
    metric::MESSAGE_AGE_P50,
];

/// The batch's metrics as one Embedded Metric Format document, one line without its newline.
/// Message ages are declared only when some record said when it was sent: a missing figure is
/// skipped, never guessed. Written by hand like the log lines: building a `serde_json::Value`
/// for it was a third of a ten-record batch's logging cost (issue 10).
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
pub fn emf(
    settings: &Settings,
    counts: Counts,
    ages: Option<MessageAges>,
    duration: Duration,
    now: SystemTime,
) -> String {
    const COUNT: &str = "Count";
    const MS: &str = "Milliseconds";
    let timestamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let counted = [
        (metric::RECEIVED, counts.received),
        (metric::SUCCEEDED, counts.succeeded),
        (metric::UNCHANGED, counts.unchanged),
        (metric::RETRIED, counts.retried),
        (metric::DEAD_LETTERED, counts.dead_lettered),
        (metric::BRAKE_ENGAGED, usize::from(counts.braked > 0)),
    ];
    let timed = std::iter::once((metric::BATCH_DURATION, None)).chain(
        ages.into_iter()
            .flat_map(|a| [(metric::MESSAGE_AGE_MAX, Some(a.max_ms)), (metric::MESSAGE_AGE_P50, Some(a.p50_ms))]),
    );
    let declared = counted.iter().map(|(name, _)| (*name, COUNT)).chain(timed.clone().map(|(name, _)| (name, MS)));

    let mut doc = String::with_capacity(640);
    let _ = write!(doc, "{{\"_aws\":{{\"Timestamp\":{timestamp},\"CloudWatchMetrics\":[{{\"Namespace\":");
    push_json_string(&mut doc, &settings.metrics_namespace);
    doc.push_str(",\"Dimensions\":[[\"FunctionName\"]],\"Metrics\":[");
    for (i, (name, unit)) in declared.enumerate() {
        let comma = if i == 0 { "" } else { "," };
        let _ = write!(doc, "{comma}{{\"Name\":\"{name}\",\"Unit\":\"{unit}\"}}");
    }
    doc.push_str("]}]},\"FunctionName\":");
    push_json_string(&mut doc, &settings.function_name);
    for (name, value) in counted {
        let _ = write!(doc, ",\"{name}\":{value}");
    }
    for (name, value) in timed {
        match value {
            Some(ms) => write!(doc, ",\"{name}\":{ms}"),
            None => write!(doc, ",\"{name}\":{:.3}", duration.as_secs_f64() * 1000.0),
        }
        .expect("writing to a String");
    }
    doc.push('}');
    doc
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn record(id: &str) -> Record<'static> {
        Record { message_id: Some(id.to_owned().into()), ..Record::default() }
    }

    #[test]
    fn a_success_line_stays_under_200_bytes_with_a_real_message_id() {
        let out = Shared::default();
        let sink = LogSink::new(out.clone());
        let log = BatchLog::new(&sink, LogSuccesses::Each);
        let id = "0b6e8f1c-1a2b-4000-8000-00000000cafe";
        log.outcome(&record(id), 123, &Outcome::Succeeded(Ack::Applied), 0, false);
        log.flush();
        let text = out.text();
        assert!(text.len() <= 200, "{} bytes: {text}", text.len());
        let line: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!((line["message_id"].as_str(), line["receive_count"].as_u64()), (Some(id), Some(123)));
        assert_eq!((line["event"].as_str(), line["outcome"].as_str()), (Some("outcome"), Some("succeeded")));
    }

    #[test]
    fn lines_wait_in_the_buffer_until_it_fills_or_the_batch_flushes() {
        let out = Shared::default();
        let sink = LogSink::new(out.clone());
        let log = BatchLog::new(&sink, LogSuccesses::Each);
        log.outcome(&record("a"), 1, &Outcome::Failed(Failure::TimedOut), 5, false);
        assert_eq!(out.text(), "", "one line is buffered");
        let mut n = 1;
        while out.text().is_empty() {
            log.outcome(&record("b"), 1, &Outcome::Succeeded(Ack::Unchanged), 0, false);
            n += 1;
        }
        assert!(out.text().len() >= FLUSH_BYTES, "written in one large piece");
        log.flush();
        assert_eq!(out.text().lines().count(), n, "every line out after the flush");
        assert!(out.text().lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }

    #[test]
    fn an_engine_without_a_sink_writes_nothing() {
        let sink = LogSink::off();
        let log = BatchLog::new(&sink, LogSuccesses::Each);
        log.batch(1, false, 10);
        log.outcome(&record("a"), 1, &Outcome::Failed(Failure::TimedOut), 5, true);
        log.metrics(&Settings::default(), Counts::default(), None, Duration::ZERO);
        assert!(log.buffer.lock().unwrap().is_empty());
    }

    #[test]
    fn emf_document_declares_every_metric_it_carries() {
        let counts = Counts { received: 4, succeeded: 1, unchanged: 1, retried: 1, dead_lettered: 1, braked: 1 };
        let ages = MessageAges { max_ms: 9_000, p50_ms: 250 };
        let text = emf(
            &Settings::default().with_metrics("Orders", "orders-fn"),
            counts,
            Some(ages),
            Duration::from_millis(12),
            UNIX_EPOCH + Duration::from_secs(7),
        );
        let doc: serde_json::Value = serde_json::from_str(&text).expect("one JSON document");
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), METRIC_NAMES.len());
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(METRIC_NAMES.contains(&name), "{name} is not in METRIC_NAMES");
            assert!(doc[name].is_number(), "{name} is declared but has no value");
        }
        assert_eq!(doc["_aws"]["Timestamp"], 7000);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Orders");
        assert_eq!(doc["FunctionName"], "orders-fn", "the settings' function name, not the environment's");
        assert_eq!(doc["BatchDuration"], 12.0);
        assert_eq!(doc["Received"], 4);
        assert_eq!(doc["DeadLettered"], 1);
        assert_eq!(doc["BrakeEngaged"], 1);
        assert_eq!((doc["MessageAgeMax"].as_u64(), doc["MessageAgeP50"].as_u64()), (Some(9_000), Some(250)));
    }

    #[test]
    fn a_batch_without_send_times_declares_no_message_age() {
        let doc: serde_json::Value =
            serde_json::from_str(&emf(&Settings::default(), Counts::default(), None, Duration::ZERO, UNIX_EPOCH))
                .unwrap();
        let declared: Vec<_> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect();
        assert!(!declared.iter().any(|n| n.starts_with("MessageAge")), "{declared:?}");
        assert!(doc.get(metric::MESSAGE_AGE_MAX).is_none(), "no figure is guessed");
    }
}
