//! The commands that write and sync notes, and the ones that report on them.

use std::io::IsTerminal;

use notes_client::flags::{self, FlagsKeeper};
use notes_client::outbox::{Lease, NoteRecord, Outbox, State};
use notes_client::sender::Transport;
use notes_client::sync::{self, Progress, Run, SyncError, SyncReport, WatchEvent};

use super::app::Remote;
use super::{App, StillPending, output};

/// Longer than any one send may take (the SDK's operation timeout is 30 s).
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
/// How long a sync goes on pulling to see its own changes stored (the consumer usually takes
/// a second or two); after a write, shorter: the user is waiting.
const CONFIRM: std::time::Duration = std::time::Duration::from_secs(5);
const CONFIRM_AFTER_WRITE: std::time::Duration = std::time::Duration::from_secs(2);
/// `status --json` lists the oldest this many entries (`pending_notes`, oldest first) and
/// counts the others (`pending_notes_not_shown`): an outbox of 100,000 is not read whole.
const STATUS_JSON_ENTRIES: usize = 100;

/// A bar on a terminal when there is much to send; nothing otherwise.
fn progress_bar() -> impl FnMut(Progress) {
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |p: Progress| {
        if bar.is_none() && p.total >= 50 && std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(p.total);
            b.set_style(
                indicatif::ProgressStyle::with_template("sending {bar:30} {pos}/{len} notes")
                    .expect("a valid template"),
            );
            bar = Some(b);
        }
        if let Some(b) = &bar {
            b.set_length(p.total);
            b.set_position(p.done);
            if p.done >= p.total {
                b.finish_and_clear();
            }
        }
    }
}

/// One sync of `outbox` with whichever remote is configured; `None` when none is.
async fn sync_with(
    app: &App,
    outbox: &mut Outbox,
    remote: &Remote,
    confirm: std::time::Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<Option<SyncReport>, SyncError> {
    let lease = Lease::new(LEASE);
    let run = Run { lease: &lease, stop: &app.stop, confirm_within: confirm };
    Ok(Some(match remote {
        Remote::Api(api) => sync::sync_once(outbox, api.as_ref(), &run, progress).await?,
        Remote::Sqs(sqs) => sync::sync_once(outbox, sqs, &run, progress).await?,
        Remote::None => return Ok(None),
    }))
}

/// The sync after a write: the written note's entry and at most one batch besides (the rest
/// is left to `notes sync` and `--watch`); `None` when no remote is configured.
async fn sync_after_write(
    app: &App,
    outbox: &mut Outbox,
    remote: &Remote,
    written: &str,
) -> Result<Option<SyncReport>, SyncError> {
    let lease = Lease::new(LEASE);
    let run = Run { lease: &lease, stop: &app.stop, confirm_within: CONFIRM_AFTER_WRITE };
    Ok(Some(match remote {
        Remote::Api(api) => sync::sync_after_write(outbox, api.as_ref(), &run, written).await?,
        Remote::Sqs(sqs) => sync::sync_after_write(outbox, sqs, &run, written).await?,
        Remote::None => return Ok(None),
    }))
}

/// What the remote is, in a message: "API" or "queue".
fn remote_name(remote: &Remote) -> &'static str {
    match remote {
        Remote::Api(_) => "API",
        _ => "queue",
    }
}

/// After `add`/`edit`/`delete`/`resolve`: prints the id, then sends the note's change and at
/// most one batch of older ones, so a write returns at once however much is waiting (the rest
/// is for `notes sync` or `--watch`, and the message says so). Being offline (or signed out) is
/// normal, not an error: the note is saved and stays pending.
pub async fn after_write(app: &App, note: &NoteRecord) -> anyhow::Result<()> {
    println!("{}", note.id);
    let mut outbox = app.open()?;
    let remote = match app.remote(&outbox, true).await {
        Ok(remote) => remote,
        Err(e) if super::signed_out(&e) => {
            let pending = outbox.pending_count()?;
            eprintln!("saved locally; {} pending (sign in again: notes login)", output::notes_count(pending));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let report = match sync_after_write(app, &mut outbox, &remote, &note.id).await {
        Ok(Some(report)) => report,
        Ok(None) => {
            let pending = outbox.pending_count()?;
            eprintln!("saved locally; {} pending (no API or queue configured)", output::notes_count(pending));
            return Ok(());
        }
        Err(SyncError::SignInAgain { reason }) => {
            let pending = outbox.pending_count()?;
            eprintln!("saved locally; {} pending (sign in again: notes login; {reason})", output::notes_count(pending));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    // The remote took this note's change (a pull may already have seen it stored, or found
    // that another device's won: then `warn_conflicts` says so).
    let taken =
        outbox.note(&note.id)?.is_some_and(|n| matches!(n.state, State::Sent | State::Synced | State::Conflict));
    match (&report.unreachable, report.pending) {
        (None, 0) => eprintln!("sent; nothing pending"),
        (None, n) if taken => {
            eprintln!("sent; {} pending, left to notes sync (or sync --watch)", output::notes_count(n))
        }
        (None, n) => {
            eprintln!("saved locally; {} pending, left to notes sync (or sync --watch)", output::notes_count(n))
        }
        (Some(reason), n) => eprintln!(
            "saved locally; {} pending ({} unreachable: {reason})",
            output::notes_count(n),
            remote_name(&remote)
        ),
    }
    warn_conflicts(&report);
    Ok(())
}

/// Conflicts are never silent.
fn warn_conflicts(report: &SyncReport) {
    if let Some(pulled) = report.pulled.as_ref().filter(|p| p.conflicts > 0) {
        eprintln!("notes: {} set aside by a conflict: see notes conflicts", output::notes_count(pulled.conflicts));
    }
}

/// One pass: exit code 3 when something is still pending.
pub async fn sync(app: &App, json: bool) -> anyhow::Result<()> {
    let mut outbox = app.open()?;
    let remote = app.remote(&outbox, false).await?;
    if matches!(remote, Remote::None) {
        anyhow::bail!(
            "nothing to sync with: notes login (with --api-url), or --queue-url and --owner for a trusted service"
        );
    }
    app.stop_on_signals();
    let report = sync_with(app, &mut outbox, &remote, CONFIRM, &mut progress_bar()).await?.expect("a remote");
    print_report(&report, &remote, json);
    warn_conflicts(&report);
    if report.pending > 0 {
        return Err(StillPending(report.pending).into());
    }
    Ok(())
}

fn print_report(report: &SyncReport, remote: &Remote, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).expect("a report serialises"));
        return;
    }
    println!("{}", output::report(report, remote_name(remote)));
}

/// The seed's loop, until Ctrl-C or SIGTERM (or a sign-in that no longer works: exit code 6).
pub async fn watch(app: &App, json: bool) -> anyhow::Result<()> {
    let mut outbox = app.open()?;
    let remote = app.remote(&outbox, false).await?;
    let source = app.flags_source().await;
    app.stop_on_signals();
    let name = remote_name(&remote);
    let mut on_event = |event: WatchEvent| match event {
        WatchEvent::FlagsWarning(w) => eprintln!("notes: warning: {w}"),
        WatchEvent::Synced { report, next_in, .. } if json => {
            println!("{}", serde_json::json!({"event": "synced", "report": report, "next_in_s": next_in.as_secs()}));
        }
        WatchEvent::Synced { report, next_in, .. } => {
            println!("{}", output::report(&report, name));
            warn_conflicts(&report);
            println!("next sync in {}", output::duration(next_in.as_secs()));
        }
        WatchEvent::Locked { error, next_in } if json => {
            println!("{}", serde_json::json!({"event": "locked", "error": error, "next_in_s": next_in.as_secs()}));
        }
        WatchEvent::Locked { error, next_in } => {
            eprintln!("notes: warning: {error}; trying again in {}", output::duration(next_in.as_secs()));
        }
        WatchEvent::Paused { flags, next_in } if json => {
            println!("{}", serde_json::json!({"event": "paused", "flags": flags, "next_in_s": next_in.as_secs()}));
        }
        WatchEvent::Paused { flags, next_in } => println!(
            "retry_pending_notes is off ({}); reading the flags again in {}",
            flags.origin,
            output::duration(next_in.as_secs())
        ),
        _ => {}
    };
    let lease = Lease::new(LEASE);
    let mut progress = progress_bar();
    match &remote {
        Remote::Api(api) => {
            watch_with(app, &mut outbox, api.as_ref(), &lease, &source, &mut on_event, &mut progress).await?
        }
        Remote::Sqs(sqs) => watch_with(app, &mut outbox, sqs, &lease, &source, &mut on_event, &mut progress).await?,
        Remote::None => anyhow::bail!("nothing to sync with: notes login (with --api-url), or --queue-url and --owner"),
    }
    eprintln!("stopped; {} pending", output::notes_count(outbox.pending_count()?));
    Ok(())
}

async fn watch_with<T: Transport>(
    app: &App,
    outbox: &mut Outbox,
    transport: &T,
    lease: &Lease,
    source: &flags::FlagsSource,
    on_event: &mut dyn FnMut(WatchEvent),
    progress: &mut dyn FnMut(Progress),
) -> Result<(), SyncError> {
    let run = Run { lease, stop: &app.stop, confirm_within: CONFIRM };
    sync::watch(outbox, transport, &run, source, on_event, progress).await
}

/// Pending count, oldest age, attempts, last error and the flags in force (as last stored:
/// `status` reads no network source, so it answers while offline).
pub async fn status(app: &App, json: bool) -> anyhow::Result<()> {
    let outbox = app.open()?;
    let status = outbox.status()?;
    let flags = flags::stored(&outbox)?;
    let remote = super::session::remote_summary(app, &outbox)?;
    // The head of the line only: `status.pending` is the whole count.
    let oldest = outbox.oldest_pending(if json { STATUS_JSON_ENTRIES } else { output::STATUS_ENTRIES })?;
    if json {
        let value = serde_json::json!({
            "status": status, "flags": flags, "pending_notes": oldest,
            "pending_notes_not_shown": status.pending.saturating_sub(oldest.len() as u64), "remote": remote,
        });
        println!("{value}");
        return Ok(());
    }
    output::status(&status, &flags, &oldest, &remote);
    Ok(())
}

/// Reads the configured source now and shows what is in force.
pub async fn flags(app: &App, json: bool) -> anyhow::Result<()> {
    let outbox = app.open()?;
    let (in_force, warning) = FlagsKeeper::default().resolve(&app.flags_source().await, &outbox).await?;
    if let Some(w) = warning {
        eprintln!("notes: warning: {w}");
    }
    if json {
        println!("{}", serde_json::to_string(&in_force).expect("flags serialise"));
    } else {
        println!(
            "retry_pending_notes {}\nretry_interval_seconds {}\nfrom {}",
            in_force.flags.retry_pending_notes, in_force.flags.retry_interval_seconds, in_force.origin
        );
    }
    Ok(())
}
