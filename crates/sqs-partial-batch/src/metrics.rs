//! The batch's CloudWatch metrics, one Embedded Metric Format document per batch: their
//! names (one constant each: the code that writes them and a dashboard's test read the same
//! list), the [`Counts`] they publish, and the document itself.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::age::MessageAges;
use crate::logline::{push_json_string, push_u64};
use crate::outcome::{Outcome, Retry};
use crate::settings::Settings;

/// Records in the batch.
pub const RECEIVED: &str = "Received";
/// Records whose handler said `Ack::Succeeded` (outcome `succeeded`).
pub const SUCCEEDED: &str = "Succeeded";
/// Records whose handler said `Ack::Unchanged` (outcome `unchanged`).
pub const UNCHANGED: &str = "Unchanged";
/// Records reported failed, to be retried (`Outcome::Retried`, whatever its [`Retry`]).
pub const RETRIED: &str = "Retried";
/// Records sent to the dead-letter queue (outcome `dead_lettered`).
pub const DEAD_LETTERED: &str = "DeadLettered";
/// 1 for a batch in which the brake engaged: its Sum counts braked batches.
pub const BRAKE_ENGAGED: &str = "BrakeEngaged";
/// The batch's processing time, in milliseconds.
pub const BATCH_DURATION: &str = "BatchDuration";
/// Age of the batch's oldest record at processing time (ms); only when records carry `SentTimestamp`.
pub const MESSAGE_AGE_MAX: &str = "MessageAgeMax";
/// Median record age at processing time (ms); only when records carry `SentTimestamp`.
pub const MESSAGE_AGE_P50: &str = "MessageAgeP50";

/// Every metric name the EMF document may carry.
pub const NAMES: [&str; 9] = [
    RECEIVED,
    SUCCEEDED,
    UNCHANGED,
    RETRIED,
    DEAD_LETTERED,
    BRAKE_ENGAGED,
    BATCH_DURATION,
    MESSAGE_AGE_MAX,
    MESSAGE_AGE_P50,
];

/// Per-batch counts, as the metrics of the same names publish them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Records in the batch.
    pub received: usize,
    /// `Outcome::Succeeded`.
    pub succeeded: usize,
    /// `Outcome::Unchanged`.
    pub unchanged: usize,
    /// `Outcome::Retried`: reported failed, to be retried.
    pub retried: usize,
    /// `Outcome::DeadLettered`.
    pub dead_lettered: usize,
    /// `Retry::Braked`: reported failed untried because the brake engaged (also counted in
    /// `retried`).
    pub braked: usize,
}

impl Counts {
    /// Counts a batch's outcomes.
    pub fn of<'o>(outcomes: impl IntoIterator<Item = &'o Outcome>) -> Self {
        let mut counts = Self::default();
        for outcome in outcomes {
            counts.received += 1;
            match outcome {
                Outcome::Succeeded => counts.succeeded += 1,
                Outcome::Unchanged => counts.unchanged += 1,
                Outcome::DeadLettered { .. } => counts.dead_lettered += 1,
                Outcome::Retried(retry) => {
                    counts.retried += 1;
                    counts.braked += usize::from(*retry == Retry::Braked);
                }
            }
        }
        counts
    }
}

/// The batch's metrics as one Embedded Metric Format document, one line with its newline.
/// Message ages are declared only when some record said when it was sent: a missing figure is
/// skipped, never guessed. Written by hand like the log lines: building a `serde_json::Value`
/// for it was a third of a ten-record batch's logging cost in the consumer bench.
pub(crate) fn push_emf(
    out: &mut String,
    settings: &Settings,
    counts: Counts,
    ages: Option<MessageAges>,
    duration: Duration,
    now: SystemTime,
) {
    const COUNT: &str = "Count";
    const MS: &str = "Milliseconds";
    let timestamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let counted = [
        (RECEIVED, counts.received),
        (SUCCEEDED, counts.succeeded),
        (UNCHANGED, counts.unchanged),
        (RETRIED, counts.retried),
        (DEAD_LETTERED, counts.dead_lettered),
        (BRAKE_ENGAGED, usize::from(counts.braked > 0)),
    ];
    let timed = std::iter::once((BATCH_DURATION, None))
        .chain(ages.into_iter().flat_map(|a| [(MESSAGE_AGE_MAX, Some(a.max_ms)), (MESSAGE_AGE_P50, Some(a.p50_ms))]));
    let declared = counted.iter().map(|(name, _)| (*name, COUNT)).chain(timed.clone().map(|(name, _)| (name, MS)));

    out.push_str("{\"_aws\":{\"Timestamp\":");
    push_u64(out, timestamp as u64);
    out.push_str(",\"CloudWatchMetrics\":[{\"Namespace\":");
    push_json_string(out, settings.metrics_namespace());
    out.push_str(",\"Dimensions\":[[\"FunctionName\"]],\"Metrics\":[");
    for (i, (name, unit)) in declared.enumerate() {
        out.push_str(if i == 0 { "{\"Name\":\"" } else { ",{\"Name\":\"" });
        out.push_str(name);
        out.push_str("\",\"Unit\":\"");
        out.push_str(unit);
        out.push_str("\"}");
    }
    out.push_str("]}]},\"FunctionName\":");
    push_json_string(out, settings.function_name());
    for (name, value) in counted {
        push_key(out, name);
        push_u64(out, value as u64);
    }
    for (name, value) in timed {
        push_key(out, name);
        match value {
            Some(ms) => push_u64(out, ms),
            None => push_millis(out, duration),
        }
    }
    out.push_str("}\n");
}

/// `,"name":`
fn push_key(out: &mut String, name: &str) {
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
}

/// A duration in milliseconds with three decimals (`12.345`), from its whole microseconds
/// rounded to the nearest: no float formatting.
fn push_millis(out: &mut String, duration: Duration) {
    let micros = (duration.as_nanos() + 500) / 1000;
    push_u64(out, (micros / 1000) as u64);
    out.push('.');
    let frac = (micros % 1000) as u64;
    if frac < 100 {
        out.push('0');
    }
    if frac < 10 {
        out.push('0');
    }
    push_u64(out, frac);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emf(settings: &Settings, counts: Counts, ages: Option<MessageAges>, duration: Duration) -> serde_json::Value {
        let mut text = String::new();
        push_emf(&mut text, settings, counts, ages, duration, UNIX_EPOCH + Duration::from_secs(7));
        assert_eq!(text.matches('\n').count(), 1, "one line");
        serde_json::from_str(&text).expect("one JSON document")
    }

    #[test]
    fn counts_name_each_outcome_as_its_metric_does() {
        let outcomes = [
            Outcome::Succeeded,
            Outcome::Unchanged,
            Outcome::DeadLettered { kind: "k", reason: "r".into() },
            Outcome::Retried(Retry::Transient("down".into())),
            Outcome::Retried(Retry::Braked),
        ];
        let counts = Counts::of(&outcomes);
        let expected = Counts { received: 5, succeeded: 1, unchanged: 1, retried: 2, dead_lettered: 1, braked: 1 };
        assert_eq!(counts, expected);
    }

    #[test]
    fn emf_document_declares_every_metric_it_carries() {
        let counts = Counts { received: 4, succeeded: 1, unchanged: 1, retried: 1, dead_lettered: 1, braked: 1 };
        let ages = MessageAges { max_ms: 9_000, p50_ms: 250 };
        let settings = Settings::default().with_metrics("Orders", "orders-fn");
        let doc = emf(&settings, counts, Some(ages), Duration::from_millis(12));
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), NAMES.len());
        for metric in declared {
            let name = metric["Name"].as_str().unwrap();
            assert!(NAMES.contains(&name), "{name} is not in NAMES");
            assert!(doc[name].is_number(), "{name} is declared but has no value");
        }
        assert_eq!(doc["_aws"]["Timestamp"], 7000);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Orders");
        assert_eq!(doc["FunctionName"], "orders-fn", "the settings' function name, not the environment's");
        assert_eq!(doc["BatchDuration"], 12.0);
        let mut text = String::new();
        push_millis(&mut text, Duration::from_nanos(12_345_678));
        assert_eq!(text, "12.346", "milliseconds with three decimals, as `{{:.3}}` wrote them");
        assert_eq!(doc["Received"], 4);
        assert_eq!(doc["DeadLettered"], 1);
        assert_eq!(doc["BrakeEngaged"], 1);
        assert_eq!((doc["MessageAgeMax"].as_u64(), doc["MessageAgeP50"].as_u64()), (Some(9_000), Some(250)));
    }

    #[test]
    fn a_batch_without_send_times_declares_no_message_age() {
        let doc = emf(&Settings::default(), Counts::default(), None, Duration::ZERO);
        let declared: Vec<_> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap().to_owned())
            .collect();
        assert!(!declared.iter().any(|n| n.starts_with("MessageAge")), "{declared:?}");
        assert!(doc.get(MESSAGE_AGE_MAX).is_none(), "no figure is guessed");
    }
}
