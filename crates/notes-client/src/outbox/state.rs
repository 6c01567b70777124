//! What the database says about a note: its sync state (the fate of its latest change) and
//! the records `list`, `show` and `status` print.

use rusqlite::Row;

/// The fate of a note's latest change, as far as this client knows: never more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum State {
    /// Not yet accepted by the API (or, straight to SQS, acknowledged by the queue).
    Pending,
    /// Accepted, not yet seen back in a pull: it will be applied, or found older than what
    /// the server holds (then a pull turns it into `conflict` or rebases it).
    Sent,
    /// The server holds exactly this version (a pull returned it).
    Synced,
    /// Another client's change won over ours: the note is now the server's version and our
    /// text is kept aside (`notes conflicts`, `notes resolve`).
    Conflict,
    /// The server refused this version, with a kind and a reason; resending cannot help.
    Rejected,
}

impl State {
    /// The state's name, as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Synced => "synced",
            Self::Conflict => "conflict",
            Self::Rejected => "rejected",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "sent" => Self::Sent,
            "synced" => Self::Synced,
            "conflict" => Self::Conflict,
            "rejected" => Self::Rejected,
            _ => Self::Pending,
        }
    }
}

impl std::str::FromStr for State {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" | "sent" | "synced" | "conflict" | "rejected" => Ok(Self::parse(s)),
            _ => Err(format!("unknown state {s:?} (expected pending, sent, synced, conflict or rejected)")),
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
    /// The client that wrote this version (this database's own id for a local change).
    pub client_id: String,
    /// The fate of the latest version.
    pub state: State,
    /// `rejected`: the server's error class (`invalid_field`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `rejected`: the server's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Texts of this note set aside by conflicts, not yet resolved.
    pub conflicts: u64,
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

/// A summary of what is waiting and of every note's fate.
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
    /// Notes accepted and not yet seen back.
    pub sent: u64,
    /// Notes whose latest version the server holds.
    pub synced: u64,
    /// Notes whose change lost to another client's.
    pub conflict: u64,
    /// Notes the server rejected.
    pub rejected: u64,
    /// Unresolved conflict texts (`notes conflicts`).
    pub conflicts: u64,
}

/// The columns [`record`] reads, in its order.
pub(crate) const COLUMNS: &str = "id, version, title, body, deleted, updated_at, client_id, state, kind, reason,
    (SELECT COUNT(*) FROM conflicts c WHERE c.note_id = notes.id)";

pub(crate) fn record(row: &Row<'_>) -> rusqlite::Result<NoteRecord> {
    Ok(NoteRecord {
        id: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        title: row.get(2)?,
        body: row.get(3)?,
        deleted: row.get(4)?,
        updated_at: row.get(5)?,
        client_id: row.get(6)?,
        state: State::parse(&row.get::<_, String>(7)?),
        kind: row.get(8)?,
        reason: row.get(9)?,
        conflicts: row.get::<_, i64>(10)? as u64,
    })
}
