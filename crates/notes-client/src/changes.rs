//! What a pull returns (`GET /v1/changes`, docs/API.md): the owner's stored notes, tombstones
//! and the rejections of their changes, a page at a time. The outbox applies a page
//! ([`crate::outbox::Outbox::apply_page`]); the API client reads one from the wire.

use serde::Deserialize;

/// One page of a pull.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Page {
    /// Oldest first, as stored.
    pub changes: Vec<Change>,
    /// Opaque: the `since` of the next pull.
    pub cursor: String,
    /// Whether to call again at once with `cursor`.
    #[serde(default)]
    pub more: bool,
}

/// One item of a page.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// A note's current stored version (a tombstone when `deleted`).
    Note(ServerNote),
    /// A change of the owner's that the consumer refused.
    Rejection(ServerRejection),
    /// An item of a type this client does not know (a newer API): skipped.
    #[serde(other)]
    Unknown,
}

/// A note as the server holds it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerNote {
    /// The note id.
    pub id: String,
    /// The stored version.
    pub version: u64,
    /// When its client changed it, RFC 3339.
    pub updated_at: String,
    /// The client that wrote it.
    pub client_id: String,
    /// A tombstone: no title or body.
    #[serde(default)]
    pub deleted: bool,
    /// The title (not for a tombstone).
    #[serde(default)]
    pub title: Option<String>,
    /// The body (not for a tombstone).
    #[serde(default)]
    pub body: Option<String>,
}

/// A change the consumer refused, as its author reads it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerRejection {
    /// The note the change was for.
    pub id: String,
    /// The change's version.
    pub version: u64,
    /// The client that sent it.
    pub client_id: String,
    /// The error class (`invalid_field`, ...).
    pub kind: String,
    /// What is wrong.
    pub reason: String,
}

/// The consumer's order of two changes of one note ([`notes_sync::notes::change_order`]):
/// version, then the instant of `updated_at`, then the client id. A date that does not parse
/// sorts first (the consumer never stores one).
pub(crate) fn order<'a>(version: u64, updated_at: &str, client_id: &'a str) -> (u64, i128, &'a str) {
    use notes_sync::notes::{Note, NoteMessage, Op, SCHEMA_VERSION, change_order};
    let message = NoteMessage {
        schema: SCHEMA_VERSION,
        op: Op::Upsert,
        note: Note { id: "".into(), version, title: None, body: None, updated_at: updated_at.into() },
        client_id: client_id.into(),
    };
    let instant = change_order(&message).map_or(i128::MIN, |(_, instant, _)| instant);
    (version, instant, client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_reads_notes_tombstones_rejections_and_skips_unknown_items() {
        let page: Page = serde_json::from_str(
            r#"{"changes":[
              {"type":"note","id":"n-1","version":3,"updated_at":"2026-11-27T10:00:00Z","client_id":"laptop",
               "deleted":false,"title":"Groceries","body":"milk","applied_at":1796000000123},
              {"type":"note","id":"n-2","version":2,"updated_at":"2026-11-27T10:01:00Z","client_id":"phone",
               "deleted":true,"applied_at":1796000000456},
              {"type":"rejection","id":"n-4","version":5,"client_id":"laptop","kind":"invalid_field",
               "reason":"note.updated_at is not an RFC 3339 date-time","applied_at":1796000000789},
              {"type":"hint","text":"from a newer API"}
            ],"cursor":"c1.1796000000000","more":false}"#,
        )
        .unwrap();
        assert_eq!(page.changes.len(), 4);
        let Change::Note(n) = &page.changes[1] else { panic!() };
        assert!(n.deleted && n.title.is_none());
        let Change::Rejection(r) = &page.changes[2] else { panic!() };
        assert_eq!((r.kind.as_str(), r.version), ("invalid_field", 5));
        assert_eq!(page.changes[3], Change::Unknown);
        assert_eq!((page.cursor.as_str(), page.more), ("c1.1796000000000", false));
    }

    #[test]
    fn the_order_is_the_consumers_version_then_instant_then_client() {
        assert!(order(2, "2026-01-01T00:00:00Z", "a") > order(1, "2027-01-01T00:00:00Z", "z"));
        assert!(order(2, "2026-01-01T01:00:00+01:00", "z") < order(2, "2026-01-01T00:00:01Z", "a"), "instants");
        assert!(order(2, "2026-01-01T00:00:00Z", "b") > order(2, "2026-01-01T00:00:00Z", "a"));
    }
}
