//! `notes dlq`: look at the dead-letter queue, move messages back, purge it.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use notes_client::dlq::{Ages, DeadLetter, Dlq, PROGRESS_EVERY, Selection, escape, parse_age};
use notes_client::outbox::Outbox;

use super::App;
use super::output::{cut, duration};

/// Operator commands on the dead-letter queue.
#[derive(clap::Subcommand, Debug)]
pub enum DlqCommand {
    /// Every dead letter: id, reason, source message id, receive count, age. Leaves them all in place.
    List {
        /// Only dead letters with this error kind (e.g. invalid_field, max_receive_count).
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON (with bodies and every attribute).
        #[arg(long)]
        json: bool,
        /// Only letters sent longer ago than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Only letters sent more recently than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        newer_than: Option<std::time::Duration>,
    },
    /// Write every dead letter to FILE as JSON lines (body, attributes, ids, sent time,
    /// receive count), leaving the DLQ as it was (each letter's receive count rises by one).
    Export {
        /// A new file (never overwritten).
        file: std::path::PathBuf,
        /// Only letters sent longer ago than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Only letters sent more recently than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        newer_than: Option<std::time::Duration>,
    },
    /// Move dead letters back to the source queue: all of them (StartMessageMoveTask), or only
    /// those chosen with --reason / --id / --older-than / --newer-than (resent, then deleted
    /// from the DLQ).
    Redrive {
        /// Only dead letters with this error kind.
        #[arg(long, conflicts_with = "id")]
        reason: Option<String>,
        /// Only these dead letters (DLQ message id or source message id); repeatable.
        #[arg(long, num_args = 1..)]
        id: Vec<String>,
        /// Only letters sent longer ago than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        older_than: Option<std::time::Duration>,
        /// Only letters sent more recently than this (e.g. 90s, 15m, 2h, 7d).
        #[arg(long, value_parser = parse_age)]
        newer_than: Option<std::time::Duration>,
        /// Move task only: at most this many messages per second.
        #[arg(long, conflicts_with_all = ["reason", "id", "older_than", "newer_than"])]
        max_per_second: Option<i32>,
        /// Move task only: start it and return without waiting for it to finish.
        #[arg(long, conflicts_with_all = ["reason", "id", "older_than", "newer_than"])]
        no_wait: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Print what would be moved and change nothing (chosen letters are released at once).
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete every message in the DLQ.
    Purge {
        /// Do not ask.
        #[arg(long)]
        yes: bool,
        /// Print how many messages would be deleted and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(app: &App, command: &DlqCommand) -> anyhow::Result<()> {
    let consumer = std::env::var("NOTES_CONSUMER_SENDER_ID").ok().filter(|s| !s.is_empty());
    let dlq = Dlq::new(aws_sdk_sqs::Client::new(&app.sdk().await), app.dlq_url()?).with_consumer_sender_id(consumer);
    dlq.verify().await?;
    match command {
        DlqCommand::List { reason, json, older_than, newer_than } => {
            let ages = Ages { older_than: *older_than, newer_than: *newer_than };
            list(app, &dlq, reason.as_deref(), ages, *json).await
        }
        DlqCommand::Redrive { reason, id, older_than, newer_than, max_per_second, no_wait, json, dry_run } => {
            let ages = Ages { older_than: *older_than, newer_than: *newer_than };
            // A move task takes every letter: choosing any, by kind, id or age, is a selective redrive.
            let selection = match (reason, id.is_empty()) {
                (Some(kind), _) => Some(Selection::Kind(kind.clone())),
                (None, false) => Some(Selection::Ids(id.clone())),
                (None, true) if ages != Ages::default() => Some(Selection::All),
                (None, true) => None,
            };
            if *dry_run {
                return redrive_dry_run(app, &dlq, selection.as_ref(), ages, *json).await;
            }
            match selection {
                Some(selection) => {
                    let report = dlq.redrive_selected(app.queue_url()?, &selection, ages).await?;
                    if let Some(outbox) = local_outbox(app) {
                        for (id, version) in report.resent_bodies.iter().filter_map(|b| own_note(&outbox, b)) {
                            let _ = outbox.unreject(Some((&id, version)));
                        }
                    }
                    if *json {
                        println!("{}", serde_json::to_string(&report)?);
                    } else {
                        println!(
                            "matched {}, resent {}, deleted from the DLQ {}, left in the DLQ {}",
                            report.matched, report.resent, report.deleted, report.kept
                        );
                    }
                    if report.not_looked_at > 0 {
                        eprintln!(
                            "about {} more dead letter(s) were not looked at (held by another reader, or more than one \
                             look receives): run it again to choose among them",
                            report.not_looked_at
                        );
                    }
                    Ok(())
                }
                None => redrive_all(app, &dlq, *max_per_second, *no_wait, *json).await,
            }
        }
        DlqCommand::Purge { dry_run: true, .. } => {
            println!("dry run: would purge about {} message(s) from the DLQ; nothing deleted", dlq.depth().await?);
            Ok(())
        }
        DlqCommand::Purge { yes, .. } => purge(&dlq, *yes).await,
        DlqCommand::Export { file, older_than, newer_than } => {
            export(&dlq, file, Ages { older_than: *older_than, newer_than: *newer_than }).await
        }
    }
}

/// A look at the DLQ, saying on stderr when it did not receive every letter; then the
/// letters whose sent time lies within `ages`, measured from now.
async fn look(dlq: &Dlq, ages: Ages) -> anyhow::Result<Vec<DeadLetter>> {
    let listing = dlq.peek().await?;
    if let Some(depth) = listing.partial() {
        eprintln!(
            "looked at {} of about {depth} dead letter(s): the others were held by another reader, or were more \
             than one look receives; look again in a minute",
            listing.letters.len()
        );
    }
    Ok(listing.aged(ages))
}

async fn list(app: &App, dlq: &Dlq, reason: Option<&str>, ages: Ages, json: bool) -> anyhow::Result<()> {
    let letters: Vec<DeadLetter> =
        look(dlq, ages).await?.into_iter().filter(|l| reason.is_none_or(|r| l.kind == r)).collect();
    mark_own_rejected(app, &letters);
    if json {
        println!("{}", serde_json::to_string(&letters)?);
        return Ok(());
    }
    println!("{} dead letter(s)", letters.len());
    for l in &letters {
        let count = l.receive_count.map_or("-".to_owned(), |c| c.to_string());
        let age = l.age_s.map_or("-".to_owned(), duration);
        let source = escape(l.source_message_id.as_deref().unwrap_or("-"));
        let why = cut(&escape(l.reason.as_deref().unwrap_or("(moved by the redrive policy)")), 80);
        println!(
            "{}  {}  receives {count}  age {age}  source {source}\n    {why}",
            escape(&l.message_id),
            escape(&l.kind)
        );
    }
    Ok(())
}

/// This client's database, if one exists already: an operator's machine gets none made.
fn local_outbox(app: &App) -> Option<Outbox> {
    app.db_path().is_ok_and(|p| p.exists()).then(|| app.open().ok()).flatten()
}

/// `(note id, version)` when a dead letter's body is a change written by this database's client.
fn own_note(outbox: &Outbox, body: &str) -> Option<(String, u64)> {
    let body: serde_json::Value = serde_json::from_str(body).ok()?;
    (body["client_id"].as_str()? == outbox.client_id())
        .then(|| Some((body["note"]["id"].as_str()?.to_owned(), body["note"]["version"].as_u64()?)))
        .flatten()
}

/// Marks this database's own notes whose latest version is in the DLQ as `rejected` (best
/// effort: listing must work without a database).
fn mark_own_rejected(app: &App, letters: &[DeadLetter]) {
    let Some(outbox) = local_outbox(app) else { return };
    for l in letters {
        if let Some((id, version)) = own_note(&outbox, &l.body) {
            let why = l.reason.as_deref().unwrap_or("failed every delivery");
            let _ = outbox.mark_rejected(&id, version, &l.kind, why);
        }
    }
}

/// Prints what a redrive would move and changes nothing: a selective one lists the matching
/// letters (received, then released at once); a full one gives the DLQ's approximate depth.
async fn redrive_dry_run(
    app: &App,
    dlq: &Dlq,
    selection: Option<&Selection>,
    ages: Ages,
    json: bool,
) -> anyhow::Result<()> {
    let destination = app.queue_url()?;
    let Some(selection) = selection else {
        let depth = dlq.depth().await?;
        if json {
            println!(
                "{}",
                serde_json::json!({"dry_run": true, "approximate_count": depth, "destination": destination})
            );
        } else {
            println!("dry run: would move about {depth} message(s) to {}; nothing moved", escape(destination));
        }
        return Ok(());
    };
    let chosen: Vec<DeadLetter> = look(dlq, ages).await?.into_iter().filter(|l| selection.matches(l)).collect();
    if json {
        let ids: Vec<_> =
            chosen.iter().map(|l| serde_json::json!({"message_id": l.message_id, "kind": l.kind})).collect();
        println!("{}", serde_json::json!({"dry_run": true, "matched": ids, "destination": destination}));
        return Ok(());
    }
    println!("dry run: would resend {} dead letter(s) to {}; nothing moved", chosen.len(), escape(destination));
    for l in &chosen {
        println!("{}  {}", escape(&l.message_id), escape(&l.kind));
    }
    Ok(())
}

async fn redrive_all(
    app: &App,
    dlq: &Dlq,
    max_per_second: Option<i32>,
    no_wait: bool,
    json: bool,
) -> anyhow::Result<()> {
    let handle = dlq.start_redrive(app.queue_url()?, max_per_second).await?;
    if no_wait {
        println!(
            "{}",
            if json {
                serde_json::json!({"task_handle": handle}).to_string()
            } else {
                format!("started move task {handle}")
            }
        );
        return Ok(());
    }
    loop {
        let task = dlq.redrive_progress(&handle).await?.context("the move task is not listed")?;
        if task.status != "RUNNING" && task.status != "CANCELLING" {
            if json {
                println!("{}", serde_json::to_string(&task)?);
            } else {
                println!("move task {}: moved {}", task.status, task.moved);
            }
            if let Some(reason) = task.failure_reason.filter(|_| task.status == "FAILED") {
                anyhow::bail!("the move task failed: {reason}");
            }
            // A move task says how many it moved, not which: a malformed note comes straight
            // back. Local states are left as they are; `notes dlq list` marks again what is
            // still dead, and the next pull reports what was stored.
            if !json && local_outbox(app).is_some() {
                eprintln!("local notes marked rejected are left so: the move task does not say which it moved");
            }
            return Ok(());
        }
        if !json && std::io::stderr().is_terminal() {
            eprint!("\rmoving: {} of {}", task.moved, task.to_move.map_or("?".to_owned(), |n| n.to_string()));
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

async fn purge(dlq: &Dlq, yes: bool) -> anyhow::Result<()> {
    if !yes {
        anyhow::ensure!(std::io::stdin().is_terminal(), "refusing to purge the DLQ without --yes (no terminal to ask)");
        let depth = dlq.depth().await?;
        eprint!("delete all {depth} message(s) in the DLQ for good? type yes: ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        anyhow::ensure!(answer.trim() == "yes", "not purged");
    }
    dlq.purge().await?;
    println!("purged");
    Ok(())
}

async fn export(dlq: &Dlq, file: &std::path::Path, ages: Ages) -> anyhow::Result<()> {
    // Created before anything is received: a bad path costs no receive count.
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .with_context(|| format!("create {}", file.display()))?;
    let letters = look(dlq, ages).await?;
    let mut out = std::io::BufWriter::new(out);
    for l in &letters {
        serde_json::to_writer(&mut out, l)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.get_ref().sync_all()?;
    println!(
        "exported {} dead letter(s) to {}; all left in the DLQ, each one's receive count raised by one",
        letters.len(),
        file.display()
    );
    Ok(())
}
