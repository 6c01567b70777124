//! In-memory fakes behind the project's own traits, and the invariants every batch must
//! keep: shared by the property tests (`cargo test`) and the fuzz targets (`fuzz/`, which
//! enable the `testing` feature). Not part of the consumer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::notes::{NoteMessage, NoteStore, StoreError, Written, change_order};
pub use sqs_partial_batch::testing::{RecordingQueues, SentLetter, capture_logs, check_batch, log_sink};

mod scenario;
pub use scenario::{Scenario, check_event, check_message, run_scenario, scenario_from_bytes};

/// A note store in memory with the DynamoDB store's total order; it can be made to fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Note id → the winning change's `(version, updated_at in ns, client id)`.
    notes: Mutex<HashMap<String, (u64, i128, String)>>,
    /// Calls made, failed ones included.
    pub calls: AtomicUsize,
    /// While set, every call fails as a store outage does.
    pub failing: AtomicBool,
}

impl MemoryStore {
    /// The winning change of a note: `(version, updated_at in ns, client id)`.
    pub fn winner(&self, id: &str) -> Option<(u64, i128, String)> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

impl NoteStore for MemoryStore {
    async fn apply(&self, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("ProvisionedThroughputExceededException: store down".into()));
        }
        let (version, updated, client) = change_order(message).ok_or_else(|| StoreError("bad updated_at".into()))?;
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let new = (version, updated, client.to_owned());
        match notes.get(message.note.id.as_ref()) {
            Some(old) if *old >= new => Ok(Written::Stale),
            _ => {
                notes.insert(message.note.id.to_string(), new);
                Ok(Written::Applied)
            }
        }
    }
}
