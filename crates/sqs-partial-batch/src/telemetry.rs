//! Everything the engine tells the outside world besides the response, written to the
//! [`LogSink`] its owner chose: a line when a batch is in hand, then, from the batch's report
//! and in one pass, one JSON line per record (its outcome, which carries the receive count, so
//! an attempt needs no line of its own), a line if the brake engaged, and the batch's
//! metrics. Message bodies never appear here; ids, counts, outcomes and reasons do.
//!
//! The lines are written into a buffer, handed to the sink in large writes, and all of them
//! before the batch's response is returned: a record's line is out before the response that
//! acknowledges it. They are stamped when the report is written.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::age::MessageAges;
use crate::event::Record;
use crate::logline::{Line, Stamp};
use crate::metrics::{Counts, push_emf};
use crate::outcome::Outcome;
use crate::report::{BatchReport, RecordReport};
use crate::settings::{LogSuccesses, Settings};

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
/// bounded buffer (10,000 records would otherwise hold ~1.7 MB of lines).
const FLUSH_BYTES: usize = 32 * 1024;

/// The batch's first line, written at once: it says that a batch is in hand.
pub(crate) fn batch_started(sink: &LogSink, records: usize, fifo: bool, budget_ms: u64) {
    if !sink.is_on() {
        return;
    }
    let mut out = String::with_capacity(160);
    let mut line = Line::start(&mut out, Stamp::at(SystemTime::now()).as_str(), "INFO", "batch");
    line.num("records", records as u64)
        .bool("fifo", fifo)
        .num("budget_ms", budget_ms)
        .str("message", "processing batch");
    line.end();
    sink.write(out.as_bytes());
}

/// The batch's lines and metrics, from its report: a line per record (unless it succeeded and
/// successes are not logged), `brake_engaged` if the brake engaged, and the EMF document.
/// `started_at_ms` (epoch ms) is when the batch started, `duration` how long it took.
pub(crate) fn write_report(
    sink: &LogSink,
    settings: &Settings,
    report: &BatchReport<'_>,
    started_at_ms: u64,
    duration: Duration,
) {
    if !sink.is_on() {
        return;
    }
    let now = SystemTime::now();
    let stamp = Stamp::at(now);
    let stamp = stamp.as_str();
    let mut out = String::with_capacity((report.reports().len() * 192 + 1024).min(FLUSH_BYTES + 1024));
    for (record, record_report) in report.iter() {
        push_outcome(&mut out, stamp, settings, record, record_report);
        if out.len() >= FLUSH_BYTES {
            sink.write(out.as_bytes());
            out.clear();
        }
    }
    let counts = Counts::of(report.reports().iter().map(|r| &r.outcome));
    if counts.braked > 0 {
        let mut line = Line::start(&mut out, stamp, "WARN", "brake_engaged");
        line.num("after", settings.brake_after().into())
            .num("braked", counts.braked as u64)
            .str("message", "untried records reported failed");
        line.end();
    }
    let ages = MessageAges::of(report.iter().filter_map(|(record, _)| record.sent_at_ms()), started_at_ms);
    push_emf(&mut out, settings, counts, ages, duration, now);
    sink.write(out.as_bytes());
}

/// A record's outcome with the delay before its next delivery. A retried record at
/// `maxReceiveCount` is marked `final_attempt`: the queue's redrive policy dead-letters it on
/// the next receive. A success line is the shortest (no message text: ~170 bytes).
fn push_outcome(out: &mut String, stamp: &str, settings: &Settings, record: &Record<'_>, report: &RecordReport) {
    let outcome = &report.outcome;
    let success = matches!(outcome, Outcome::Succeeded | Outcome::Unchanged);
    if success && settings.log_successes() == LogSuccesses::None {
        return;
    }
    let message_id = record.id().unwrap_or("-");
    let receive_count = record.receive_count();
    match outcome {
        Outcome::DeadLettered { kind, reason } => {
            let mut line = Line::start(out, stamp, "WARN", "outcome");
            line.str("message_id", message_id)
                .num("receive_count", receive_count.into())
                .str("outcome", outcome.name())
                .str("error_kind", kind)
                .str("reason", reason)
                .str("message", "permanent failure sent to the dead-letter queue");
            line.end();
        }
        Outcome::Retried(retry) => {
            let final_attempt = receive_count >= settings.max_receive_count();
            let mut line = Line::start(out, stamp, if final_attempt { "ERROR" } else { "WARN" }, "outcome");
            line.str("message_id", message_id)
                .num("receive_count", receive_count.into())
                .str("outcome", outcome.name())
                .str("reason", retry.reason())
                .num("next_delay_s", report.next_delay_s.into())
                .bool("final_attempt", final_attempt)
                .str(
                    "message",
                    if final_attempt {
                        "final attempt failed: the redrive policy moves the message to the dead-letter queue on its next receive"
                    } else {
                        "record will be retried"
                    },
                );
            line.end();
        }
        _ => {
            let mut line = Line::start(out, stamp, "INFO", "outcome");
            line.str("message_id", message_id)
                .num("receive_count", receive_count.into())
                .str("outcome", outcome.name());
            line.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::outcome::Retry;

    /// A writer that keeps each write apart.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Writes {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Writes {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().concat()).unwrap()
        }
        fn sizes(&self) -> Vec<usize> {
            self.0.lock().unwrap().iter().map(Vec::len).collect()
        }
    }

    fn record(id: &str) -> Record<'static> {
        Record { message_id: Some(id.to_owned().into()), ..Record::default() }
    }

    fn write(sink: &LogSink, settings: &Settings, records: &[Record<'static>], outcomes: Vec<Outcome>) {
        let reports = outcomes.into_iter().map(|o| RecordReport::new(o, 5)).collect();
        let report = BatchReport::new(records, reports);
        write_report(sink, settings, &report, 0, Duration::ZERO);
    }

    #[test]
    fn a_success_line_stays_under_200_bytes_with_a_real_message_id() {
        let out = Writes::default();
        let id = "0b6e8f1c-1a2b-4000-8000-00000000cafe";
        let mut records = [record(id)];
        records[0].attributes.approximate_receive_count = Some("123".into());
        write(&LogSink::new(out.clone()), &Settings::default(), &records, vec![Outcome::Succeeded]);
        let text = out.text();
        let first = text.lines().next().unwrap();
        assert!(first.len() < 200, "{} bytes: {first}", first.len());
        let line: serde_json::Value = serde_json::from_str(first).unwrap();
        assert_eq!((line["message_id"].as_str(), line["receive_count"].as_u64()), (Some(id), Some(123)));
        assert_eq!((line["event"].as_str(), line["outcome"].as_str()), (Some("outcome"), Some("succeeded")));
    }

    #[test]
    fn a_batchs_lines_go_out_in_large_writes_every_line_before_the_write_returns() {
        let out = Writes::default();
        let records: Vec<_> = (0..1000).map(|i| record(&format!("m{i}"))).collect();
        let outcomes = (0..1000).map(|i| if i % 2 == 0 { Outcome::Unchanged } else { Outcome::Succeeded }).collect();
        write(&LogSink::new(out.clone()), &Settings::default(), &records, outcomes);
        let sizes = out.sizes();
        assert!(sizes.len() > 1, "more than one buffer's worth");
        assert!(sizes[..sizes.len() - 1].iter().all(|s| *s >= FLUSH_BYTES), "written in large pieces: {sizes:?}");
        let text = out.text();
        assert_eq!(text.lines().count(), 1000 + 1, "every line and the EMF document");
        assert!(text.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    }

    #[test]
    fn a_braked_batch_says_so_once_after_its_records() {
        let out = Writes::default();
        let records = [record("a"), record("b"), record("c")];
        let outcomes = vec![
            Outcome::Retried(Retry::Transient("down".into())),
            Outcome::Retried(Retry::Braked),
            Outcome::Retried(Retry::Braked),
        ];
        write(&LogSink::new(out.clone()), &Settings::default().with_brake_after(1), &records, outcomes);
        let lines: Vec<serde_json::Value> = out.text().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let brake: Vec<_> = lines.iter().filter(|l| l["event"] == "brake_engaged").collect();
        assert_eq!(brake.len(), 1);
        assert_eq!((brake[0]["braked"].as_u64(), brake[0]["after"].as_u64()), (Some(2), Some(1)));
        assert_eq!(lines.iter().filter(|l| l["outcome"] == "braked").count(), 2);
    }
}
