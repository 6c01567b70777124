//! Test support for notes-sync, kept out of the product: the one in-memory note store, the
//! generator of SQS events, faults and settings, and the checks that the property tests
//! (`tests/properties.rs`) and the fuzz targets (`fuzz/`) share. The queue fake and the batch
//! invariants are the engine's own (`sqs_partial_batch::testing`), re-exported here.
#![warn(missing_docs)]

mod scenario;
mod store;

pub use scenario::{Scenario, check_event, check_message, run_scenario, scenario_from_bytes};
pub use sqs_partial_batch::testing::{
    RecordingQueues, SentLetter, VisibilityCall, capture_logs, check_batch, log_sink,
};
pub use store::MemoryStore;
