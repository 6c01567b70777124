//! Where notes are kept: the [`NoteStore`] trait and its DynamoDB implementation.
//!
//! Writes are idempotent under at-least-once delivery: a note is written only if the store
//! has no version of it yet or an older one. A replay or an out-of-order older version is
//! refused by the condition and reported as [`Written::Stale`], which is a success.

use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;

use super::message::{NoteMessage, Op};

/// What a store call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The message's version is now the stored one.
    Applied,
    /// The store already had this version or a newer one: nothing changed.
    Stale,
}

/// A store call failed. Always retryable: throttling, a timeout or missing permissions are
/// fixed outside the message, and a misconfiguration must not flood the dead-letter queue.
#[derive(Debug, thiserror::Error)]
#[error("note store: {0}")]
pub struct StoreError(pub String);

/// Keeps the newest version of each note.
pub trait NoteStore: Sync {
    /// Applies an upsert or a delete (a tombstone) if its version is newer than the stored one.
    fn apply(&self, message: &NoteMessage<'_>) -> impl Future<Output = Result<Written, StoreError>> + Send;
}

/// [`NoteStore`] on a DynamoDB table keyed by `id` (string).
#[derive(Debug, Clone)]
pub struct DynamoNoteStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoNoteStore {
    /// A store on `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

impl NoteStore for DynamoNoteStore {
    async fn apply(&self, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        let note = &message.note;
        let version = AttributeValue::N(note.version.to_string());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(&note.id))
            .item("version", version.clone())
            .item("updated_at", s(&note.updated_at))
            .item("client_id", s(&message.client_id))
            .item("deleted", AttributeValue::Bool(message.op == Op::Delete))
            .condition_expression("attribute_not_exists(id) OR version < :v")
            .expression_attribute_values(":v", version);
        // A delete keeps only a tombstone: the version stops an older upsert from reviving it.
        if message.op == Op::Upsert {
            put = put
                .item("title", s(note.title.as_deref().unwrap_or_default()))
                .item("body", s(note.body.as_deref().unwrap_or_default()));
        }
        match put.send().await {
            Ok(_) => Ok(Written::Applied),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Ok(Written::Stale)
            }
            Err(e) => Err(StoreError(crate::batch::error_chain(&e))),
        }
    }
}
