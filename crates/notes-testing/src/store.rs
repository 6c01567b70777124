//! The one in-memory note store: the DynamoDB store's total order, and faults on demand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use notes_sync::notes::{NoteMessage, NoteStore, StoreError, Written, change_order};

/// A note store in memory with the DynamoDB store's total order on `(version, updated_at,
/// client_id)`; it can be made to fail every call, or the calls for some note ids.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Note id → the winning change's `(version, updated_at in ns, client id)`.
    notes: Mutex<HashMap<String, (u64, i128, String)>>,
    /// Note ids starting with this fail, as a throttled partition does.
    flaky_prefix: Option<String>,
    /// Calls made, failed ones included.
    pub calls: AtomicUsize,
    /// While set, every call fails as a store outage does.
    pub failing: AtomicBool,
}

impl MemoryStore {
    /// A store whose calls for note ids starting with `prefix` fail.
    pub fn failing_ids_starting_with(prefix: impl Into<String>) -> Self {
        Self { flaky_prefix: Some(prefix.into()), ..Self::default() }
    }

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
        if self.flaky_prefix.as_deref().is_some_and(|prefix| message.note.id.starts_with(prefix)) {
            return Err(StoreError("ProvisionedThroughputExceededException: rate exceeded".into()));
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
