//! Where notes are kept: the [`NoteStore`] trait and its DynamoDB implementation.
//!
//! Writes are idempotent under at-least-once delivery: a note is written only if the store
//! has no version of it yet or an older one. A replay or an out-of-order older version is
//! refused by the condition and reported as [`Written::Stale`], which is a success.
//!
//! "Older" is a total order on `(version, updated_at, client_id)`: two clients that write the
//! same version converge on one winner everywhere, whatever order their messages arrive in,
//! and only a true replay (all three equal) is stale. `updated_at` is compared as an instant
//! (nanoseconds since the Unix epoch, stored as `updated_ns`), so offsets do not matter.

use std::future::Future;

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
/// The cause is kept as the source: the engine's transient reason lists it with its own
/// sources (an AWS SDK error's top line, "service error", says little).
#[derive(Debug, thiserror::Error)]
#[error("note store")]
pub struct StoreError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// The order in which changes of one note win: version, then the instant of `updated_at`,
/// then the client id. `None` when `updated_at` is not RFC 3339 (validation refuses that).
pub fn change_order<'m>(message: &'m NoteMessage<'_>) -> Option<(u64, i128, &'m str)> {
    let updated = OffsetDateTime::parse(&message.note.updated_at, &Rfc3339).ok()?;
    Some((message.note.version, updated.unix_timestamp_nanos(), &message.client_id))
}

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

/// The write's condition: no stored change yet, or the stored one is lower in
/// [`change_order`]. Names are written out (no placeholders): none is a reserved word.
const NEWER: &str = "attribute_not_exists(id) OR version < :v \
    OR (version = :v AND (updated_ns < :u OR (updated_ns = :u AND client_id < :c)))";

impl NoteStore for DynamoNoteStore {
    async fn apply(&self, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        let note = &message.note;
        let (version, updated_ns, client_id) = change_order(message)
            .ok_or_else(|| StoreError("note.updated_at is not RFC 3339 (validation should have refused it)".into()))?;
        let version = AttributeValue::N(version.to_string());
        let updated_ns = AttributeValue::N(updated_ns.to_string());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(&note.id))
            .item("version", version.clone())
            .item("updated_at", s(&note.updated_at))
            .item("updated_ns", updated_ns.clone())
            .item("client_id", s(client_id))
            .item("deleted", AttributeValue::Bool(message.op == Op::Delete))
            .condition_expression(NEWER)
            .expression_attribute_values(":v", version)
            .expression_attribute_values(":u", updated_ns)
            .expression_attribute_values(":c", s(client_id));
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
            Err(e) => Err(StoreError(e.into())),
        }
    }
}
