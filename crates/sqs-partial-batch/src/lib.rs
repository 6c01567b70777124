#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod age;
mod backoff;
mod deadline;
mod engine;
mod errors;
pub mod json;
mod logline;
mod outcome;
#[cfg(feature = "sdk")]
mod poller;
mod queue;
pub mod reason;
mod record;
mod report;
mod settings;
#[cfg(feature = "sdk")]
mod sqs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod visibility;

pub use backoff::{Backoff, MAX_VISIBILITY_SECONDS};
pub use deadline::deadline_from_epoch_ms;
pub use engine::{Engine, HandlerFn, RecordHandler, handler_fn};
pub use outcome::{Ack, BatchReport, Failure, MissingMessageId, Outcome, RecordError, RecordReport};
#[cfg(feature = "sdk")]
pub use poller::{DEFAULT_SHUTDOWN_GRACE, PollError, PollOptions, PollTotals, poll};
pub use queue::{
    ATTRIBUTE_DROP_ORDER, DeadLetter, LetterParts, PLACEHOLDER_BODY, QueueError, QueueOps, SQS_MAX_MESSAGE_BYTES,
    VisibilityChange, attribute,
};
pub use record::{Attributes, Batch, EventError, MessageAttribute, Record, SqsSource};
pub use report::{Counts, LogSink, LogSuccesses, METRIC_NAMES, metric};
pub use settings::{FifoMode, MARGIN_CONFLICT, Settings};
#[cfg(feature = "sdk")]
pub use sqs::SqsQueues;

#[cfg(test)]
mod tests;
