//! In-memory fakes behind the project's own traits, and the invariants every batch must
//! keep: shared by the property tests (`cargo test`) and the fuzz targets (`fuzz/`, which
//! enable the `testing` feature). Not part of the consumer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::notes::{NoteMessage, NoteStore, Owner, Rejection, StoreError, Written, change_order};
pub use sqs_partial_batch::testing::{RecordingQueues, SentLetter, capture_logs, check_batch, log_sink};

mod scenario;
pub use scenario::{Scenario, check_event, check_message, run_scenario, scenario_from_bytes};

/// A note's winning change: `(version, updated_at in ns, client id)`.
type Winner = (u64, i128, String);

/// A note store in memory with the DynamoDB store's total order; it can be made to fail.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// (owner, note id) → the winning change's `(version, updated_at in ns, client id)`.
    notes: Mutex<HashMap<(String, String), Winner>>,
    /// (owner, note id, version, kind) of each rejection recorded.
    pub rejections: Mutex<Vec<(String, String, u64, String)>>,
    /// Calls made, failed ones included.
    pub calls: AtomicUsize,
    /// While set, every call fails as a store outage does.
    pub failing: AtomicBool,
}

impl MemoryStore {
    /// The winning change of an owner's note: `(version, updated_at in ns, client id)`.
    pub fn winner(&self, owner: &str, id: &str) -> Option<Winner> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).get(&(owner.to_owned(), id.to_owned())).cloned()
    }
}

impl NoteStore for MemoryStore {
    async fn apply(&self, owner: &Owner, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("ProvisionedThroughputExceededException: store down".into()));
        }
        let (version, updated, client) = change_order(message).ok_or_else(|| StoreError("bad updated_at".into()))?;
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let new = (version, updated, client.to_owned());
        let key = (owner.to_string(), message.note.id.to_string());
        match notes.get(&key) {
            Some(old) if *old >= new => Ok(Written::Stale),
            _ => {
                notes.insert(key, new);
                Ok(Written::Applied)
            }
        }
    }

    async fn reject(&self, owner: &Owner, rejection: &Rejection<'_>) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("ProvisionedThroughputExceededException: store down".into()));
        }
        let row = (owner.to_string(), rejection.note_id.to_owned(), rejection.version, rejection.kind.to_owned());
        self.rejections.lock().unwrap_or_else(|e| e.into_inner()).push(row);
        Ok(())
    }
}
