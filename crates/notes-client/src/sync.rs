//! Draining the outbox: [`sync_once`] sends what is pending, oldest first, in batches;
//! [`watch`] is the seed's retry loop around it, steered by the feature flags.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::flags::{FlagsKeeper, FlagsSource, InForce};
use super::outbox::{Lease, Outbox, OutboxError, Settled};
use super::sender::{EntryResult, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, Outgoing, Transport};

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Entries SQS acknowledged (and that left the outbox).
    pub sent: u64,
    /// Entries SQS refused this time (they stay pending).
    pub failed: u64,
    /// Entries still pending afterwards (some may be another process's, in flight).
    pub pending: u64,
    /// Why the sync stopped early: SQS could not be reached.
    pub unreachable: Option<String>,
}

/// Progress of a sync, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Entries handled so far.
    pub done: u64,
    /// Entries pending when the sync started.
    pub total: u64,
}

/// Sends pending entries, oldest first, in batches of at most ten entries and 256 KiB,
/// until none is left that this process may claim, SQS is unreachable, or `stop` is set
/// (checked between batches, so a stop never interrupts a write). Each batch is claimed under
/// `lease` before it is sent and settled right after.
pub async fn sync_once<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    lease: &Lease,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, OutboxError> {
    let total = outbox.status()?.pending;
    let mut report = SyncReport::default();
    let mut done = 0;
    progress(Progress { done, total });
    while !stop.load(Ordering::SeqCst) {
        let claimed = outbox.claim(lease, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES)?;
        if claimed.is_empty() {
            break;
        }
        let batch: Vec<Outgoing<'_>> =
            claimed.iter().map(|c| Outgoing { note_id: &c.note_id, version: c.version, body: &c.body }).collect();
        let answer = transport.send_batch(&batch).await;
        let settled: Vec<(_, Settled)> = match answer {
            Ok(results) => claimed
                .into_iter()
                .zip(results)
                .map(|(c, r)| match r {
                    EntryResult::Acked => (c, Settled::Acked),
                    EntryResult::Failed(e) => (c, Settled::Failed(e)),
                })
                .collect(),
            Err(e) => {
                report.unreachable = Some(e.reason.clone());
                claimed.into_iter().map(|c| (c, Settled::Failed(e.reason.clone()))).collect()
            }
        };
        for (_, s) in &settled {
            match s {
                Settled::Acked => report.sent += 1,
                Settled::Failed(_) => report.failed += 1,
            }
        }
        outbox.settle(lease, &settled)?;
        done += settled.len() as u64;
        progress(Progress { done, total: total.max(done) });
        // Unreachable: the rest would fail the same way; the caller decides when to retry.
        // A batch with refused entries ends this pass too, so they are not retried at once.
        if report.unreachable.is_some() || settled.iter().any(|(_, s)| *s != Settled::Acked) {
            break;
        }
    }
    report.pending = outbox.status()?.pending;
    Ok(report)
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
    /// `retry_pending_notes` is off: nothing was sent.
    Paused {
        /// The flags in force.
        flags: InForce,
        /// The wait before the flags are read again.
        next_in: Duration,
    },
}

/// Longest wait between two cycles while SQS is unreachable.
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
/// it syncs and waits `retry_interval_seconds` (longer, backing off, while SQS is
/// unreachable); while it is false it only waits and reads the flags again. Returns when
/// `stop` is set (between cycles or between batches, never mid-write).
pub async fn watch<T: Transport>(
    outbox: &mut Outbox,
    transport: &T,
    lease: &Lease,
    source: &FlagsSource,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(WatchEvent),
    progress: &mut dyn FnMut(Progress),
) -> Result<(), OutboxError> {
    let mut keeper = FlagsKeeper::default();
    let mut failures = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let (in_force, warning) = keeper.resolve(source, outbox).await?;
        if let Some(w) = warning {
            on_event(WatchEvent::FlagsWarning(w));
        }
        let interval = Duration::from_secs(in_force.flags.retry_interval_seconds);
        let next_in = if in_force.flags.retry_pending_notes {
            let report = sync_once(outbox, transport, lease, stop, progress).await?;
            failures = if report.unreachable.is_some() { failures.saturating_add(1) } else { 0 };
            let next_in = backoff(interval, failures);
            on_event(WatchEvent::Synced { report, flags: in_force, next_in });
            next_in
        } else {
            on_event(WatchEvent::Paused { flags: in_force, next_in: interval });
            interval
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
mod tests;
