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
            Ok(Written::Applied) => Ok(Ack::Applied),
            Ok(Written::Stale) => Ok(Ack::Unchanged),
            Err(e) => Err(RecordError::transient(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::notes::{StoreError, change_order};

    type Order = (u64, i128, String);

    /// Keeps each (owner, note)'s winner in the store's own total order, and the rejections;
    /// or is down.
    #[derive(Default)]
    struct MemoryStore {
        notes: Mutex<Vec<((String, String), Order)>>,
        rejections: Mutex<Vec<(String, String, u64, String)>>,
        down: bool,
    }

    impl NoteStore for MemoryStore {
        async fn apply(&self, owner: &Owner, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
            if self.down {
                return Err(StoreError("ResourceNotFoundException: table missing".into()));
            }
            let (version, updated, client) = change_order(message).unwrap();
            let new = (version, updated, client.to_owned());
            let key = (owner.to_string(), message.note.id.to_string());
            let mut notes = self.notes.lock().unwrap();
            match notes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, old)) if *old >= new => Ok(Written::Stale),
                Some((_, old)) => {
                    *old = new;
                    Ok(Written::Applied)
                }
                None => {
                    notes.push((key, new));
                    Ok(Written::Applied)
                }
            }
        }

        async fn reject(&self, owner: &Owner, rejection: &Rejection<'_>) -> Result<(), StoreError> {
            if self.down {
                return Err(StoreError("ResourceNotFoundException: table missing".into()));
            }
            let row = (owner.to_string(), rejection.note_id.to_owned(), rejection.version, rejection.kind.to_owned());
            self.rejections.lock().unwrap().push(row);
            Ok(())
        }
    }

    /// A record as Lambda's event carries it; `None` leaves the attribute or the body out.
    fn record_with(owner: Option<&str>, body: Option<&str>) -> Record<'static> {
        let attributes =
            owner.map_or(String::new(), |o| format!(r#""owner":{{"stringValue":"{o}","dataType":"String"}}"#));
        let body = body.map_or(String::new(), |b| format!(r#""body":{},"#, serde_json::to_string(b).unwrap()));
        let event = format!(
            r#"{{"Records":[{{"messageId":"m",{body}"messageAttributes":{{{attributes}}},"eventSource":"aws:sqs"}}]}}"#
        );
        let event: &'static str = Box::leak(event.into_boxed_str());
        sqs_partial_batch::Batch::parse(event).unwrap().records.remove(0)
    }

    fn record_of(owner: Option<&str>, body: &str) -> Record<'static> {
        record_with(owner, Some(body))
    }

    fn record(body: &str) -> Record<'static> {
        record_of(Some("alice"), body)
    }

    fn upsert(version: u64) -> String {
        format!(
            r#"{{"schema":1,"op":"upsert","client_id":"c","note":{{"id":"n","version":{version},"title":"t","body":"b","updated_at":"2026-11-27T10:00:00Z"}}}}"#
        )
    }

    #[tokio::test]
    async fn a_replay_or_an_older_version_is_stale_success() {
        let handler = NotesHandler::new(MemoryStore::default());
        assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Applied));
        assert_eq!(handler.handle(&record(&upsert(2))).await, Ok(Ack::Unchanged));
        assert_eq!(handler.handle(&record(&upsert(1))).await, Ok(Ack::Unchanged));
        assert_eq!(handler.handle(&record(&upsert(3))).await, Ok(Ack::Applied));
    }

    #[tokio::test]
    async fn the_same_note_id_of_two_owners_is_two_notes() {
        let handler = NotesHandler::new(MemoryStore::default());
        assert_eq!(handler.handle(&record_of(Some("alice"), &upsert(5))).await, Ok(Ack::Applied));
        // Bob's lower version of "n" is not stale: Alice's note is not his.
        assert_eq!(handler.handle(&record_of(Some("bob"), &upsert(1))).await, Ok(Ack::Applied));
        assert_eq!(handler.store().notes.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_message_without_an_owner_is_permanent_missing_owner_and_nothing_is_stored() {
        let handler = NotesHandler::new(MemoryStore::default());
        let err = handler.handle(&record_of(None, &upsert(1))).await.unwrap_err();
        assert!(matches!(err, RecordError::Permanent { kind: "missing_owner", .. }), "{err:?}");
        let err = handler.handle(&record_of(Some(""), &upsert(1))).await.unwrap_err();
        assert!(matches!(err, RecordError::Permanent { kind: "invalid_owner", .. }), "{err:?}");
        assert!(handler.store().notes.lock().unwrap().is_empty());
        assert!(handler.store().rejections.lock().unwrap().is_empty(), "no owner to tell");
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_permanent_with_its_reason() {
        let handler = NotesHandler::new(MemoryStore::default());
        let err = handler.handle(&record("hello")).await.unwrap_err();
        assert_eq!(
            err,
            RecordError::Permanent { kind: "invalid_json", reason: "expected value at line 1 column 1".into() }
        );
        let err = handler.handle(&record_with(Some("alice"), None)).await.unwrap_err();
        assert!(matches!(err, RecordError::Permanent { kind: "invalid_json", .. }), "a missing body: {err:?}");
    }

    #[tokio::test]
    async fn an_invalid_change_with_a_readable_id_is_recorded_as_its_owners_rejection() {
        let handler = NotesHandler::new(MemoryStore::default());
        let bad = upsert(4).replace("2026-11-27T10:00:00Z", "yesterday");
        let err = handler.handle(&record(&bad)).await.unwrap_err();
        assert!(matches!(err, RecordError::Permanent { kind: "invalid_field", .. }), "{err:?}");
        let rejections = handler.store().rejections.lock().unwrap().clone();
        assert_eq!(rejections, [("alice".to_owned(), "n".to_owned(), 4, "invalid_field".to_owned())]);
    }

    #[tokio::test]
    async fn a_rejection_that_cannot_be_recorded_is_retried_not_dead_lettered() {
        let handler = NotesHandler::new(MemoryStore { down: true, ..MemoryStore::default() });
        let bad = upsert(4).replace("2026-11-27T10:00:00Z", "yesterday");
        let err = handler.handle(&record(&bad)).await.unwrap_err();
        assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn store_errors_are_transient_so_a_misconfiguration_does_not_flood_the_dlq() {
        let handler = NotesHandler::new(MemoryStore { down: true, ..MemoryStore::default() });
        let err = handler.handle(&record(&upsert(1))).await.unwrap_err();
        assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
    }
}
