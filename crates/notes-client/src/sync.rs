//! One sync: [`sync_once`] pushes what is pending, oldest first, in batches, then (through the
//! API) pulls what the server holds and applies it page by page; [`watch`] is the seed's retry
//! loop around it, steered by the feature flags.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::flags::{Flags, FlagsKeeper, FlagsSource, InForce};
use super::outbox::{Applied, Lease, Outbox, OutboxError, Settled, now_ms};
use super::sender::{EntryResult, Outgoing, Transport, TransportError};

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Changes the remote took (and that left the outbox).
    pub sent: u64,
    /// Changes the remote refused for good (now `rejected`).
    pub rejected: u64,
    /// Changes not taken this time (they stay pending).
    pub failed: u64,
    /// Entries still pending afterwards (some may be another process's, in flight).
    pub pending: u64,
    /// Why the sync stopped early: the remote could not be reached.
    pub unreachable: Option<String>,
    /// What the pull applied; `None` when this transport cannot pull (straight to SQS) or the
    /// pull did not run.
    pub pulled: Option<Applied>,
}

/// Why a sync could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The local database.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The user must sign in again; every note is kept, pending ones stay pending.
    #[error("sign in again (notes login): {reason}")]
    SignInAgain {
        /// What the identity provider or the API said.
        reason: String,
    },
}

/// How a sync runs: the lease it claims entries under, the stop request it checks between
/// batches and pages, and how long it waits to see its own changes stored.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The claim on the entries it sends.
    pub lease: &'a Lease,
    /// Set to stop between batches, pages and cycles (never mid-write).
    pub stop: &'a AtomicBool,
    /// How long to go on pulling (every [`CONFIRM_EVERY`]) until the changes this sync pushed
    /// are seen stored. A change accepted but never seen stored, when another device's newer
    /// version turns up, must be taken as lost and kept as a conflict (the client cannot tell
    /// whether the other device had seen it); seeing it stored first keeps that rare.
    pub confirm_within: Duration,
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Entries handled so far.
    pub done: u64,
    /// Entries pending when the sync started.
    pub total: u64,
}

/// Pushes, then pulls (when the transport can), then pushes what the pull queued again (edits
/// rebased over a newer version), then pulls until its own changes are seen stored (at most
/// [`Run::confirm_within`]). Stops early when the remote is unreachable or `stop` is set.
pub async fn sync_once<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    run: &Run<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    sync_with(outbox, transport, run, Budget::Drain, progress).await
}

/// The sync a write runs before it returns (`notes add/edit/delete/resolve`): like
/// [`sync_once`], but each push sends one batch, with note `written`'s entry first, so that
/// the write returns as fast with 100,000 entries waiting as with none. What is left stays
/// queued for `notes sync` or `--watch` ([`SyncReport::pending`] says how much).
pub async fn sync_after_write<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    run: &Run<'_>,
    written: &str,
) -> Result<SyncReport, SyncError> {
    sync_with(outbox, transport, run, Budget::OneBatch { first: written }, &mut |_| {}).await
}

/// How much of the outbox one push sends.
#[derive(Debug, Clone, Copy)]
enum Budget<'a> {
    /// Everything this process may claim.
    Drain,
    /// One batch, with this note's entry (if it is free) ahead of the oldest.
    OneBatch { first: &'a str },
}

async fn sync_with<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    run: &Run<'_>,
    budget: Budget<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    let Run { lease, stop, confirm_within } = *run;
    let mut report = SyncReport::default();
    push(outbox, transport, lease, stop, budget, progress, &mut report).await?;
    if report.unreachable.is_none() && !stop.load(Ordering::SeqCst) {
        pull(outbox, transport, stop, &mut report).await?;
        if report.pulled.as_ref().is_some_and(|p| p.rebased > 0) && report.unreachable.is_none() {
            push(outbox, transport, lease, stop, budget, progress, &mut report).await?;
        }
        let deadline = tokio::time::Instant::now() + confirm_within;
        while report.sent > 0
            && transport.pull_origin().is_some()
            && report.unreachable.is_none()
            && !stop.load(Ordering::SeqCst)
            && tokio::time::Instant::now() < deadline
            && outbox.status()?.sent > 0
        {
            tokio::time::sleep(CONFIRM_EVERY).await;
            pull(outbox, transport, stop, &mut report).await?;
        }
    }
    report.pending = outbox.pending_count()?;
    Ok(report)
}

/// How often [`sync_once`] pulls while it waits to see its changes stored.
pub const CONFIRM_EVERY: Duration = Duration::from_millis(500);

/// Sends pending entries, oldest first, in batches within the transport's limits, until none
/// is left that this process may claim, the remote is unreachable, an entry was not taken,
/// `stop` is set, or the `budget` (one batch) is spent. Each batch is claimed under `lease`
/// before it is sent and settled right after.
async fn push<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    lease: &Lease,
    stop: &AtomicBool,
    budget: Budget<'_>,
    progress: &mut dyn FnMut(Progress),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let (first, batches) = match budget {
        Budget::Drain => (None, usize::MAX),
        Budget::OneBatch { first } => (Some(first), 1),
    };
    let total = match budget {
        Budget::Drain => outbox.pending_count()?,
        // Nobody watches a bar here: no count of the whole outbox.
        Budget::OneBatch { .. } => 0,
    };
    let limits = transport.limits();
    let mut done = 0;
    progress(Progress { done, total });
    for _ in 0..batches {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let claimed = outbox.claim_first(lease, first, limits.max_entries, limits.max_bytes)?;
        if claimed.is_empty() {
            break;
        }
        let batch: Vec<Outgoing<'_>> =
            claimed.iter().map(|c| Outgoing { note_id: &c.note_id, version: c.version, body: &c.body }).collect();
        let answer = transport.send_batch(&batch).await;
        let mut sign_in_again = None;
        let settled: Vec<(_, Settled)> = match answer {
            Ok(results) => claimed
                .into_iter()
                .zip(results)
                .map(|(c, r)| match r {
                    EntryResult::Accepted => (c, Settled::Acked),
                    EntryResult::Rejected { kind, reason } => (c, Settled::Rejected { kind, reason }),
                    EntryResult::Retry(e) => (c, Settled::Failed(e)),
                })
                .collect(),
            Err(e) => {
                let reason = e.to_string();
                match e {
                    TransportError::SignInAgain { reason } => sign_in_again = Some(reason),
                    _ => report.unreachable = Some(reason.clone()),
                }
                claimed.into_iter().map(|c| (c, Settled::Failed(reason.clone()))).collect()
            }
        };
        for (_, s) in &settled {
            match s {
                Settled::Acked => report.sent += 1,
                Settled::Rejected { .. } => report.rejected += 1,
                _ => report.failed += 1,
            }
        }
        outbox.settle(lease, &settled)?;
        if let Some(reason) = sign_in_again {
            return Err(SyncError::SignInAgain { reason });
        }
        done += settled.len() as u64;
        progress(Progress { done, total: total.max(done) });
        // Unreachable: the rest would fail the same way; the caller decides when to retry.
        // A batch with entries not taken ends this pass too, so they are not retried at once.
        if report.unreachable.is_some() || settled.iter().any(|(_, s)| matches!(s, Settled::Failed(_))) {
            break;
        }
    }
    Ok(())
}

/// Pulls from the stored cursor until the server has no more, applying each page in one
/// transaction with its cursor. Records when it ran and how it ended, for `status`.
async fn pull<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    stop: &AtomicBool,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let Some(origin) = transport.pull_origin() else { return Ok(()) };
    let mut applied = report.pulled.take().unwrap_or_default();
    let mut cursor = outbox.pull_cursor(&origin)?;
    let mut error = None;
    while !stop.load(Ordering::SeqCst) {
        let Some(call) = transport.pull(cursor.as_deref()) else { break };
        let page = match call.await {
            Ok(page) => page,
            Err(TransportError::SignInAgain { reason }) => return Err(SyncError::SignInAgain { reason }),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        };
        applied.add(&outbox.apply_page(&origin, &page)?);
        // A server that says "more" without moving on would loop forever: stop, go on next time.
        if !page.more || cursor.as_deref() == Some(page.cursor.as_str()) {
            break;
        }
        cursor = Some(page.cursor);
    }
    outbox.set_meta("last_pull_at_ms", &now_ms().to_string())?;
    outbox.set_meta("last_pull_error", error.as_deref().unwrap_or(""))?;
    if let Some(e) = error {
        report.unreachable = Some(e);
    }
    report.pulled = Some(applied);
    Ok(())
}

/// What happened in one cycle of [`watch`], for the caller to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// The flags could not be read; the ones in force are kept. Given once per reason.
    FlagsWarning(String),
    /// A sync ran.
    Synced {
        /// Its report.
        report: SyncReport,
        /// The flags it ran under.
        flags: InForce,
        /// The wait before the next cycle.
        next_in: Duration,
    },
    /// The database was locked by another process for longer than the busy timeout: this
    /// cycle did nothing, and the loop goes on after `next_in`.
    Locked {
        /// What SQLite said.
        error: String,
        /// The wait before the next cycle.
        next_in: Duration,
    },
    /// `retry_pending_notes` is off: nothing was sent.
    Paused {
        /// The flags in force.
        flags: InForce,
        /// The wait before the flags are read again.
        next_in: Duration,
    },
}

/// Longest wait between two cycles while the remote is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The delay after `failures` consecutive unreachable cycles: the interval doubled per
/// failure, capped, with equal jitter, and never shorter than the interval itself.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let cap = MAX_BACKOFF.max(interval);
    let full = interval.saturating_mul(1 << failures.min(16)).min(cap);
    let half = full / 2;
    let jittered = half + half.mul_f64(fastrand::f64());
    jittered.max(interval)
}

/// The seed's retry loop: every cycle re-reads the flags; while `retry_pending_notes` is true
/// it syncs (push and pull) and waits `retry_interval_seconds` (longer, backing off, while the
/// remote is unreachable); while it is false it only waits and reads the flags again. Returns
/// when `stop` is set (between cycles, batches or pages, never mid-write), or with
/// [`SyncError::SignInAgain`] once the sign-in no longer works.
pub async fn watch<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    run: &Run<'_>,
    source: &FlagsSource,
    on_event: &mut dyn FnMut(WatchEvent),
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    let stop = run.stop;
    let mut keeper = FlagsKeeper::default();
    let mut failures = 0u32;
    let mut interval = Duration::from_secs(Flags::default().retry_interval_seconds);
    while !stop.load(Ordering::SeqCst) {
        let cycle = async {
            let (in_force, warning) = keeper.resolve(source, outbox).await?;
            if let Some(w) = warning {
                on_event(WatchEvent::FlagsWarning(w));
            }
            interval = Duration::from_secs(in_force.flags.retry_interval_seconds);
            if in_force.flags.retry_pending_notes {
                let report = sync_once(outbox, transport, run, progress).await?;
                failures = if report.unreachable.is_some() { failures.saturating_add(1) } else { 0 };
                let next_in = backoff(interval, failures);
                on_event(WatchEvent::Synced { report, flags: in_force, next_in });
                Ok::<_, SyncError>(next_in)
            } else {
                on_event(WatchEvent::Paused { flags: in_force, next_in: interval });
                Ok(interval)
            }
        };
        let next_in = match cycle.await {
            Ok(next_in) => next_in,
            // Another process holding the database (a backup, a second sync) is transient: a
            // retry loop waits and goes on. Everything else ends the loop.
            Err(SyncError::Outbox(e)) if e.is_locked() => {
                failures = failures.saturating_add(1);
                let next_in = backoff(interval, failures);
                on_event(WatchEvent::Locked { error: e.to_string(), next_in });
                next_in
            }
            Err(e) => return Err(e),
        };
        sleep_unless_stopped(next_in, stop).await;
    }
    Ok(())
}

/// Sleeps for `duration`, waking early (within 100 ms) once `stop` is set.
async fn sleep_unless_stopped(duration: Duration, stop: &AtomicBool) {
    let deadline = tokio::time::Instant::now() + duration;
    while !stop.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100).min(deadline - tokio::time::Instant::now())).await;
    }
}

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod two_devices;
