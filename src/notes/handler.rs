//! The notes consumer's record handler: parse, validate, store.

use sqs_partial_batch::{Ack, Record, RecordError, RecordHandler};

use super::message::NoteMessage;
use super::store::{NoteStore, Written};

/// Applies note messages to a [`NoteStore`].
#[derive(Debug, Clone)]
pub struct NotesHandler<S> {
    store: S,
}

impl<S: NoteStore> NotesHandler<S> {
    /// A handler writing to `store`.
    pub fn new(store: S) -> Self {
        Self { store }
    }

    /// The store it writes to.
    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: NoteStore> RecordHandler for NotesHandler<S> {
    async fn handle(&self, record: &Record<'_>) -> Result<Ack, RecordError> {
        let body = record.body.as_deref().unwrap_or_default();
        // The kind goes beside the reason (`error_kind`), so the reason is the detail alone:
        // "expected value at line 1 column 1", not "invalid_json: expected value …".
        let message =
            NoteMessage::parse(body).map_err(|invalid| RecordError::permanent(invalid.kind(), invalid.detail()))?;
        match self.store.apply(&message).await {
            Ok(Written::Applied) => Ok(Ack::Succeeded),
            Ok(Written::Stale) => Ok(Ack::Unchanged),
            Err(e) => Err(RecordError::transient(e)),
        }
    }
}
