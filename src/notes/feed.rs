//! Reading an owner's changes back: the pull (`GET /v1/changes`) and one note
//! (`GET /v1/notes/{id}`), over the table [`super::store`] writes.
//!
//! **A pull never misses a change.** Writers stamp `applied_at` before their write commits, and
//! several consumers apply one owner's changes concurrently, so a write can commit after one
//! stamped later was already pulled: a cursor that is "the last `applied_at` seen" would skip
//! it. The cursor is a *safe point* instead: when a pull has read to the end of the owner's
//! changes, every write stamped at or before `(time the pull began − overlap)` had committed
//! before the pull began (the overlap bounds stamp-to-commit time plus clock skew), so the
//! strongly consistent read of the local secondary index saw it. The next pull starts there.
//! What lies between is returned again; the client drops what it has by (id, version, client).

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::owner::Owner;
use super::store::{StoreError, note_key, now_ms, table};

/// Reads an owner's notes and rejections.
#[derive(Debug, Clone)]
pub struct Feed {
    client: aws_sdk_dynamodb::Client,
    table: String,
    overlap: Duration,
}

/// The most changes one page holds.
pub const MAX_PAGE: u32 = 1000;

/// One change of the owner's, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    /// A note's current stored version (a tombstone when `deleted`).
    Note(StoredNote),
    /// A change of the owner's that the consumer refused.
    Rejection(StoredRejection),
}

/// A note as stored: its winning change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredNote {
    /// The note id.
    pub id: String,
    /// The stored version.
    pub version: u64,
    /// When its client changed it, RFC 3339.
    pub updated_at: String,
    /// The client that wrote it.
    pub client_id: String,
    /// A tombstone: no title or body.
    pub deleted: bool,
    /// The title (not for a tombstone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The body (not for a tombstone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// When the consumer applied it, milliseconds since the epoch (its clock).
    pub applied_at: u64,
}

/// A refused change, as its author reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRejection {
    /// The note the change was for.
    pub id: String,
    /// The change's version.
    pub version: u64,
    /// The client that sent it.
    pub client_id: String,
    /// The error class, as on the dead letter.
    pub kind: String,
    /// What is wrong, as on the dead letter.
    pub reason: String,
    /// When the consumer refused it, milliseconds since the epoch.
    pub applied_at: u64,
}

/// Where a pull stands: the safe point, and inside a pull of several pages the page to read next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Every change stamped at or before this (ms) has been delivered.
    safe_ms: u64,
    /// Inside a pull: when its first page was read, and the position after the last change read.
    page: Option<PagePosition>,
}

/// Inside a pull: when its first page was read (its safe point is computed from that), and the
/// last instant read. A page never ends inside an instant, so the next starts after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PagePosition {
    started_ms: u64,
    applied_at: u64,
}

/// A cursor that is not one this API made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`since` is not a cursor this API returned")]
pub struct BadCursor;

impl Cursor {
    /// The text form the API hands out: `c1.<safe>` or `c1.<safe>.<started>.<position>`.
    pub fn encode(&self) -> String {
        match self.page {
            None => format!("c1.{}", self.safe_ms),
            Some(p) => format!("c1.{}.{}.{}", self.safe_ms, p.started_ms, p.applied_at),
        }
    }

    /// Reads a cursor's text form; an empty text is the start.
    pub fn parse(text: &str) -> Result<Self, BadCursor> {
        if text.is_empty() {
            return Ok(Self::default());
        }
        let rest = text.strip_prefix("c1.").ok_or(BadCursor)?;
        let numbers: Vec<u64> = rest.split('.').map(|n| n.parse().map_err(|_| BadCursor)).collect::<Result<_, _>>()?;
        match numbers[..] {
            [safe_ms] => Ok(Self { safe_ms, page: None }),
            [safe_ms, started_ms, applied_at] if applied_at >= safe_ms => {
                Ok(Self { safe_ms, page: Some(PagePosition { started_ms, applied_at }) })
            }
            _ => Err(BadCursor),
        }
    }
}

/// One page of a pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Oldest first.
    pub changes: Vec<Change>,
    /// Where the next call starts.
    pub cursor: Cursor,
    /// Whether the pull has more: call again at once with `cursor`.
    pub more: bool,
}

impl Feed {
    /// Reads `table` through `client`; `overlap` bounds how long after its `applied_at` stamp a
    /// write may still commit, clock skew between writers included.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>, overlap: Duration) -> Self {
        Self { client, table: table.into(), overlap }
    }

    /// The owner's changes after `cursor`, at most `limit` (1 to [`MAX_PAGE`]) of them.
    ///
    /// A page ends between two instants, never inside one (`applied_at` values are shared by
    /// changes applied in the same millisecond): it reads `limit` changes and then the rest of
    /// the last instant's, so that the next page can start strictly after that instant.
    pub async fn page(&self, owner: &Owner, cursor: Cursor, limit: u32) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let started_ms = cursor.page.map_or_else(now_ms, |p| p.started_ms);
        let after = cursor.page.map_or(cursor.safe_ms, |p| p.applied_at);
        let mut changes: Vec<Change> = Vec::new();
        let mut start_key = None;
        let mut last_instant = None;
        let exhausted = loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(table::BY_APPLIED_AT)
                .consistent_read(true)
                .key_condition_expression("#owner = :owner AND #applied_at > :after")
                .expression_attribute_names("#owner", table::OWNER)
                .expression_attribute_names("#applied_at", table::APPLIED_AT)
                .expression_attribute_values(":owner", AttributeValue::S(owner.as_str().to_owned()))
                .expression_attribute_values(":after", AttributeValue::N(after.to_string()))
                .set_exclusive_start_key(start_key.take())
                .limit((limit + 1).min(MAX_PAGE as usize + 1) as i32)
                .send()
                .await
                .map_err(|e| StoreError(e.into()))?;
            let mut full = false;
            for item in out.items() {
                let change = change_of(item)?;
                let at = applied_at(&change);
                if changes.len() >= limit && last_instant != Some(at) {
                    full = true;
                    break;
                }
                last_instant = Some(at);
                changes.push(change);
            }
            if full {
                break false;
            }
            match out.last_evaluated_key {
                Some(key) => start_key = Some(key),
                None => break true,
            }
        };
        let cursor = if exhausted {
            // The whole feed was read: everything stamped up to `started − overlap` had
            // committed when the pull began, and was seen.
            let horizon = started_ms.saturating_sub(self.overlap.as_millis() as u64).saturating_sub(1);
            Cursor { safe_ms: cursor.safe_ms.max(horizon), page: None }
        } else {
            let position = last_instant.unwrap_or(after);
            Cursor { safe_ms: cursor.safe_ms, page: Some(PagePosition { started_ms, applied_at: position }) }
        };
        Ok(Page { changes, cursor, more: !exhausted })
    }

    /// One of the owner's notes, tombstones included; `None` when the owner has no such note.
    pub async fn note(&self, owner: &Owner, id: &str) -> Result<Option<StoredNote>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(table::OWNER, AttributeValue::S(owner.as_str().to_owned()))
            .key(table::KEY, AttributeValue::S(note_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError(e.into()))?;
        match out.item {
            None => Ok(None),
            Some(item) => match change_of(&item)? {
                Change::Note(note) => Ok(Some(note)),
                Change::Rejection(_) => Ok(None),
            },
        }
    }
}

fn applied_at(change: &Change) -> u64 {
    match change {
        Change::Note(n) => n.applied_at,
        Change::Rejection(r) => r.applied_at,
    }
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// An item as a change; an item that is neither is a store error (the table is ours alone).
fn change_of(item: &Item) -> Result<Change, StoreError> {
    let text = |name: &str| -> Result<String, StoreError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError(format!("an item without the string attribute {name}").into()))
    };
    let number = |name: &str| -> Result<u64, StoreError> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| StoreError(format!("an item without the number attribute {name}").into()))
    };
    match text(table::ENTRY)?.as_str() {
        "note" => {
            let deleted = item.get("deleted").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
            Ok(Change::Note(StoredNote {
                id: text("id")?,
                version: number("version")?,
                updated_at: text("updated_at")?,
                client_id: text("client_id")?,
                deleted,
                title: if deleted { None } else { text("title").ok() },
                body: if deleted { None } else { text("body").ok() },
                applied_at: number(table::APPLIED_AT)?,
            }))
        }
        "rejection" => Ok(Change::Rejection(StoredRejection {
            id: text("id")?,
            version: number("version")?,
            client_id: text("client_id")?,
            kind: text("error_kind")?,
            reason: text("error_reason")?,
            applied_at: number(table::APPLIED_AT)?,
        })),
        other => Err(StoreError(format!("an item of unknown entry type {other:?}").into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_what_it_wrote_and_refuses_anything_else() {
        for cursor in [
            Cursor::default(),
            Cursor { safe_ms: 17, page: None },
            Cursor { safe_ms: 17, page: Some(PagePosition { started_ms: 99, applied_at: 40 }) },
        ] {
            assert_eq!(Cursor::parse(&cursor.encode()), Ok(cursor));
        }
        assert_eq!(Cursor::parse(""), Ok(Cursor::default()));
        for bad in ["17", "c2.17", "c1.", "c1.x", "c1.1.2", "c1.1.2.3.4", "c1.50.99.40", "c1.-1"] {
            assert_eq!(Cursor::parse(bad), Err(BadCursor), "{bad}");
        }
    }
}
