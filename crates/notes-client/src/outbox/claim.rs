//! Claiming outbox entries for sending, and settling them with the remote's answer (the API's
//! per-change result, or SQS's acknowledgement).
//!
//! Two `notes sync` processes (or an app's sync and the CLI's) may run at once. An entry is
//! sent only by the process that holds its lease: claiming sets `lease_owner`, `lease_pid`
//! and `lease_until` in one write transaction, and only entries without a live lease can be
//! claimed. A lease ends when its owner settles the entry, when it expires (longer than any
//! send can take: the SDK's operation timeout is shorter), or as soon as its owner process is
//! gone (checked with `kill(pid, 0)`), so a SIGKILLed sync does not hold its entries back.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Outbox, OutboxError, now_ms, random_hex};

/// One sender's claim on outbox entries.
#[derive(Debug, Clone)]
pub struct Lease {
    owner: String,
    pid: u32,
    duration_ms: i64,
}

impl Lease {
    /// A new lease owner in this process, whose claims last `duration`.
    pub fn new(duration: std::time::Duration) -> Self {
        Self { owner: random_hex(8), pid: std::process::id(), duration_ms: duration.as_millis() as i64 }
    }
}

/// An entry claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The note.
    pub note_id: String,
    /// The version in the body.
    pub version: u64,
    /// The message body (JSON).
    pub body: String,
}

/// The remote's answer for one claimed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Settled {
    /// Accepted (the API) or acknowledged (SQS): the entry leaves the outbox (if it still
    /// holds this version) and the note becomes `sent`.
    Acked,
    /// Refused for good: the entry leaves the outbox and the note becomes `rejected`.
    Rejected {
        /// The error class.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// Not taken this time: the entry stays, with this error.
    Failed(String),
}

// Each claim runs these; none may read the whole outbox, or a drain of N entries costs O(N²)
// (their plans are tested: `outbox::tests::plans`).

/// The processes other than this one holding a live lease: through `outbox_leased`, which
/// holds only the leased entries.
pub(super) const LIVE_HOLDERS: &str =
    "SELECT DISTINCT lease_pid FROM outbox WHERE lease_owner IS NOT NULL AND lease_until > ?1 AND lease_pid != ?2";

/// Ends the leases of a process that is gone. `lease_owner IS NOT NULL` (always true of a row
/// with a `lease_pid`) lets SQLite use `outbox_leased`.
pub(super) const END_LEASES_OF: &str = "UPDATE outbox SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL
     WHERE lease_pid = ?1 AND lease_owner IS NOT NULL";

/// The oldest entries free to claim: a walk of `outbox_by_seq` from the head that stops at the
/// limit, skipping only the entries other senders hold.
pub(super) const CANDIDATES: &str = "SELECT note_id, version, body FROM outbox
     WHERE lease_owner IS NULL OR lease_until <= ?1 OR lease_owner = ?2
     ORDER BY seq LIMIT ?3";

/// One note's entry, if it is free to claim (by its primary key).
pub(super) const FREE_ENTRY_OF: &str = "SELECT note_id, version, body FROM outbox
     WHERE note_id = ?3 AND (lease_owner IS NULL OR lease_until <= ?1 OR lease_owner = ?2)";

/// Whether process `pid` still exists. A pid that cannot be checked counts as alive, so
/// doubt only ever delays a retry until the lease expires.
fn alive(pid: i64) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

impl Outbox {
    /// Claims up to `max_entries` entries, oldest first, whose bodies add up to at most
    /// `max_bytes` (at least one entry if any is free).
    pub fn claim(&mut self, lease: &Lease, max_entries: usize, max_bytes: usize) -> Result<Vec<Claimed>, OutboxError> {
        self.claim_first(lease, None, max_entries, max_bytes)
    }

    /// [`Outbox::claim`], with note `first`'s entry (if it is free) ahead of the oldest: what a
    /// write sends before it returns.
    pub(crate) fn claim_first(
        &mut self,
        lease: &Lease,
        first: Option<&str>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<Claimed>, OutboxError> {
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let now = now_ms();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        // Leases of processes that are gone end now.
        let holders: Vec<i64> = {
            let mut stmt = tx.prepare(LIVE_HOLDERS).map_err(err)?;
            let rows = stmt.query_map(params![now, lease.pid], |r| r.get(0)).map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        for pid in holders.into_iter().filter(|p| !alive(*p)) {
            tx.execute(END_LEASES_OF, [pid]).map_err(err)?;
        }
        let row = |r: &rusqlite::Row<'_>| {
            Ok(Claimed { note_id: r.get(0)?, version: r.get::<_, i64>(1)? as u64, body: r.get(2)? })
        };
        let mut candidates: Vec<Claimed> = match first {
            Some(id) => tx
                .query_row(FREE_ENTRY_OF, params![now, lease.owner, id], row)
                .optional()
                .map_err(err)?
                .into_iter()
                .collect(),
            None => Vec::new(),
        };
        {
            let mut stmt = tx.prepare(CANDIDATES).map_err(err)?;
            let rows = stmt.query_map(params![now, lease.owner, max_entries as i64], row).map_err(err)?;
            for entry in rows {
                let entry = entry.map_err(err)?;
                if Some(entry.note_id.as_str()) != first {
                    candidates.push(entry);
                }
            }
        }
        candidates.truncate(max_entries);
        let mut claimed = Vec::new();
        let mut bytes = 0;
        for entry in candidates {
            if !claimed.is_empty() && bytes + entry.body.len() > max_bytes {
                break;
            }
            bytes += entry.body.len();
            tx.execute(
                "UPDATE outbox SET lease_owner = ?2, lease_pid = ?3, lease_until = ?4 WHERE note_id = ?1",
                params![entry.note_id, lease.owner, lease.pid, now + lease.duration_ms],
            )
            .map_err(err)?;
            claimed.push(entry);
        }
        tx.commit().map_err(err)?;
        Ok(claimed)
    }

    /// Records the answers in one transaction: accepted entries leave the outbox and their note
    /// becomes `sent`, rejected ones leave it as `rejected`, unless the note changed meanwhile
    /// (then the newer version stays queued) or a pull already knows more (`synced`, a
    /// conflict); failed ones keep their place with one more attempt and the error.
    pub fn settle(&mut self, lease: &Lease, results: &[(Claimed, Settled)]) -> Result<(), OutboxError> {
        let path = self.path.clone();
        let err = |e| super::classify(&path, e);
        let now = now_ms();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        for (entry, settled) in results {
            let version = entry.version as i64;
            match settled {
                Settled::Acked => {
                    tx.execute(
                        "DELETE FROM outbox WHERE note_id = ?1 AND version = ?2",
                        params![entry.note_id, version],
                    )
                    .map_err(err)?;
                    tx.execute(
                        "UPDATE notes SET state = 'sent', kind = NULL, reason = NULL
                         WHERE id = ?1 AND version = ?2 AND state = 'pending'",
                        params![entry.note_id, version],
                    )
                    .map_err(err)?;
                    // Taken: the next edit builds on it (see `next_version`).
                    tx.execute(
                        "UPDATE notes SET sent_version = MAX(COALESCE(sent_version, 0), ?2) WHERE id = ?1",
                        params![entry.note_id, version],
                    )
                    .map_err(err)?;
                    release(&tx, &entry.note_id, lease).map_err(err)?;
                }
                Settled::Rejected { kind, reason } => {
                    tx.execute(
                        "DELETE FROM outbox WHERE note_id = ?1 AND version = ?2",
                        params![entry.note_id, version],
                    )
                    .map_err(err)?;
                    tx.execute(
                        "UPDATE notes SET state = 'rejected', kind = ?3, reason = ?4
                         WHERE id = ?1 AND version = ?2 AND state IN ('pending', 'sent')",
                        params![entry.note_id, version, kind, reason],
                    )
                    .map_err(err)?;
                    release(&tx, &entry.note_id, lease).map_err(err)?;
                }
                Settled::Failed(error) => {
                    tx.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, last_attempt_at = ?4,
                           lease_owner = NULL, lease_pid = NULL, lease_until = NULL
                         WHERE note_id = ?1 AND lease_owner = ?2",
                        params![entry.note_id, lease.owner, error, now],
                    )
                    .map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }
}

/// Ends this lease's claim on a note's entry (a newer version of it stays queued).
fn release(tx: &rusqlite::Transaction<'_>, note_id: &str, lease: &Lease) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE outbox SET lease_owner = NULL, lease_pid = NULL, lease_until = NULL
         WHERE note_id = ?1 AND lease_owner = ?2",
        params![note_id, lease.owner],
    )
}
