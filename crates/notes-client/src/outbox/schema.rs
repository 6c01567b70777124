//! The database's tables, and the migration from each older schema to this one.
//!
//! Version 1 (issues 4–16): notes with `pending` / `sent` / `rejected`, the outbox, settings.
//! Version 2 (issue 17): what the server is known to hold for each note (its version, instant
//! and author), the author of each local version, the states `synced` and `conflict`, the
//! rejection's kind apart from its reason, the texts set aside by conflicts, and the signed-in
//! session.
//! Version 3 (issue 18): indexes, so that a claim and `status` read what they need and not the
//! whole outbox or notes table (an outbox of 100,000 entries drains in O(N log N)).

use rusqlite::Transaction;

/// The schema this client writes (`PRAGMA user_version`).
pub(crate) const VERSION: i32 = 3;

/// Tables shared by every version.
const META_AND_OUTBOX: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- One entry per note: a newer change replaces the body of a pending one (coalescing) but
-- keeps its place in line (seq) and its history (queued_at, attempts).
CREATE TABLE outbox (
    note_id TEXT PRIMARY KEY REFERENCES notes(id),
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    queued_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_attempt_at INTEGER,
    lease_owner TEXT,
    lease_pid INTEGER,
    lease_until INTEGER
);
CREATE INDEX outbox_by_seq ON outbox(seq);
";

/// The notes table of version 2, as `name`.
fn notes_table(name: &str) -> String {
    format!(
        "CREATE TABLE {name} (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    -- The client that wrote this version: this database's own id for a local change.
    client_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'synced', 'conflict', 'rejected')),
    kind TEXT,
    reason TEXT,
    -- The newest version of ours the remote took (accepted, or acknowledged by SQS).
    sent_version INTEGER,
    -- The newest version the server is known to hold (from a pull), in the consumer's order.
    server_version INTEGER,
    server_updated_at TEXT,
    server_client_id TEXT
);"
    )
}

/// Added in version 2: texts set aside by conflicts, and the signed-in session.
const CONFLICTS_AND_SESSION: &str = "
-- A text that is not the note's current one and must not be lost: ours when another
-- client's change won ('mine'), or the server's when our edit was rebased over it ('theirs').
CREATE TABLE conflicts (
    id TEXT PRIMARY KEY,
    note_id TEXT NOT NULL REFERENCES notes(id),
    side TEXT NOT NULL CHECK (side IN ('mine', 'theirs')),
    version INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    client_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    found_at INTEGER NOT NULL
);
CREATE INDEX conflicts_by_note ON conflicts(note_id);
-- At most one signed-in user: the tokens from Cognito (the file is mode 0600).
CREATE TABLE session (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    username TEXT NOT NULL,
    sub TEXT NOT NULL,
    access_token TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);
";

/// Added in version 3: what the per-claim and `status` queries look up (each one's plan is
/// tested, see `outbox::tests::plans`). Partial indexes hold only the few rows they are for
/// (leased, retried), so a healthy drain pays almost nothing to keep them.
const INDEXES_V3: &str = "
-- The live leases a claim checks (SELECT DISTINCT lease_pid ... WHERE lease_owner IS NOT NULL)
-- and ends (a gone process's): only the entries on the wire right now.
CREATE INDEX outbox_leased ON outbox(lease_pid) WHERE lease_owner IS NOT NULL;
-- status: the most attempts of an entry, and the latest error.
CREATE INDEX outbox_retried ON outbox(attempts) WHERE attempts > 0;
CREATE INDEX outbox_by_last_attempt ON outbox(last_attempt_at) WHERE last_error IS NOT NULL;
-- status and list --state: the notes in each state, counted without reading their texts.
CREATE INDEX notes_by_state ON notes(state);
";

/// Creates the current schema in an empty database.
pub(crate) fn create(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&notes_table("notes"))?;
    tx.execute_batch(META_AND_OUTBOX)?;
    tx.execute_batch(CONFLICTS_AND_SESSION)?;
    tx.execute_batch(INDEXES_V3)?;
    tx.pragma_update(None, "user_version", VERSION)
}

/// Brings a database of schema `from` (1 ≤ `from` < [`VERSION`]) to the current one, keeping
/// every note, entry and setting. Runs with foreign keys off (SQLite cannot change a CHECK
/// constraint in place: the notes table is rebuilt).
pub(crate) fn migrate(tx: &Transaction<'_>, from: i32) -> rusqlite::Result<()> {
    if from < 2 {
        tx.execute_batch(&notes_table("notes_v2"))?;
        // Every version-1 note was written here: its author is this database's client. Its
        // earlier versions may all have been sent: the next edit goes above them.
        tx.execute(
            "INSERT INTO notes_v2 (id, version, title, body, deleted, updated_at, client_id, state, reason, sent_version)
             SELECT id, version, title, body, deleted, updated_at,
                    COALESCE((SELECT value FROM meta WHERE key = 'client_id'), ''), state, reason,
                    CASE state WHEN 'pending' THEN version - 1 ELSE version END FROM notes",
            [],
        )?;
        tx.execute_batch("DROP TABLE notes; ALTER TABLE notes_v2 RENAME TO notes;")?;
        tx.execute_batch(CONFLICTS_AND_SESSION)?;
    }
    if from < 3 {
        // After the notes table's rebuild above: its index is made on the new table.
        tx.execute_batch(INDEXES_V3)?;
    }
    tx.pragma_update(None, "user_version", VERSION)
}

/// The version-2 schema (version 3 without its indexes), for the migration's test.
#[cfg(test)]
pub(crate) fn v2() -> String {
    format!("{}{META_AND_OUTBOX}{CONFLICTS_AND_SESSION}PRAGMA user_version = 2;", notes_table("notes"))
}

/// The version-1 schema, for the migration's test.
#[cfg(test)]
pub(crate) const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE notes (
    id TEXT PRIMARY KEY, version INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'rejected')), reason TEXT
);
CREATE TABLE outbox (
    note_id TEXT PRIMARY KEY REFERENCES notes(id), seq INTEGER NOT NULL, version INTEGER NOT NULL,
    body TEXT NOT NULL, queued_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT, last_attempt_at INTEGER, lease_owner TEXT, lease_pid INTEGER, lease_until INTEGER
);
CREATE INDEX outbox_by_seq ON outbox(seq);
PRAGMA user_version = 1;
";
