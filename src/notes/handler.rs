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
        let message = NoteMessage::parse(body).map_err(|invalid| {
            let kind = invalid.kind();
            let text = invalid.to_string();
            // The reason reads "invalid_json: expected value at line 1 column 1".
            RecordError::Permanent { kind, reason: text }
        })?;
        match self.store.apply(&message).await {
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
    use crate::notes::{NoteMessage, StoreError};

    /// Remembers the highest version per id, like the conditional write does; or is down.
    #[derive(Default)]
    struct MemoryStore {
        versions: Mutex<Vec<(String, u64)>>,
        down: bool,
    }

    impl NoteStore for MemoryStore {
        async fn apply(&self, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
            if self.down {
                return Err(StoreError("ResourceNotFoundException: table missing".into()));
            }
            let mut versions = self.versions.lock().unwrap();
            let note = &message.note;
            match versions.iter_mut().find(|(id, _)| *id == note.id) {
                Some((_, v)) if *v >= note.version => Ok(Written::Stale),
                Some((_, v)) => {
                    *v = note.version;
                    Ok(Written::Applied)
                }
                None => {
                    versions.push((note.id.to_string(), note.version));
                    Ok(Written::Applied)
                }
            }
        }
    }

    fn record(body: &str) -> Record<'static> {
        Record { message_id: Some("m".into()), body: Some(body.to_owned().into()), ..Record::default() }
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
    async fn a_body_that_is_not_json_is_permanent_with_its_reason() {
        let handler = NotesHandler::new(MemoryStore::default());
        let err = handler.handle(&record("hello")).await.unwrap_err();
        assert_eq!(
            err,
            RecordError::Permanent {
                kind: "invalid_json",
                reason: "invalid_json: expected value at line 1 column 1".into()
            }
        );
        let err = handler.handle(&Record::default()).await.unwrap_err();
        assert!(matches!(err, RecordError::Permanent { kind: "invalid_json", .. }), "a missing body: {err:?}");
    }

    #[tokio::test]
    async fn store_errors_are_transient_so_a_misconfiguration_does_not_flood_the_dlq() {
        let handler = NotesHandler::new(MemoryStore { down: true, ..MemoryStore::default() });
        let err = handler.handle(&record(&upsert(1))).await.unwrap_err();
        assert!(matches!(err, RecordError::Transient { .. }), "{err:?}");
    }
}
