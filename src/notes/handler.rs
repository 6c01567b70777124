//! The notes consumer's record handler: whose change it is, whether it is valid, then store it.
//!
//! The owner comes from the `owner` message attribute, which only trusted senders (the sync
//! API, trusted services) can set: never from the body. A message without one is dead-lettered
//! as `missing_owner`, and nothing is stored. A change that fails validation is dead-lettered
//! with its reason and, when its note id and version can be read, also recorded as a rejection
//! for its author's next pull (if that record cannot be written, the message is retried, so the
//! author is never left without an answer).

use sqs_partial_batch::{Ack, Record, RecordError, RecordHandler};

use super::message::{Identity, NoteMessage};
use super::owner::{OWNER_ATTRIBUTE, Owner};
use super::store::{NoteStore, Rejection, Written};

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
        let owner = record.message_attribute(OWNER_ATTRIBUTE).ok_or_else(|| {
            RecordError::permanent(
                "missing_owner",
                format_args!(
                    "the message has no `{OWNER_ATTRIBUTE}` attribute: only the sync API and trusted services may send"
                ),
            )
        })?;
        let owner = Owner::parse(owner).map_err(|invalid| RecordError::permanent(invalid.kind(), invalid.detail()))?;
        let body = record.body.as_deref().unwrap_or_default();
        let message = match NoteMessage::parse(body) {
            Ok(message) => message,
            Err(invalid) => {
                let (kind, reason) = (invalid.kind(), invalid.detail());
                if let Some(identity) = Identity::peek(body) {
                    let rejection = Rejection {
                        note_id: &identity.id,
                        version: identity.version,
                        client_id: &identity.client_id,
                        kind,
                        reason: &reason,
                    };
                    self.store.reject(&owner, &rejection).await.map_err(RecordError::transient)?;
                }
                return Err(RecordError::Permanent { kind, reason });
            }
        };
        match self.store.apply(&owner, &message).await {
            Ok(Written::Applied) => Ok(Ack::Succeeded),
            Ok(Written::Stale) => Ok(Ack::Unchanged),
            Err(e) => Err(RecordError::transient(e)),
        }
    }
}
