#![doc = include_str!("../README.md")]
#![warn(missing_docs, unreachable_pub)]

// The modules in floors, lowest first: a module uses only modules on floors below its own
// (`tests/layers.rs` checks it, and that no import cycle exists among the crate's files).

// Floor 0: text, time and errors; no engine types.
mod age;
mod backoff;
mod charset;
mod deadline;
mod errors;
pub mod json;
mod logline;

// Floor 1: a message's attributes, outcomes, reasons, settings.
mod attributes;
mod outcome;
pub mod reason;
pub mod settings;

// Floor 2: the event, a dead letter, the metrics.
pub mod event;
mod letter;
pub mod metrics;

// Floor 3: the handler, the queue operations, the batch's report.
mod handler;
pub mod queue;
pub mod report;

// Floor 4: a batch's stages: running the records, backing off, writing telemetry; the
// poller's checks of its queue.
#[cfg(feature = "sdk")]
mod queue_check;
mod run;
mod telemetry;
mod visibility;

// Floor 5: the engine, which takes a batch through the stages.
mod engine;

// Floor 6: polling outside Lambda.
#[cfg(feature = "sdk")]
pub mod poll;

// Floor 7: test support.
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use deadline::deadline_from_epoch_ms;
pub use engine::{Engine, InvocationError};
#[doc(inline)]
pub use event::{Batch, Record};
pub use handler::{HandlerFn, RecordHandler, handler_fn};
pub use outcome::{Ack, RecordError};
#[doc(inline)]
pub use report::BatchReport;
#[doc(inline)]
pub use settings::Settings;
pub use telemetry::LogSink;

#[cfg(test)]
mod tests;
