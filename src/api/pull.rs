//! `GET /v1/changes?since=CURSOR&limit=N` (the caller's changes as stored, oldest first) and
//! `GET /v1/notes/{id}` (one of the caller's notes; 404 for anyone else's, without saying
//! whether it exists).

use serde::Serialize;

use super::{NoteReader, Response};
use crate::notes::{Change, Cursor, MAX_PAGE, Owner};

/// Changes per page unless `limit` says otherwise.
pub(super) const DEFAULT_PAGE: u32 = 100;

#[derive(Serialize)]
struct Changes<'a> {
    changes: &'a [Change],
    cursor: String,
    more: bool,
}

/// Answers a pull.
pub(super) async fn changes(reader: &impl NoteReader, owner: &Owner, query: &[(String, String)]) -> Response {
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let cursor = match Cursor::parse(param("since").unwrap_or_default()) {
        Ok(cursor) => cursor,
        Err(e) => return Response::error(400, "bad_request", e),
    };
    let limit = match param("limit").map(str::parse::<u32>) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Response::error(400, "bad_request", format_args!("limit must be an integer from 1 to {MAX_PAGE}"));
        }
    };
    match reader.page(owner, cursor, limit).await {
        Ok(page) => {
            Response::json(200, &Changes { changes: &page.changes, cursor: page.cursor.encode(), more: page.more })
        }
        Err(e) => unavailable(&e),
    }
}

/// Answers a read of one note. `id` is the path segment, still percent-encoded.
pub(super) async fn note(reader: &impl NoteReader, owner: &Owner, id: &str) -> Response {
    let Ok(id) = percent_encoding::percent_decode_str(id).decode_utf8() else {
        return not_found();
    };
    match reader.note(owner, &id).await {
        Ok(Some(note)) => {
            #[derive(Serialize)]
            struct Note<'a> {
                id: &'a str,
                version: u64,
                updated_at: &'a str,
                client_id: &'a str,
                deleted: bool,
                #[serde(skip_serializing_if = "Option::is_none")]
                title: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                body: Option<&'a str>,
            }
            Response::json(
                200,
                &Note {
                    id: &note.id,
                    version: note.version,
                    updated_at: &note.updated_at,
                    client_id: &note.client_id,
                    deleted: note.deleted,
                    title: note.title.as_deref(),
                    body: note.body.as_deref(),
                },
            )
        }
        // Someone else's note and no note at all are the same answer.
        Ok(None) => not_found(),
        Err(e) => unavailable(&e),
    }
}

fn not_found() -> Response {
    Response::error(404, "not_found", "no such note")
}

fn unavailable(e: &crate::notes::StoreError) -> Response {
    tracing::error!(event = "store_unavailable", error = crate::errors::error_chain(e), "the notes table failed");
    Response::error(503, "unavailable", "the notes table is unavailable: retry")
}
