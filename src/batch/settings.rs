//! The engine's settings: plain data, read from the environment by [`crate::config`].

use std::time::Duration;

use super::backoff::Backoff;
use super::report::LogSuccesses;

/// What a failure in a FIFO message group stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FifoMode {
    /// Only the rest of the failed record's group is reported failed; other groups go on.
    /// AWS's rule "stop at the first failure" holds per group, which is all ordering needs.
    Group,
    /// The first failure stops the whole batch, as AWS's documentation describes it.
    Batch,
}

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The source queue's `maxReceiveCount`: a failure at this receive count is the last.
    pub max_receive_count: u32,
    /// Visibility backoff for transient failures.
    pub backoff: Backoff,
    /// How many records (standard queues) or message groups (FIFO) run at once.
    pub max_concurrency: usize,
    /// Records still running at `deadline - margin` are reported failed, so the response
    /// reaches Lambda before its timeout (a timeout retries the whole batch).
    pub deadline_margin: Duration,
    /// FIFO failure policy.
    pub fifo_mode: FifoMode,
    /// The store-outage brake: after this many transient failures in a row, records not yet
    /// started are reported failed untried (with the same backoff). 0 turns it off.
    pub brake_after: u32,
    /// Endpoint override for SQS (local emulators): turns event source ARNs into queue URLs.
    pub sqs_endpoint: Option<String>,
    /// CloudWatch namespace of the embedded metrics.
    pub metrics_namespace: String,
    /// The metrics' `FunctionName` dimension (Lambda's `AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
    /// Whether successful records get a log line (failures always do).
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
            metrics_namespace: "NotesSync".to_owned(),
            function_name: "local".to_owned(),
            log_successes: LogSuccesses::Each,
        }
    }
}
