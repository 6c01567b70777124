//! The one in-memory note store: the DynamoDB store's total order per (owner, note id), the
//! rejections it records, and faults on demand.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use notes_sync::notes::{NoteMessage, NoteStore, Owner, Rejection, StoreError, Written, change_order};

/// A note's winning change: `(version, updated_at in ns, client id)`.
type Winner = (u64, i128, String);

/// A note store in memory with the DynamoDB store's total order on `(version, updated_at,
/// client_id)` per (owner, note id); it can be made to fail every call, or the calls for some
/// note ids.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// (owner, note id) → the winning change.
    notes: Mutex<HashMap<(String, String), Winner>>,
    /// Note ids starting with this fail, as a throttled partition does.
    flaky_prefix: Option<String>,
    /// (owner, note id, version, kind) of each rejection recorded.
    pub rejections: Mutex<Vec<(String, String, u64, String)>>,
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

    /// The winning change of an owner's note: `(version, updated_at in ns, client id)`.
    pub fn winner(&self, owner: &str, id: &str) -> Option<Winner> {
        self.notes.lock().unwrap_or_else(|e| e.into_inner()).get(&(owner.to_owned(), id.to_owned())).cloned()
    }

    /// A call's fault, if it must fail.
    fn fault(&self, note_id: &str) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError("ProvisionedThroughputExceededException: store down".into()));
        }
        if self.flaky_prefix.as_deref().is_some_and(|prefix| note_id.starts_with(prefix)) {
            return Err(StoreError("ProvisionedThroughputExceededException: rate exceeded".into()));
        }
        Ok(())
    }
}

impl NoteStore for MemoryStore {
    async fn apply(&self, owner: &Owner, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        self.fault(&message.note.id)?;
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
        self.fault(rejection.note_id)?;
        let row = (owner.to_string(), rejection.note_id.to_owned(), rejection.version, rejection.kind.to_owned());
        self.rejections.lock().unwrap_or_else(|e| e.into_inner()).push(row);
        Ok(())
    }
}
