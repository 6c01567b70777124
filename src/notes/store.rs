//! Where notes are kept: the [`NoteStore`] trait and its DynamoDB implementation.
//!
//! Every note belongs to an owner and is kept at the key (owner, note id): nothing one owner
//! sends can reach another's notes, and two owners may use the same note id.
//!
//! Writes are idempotent under at-least-once delivery: a note is written only if the store
//! has no version of it yet or an older one. A replay or an out-of-order older version is
//! refused by the condition and reported as [`Written::Stale`], which is a success.
//!
//! "Older" is a total order on `(version, updated_at, client_id)`: two clients that write the
//! same version converge on one winner everywhere, whatever order their messages arrive in,
//! and only a true replay (all three equal) is stale. `updated_at` is compared as an instant
//! (nanoseconds since the Unix epoch, stored as `updated_ns`), so offsets do not matter.
//!
//! Each write is stamped with `applied_at` (milliseconds, the writer's clock, taken just before
//! the write), the sort key of the table's local secondary index that the pull reads
//! ([`super::feed`]). A change the consumer dead-letters is kept as a rejection item beside the
//! owner's notes, so that its author learns of it through the same pull; it expires with the
//! dead-letter queue's retention.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::message::{NoteMessage, Op};
use super::owner::Owner;

/// The table's layout: attribute and index names, shared by the store, the pull and the tests
/// (`template.yaml` spells the same names; `tests/template.rs` checks them).
pub mod table {
    /// Partition key: the owner (a reserved word in DynamoDB expressions: always `#owner`).
    pub const OWNER: &str = "owner";
    /// Sort key: [`note_key`](super::note_key) or [`rejection_key`](super::rejection_key).
    pub const KEY: &str = "sk";
    /// When the writer applied the item, milliseconds since the epoch: the pull's order.
    pub const APPLIED_AT: &str = "applied_at";
    /// The local secondary index `(owner, applied_at)`, which can be read strongly consistent.
    pub const BY_APPLIED_AT: &str = "by_applied_at";
    /// Rejections only: when DynamoDB's time to live removes them, seconds since the epoch.
    pub const EXPIRES_AT: &str = "expires_at";
    /// `note` or `rejection`.
    pub const ENTRY: &str = "entry";
}

/// The sort key of a note: `n#` and its id.
pub fn note_key(note_id: &str) -> String {
    format!("n#{note_id}")
}

/// The sort key of a rejection: `r#` and `[note id, version, client id]` as JSON, so that no
/// two different rejections share a key whatever their ids contain.
pub fn rejection_key(note_id: &str, version: u64, client_id: &str) -> String {
    format!("r#{}", serde_json::json!([note_id, version, client_id]))
}

/// What a store call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The message's version is now the stored one.
    Applied,
    /// The store already had this version or a newer one: nothing changed.
    Stale,
}

/// A change the consumer refused (and dead-lettered), as its author will read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection<'a> {
    /// The note the change was for.
    pub note_id: &'a str,
    /// The change's version.
    pub version: u64,
    /// The client that sent it.
    pub client_id: &'a str,
    /// The error class (`invalid_field`, ...), as on the dead letter.
    pub kind: &'a str,
    /// What is wrong, as on the dead letter.
    pub reason: &'a str,
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

/// Keeps the newest version of each owner's notes, and the rejections of their changes.
pub trait NoteStore: Sync {
    /// Applies an upsert or a delete (a tombstone) to `owner`'s note if its version is newer
    /// than the stored one.
    fn apply(
        &self,
        owner: &Owner,
        message: &NoteMessage<'_>,
    ) -> impl Future<Output = Result<Written, StoreError>> + Send;

    /// Records that a change of `owner`'s was refused, for its author's next pull.
    fn reject(&self, owner: &Owner, rejection: &Rejection<'_>) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// How long a rejection is kept unless set otherwise: 14 days, the dead-letter queue's
/// retention (the letter and its rejection are gone together).
pub const DEFAULT_REJECTION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);

/// [`NoteStore`] on a DynamoDB table laid out as [`table`] says.
#[derive(Debug, Clone)]
pub struct DynamoNoteStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    rejection_ttl: Duration,
}

impl DynamoNoteStore {
    /// A store on `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), rejection_ttl: DEFAULT_REJECTION_TTL }
    }

    /// How long rejections are kept.
    pub fn with_rejection_ttl(mut self, ttl: Duration) -> Self {
        self.rejection_ttl = ttl;
        self
    }

    /// [`NoteStore::apply`] with the `applied_at` stamp given rather than read from the clock:
    /// what a writer that stamped its change and then stalled before the write commits. The
    /// pull must not miss such a write (`tests/sync_api.rs` holds one back this way).
    pub async fn apply_stamped(
        &self,
        owner: &Owner,
        message: &NoteMessage<'_>,
        applied_at_ms: u64,
    ) -> Result<Written, StoreError> {
        let note = &message.note;
        let (version, updated_ns, client_id) = change_order(message)
            .ok_or_else(|| StoreError("note.updated_at is not RFC 3339 (validation should have refused it)".into()))?;
        let version = AttributeValue::N(version.to_string());
        let updated_ns = AttributeValue::N(updated_ns.to_string());
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(table::OWNER, s(owner.as_str()))
            .item(table::KEY, AttributeValue::S(note_key(&note.id)))
            .item(table::ENTRY, s("note"))
            .item(table::APPLIED_AT, AttributeValue::N(applied_at_ms.to_string()))
            .item("id", s(&note.id))
            .item("version", version.clone())
            .item("updated_at", s(&note.updated_at))
            .item("updated_ns", updated_ns.clone())
            .item("client_id", s(client_id))
            .item("deleted", AttributeValue::Bool(message.op == Op::Delete))
            .condition_expression(NEWER)
            .expression_attribute_names("#sk", table::KEY)
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#updated_ns", "updated_ns")
            .expression_attribute_names("#client_id", "client_id")
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

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// Milliseconds since the epoch, by this machine's clock.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The write's condition: no stored change yet, or the stored one is lower in
/// [`change_order`]. Every name is a placeholder, reserved word or not.
const NEWER: &str = "attribute_not_exists(#sk) OR #version < :v \
    OR (#version = :v AND (#updated_ns < :u OR (#updated_ns = :u AND #client_id < :c)))";

impl NoteStore for DynamoNoteStore {
    async fn apply(&self, owner: &Owner, message: &NoteMessage<'_>) -> Result<Written, StoreError> {
        self.apply_stamped(owner, message, now_ms()).await
    }

    async fn reject(&self, owner: &Owner, rejection: &Rejection<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        let expires_at = now / 1000 + self.rejection_ttl.as_secs();
        self.client
            .put_item()
            .table_name(&self.table)
            .item(table::OWNER, s(owner.as_str()))
            .item(
                table::KEY,
                AttributeValue::S(rejection_key(rejection.note_id, rejection.version, rejection.client_id)),
            )
            .item(table::ENTRY, s("rejection"))
            .item(table::APPLIED_AT, AttributeValue::N(now.to_string()))
            .item(table::EXPIRES_AT, AttributeValue::N(expires_at.to_string()))
            .item("id", s(rejection.note_id))
            .item("version", AttributeValue::N(rejection.version.to_string()))
            .item("client_id", s(rejection.client_id))
            .item("error_kind", s(rejection.kind))
            .item("error_reason", s(rejection.reason))
            .send()
            .await
            .map_err(|e| StoreError(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_keys_never_collide_whatever_the_ids_contain() {
        assert_ne!(rejection_key("a#1", 2, "c"), rejection_key("a", 1, "2#c"));
        assert_ne!(rejection_key("a\",1,\"b", 2, "c"), rejection_key("a", 1, "b\",2,\"c"));
        assert!(rejection_key("n", 1, "c").starts_with("r#"));
        assert_eq!(note_key("n-1"), "n#n-1");
    }
}
