//! The commands that write and sync notes, and the ones that report on them.

use std::io::IsTerminal;

use notes_client::flags::{self, FlagsKeeper};
use notes_client::outbox::{Lease, NoteRecord};
use notes_client::sender::SqsTransport;
use notes_client::sync::{self, Progress, SyncReport, WatchEvent};

use super::{App, StillPending, output};

/// Longer than any one send may take (the SDK's operation timeout is 30 s).
const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

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

async fn transport(app: &App) -> anyhow::Result<SqsTransport> {
    let url = app.queue_url()?;
    Ok(SqsTransport::new(aws_sdk_sqs::Client::new(&app.sdk().await), url, &app.owner()?))
}

/// After `add`/`edit`/`delete`: prints the id, then tries to send at once. Being offline is
/// normal, not an error: the note is saved and stays pending.
pub async fn after_write(app: &App, note: &NoteRecord) -> anyhow::Result<()> {
    println!("{}", note.id);
    let mut outbox = app.open()?;
    if app.cli.queue_url.is_none() {
        let pending = outbox.status()?.pending;
        eprintln!("saved locally; {} pending (no queue configured)", output::notes_count(pending));
        return Ok(());
    }
    let transport =
        SqsTransport::new(aws_sdk_sqs::Client::new(&app.sdk_single_attempt().await), app.queue_url()?, &app.owner()?);
    let report = sync::sync_once(&mut outbox, &transport, &Lease::new(LEASE), &app.stop, &mut |_| {}).await?;
    match (&report.unreachable, report.pending) {
        (None, 0) => eprintln!("sent; nothing pending"),
        (None, n) => eprintln!("saved locally; {} pending", output::notes_count(n)),
        (Some(reason), n) => {
            eprintln!("saved locally; {} pending (queue unreachable: {reason})", output::notes_count(n))
        }
    }
    Ok(())
}

/// One pass: exit code 3 when something is still pending.
pub async fn sync(app: &App, json: bool) -> anyhow::Result<()> {
    let mut outbox = app.open()?;
    let transport = transport(app).await?;
    app.stop_on_signals();
    let report = sync::sync_once(&mut outbox, &transport, &Lease::new(LEASE), &app.stop, &mut progress_bar()).await?;
    print_report(&report, json);
    if report.pending > 0 {
        return Err(StillPending(report.pending).into());
    }
    Ok(())
}

fn print_report(report: &SyncReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).expect("a report serialises"));
        return;
    }
    let mut line = format!("sent {}, failed {}, pending {}", report.sent, report.failed, report.pending);
    if let Some(reason) = &report.unreachable {
        line.push_str(&format!(" (queue unreachable: {reason})"));
    }
    println!("{line}");
}

/// The seed's loop, until Ctrl-C or SIGTERM.
pub async fn watch(app: &App, json: bool) -> anyhow::Result<()> {
    let mut outbox = app.open()?;
    let transport = transport(app).await?;
    let source = app.flags_source().await;
    app.stop_on_signals();
    let mut on_event = |event: WatchEvent| match event {
        WatchEvent::FlagsWarning(w) => eprintln!("notes: warning: {w}"),
        WatchEvent::Synced { report, next_in, .. } if json => {
            println!("{}", serde_json::json!({"event": "synced", "report": report, "next_in_s": next_in.as_secs()}));
        }
        WatchEvent::Synced { report, next_in, .. } => {
            print_report(&report, false);
            println!("next sync in {}", output::duration(next_in.as_secs()));
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
    sync::watch(&mut outbox, &transport, &Lease::new(LEASE), &source, &app.stop, &mut on_event, &mut progress_bar())
        .await?;
    eprintln!("stopped; {} pending", output::notes_count(outbox.status()?.pending));
    Ok(())
}

/// Pending count, oldest age, attempts, last error and the flags in force (as last stored:
/// `status` reads no network source, so it answers while offline).
pub async fn status(app: &App, json: bool) -> anyhow::Result<()> {
    let outbox = app.open()?;
    let status = outbox.status()?;
    let flags = flags::stored(&outbox)?;
    if json {
        let value = serde_json::json!({"status": status, "flags": flags, "pending_notes": outbox.pending()?});
        println!("{value}");
        return Ok(());
    }
    output::status(&status, &flags, &outbox.pending()?);
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
