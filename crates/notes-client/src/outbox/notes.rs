//! Writing notes (each change and its outbox entry in one transaction) and reading them back.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::state::{COLUMNS, NoteRecord, Pending, State, Status, record};
use super::{Outbox, OutboxError, now_ms, random_hex};
use notes_sync::notes::{Note, NoteMessage, Op, SCHEMA_VERSION};

/// A change to queue: its message body, checked by the consumer's own validation.
pub(crate) struct Change {
    pub version: u64,
    pub updated_at: String,
    pub json: String,
}

/// Builds and checks the message of one change: what the consumer would refuse is refused here,
/// with its message, and so is a message too large for one SQS message.
pub(crate) fn change(
    id: &str,
    version: u64,
    deleted: bool,
    title: &str,
    body: &str,
    client_id: &str,
) -> Result<Change, OutboxError> {
    let updated_at = now_rfc3339();
    let (t, b) = if deleted { (None, None) } else { (Some(title.into()), Some(body.into())) };
    let op = if deleted { Op::Delete } else { Op::Upsert };
    let message = NoteMessage {
        schema: SCHEMA_VERSION,
        op,
        note: Note { id: id.into(), version, title: t, body: b, updated_at: updated_at.as_str().into() },
        client_id: client_id.into(),
    };
    let json = serde_json::to_string(&message).expect("a note message serialises");
    NoteMessage::parse(&json).map_err(OutboxError::Invalid)?;
    if json.len() > crate::sender::MAX_MESSAGE_BYTES {
        return Err(OutboxError::TooLarge { bytes: json.len() });
    }
    Ok(Change { version, updated_at, json })
}

/// Writes `change` as the note's latest local version (ours, pending) and queues it. Coalescing:
/// a pending entry takes the new body and version but keeps its place in line. Safe because the
/// consumer keeps only the newest version of a note anyway.
pub(crate) fn store_local(
    tx: &Transaction<'_>,
    id: &str,
    change: &Change,
    deleted: bool,
    title: &str,
    body: &str,
    client_id: &str,
) -> rusqlite::Result<()> {
    let (title, body) = if deleted { ("", "") } else { (title, body) };
    tx.execute(
        "INSERT INTO notes (id, version, title, body, deleted, updated_at, client_id, state, kind, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', NULL, NULL)
         ON CONFLICT(id) DO UPDATE SET version = excluded.version, title = excluded.title,
           body = excluded.body, deleted = excluded.deleted, updated_at = excluded.updated_at,
           client_id = excluded.client_id, state = 'pending', kind = NULL, reason = NULL",
        params![id, change.version as i64, title, body, deleted, change.updated_at, client_id],
    )?;
    tx.execute(
        "INSERT INTO outbox (note_id, seq, version, body, queued_at)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, ?3, ?4)
         ON CONFLICT(note_id) DO UPDATE SET version = excluded.version, body = excluded.body",
        params![id, change.version as i64, change.json, now_ms()],
    )?;
    Ok(())
}

/// The version a new local change of note `id` gets (`None` for a new note: 1).
///
/// One above what it builds on: the newest version the server is known to hold, or our own
/// newest the remote took. Edits made while a change waits unsent coalesce at that same version
/// (with a later `updated_at`): a device that edits a note several times offline still sends one
/// version above its base, so another device can tell a concurrent change (the same version)
/// from one made on top of its own (a higher one). A change possibly on the wire (its entry
/// leased by a sender) keeps its version: the next edit goes above it, so that no two changes
/// the server may see share (note, version, client).
pub(crate) fn next_version(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<u64> {
    let base: Option<i64> = tx
        .query_row(
            "SELECT MAX(COALESCE(server_version, 0), COALESCE(sent_version, 0)) FROM notes WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let on_the_wire: Option<i64> = tx
        .query_row(
            "SELECT version FROM outbox WHERE note_id = ?1 AND lease_owner IS NOT NULL AND lease_until > ?2",
            params![id, now_ms()],
            |r| r.get(0),
        )
        .optional()?;
    Ok((base.unwrap_or(0) + 1).max(on_the_wire.map_or(0, |v| v + 1)) as u64)
}

/// The head of the line, oldest first (`outbox_by_seq`).
pub(super) const OLDEST_PENDING: &str =
    "SELECT note_id, version, queued_at, attempts, last_error FROM outbox ORDER BY seq LIMIT ?1";
/// Index-only: SQLite counts the entries of the smallest index.
pub(super) const PENDING_COUNT: &str = "SELECT COUNT(*) FROM outbox";
/// When the head of the line was queued: entries join the line in `seq` order, each with the
/// time it joined, and keep both when coalesced, so the head is the oldest.
pub(super) const STATUS_OLDEST: &str = "SELECT queued_at FROM outbox ORDER BY seq LIMIT 1";
/// Only entries tried before are in `outbox_retried`.
pub(super) const STATUS_MAX_ATTEMPTS: &str = "SELECT MAX(attempts) FROM outbox WHERE attempts > 0";
pub(super) const STATUS_LAST_ERROR: &str =
    "SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY last_attempt_at DESC LIMIT 1";
/// Index-only (`notes_by_state`): no note's text is read.
pub(super) const STATUS_BY_STATE: &str = "SELECT state, COUNT(*) FROM notes GROUP BY state";
pub(super) const STATUS_CONFLICTS: &str = "SELECT COUNT(*) FROM conflicts";

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).expect("the current time formats as RFC 3339")
}

impl Outbox {
    /// Adds a note at version 1 and queues it; returns it.
    pub fn add(&mut self, title: &str, body: &str) -> Result<NoteRecord, OutboxError> {
        loop {
            // A fresh random id; a collision (vanishingly rare) simply draws another.
            let id = format!("n-{}", random_hex(8));
            if let Some(note) = self.write(&id, None, Op::Upsert, title, body)? {
                return Ok(note);
            }
        }
    }

    /// Replaces a note's title and/or body at the next version and queues it.
    pub fn edit(&mut self, id: &str, title: Option<&str>, body: Option<&str>) -> Result<NoteRecord, OutboxError> {
        loop {
            let current = self.live(id)?;
            let title = title.unwrap_or(&current.title).to_owned();
            let body = body.unwrap_or(&current.body).to_owned();
            // Another process changed the note since it was read: merge onto its new version.
            if let Some(note) = self.write(id, Some(current.version), Op::Upsert, &title, &body)? {
                return Ok(note);
            }
        }
    }

    /// Deletes a note: a tombstone at the next version, queued like any change. A pending
    /// edit of the note is superseded: the outbox sends only the delete.
    pub fn delete(&mut self, id: &str) -> Result<NoteRecord, OutboxError> {
        loop {
            let current = self.live(id)?;
            if let Some(note) = self.write(id, Some(current.version), Op::Delete, "", "")? {
                return Ok(note);
            }
        }
    }

    /// The note, if it exists and is not deleted.
    fn live(&self, id: &str) -> Result<NoteRecord, OutboxError> {
        let current = self.note(id)?.ok_or_else(|| OutboxError::NotFound(id.to_owned()))?;
        if current.deleted {
            return Err(OutboxError::Deleted(id.to_owned()));
        }
        Ok(current)
    }

    /// Writes the note's next version and its outbox entry in one transaction. The version
    /// read before (`base`) is checked again inside the transaction, so two processes editing
    /// the same note at once cannot both write the same version: `Ok(None)` if it changed.
    fn write(
        &mut self,
        id: &str,
        base: Option<u64>,
        op: Op,
        title: &str,
        body: &str,
    ) -> Result<Option<NoteRecord>, OutboxError> {
        let deleted = op == Op::Delete;
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        // Checked before the transaction too, so that a refusal never waits for a lock: the
        // version only changes the message's length by a digit or two.
        change(id, 1, deleted, title, body, &self.client_id)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let stored: Option<i64> =
            tx.query_row("SELECT version FROM notes WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(err)?;
        if stored.map(|v| v as u64) != base {
            return Ok(None);
        }
        let change = change(id, next_version(&tx, id).map_err(err)?, deleted, title, body, &self.client_id)?;
        store_local(&tx, id, &change, deleted, title, body, &self.client_id).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Some(self.note(id)?.expect("just written")))
    }

    /// One note.
    pub fn note(&self, id: &str) -> Result<Option<NoteRecord>, OutboxError> {
        self.conn
            .query_row(&format!("SELECT {COLUMNS} FROM notes WHERE id = ?1"), [id], record)
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Notes not deleted (and deletes not yet sent), optionally only those in one state,
    /// most recently changed first.
    pub fn notes(&self, state: Option<State>) -> Result<Vec<NoteRecord>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM notes WHERE (deleted = 0 OR state NOT IN ('sent', 'synced')) AND (?1 IS NULL OR state = ?1)
                 ORDER BY updated_at DESC, id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([state.map(State::as_str)], record).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every outbox entry, oldest first. Reads the whole outbox: a report shows
    /// [`Outbox::oldest_pending`] and [`Outbox::pending_count`] instead.
    pub fn pending(&self) -> Result<Vec<Pending>, OutboxError> {
        self.oldest_pending(usize::MAX)
    }

    /// The `limit` oldest outbox entries (the head of the line), oldest first: a walk of
    /// `outbox_by_seq` that stops at the limit.
    pub fn oldest_pending(&self, limit: usize) -> Result<Vec<Pending>, OutboxError> {
        let mut stmt = self.conn.prepare(OLDEST_PENDING).map_err(|e| self.err(e))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map([limit], |r| {
                Ok(Pending {
                    note_id: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    queued_at_ms: r.get(2)?,
                    attempts: r.get::<_, i64>(3)? as u64,
                    last_error: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// How many entries the outbox holds. SQLite keeps no row count: this walks the smallest
    /// index (a few milliseconds for 100,000 entries), never the rows themselves.
    pub fn pending_count(&self) -> Result<u64, OutboxError> {
        self.conn.query_row(PENDING_COUNT, [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(|e| self.err(e))
    }

    /// Counts, the oldest pending change's age, attempts and the latest error. Every query is
    /// an index lookup or an index-only count (their plans are tested: `outbox::tests::plans`).
    pub fn status(&self) -> Result<Status, OutboxError> {
        let one = |sql: &str| -> Result<Option<i64>, OutboxError> {
            self.conn.query_row(sql, [], |r| r.get(0)).optional().map(Option::flatten).map_err(|e| self.err(e))
        };
        let pending = self.pending_count()?;
        let oldest = one(STATUS_OLDEST)?;
        let max_attempts = one(STATUS_MAX_ATTEMPTS)?;
        let last_error =
            self.conn.query_row(STATUS_LAST_ERROR, [], |r| r.get(0)).optional().map_err(|e| self.err(e))?;
        let mut by_state = std::collections::HashMap::new();
        {
            let mut stmt = self.conn.prepare(STATUS_BY_STATE).map_err(|e| self.err(e))?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
            for row in rows {
                let (state, n) = row.map_err(|e| self.err(e))?;
                by_state.insert(state, n as u64);
            }
        }
        let count = |state: State| by_state.get(state.as_str()).copied().unwrap_or(0);
        let conflicts = one(STATUS_CONFLICTS)?.unwrap_or(0);
        Ok(Status {
            pending,
            oldest_pending_age_s: oldest.map(|t| ((now_ms() - t).max(0) / 1000) as u64),
            max_attempts: max_attempts.unwrap_or(0) as u64,
            last_error,
            sent: count(State::Sent),
            synced: count(State::Synced),
            conflict: count(State::Conflict),
            rejected: count(State::Rejected),
            conflicts: conflicts as u64,
        })
    }

    /// Marks a rejected note `sent` again once its dead letter went back to the queue:
    /// `Some((id, version))` for one note at that version, `None` for every rejected note.
    pub fn unreject(&self, which: Option<(&str, u64)>) -> Result<u64, OutboxError> {
        let (id, version) = which.map_or((None, None), |(i, v)| (Some(i), Some(v as i64)));
        self.conn
            .execute(
                "UPDATE notes SET state = 'sent', kind = NULL, reason = NULL
                 WHERE state = 'rejected' AND (?1 IS NULL OR (id = ?1 AND version = ?2))",
                params![id, version],
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Marks a note rejected when `version` is still its latest and ours (the consumer
    /// dead-lettered it). Returns whether it did.
    pub fn mark_rejected(&self, id: &str, version: u64, kind: &str, reason: &str) -> Result<bool, OutboxError> {
        self.conn
            .execute(
                "UPDATE notes SET state = 'rejected', kind = ?3, reason = ?4
                 WHERE id = ?1 AND version = ?2 AND client_id = ?5 AND state = 'sent'",
                params![id, version as i64, kind, reason, self.client_id],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }
}
