//! Applying a pulled page: one transaction for its notes, rejections and the cursor, so a kill
//! mid-pull repeats work and loses nothing, and applying a page twice changes nothing.
//!
//! For each server note, against the local one (the consumer's order decides, as in the table):
//! - already known (not newer than the server version last seen): dropped — the pull repeats
//!   its last W seconds by design;
//! - no local change in flight: the server's version becomes the note (`synced`); a `conflict`
//!   stays one until resolved; a `rejected` text of ours that differs is kept aside first, and
//!   so is our stored version when another client's of the *same* version replaced it (a
//!   concurrent change won the tie; a higher version is one built on ours);
//! - our change in flight (`pending`/`sent`) and the server holds exactly it: `synced`;
//!   the server's is older: nothing (ours will win);
//! - the server's is newer and another client's: a conflict — the note becomes the server's,
//!   our text is kept aside (`mine`), our entry leaves the outbox (also when the server's is a
//!   higher version: it may build on ours, or not, and only a base it had seen would tell);
//! - the server's is older but another client's, unseen: ours will overwrite it, so its text is
//!   kept aside (`theirs`);
//! - the server's is newer and *ours* (a version this database does not know: it is behind,
//!   restored from a backup or a copy): our change is rebased onto it (next version, queued
//!   again), so it is stored, not discarded; the server's text is kept aside (`theirs`).
//!
//! A local edit is never overwritten by a pull.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::notes::{change, store_local};
use super::state::State;
use super::{Outbox, OutboxError, now_ms, random_hex};
use crate::changes::{Change, Page, ServerNote, ServerRejection, order};

/// What applying a page did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Applied {
    /// Items in the page.
    pub received: u64,
    /// Items this database already had (or that are another device's rejections).
    pub known: u64,
    /// Notes written from the server: new, changed or deleted elsewhere.
    pub updated: u64,
    /// Our changes seen stored.
    pub synced: u64,
    /// Our changes that lost to another client's (kept aside).
    pub conflicts: u64,
    /// Our changes rebased over a newer version this database did not know (queued again).
    pub rebased: u64,
    /// Our changes the server refused.
    pub rejected: u64,
}

impl Applied {
    /// Adds another page's counts.
    pub fn add(&mut self, other: &Applied) {
        self.received += other.received;
        self.known += other.known;
        self.updated += other.updated;
        self.synced += other.synced;
        self.conflicts += other.conflicts;
        self.rebased += other.rebased;
        self.rejected += other.rejected;
    }
}

/// The local note, as the merge needs it.
struct Local {
    version: u64,
    title: String,
    body: String,
    deleted: bool,
    updated_at: String,
    client_id: String,
    state: State,
    server: Option<(u64, String, String)>,
}

fn local(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<Local>> {
    tx.query_row(
        "SELECT version, title, body, deleted, updated_at, client_id, state,
                server_version, server_updated_at, server_client_id FROM notes WHERE id = ?1",
        [id],
        |r| {
            let server = match r.get::<_, Option<i64>>(7)? {
                Some(v) => Some((v as u64, r.get(8)?, r.get(9)?)),
                None => None,
            };
            Ok(Local {
                version: r.get::<_, i64>(0)? as u64,
                title: r.get(1)?,
                body: r.get(2)?,
                deleted: r.get(3)?,
                updated_at: r.get(4)?,
                client_id: r.get(5)?,
                state: State::parse(&r.get::<_, String>(6)?),
                server,
            })
        },
    )
    .optional()
}

impl Outbox {
    /// The cursor of the last page applied from `origin` (the API and the user it was pulled
    /// for); `None` to start from the beginning.
    pub fn pull_cursor(&self, origin: &str) -> Result<Option<String>, OutboxError> {
        if self.meta("pull_origin")?.as_deref() != Some(origin) {
            return Ok(None);
        }
        self.meta("pull_cursor")
    }

    /// Applies one page and stores its cursor, in one transaction.
    pub fn apply_page(&mut self, origin: &str, page: &Page) -> Result<Applied, OutboxError> {
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let me = self.client_id.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        let mut applied = Applied { received: page.changes.len() as u64, ..Applied::default() };
        for item in &page.changes {
            match item {
                Change::Note(note) => apply_note(&tx, &path, &me, note, &mut applied)?,
                Change::Rejection(rejection) => apply_rejection(&tx, &me, rejection, &mut applied).map_err(err)?,
                _ => applied.known += 1,
            }
        }
        for (key, value) in [("pull_origin", origin), ("pull_cursor", page.cursor.as_str())] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(applied)
    }
}

fn same_text(l: &Local, s: &ServerNote) -> bool {
    l.deleted == s.deleted
        && (s.deleted || (s.title.as_deref() == Some(&l.title) && s.body.as_deref() == Some(&l.body)))
}

fn apply_note(
    tx: &Transaction<'_>,
    path: &std::path::Path,
    me: &str,
    s: &ServerNote,
    applied: &mut Applied,
) -> Result<(), OutboxError> {
    let err = |e| super::classify(path, e);
    let theirs = order(s.version, &s.updated_at, &s.client_id);
    let Some(l) = local(tx, &s.id).map_err(err)? else {
        overwrite(tx, s, State::Synced, true).map_err(err)?;
        applied.updated += 1;
        return Ok(());
    };
    if l.server.as_ref().is_some_and(|(v, u, c)| theirs <= order(*v, u, c)) {
        applied.known += 1;
        return Ok(());
    }
    tx.execute(
        "UPDATE notes SET server_version = ?2, server_updated_at = ?3, server_client_id = ?4 WHERE id = ?1",
        params![s.id, s.version as i64, s.updated_at, s.client_id],
    )
    .map_err(err)?;
    let in_flight = matches!(l.state, State::Pending | State::Sent);
    if !in_flight {
        // Nothing of ours in flight. A rejected text of ours is the user's: kept, not replaced.
        let lost_tie = l.state == State::Synced && l.client_id == me && s.client_id != me && s.version == l.version;
        let state = match l.state {
            State::Rejected if !same_text(&l, s) => {
                let reason = format!("refused by the server, then replaced by v{} from {}", s.version, s.client_id);
                keep(tx, &s.id, "mine", &l, &reason).map_err(err)?;
                applied.conflicts += 1;
                State::Conflict
            }
            // Our stored version was replaced by another client's of the same version: a
            // concurrent change (same base) that won the tie. A higher version builds on ours.
            State::Synced if lost_tie && !same_text(&l, s) => {
                let reason = format!("stored, then lost a tie to v{} from {}", s.version, s.client_id);
                keep(tx, &s.id, "mine", &l, &reason).map_err(err)?;
                applied.conflicts += 1;
                State::Conflict
            }
            State::Conflict => State::Conflict,
            _ => State::Synced,
        };
        overwrite(tx, s, state, false).map_err(err)?;
        let_go_of_stored_texts(tx, s).map_err(err)?;
        applied.updated += 1;
        return Ok(());
    }
    let ours = order(l.version, &l.updated_at, &l.client_id);
    if theirs < ours {
        // Ours is newer: it wins when it arrives. Another client's change that we had not seen
        // is one it will overwrite unseen: its text is kept aside.
        if s.client_id != me && !same_text(&l, s) {
            let reason = format!(
                "v{} from {}, stored while your change was on its way: yours wins over it",
                s.version, s.client_id
            );
            keep(tx, &s.id, "theirs", &server_text(s), &reason).map_err(err)?;
            applied.conflicts += 1;
        }
        return Ok(());
    }
    if theirs == ours || same_text(&l, s) {
        // The server holds exactly our change, or the same text: nothing left to send.
        tx.execute("DELETE FROM outbox WHERE note_id = ?1", [&s.id]).map_err(err)?;
        overwrite(tx, s, State::Synced, false).map_err(err)?;
        let_go_of_stored_texts(tx, s).map_err(err)?;
        applied.synced += 1;
        return Ok(());
    }
    if s.client_id == me {
        // A version of our own that this database does not know: it is behind. Our change
        // goes on top of it, and the server's text is kept aside.
        let reason = format!(
            "v{} from this client, unknown to this database (restored from a backup?): your edit was stored over it",
            s.version
        );
        if !s.deleted {
            keep(tx, &s.id, "theirs", &server_text(s), &reason).map_err(err)?;
        }
        let rebased = change(&s.id, s.version + 1, l.deleted, &l.title, &l.body, me)?;
        store_local(tx, &s.id, &rebased, l.deleted, &l.title, &l.body, me).map_err(err)?;
        applied.rebased += 1;
        return Ok(());
    }
    // Another client's change won: the note becomes theirs, ours is kept aside.
    let reason = format!("lost to v{} from {}", s.version, s.client_id);
    keep(tx, &s.id, "mine", &l, &reason).map_err(err)?;
    tx.execute("DELETE FROM outbox WHERE note_id = ?1", [&s.id]).map_err(err)?;
    overwrite(tx, s, State::Conflict, false).map_err(err)?;
    applied.conflicts += 1;
    Ok(())
}

/// A text kept aside that the server now holds is safe: it is let go (and a note in conflict
/// with nothing left aside is synced again), e.g. once the other device resolved it our way.
fn let_go_of_stored_texts(tx: &Transaction<'_>, s: &ServerNote) -> rusqlite::Result<()> {
    let (title, body) =
        if s.deleted { ("", "") } else { (s.title.as_deref().unwrap_or(""), s.body.as_deref().unwrap_or("")) };
    tx.execute(
        "DELETE FROM conflicts WHERE note_id = ?1 AND deleted = ?2 AND (deleted OR (title = ?3 AND body = ?4))",
        params![s.id, s.deleted, title, body],
    )?;
    tx.execute(
        "UPDATE notes SET state = 'synced' WHERE id = ?1 AND state = 'conflict'
           AND NOT EXISTS (SELECT 1 FROM conflicts WHERE note_id = ?1)",
        [&s.id],
    )?;
    Ok(())
}

/// A server note as a text to keep aside.
fn server_text(s: &ServerNote) -> Local {
    Local {
        version: s.version,
        title: s.title.clone().unwrap_or_default(),
        body: s.body.clone().unwrap_or_default(),
        deleted: s.deleted,
        updated_at: s.updated_at.clone(),
        client_id: s.client_id.clone(),
        state: State::Synced,
        server: None,
    }
}

/// The server's version becomes the note (inserted when `new`), in `state`.
fn overwrite(tx: &Transaction<'_>, s: &ServerNote, state: State, new: bool) -> rusqlite::Result<usize> {
    let (title, body) =
        if s.deleted { ("", "") } else { (s.title.as_deref().unwrap_or(""), s.body.as_deref().unwrap_or("")) };
    let sql = if new {
        "INSERT INTO notes (id, version, title, body, deleted, updated_at, client_id, state,
                            server_version, server_updated_at, server_client_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?2, ?6, ?7)"
    } else {
        "UPDATE notes SET version = ?2, title = ?3, body = ?4, deleted = ?5, updated_at = ?6, client_id = ?7,
                          state = ?8, kind = NULL, reason = NULL WHERE id = ?1"
    };
    tx.execute(sql, params![s.id, s.version as i64, title, body, s.deleted, s.updated_at, s.client_id, state.as_str()])
}

/// Keeps a text aside as a conflict of note `id`.
fn keep(tx: &Transaction<'_>, id: &str, side: &str, text: &Local, reason: &str) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO conflicts (id, note_id, side, version, title, body, deleted, updated_at, client_id, reason, found_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            format!("k-{}", random_hex(6)),
            id,
            side,
            text.version as i64,
            text.title,
            text.body,
            text.deleted,
            text.updated_at,
            text.client_id,
            reason,
            now_ms()
        ],
    )
}

fn apply_rejection(tx: &Transaction<'_>, me: &str, r: &ServerRejection, applied: &mut Applied) -> rusqlite::Result<()> {
    // Another device's rejection is that device's to show.
    let changed = if r.client_id == me {
        tx.execute(
            "UPDATE notes SET state = 'rejected', kind = ?3, reason = ?4
             WHERE id = ?1 AND version = ?2 AND client_id = ?5 AND state IN ('pending', 'sent')",
            params![r.id, r.version as i64, r.kind, r.reason, me],
        )?
    } else {
        0
    };
    if changed > 0 {
        tx.execute("DELETE FROM outbox WHERE note_id = ?1 AND version = ?2", params![r.id, r.version as i64])?;
        applied.rejected += 1;
    } else {
        applied.known += 1;
    }
    Ok(())
}
