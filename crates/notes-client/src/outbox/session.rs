//! The signed-in session (Cognito's tokens) and the owner the database belongs to.
//!
//! Tokens live in the user's database, whose file is mode 0600. A database belongs to the first
//! owner it is used for (the signed-in user's `sub`, or a trusted service's `--owner`): another
//! user signing in would otherwise send the first one's pending notes as their own.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Outbox, OutboxError};

/// The tokens of the signed-in user. Its `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The name the user signed in with.
    pub username: String,
    /// The user's `sub`: the owner of their notes.
    pub sub: String,
    /// The access token the API takes (`Authorization: Bearer`).
    pub access_token: String,
    /// Renews the access token (`REFRESH_TOKEN_AUTH`).
    pub refresh_token: String,
    /// When the access token expires, milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("username", &self.username)
            .field("sub", &self.sub)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// The owner this database belongs to, once it has been used for one.
    pub fn owner(&self) -> Result<Option<String>, OutboxError> {
        self.meta("owner")
    }

    /// Binds the database to `owner`, or checks that it is already bound to it. A database
    /// without notes may change hands (and starts its pulls afresh).
    pub fn bind_owner(&self, owner: &str) -> Result<(), OutboxError> {
        self.conn
            .execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('owner', ?1)", [owner])
            .map_err(|e| self.err(e))?;
        match self.owner()? {
            Some(bound) if bound != owner => {
                let empty = self
                    .conn
                    .execute(
                        "UPDATE meta SET value = ?1 WHERE key = 'owner' AND NOT EXISTS (SELECT 1 FROM notes)",
                        [owner],
                    )
                    .map_err(|e| self.err(e))?
                    > 0;
                if !empty {
                    return Err(OutboxError::OtherOwner { bound, requested: owner.to_owned() });
                }
                self.conn.execute("DELETE FROM meta WHERE key = 'pull_cursor'", []).map_err(|e| self.err(e))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The signed-in session, if any.
    pub fn session(&self) -> Result<Option<StoredSession>, OutboxError> {
        self.conn
            .query_row(
                "SELECT username, sub, access_token, refresh_token, expires_at_ms FROM session WHERE id = 1",
                [],
                |r| {
                    Ok(StoredSession {
                        username: r.get(0)?,
                        sub: r.get(1)?,
                        access_token: r.get(2)?,
                        refresh_token: r.get(3)?,
                        expires_at_ms: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Stores a new session (after `login`), binding the database to its user: refused, with
    /// nothing stored, for a database that holds another user's notes.
    pub fn save_session(&mut self, session: &StoredSession) -> Result<(), OutboxError> {
        self.bind_owner(&session.sub)?;
        super::restrict_to_owner(&self.path)
            .map_err(|source| OutboxError::Permissions { path: self.path.clone(), source })?;
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        tx.execute(
            "INSERT INTO session (id, username, sub, access_token, refresh_token, expires_at_ms)
             VALUES (1, ?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET username = excluded.username, sub = excluded.sub,
               access_token = excluded.access_token, refresh_token = excluded.refresh_token,
               expires_at_ms = excluded.expires_at_ms",
            params![session.username, session.sub, session.access_token, session.refresh_token, session.expires_at_ms],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    /// Replaces the access token after a refresh, if the session is still `sub`'s (a
    /// `logout` or another `login` meanwhile wins).
    pub fn renew_access_token(&self, sub: &str, access_token: &str, expires_at_ms: i64) -> Result<bool, OutboxError> {
        self.conn
            .execute(
                "UPDATE session SET access_token = ?2, expires_at_ms = ?3 WHERE id = 1 AND sub = ?1",
                params![sub, access_token, expires_at_ms],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Forgets the session's tokens (`logout`, or a refresh token that no longer works). The
    /// notes, and the database's owner, stay.
    pub fn clear_session(&self) -> Result<bool, OutboxError> {
        self.conn.execute("DELETE FROM session", []).map(|n| n > 0).map_err(|e| self.err(e))
    }
}
