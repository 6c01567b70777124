//! Texts set aside by conflicts (`notes conflicts`) and their resolution (`notes resolve`).
//!
//! A pull never drops a text: when another client's change wins over ours, ours is kept here
//! (`mine`); when our edit is rebased over a version of our own that this database did not
//! know, the server's text is kept here (`theirs`). Resolving keeps one side: the kept text
//! either becomes the note's next version (queued like any edit) or is let go.

use rusqlite::{TransactionBehavior, params};

use super::notes::{change, next_version, store_local};
use super::state::{NoteRecord, State};
use super::{Outbox, OutboxError};

/// Whose text a conflict kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Ours: another client's change won.
    Mine,
    /// The server's: our edit was stored over it.
    Theirs,
}

/// Which text `resolve` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Our text.
    Mine,
    /// The other client's (or the server's).
    Theirs,
}

/// A text set aside.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// The conflict's id (`k-...`).
    pub id: String,
    /// The note it belongs to.
    pub note_id: String,
    /// Whose text this is.
    pub side: Side,
    /// Its version.
    pub version: u64,
    /// Its title.
    pub title: String,
    /// Its body.
    pub body: String,
    /// Whether it was a delete.
    pub deleted: bool,
    /// When it was written, RFC 3339.
    pub updated_at: String,
    /// Who wrote it.
    pub client_id: String,
    /// Why it was set aside.
    pub reason: String,
    /// When, milliseconds since the Unix epoch.
    pub found_at_ms: i64,
}

impl std::str::FromStr for Keep {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mine" => Ok(Self::Mine),
            "theirs" => Ok(Self::Theirs),
            _ => Err(format!("{s:?}: expected mine or theirs")),
        }
    }
}

impl Outbox {
    /// Every conflict, oldest first (in the order they were found).
    pub fn conflicts(&self) -> Result<Vec<Conflict>, OutboxError> {
        self.conflicts_where("1 = 1", "")
    }

    fn conflicts_where(&self, condition: &str, arg: &str) -> Result<Vec<Conflict>, OutboxError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT id, note_id, side, version, title, body, deleted, updated_at, client_id, reason, found_at
                 FROM conflicts WHERE {condition} AND ?1 IS NOT NULL ORDER BY found_at, rowid"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([arg], |r| {
                Ok(Conflict {
                    id: r.get(0)?,
                    note_id: r.get(1)?,
                    side: if r.get::<_, String>(2)? == "theirs" { Side::Theirs } else { Side::Mine },
                    version: r.get::<_, i64>(3)? as u64,
                    title: r.get(4)?,
                    body: r.get(5)?,
                    deleted: r.get(6)?,
                    updated_at: r.get(7)?,
                    client_id: r.get(8)?,
                    reason: r.get(9)?,
                    found_at_ms: r.get(10)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Settles a conflict, named by its id or by its note's (when the note has only one):
    /// the text `keep` names stays the note's. Returns the note afterwards.
    pub fn resolve(&mut self, id: &str, keep: Keep) -> Result<NoteRecord, OutboxError> {
        let mut found = self.conflicts_where("id = ?1", id)?;
        if found.is_empty() {
            found = self.conflicts_where("note_id = ?1", id)?;
        }
        let conflict = match found.len() {
            0 => return Err(OutboxError::NoConflict(id.to_owned())),
            1 => found.remove(0),
            _ => {
                return Err(OutboxError::SeveralConflicts {
                    note: id.to_owned(),
                    ids: found.into_iter().map(|c| c.id).collect(),
                });
            }
        };
        let kept_wins = matches!((keep, conflict.side), (Keep::Mine, Side::Mine) | (Keep::Theirs, Side::Theirs));
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let client_id = self.client_id.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let gone = tx.execute("DELETE FROM conflicts WHERE id = ?1", [&conflict.id]).map_err(err)?;
        if gone == 0 {
            // Resolved by another process meanwhile.
            return Err(OutboxError::NoConflict(id.to_owned()));
        }
        if kept_wins {
            // A change in flight would be replaced by the kept text: the user's newer edit lost.
            let state: String = tx
                .query_row("SELECT state FROM notes WHERE id = ?1", [&conflict.note_id], |r| r.get(0))
                .map_err(err)?;
            if matches!(State::parse(&state), State::Pending | State::Sent) {
                return Err(OutboxError::InFlight(conflict.note_id.clone()));
            }
            let c = &conflict;
            let version = next_version(&tx, &c.note_id).map_err(err)?;
            let next = change(&c.note_id, version, c.deleted, &c.title, &c.body, &client_id)?;
            store_local(&tx, &c.note_id, &next, c.deleted, &c.title, &c.body, &client_id).map_err(err)?;
        }
        // A note whose change lost is synced again once nothing of it is set aside any more.
        tx.execute(
            "UPDATE notes SET state = 'synced' WHERE id = ?1 AND state = 'conflict'
               AND NOT EXISTS (SELECT 1 FROM conflicts WHERE note_id = ?1)",
            params![conflict.note_id],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(self.note(&conflict.note_id)?.expect("a conflict's note exists"))
    }
}
