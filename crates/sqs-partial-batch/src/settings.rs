//! The engine's settings: every default in one place, [`Settings::default`], changed with the
//! `with_` methods (an application reads its own configuration and passes it in).

use std::time::Duration;

use super::backoff::Backoff;
use super::report::LogSuccesses;

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

/// The engine's settings. Start from [`Settings::default`] and change what differs:
///
/// ```
/// use std::time::Duration;
/// use sqs_partial_batch::{Backoff, Settings};
///
/// let settings = Settings::default()
///     .with_max_receive_count(3)
///     .with_backoff(Backoff::new(2, 60))
///     .with_deadline_margin(Duration::from_millis(500))
///     .with_metrics("Orders", "orders-consumer");
/// assert_eq!(settings.max_concurrency, 16);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The source queue's `maxReceiveCount`: a failure at this receive count is the last
    /// (default 5).
    pub max_receive_count: u32,
    /// Visibility backoff for transient failures (default 5 s doubling to 900 s).
    pub backoff: Backoff,
    /// How many records (standard queues) or message groups (FIFO) run at once (default 16).
    pub max_concurrency: usize,
    /// Records still running at `deadline - margin` are reported failed, so the response
    /// reaches Lambda before its timeout (a timeout retries the whole batch). Default 2 s.
    pub deadline_margin: Duration,
    /// FIFO failure policy (default [`FifoMode::Group`]).
    pub fifo_mode: FifoMode,
    /// The outage brake: after this many transient failures in a row, records not yet started
    /// are reported failed untried (with the same backoff). 0 turns it off; default 5.
    pub brake_after: u32,
    /// Endpoint override for SQS (local emulators): turns event source ARNs into queue URLs.
    pub sqs_endpoint: Option<String>,
    /// CloudWatch namespace of the embedded metrics (default `SqsPartialBatch`).
    pub metrics_namespace: String,
    /// The metrics' `FunctionName` dimension: Lambda's `AWS_LAMBDA_FUNCTION_NAME` for a
    /// function (default `local`).
    pub function_name: String,
    /// Whether successful records get a log line (failures always do; default each).
    pub log_successes: LogSuccesses,
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
            sqs_endpoint: None,
            metrics_namespace: "SqsPartialBatch".to_owned(),
            function_name: "local".to_owned(),
            log_successes: LogSuccesses::Each,
        }
    }
}

impl Settings {
    /// The source queue's `maxReceiveCount` (at least 1).
    pub fn with_max_receive_count(mut self, max_receive_count: u32) -> Self {
        self.max_receive_count = max_receive_count.max(1);
        self
    }

    /// The backoff of transient failures.
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

    /// The SQS endpoint of a local emulator, if any.
    pub fn with_sqs_endpoint(mut self, endpoint: Option<String>) -> Self {
        self.sqs_endpoint = endpoint;
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
}
