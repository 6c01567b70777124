//! Everything the engine tells the outside world besides the response: one JSON log line per
//! attempt and per outcome, and CloudWatch Embedded Metric Format per batch. Message bodies
//! never appear here; ids, counts, outcomes and reasons do.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use super::age::MessageAges;
use super::outcome::{Ack, Failure, Outcome};
use super::record::Record;

/// Logs the start of one delivery attempt.
pub fn attempt(record: &Record<'_>, receive_count: u32) {
    tracing::info!(event = "attempt", message_id = record.id().unwrap_or("-"), receive_count, "processing record");
}

/// Logs a record's outcome with the delay before its next delivery. `final_attempt` marks a
/// failure at `maxReceiveCount`: the queue's redrive policy dead-letters it on the next receive.
pub fn outcome(record: &Record<'_>, receive_count: u32, outcome: &Outcome, next_delay_s: u32, final_attempt: bool) {
    let message_id = record.id().unwrap_or("-");
    let name = outcome.name();
    match outcome {
        Outcome::Succeeded(_) => {
            tracing::info!(event = "outcome", message_id, receive_count, outcome = name, "record done")
        }
        Outcome::DeadLettered { kind, reason } => tracing::warn!(
            event = "outcome",
            message_id,
            receive_count,
            outcome = name,
            error_kind = kind,
            reason = reason.as_str(),
            "permanent failure sent to the dead-letter queue"
        ),
        Outcome::Failed(failure) => {
            let reason = match failure {
                Failure::Transient(r) | Failure::Panicked(r) => r.as_str(),
                Failure::DeadLetterUnavailable { error, .. } => error.as_str(),
                Failure::TimedOut => "unfinished when the batch was cut (deadline less margin, or shutdown)",
                Failure::SkippedAfterGroupFailure => "an earlier record of its message group failed",
                Failure::Braked => "not tried: the brake engaged after consecutive transient failures",
            };
            if final_attempt {
                tracing::error!(
                    event = "outcome",
                    message_id,
                    receive_count,
                    outcome = name,
                    reason,
                    next_delay_s,
                    final_attempt,
                    "final attempt failed: the redrive policy moves the message to the dead-letter queue on its next receive"
                )
            } else {
                tracing::warn!(
                    event = "outcome",
                    message_id,
                    receive_count,
                    outcome = name,
                    reason,
                    next_delay_s,
                    final_attempt,
                    "record will be retried"
                )
            }
        }
    }
}

/// Per-batch counts, published as CloudWatch metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records in the batch.
    pub received: usize,
    /// Applied.
    pub succeeded: usize,
    /// Duplicates or stale versions: success without effect.
    pub stale: usize,
    /// Reported failed, to be retried.
    pub retried: usize,
    /// Sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Reported failed untried because the brake engaged (also counted in `retried`).
    pub braked: usize,
}

impl Counts {
    /// Counts a batch's outcomes.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut counts = Self { received: outcomes.len(), ..Self::default() };
        for outcome in outcomes {
            match outcome {
                Outcome::Succeeded(Ack::Applied) => counts.succeeded += 1,
                Outcome::Succeeded(Ack::Stale) => counts.stale += 1,
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
    /// Duplicates or older versions: success without effect.
    pub const STALE: &str = "Stale";
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
    metric::STALE,
    metric::RETRIED,
    metric::DEAD_LETTERED,
    metric::BRAKE_ENGAGED,
    metric::BATCH_DURATION,
    metric::MESSAGE_AGE_MAX,
    metric::MESSAGE_AGE_P50,
];

/// The batch's metrics as one Embedded Metric Format document. Message ages are declared only
/// when some record said when it was sent: a missing figure is skipped, never guessed.
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>
pub fn emf(
    namespace: &str,
    counts: Counts,
    ages: Option<MessageAges>,
    duration: Duration,
    now: SystemTime,
) -> serde_json::Value {
    const COUNT: &str = "Count";
    const MS: &str = "Milliseconds";
    let timestamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
    let mut metrics: Vec<(&str, &str, serde_json::Value)> = vec![
        (metric::RECEIVED, COUNT, counts.received.into()),
        (metric::SUCCEEDED, COUNT, counts.succeeded.into()),
        (metric::STALE, COUNT, counts.stale.into()),
        (metric::RETRIED, COUNT, counts.retried.into()),
        (metric::DEAD_LETTERED, COUNT, counts.dead_lettered.into()),
        (metric::BRAKE_ENGAGED, COUNT, usize::from(counts.braked > 0).into()),
        (metric::BATCH_DURATION, MS, (duration.as_secs_f64() * 1000.0).into()),
    ];
    if let Some(ages) = ages {
        metrics.push((metric::MESSAGE_AGE_MAX, MS, ages.max_ms.into()));
        metrics.push((metric::MESSAGE_AGE_P50, MS, ages.p50_ms.into()));
    }
    let declared: Vec<_> = metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit})).collect();
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["FunctionName"]], "Metrics": declared}]
        },
        "FunctionName": function,
    });
    for (name, _, value) in metrics {
        doc[name] = value;
    }
    doc
}

/// Writes the batch's metrics to stdout, where Lambda's log capture picks EMF documents up.
pub fn publish_metrics(namespace: &str, counts: Counts, ages: Option<MessageAges>, duration: Duration) {
    let line = emf(namespace, counts, ages, duration, SystemTime::now());
    let mut out = std::io::stdout().lock();
    // A metrics line that cannot be written must not fail the batch.
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_metric_it_carries() {
        let counts = Counts { received: 4, succeeded: 1, stale: 1, retried: 1, dead_lettered: 1, braked: 1 };
        let ages = MessageAges { max_ms: 9_000, p50_ms: 250 };
        let doc = emf("NotesSync", counts, Some(ages), Duration::from_millis(12), UNIX_EPOCH + Duration::from_secs(7));
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), METRIC_NAMES.len());
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(METRIC_NAMES.contains(&name), "{name} is not in METRIC_NAMES");
            assert!(doc[name].is_number(), "{name} is declared but has no value");
        }
        assert_eq!(doc["_aws"]["Timestamp"], 7000);
        assert_eq!(doc["Received"], 4);
        assert_eq!(doc["DeadLettered"], 1);
        assert_eq!(doc["BrakeEngaged"], 1);
        assert_eq!((doc["MessageAgeMax"].as_u64(), doc["MessageAgeP50"].as_u64()), (Some(9_000), Some(250)));
    }

    #[test]
    fn a_batch_without_send_times_declares_no_message_age() {
        let doc = emf("NotesSync", Counts::default(), None, Duration::ZERO, UNIX_EPOCH);
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
