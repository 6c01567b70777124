//! The client's durable state: one SQLite database (WAL) with the notes, the outbox of changes
//! not yet acknowledged by SQS, and a few settings (the client id, the last good flags).
//!
//! Every change to a note and its outbox entry is written in one transaction, before any
//! network call; an entry leaves the outbox only once SQS has acknowledged that very version.
//! SQLite's journal makes each transaction all-or-nothing across a crash or a SIGKILL, so a
//! kill at any point leaves either the old or the new state, never half of one.

mod claim;
mod conflicts;
mod notes;
mod pull;
mod schema;
mod session;
mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags, OptionalExtension, ffi::ErrorCode};

pub use claim::{Claimed, Lease, Settled};
pub use conflicts::{Conflict, Keep, Side};
pub use pull::Applied;
pub use session::StoredSession;
pub use state::{NoteRecord, Pending, State, Status};

/// What went wrong with the local database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// Another process holds the database's write lock for longer than the busy timeout.
    #[error("the database {path} is locked by another process; try again")]
    Locked {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a SQLite database, or it is damaged.
    #[error("{path} is not a notes database or it is corrupt")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A database written by a newer client.
    #[error("{path} has schema version {found}, newer than this client's {}; upgrade notes", schema::VERSION)]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i32,
    },
    /// The database's directory could not be created.
    #[error("cannot create the directory {path}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database's mode could not be set to 0600.
    #[error("cannot make {path} readable by its owner only")]
    Permissions {
        /// The database file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No note has this id.
    #[error("no note with id {0}")]
    NotFound(String),
    /// The note is deleted; it cannot be edited or deleted again.
    #[error("note {0} is deleted")]
    Deleted(String),
    /// `resolve` of a note (or conflict id) that has no conflict.
    #[error("{0} has no conflict to resolve (notes conflicts lists them)")]
    NoConflict(String),
    /// `resolve` would replace a change still in flight (pending or sent) with the kept text.
    #[error("note {0} has a change not yet synced: run notes sync first, then resolve")]
    InFlight(String),
    /// `resolve` of a note with several conflicts: name one of them.
    #[error("note {note} has {} conflicts: resolve one at a time by its id ({})", ids.len(), ids.join(", "))]
    SeveralConflicts {
        /// The note.
        note: String,
        /// Its conflicts' ids.
        ids: Vec<String>,
    },
    /// The database holds another user's notes: a different sign-in would send them as its own.
    #[error("this database holds the notes of another user ({bound}); use another --db for {requested}")]
    OtherOwner {
        /// The owner the database belongs to.
        bound: String,
        /// The owner asked for.
        requested: String,
    },
    /// The change would be refused by the consumer: the same rule and message as there.
    #[error("refused")]
    Invalid(#[source] notes_sync::notes::Invalid),
    /// The change's message would not fit in one SQS message (JSON escapes can make a body
    /// within the consumer's limit larger on the wire).
    #[error("refused: the message is {bytes} bytes, more than SQS's limit of {}", crate::sender::MAX_MESSAGE_BYTES)]
    TooLarge {
        /// The message's size.
        bytes: usize,
    },
    /// Any other SQLite error.
    #[error("database {path}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
}

impl OutboxError {
    /// Whether the database was busy (another process held its lock too long).
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }

    /// Whether the file is not a notes database (corrupt, foreign or too new).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::NewerSchema { .. })
    }
}

/// How to open the database.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenOptions {
    /// How long to wait for another process's write lock before giving up.
    pub busy_timeout: Duration,
}

impl OpenOptions {
    /// Waits up to `timeout` for another process's lock.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { busy_timeout: Duration::from_secs(5) }
    }
}

/// The local database.
pub struct Outbox {
    conn: Connection,
    path: PathBuf,
    client_id: String,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("path", &self.path).field("client_id", &self.client_id).finish()
    }
}

impl Outbox {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and makes sure it has
    /// a client id.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<Self, OutboxError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OutboxError::Directory { path: dir.to_owned(), source })?;
        }
        let p = path.to_owned();
        let created = !path.exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| classify(&p, e))?;
        conn.busy_timeout(options.busy_timeout).map_err(|e| classify(&p, e))?;
        let mut outbox = Self { conn, path: p, client_id: String::new() };
        outbox.migrate()?;
        if created {
            // The user's notes, and later their tokens: readable by the user alone. SQLite
            // gives the -wal and -shm files it makes later the database's own mode.
            restrict_to_owner(path).map_err(|source| OutboxError::Permissions { path: path.to_owned(), source })?;
        }
        outbox.client_id = outbox.ensure_client_id()?;
        Ok(outbox)
    }

    fn migrate(&mut self) -> Result<(), OutboxError> {
        // Reading the version is the first access to the file: a foreign or damaged file
        // fails here, with SQLITE_NOTADB, before anything is written to it.
        let version: i32 = self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| self.err(e))?;
        if version > schema::VERSION {
            return Err(OutboxError::NewerSchema { path: self.path.clone(), found: version });
        }
        // WAL: readers (status, list) never wait for a sync's writes, and a commit is one
        // append to the log. NORMAL is durable across process crashes in WAL mode (only a power
        // loss may undo the last commits), which is what a SIGKILL is.
        let mode: String =
            self.conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(|e| self.err(e))?;
        debug_assert!(mode.eq_ignore_ascii_case("wal"), "journal mode {mode}");
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| self.err(e))?;
        if version < schema::VERSION {
            // Off while tables are rebuilt (it cannot change inside a transaction).
            self.conn.pragma_update(None, "foreign_keys", "OFF").map_err(|e| self.err(e))?;
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| classify(&self.path, e))?;
            // Another process may have created or migrated the schema while this one waited.
            let again: i32 =
                tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| classify(&self.path, e))?;
            match again {
                0 => schema::create(&tx),
                v if v < schema::VERSION => schema::migrate(&tx, v),
                _ => Ok(()),
            }
            .map_err(|e| classify(&self.path, e))?;
            tx.commit().map_err(|e| classify(&self.path, e))?;
        }
        self.conn.pragma_update(None, "foreign_keys", "ON").map_err(|e| self.err(e))
    }

    fn ensure_client_id(&mut self) -> Result<String, OutboxError> {
        if let Some(id) = self.meta("client_id")? {
            return Ok(id);
        }
        let id = format!("c-{}", random_hex(12));
        // INSERT OR IGNORE: two processes creating the database at once keep the first id.
        self.conn
            .execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('client_id', ?1)", [&id])
            .map_err(|e| self.err(e))?;
        Ok(self.meta("client_id")?.unwrap_or(id))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This database's client id, made once when the database was created.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A setting, if set.
    pub fn meta(&self, key: &str) -> Result<Option<String>, OutboxError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets a setting.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), OutboxError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`: `["ok"]` for a sound database.
    pub fn integrity_check(&self) -> Result<Vec<String>, OutboxError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check").map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> OutboxError {
        classify(&self.path, e)
    }
}

/// Mode 0600 on the database and the files SQLite keeps beside it.
pub(crate) fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !suffix.is_empty() => {}
                other => other?,
            }
        }
    }
    let _ = path;
    Ok(())
}

/// Sorts SQLite's errors into the ones a user can act on.
fn classify(path: &Path, source: rusqlite::Error) -> OutboxError {
    let path = path.to_owned();
    match source.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => OutboxError::Locked { path, source },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OutboxError::Corrupt { path, source },
        _ => OutboxError::Sqlite { path, source },
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `n` random bytes as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    (0..n).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

#[cfg(test)]
mod plans;
#[cfg(test)]
mod tests;
