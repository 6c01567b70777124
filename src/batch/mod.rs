//! A generic SQS partial-batch engine for Lambda (and for polling outside Lambda).
//!
//! It knows SQS and Lambda, and nothing about what the messages mean: a [`RecordHandler`]
//! says per record whether it succeeded, failed transiently or failed permanently, and the
//! engine turns that into a partial batch response, visibility backoff and dead letters.

mod age;
mod backoff;
mod deadline;
mod engine;
mod logline;
mod outcome;
mod poller;
mod queue;
pub mod reason;
mod record;
mod report;
mod settings;
mod visibility;

pub use age::MessageAges;
pub use backoff::{Backoff, MAX_VISIBILITY_SECONDS};
pub use deadline::deadline_from_epoch_ms;
pub use engine::{Engine, RecordHandler, VISIBILITY_SLACK_SECONDS};
pub use outcome::{Ack, Failure, MissingMessageId, Outcome, RecordError, to_response};
pub use poller::{PollError, PollOptions, PollTotals, poll};
pub use queue::{
    ATTRIBUTE_DROP_ORDER, DeadLetter, LetterParts, PLACEHOLDER_BODY, QueueError, QueueOps, SQS_MAX_MESSAGE_BYTES,
    SqsQueues, VisibilityChange, queue_url_from_arn,
};
pub use record::{Attributes, Batch, EventError, Record, SqsSource};
pub use report::{Counts, LogSink, LogSuccesses, METRIC_NAMES, metric};
pub use settings::{FifoMode, Settings};

#[cfg(test)]
mod tests;
