//! Writing notes (each change and its outbox entry in one transaction) and reading them back.

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Outbox, OutboxError, now_ms, random_hex};
use notes_sync::notes::{Note, NoteMessage, Op, SCHEMA_VERSION};

/// A note's sync state, as shown to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum State {
    /// Its latest version is not yet acknowledged by SQS.
    Pending,
    /// SQS acknowledged its latest version.
    Sent,
    /// The consumer dead-lettered its latest version (see `notes dlq list`).
    Rejected,
}

impl State {
    /// The state's name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "rejected" => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" | "sent" | "rejected" => Ok(Self::parse(s)),
            _ => Err(format!("unknown state {s:?} (expected pending, sent or rejected)")),
        }
    }
}

/// A note as stored locally.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NoteRecord {
    /// Stable id.
    pub id: String,
    /// Its latest local version.
    pub version: u64,
    /// Title (empty once deleted).
    pub title: String,
    /// Body (empty once deleted).
    pub body: String,
    /// Whether the latest change is a delete.
    pub deleted: bool,
    /// When it was last changed, RFC 3339.
    pub updated_at: String,
    /// Sync state of the latest version.
    pub state: State,
    /// Why it was rejected, if it was.
    pub reason: Option<String>,
}

/// An outbox entry, for `status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    /// The note.
    pub note_id: String,
    /// The version waiting to be sent.
    pub version: u64,
    /// Milliseconds since the Unix epoch when the note first became pending.
    pub queued_at_ms: i64,
    /// Send attempts so far.
    pub attempts: u64,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// A summary of what is waiting.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Notes waiting to be sent.
    pub pending: u64,
    /// Age of the oldest pending change, in seconds.
    pub oldest_pending_age_s: Option<u64>,
    /// Most attempts of one pending change.
    pub max_attempts: u64,
    /// The most recent send error.
    pub last_error: Option<String>,
    /// Notes in each state.
    pub sent: u64,
    /// Notes the consumer rejected.
    pub rejected: u64,
}

fn record(row: &Row<'_>) -> rusqlite::Result<NoteRecord> {
    Ok(NoteRecord {
        id: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        title: row.get(2)?,
        body: row.get(3)?,
        deleted: row.get(4)?,
        updated_at: row.get(5)?,
        state: State::parse(&row.get::<_, String>(6)?),
        reason: row.get(7)?,
    })
}

const COLUMNS: &str = "id, version, title, body, deleted, updated_at, state, reason";

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
        let version = base.unwrap_or(0) + 1;
        let updated_at = now_rfc3339();
        let deleted = op == Op::Delete;
        let (t, b) = if deleted { (None, None) } else { (Some(title.into()), Some(body.into())) };
        let message = NoteMessage {
            schema: SCHEMA_VERSION,
            op,
            note: Note { id: id.into(), version, title: t, body: b, updated_at: updated_at.as_str().into() },
            client_id: self.client_id.as_str().into(),
        };
        let json = serde_json::to_string(&message).expect("a note message serialises");
        // The consumer's own parser and validation: what it would refuse is refused here.
        NoteMessage::parse(&json).map_err(OutboxError::Invalid)?;
        if json.len() > crate::sender::MAX_MESSAGE_BYTES {
            return Err(OutboxError::TooLarge { bytes: json.len() });
        }

        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let stored: Option<i64> =
            tx.query_row("SELECT version FROM notes WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(err)?;
        if stored.map(|v| v as u64) != base {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO notes (id, version, title, body, deleted, updated_at, state, reason)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', NULL)
             ON CONFLICT(id) DO UPDATE SET version = excluded.version, title = excluded.title,
               body = excluded.body, deleted = excluded.deleted, updated_at = excluded.updated_at,
               state = 'pending', reason = NULL",
            params![
                id,
                version as i64,
                if deleted { "" } else { title },
                if deleted { "" } else { body },
                deleted,
                updated_at
            ],
        )
        .map_err(err)?;
        // Coalescing: a pending entry takes the new body and version but keeps its place in
        // line. Safe because the consumer keeps only the newest version of a note anyway.
        tx.execute(
            "INSERT INTO outbox (note_id, seq, version, body, queued_at)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, ?3, ?4)
             ON CONFLICT(note_id) DO UPDATE SET version = excluded.version, body = excluded.body",
            params![id, version as i64, json, now_ms()],
        )
        .map_err(err)?;
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
                "SELECT {COLUMNS} FROM notes WHERE (deleted = 0 OR state != 'sent') AND (?1 IS NULL OR state = ?1)
                 ORDER BY updated_at DESC, id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([state.map(State::as_str)], record).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Every outbox entry, oldest first.
    pub fn pending(&self) -> Result<Vec<Pending>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare("SELECT note_id, version, queued_at, attempts, last_error FROM outbox ORDER BY seq")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
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

    /// Counts, oldest pending age, attempts and the latest error.
    pub fn status(&self) -> Result<Status, OutboxError> {
        let (pending, oldest, max_attempts): (i64, Option<i64>, Option<i64>) = self
            .conn
            .query_row("SELECT COUNT(*), MIN(queued_at), MAX(attempts) FROM outbox", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(|e| self.err(e))?;
        let last_error = self
            .conn
            .query_row(
                "SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY last_attempt_at DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let count = |state: &str| -> Result<u64, OutboxError> {
            self.conn
                .query_row("SELECT COUNT(*) FROM notes WHERE state = ?1", [state], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(|e| self.err(e))
        };
        Ok(Status {
            pending: pending as u64,
            oldest_pending_age_s: oldest.map(|t| ((now_ms() - t).max(0) / 1000) as u64),
            max_attempts: max_attempts.unwrap_or(0) as u64,
            last_error,
            sent: count("sent")?,
            rejected: count("rejected")?,
        })
    }

    /// Marks a rejected note `sent` again once its dead letter went back to the queue:
    /// `Some((id, version))` for one note at that version, `None` for every rejected note.
    pub fn unreject(&self, which: Option<(&str, u64)>) -> Result<u64, OutboxError> {
        let (id, version) = which.map_or((None, None), |(i, v)| (Some(i), Some(v as i64)));
        self.conn
            .execute(
                "UPDATE notes SET state = 'sent', reason = NULL
                 WHERE state = 'rejected' AND (?1 IS NULL OR (id = ?1 AND version = ?2))",
                params![id, version],
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Marks a note rejected when `version` is still its latest (the consumer dead-lettered
    /// it). Returns whether it did.
    pub fn mark_rejected(&self, id: &str, version: u64, reason: &str) -> Result<bool, OutboxError> {
        self.conn
            .execute(
                "UPDATE notes SET state = 'rejected', reason = ?3 WHERE id = ?1 AND version = ?2 AND state = 'sent'",
                params![id, version as i64, reason],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }
}
