//! The engine's policy: every default in one place, [`Settings::default`], changed only
//! through the `with_` methods, which keep every value in range (an application reads its own
//! configuration and passes it in). How the queues are reached (an emulator's endpoint, the
//! dead-letter queue) is the queue operations' business, not a setting.

use std::time::Duration;

pub use crate::backoff::Backoff;

/// Why a deadline margin must be shorter than the time a batch has (the function timeout in
/// Lambda, the visibility timeout when polling): otherwise every record is cut before it runs.
pub const MARGIN_CONFLICT: &str = "every record would be cut before it could run, and retried forever";

/// What a failure in a FIFO message group stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FifoMode {
    /// Only the rest of the failed record's group is reported failed; other groups go on.
    /// AWS's rule "stop at the first failure" holds per group, which is all ordering needs.
    Group,
    /// The first failure stops the whole batch, as AWS's documentation describes it.
    Batch,
}

/// Whether a successful record gets its log line. A failure always does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogSuccesses {
    /// One line per successful record: the default.
    Each,
    /// No line for a success; the batch's metrics still count it.
    None,
}

/// The engine's settings. Start from [`Settings::default`] and change what differs:
///
/// ```
/// use std::time::Duration;
/// use sqs_partial_batch::Settings;
/// use sqs_partial_batch::settings::Backoff;
///
/// let settings = Settings::default()
///     .with_max_receive_count(3)
///     .with_backoff(Backoff::new(2, 60))
///     .with_deadline_margin(Duration::from_millis(500))
///     .with_metrics("Orders", "orders-consumer");
/// assert_eq!(settings.max_concurrency(), 16);
/// assert_eq!(Settings::default().with_max_concurrency(0).max_concurrency(), 1, "kept in range");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    max_receive_count: u32,
    backoff: Backoff,
    max_concurrency: usize,
    deadline_margin: Duration,
    fifo_mode: FifoMode,
    brake_after: u32,
    metrics_namespace: String,
    function_name: String,
    log_successes: LogSuccesses,
    carried_first: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
            backoff: Backoff::new(5, 900),
            max_concurrency: 16,
            deadline_margin: Duration::from_millis(2000),
            fifo_mode: FifoMode::Group,
            brake_after: 5,
            metrics_namespace: "SqsPartialBatch".to_owned(),
            function_name: "local".to_owned(),
            log_successes: LogSuccesses::Each,
            carried_first: Vec::new(),
        }
    }
}

impl Settings {
    /// The source queue's `maxReceiveCount`: a failure at this receive count is the last
    /// (default 5).
    pub fn max_receive_count(&self) -> u32 {
        self.max_receive_count
    }

    /// Visibility backoff for transient failures (default 5 s doubling to 900 s).
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// How many records (standard queues) or message groups (FIFO) run at once, and how many
    /// visibility calls (default 16).
    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// Records still running at `deadline - margin` are reported failed, so the response
    /// reaches Lambda before its timeout (a timeout retries the whole batch). Default 2 s.
    pub fn deadline_margin(&self) -> Duration {
        self.deadline_margin
    }

    /// FIFO failure policy (default [`FifoMode::Group`]).
    pub fn fifo_mode(&self) -> FifoMode {
        self.fifo_mode
    }

    /// The outage brake: after this many transient failures in a row, records not yet started
    /// are reported failed untried (with the same backoff). 0 turns it off; default 5.
    pub fn brake_after(&self) -> u32 {
        self.brake_after
    }

    /// CloudWatch namespace of the embedded metrics (default `SqsPartialBatch`).
    pub fn metrics_namespace(&self) -> &str {
        &self.metrics_namespace
    }

    /// The metrics' `FunctionName` dimension: Lambda's `AWS_LAMBDA_FUNCTION_NAME` for a
    /// function (default `local`).
    pub fn function_name(&self) -> &str {
        &self.function_name
    }

    /// Whether successful records get a log line (failures always do; default each).
    pub fn log_successes(&self) -> LogSuccesses {
        self.log_successes
    }

    /// The names of the source message attributes a dead letter carries before any other
    /// (default none: all in name order). SQS takes ten attributes per message and the engine's
    /// own take six or seven, so an attribute a redrive needs (an owner, say) belongs here.
    pub fn carried_first(&self) -> &[String] {
        &self.carried_first
    }

    /// The source queue's `maxReceiveCount` (at least 1).
    pub fn with_max_receive_count(mut self, max_receive_count: u32) -> Self {
        self.max_receive_count = max_receive_count.max(1);
        self
    }

    /// The backoff of transient failures ([`Backoff::new`] keeps it within SQS's limit).
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// How many records or FIFO groups run at once (at least 1).
    pub fn with_max_concurrency(mut self, max_concurrency: usize) -> Self {
        self.max_concurrency = max_concurrency.max(1);
        self
    }

    /// The time kept before the invocation's deadline.
    pub fn with_deadline_margin(mut self, margin: Duration) -> Self {
        self.deadline_margin = margin;
        self
    }

    /// The FIFO failure policy.
    pub fn with_fifo_mode(mut self, fifo_mode: FifoMode) -> Self {
        self.fifo_mode = fifo_mode;
        self
    }

    /// Transient failures in a row before the brake engages; 0 turns it off.
    pub fn with_brake_after(mut self, brake_after: u32) -> Self {
        self.brake_after = brake_after;
        self
    }

    /// The metrics' CloudWatch namespace and `FunctionName` dimension.
    pub fn with_metrics(mut self, namespace: impl Into<String>, function_name: impl Into<String>) -> Self {
        self.metrics_namespace = namespace.into();
        self.function_name = function_name.into();
        self
    }

    /// Whether successful records get a log line.
    pub fn with_log_successes(mut self, log_successes: LogSuccesses) -> Self {
        self.log_successes = log_successes;
        self
    }

    /// The source message attributes a dead letter carries first, in this order.
    pub fn with_carried_first(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.carried_first = names.into_iter().map(Into::into).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_keeps_counts_in_range_so_no_setting_can_stall_the_engine() {
        let settings = Settings::default().with_max_concurrency(0).with_max_receive_count(0);
        assert_eq!((settings.max_concurrency(), settings.max_receive_count()), (1, 1));
        let backoff = Settings::default().with_backoff(Backoff::new(100_000, 1_000_000)).backoff().max_seconds();
        assert_eq!(backoff, Backoff::MAX_SECONDS);
    }
}
