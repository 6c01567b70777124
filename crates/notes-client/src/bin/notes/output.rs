//! Human and JSON output of notes and status. Titles and bodies go to stdout only, on request.

use notes_client::flags::InForce;
use notes_client::outbox::{Conflict, NoteRecord, Pending, Side, Status};
use notes_client::sync::SyncReport;

use super::session::{RemoteSummary, print_summary};

/// `1 note` / `3 notes`.
pub fn notes_count(n: u64) -> String {
    if n == 1 { "1 note".to_owned() } else { format!("{n} notes") }
}

/// `45s`, `12m`, `3h`, `2d`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 2 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// One line per note: id, state, version, title (cut to fit a terminal line), and how many
/// of its texts conflicts set aside.
pub fn list(notes: &[NoteRecord], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(notes)?);
        return Ok(());
    }
    for n in notes {
        let title = if n.deleted { "(deleted)".to_owned() } else { cut(&n.title, 44) };
        let aside = match n.conflicts {
            0 => String::new(),
            1 => "  [1 conflict]".to_owned(),
            k => format!("  [{k} conflicts]"),
        };
        println!("{:<20} {:<8} v{:<4} {title}{aside}", n.id, n.state.as_str(), n.version);
    }
    Ok(())
}

/// A note in full, with the texts conflicts set aside.
pub fn show(note: &NoteRecord, conflicts: &[Conflict], json: bool) -> anyhow::Result<()> {
    if json {
        let mut value = serde_json::to_value(note)?;
        value["conflict_texts"] = serde_json::to_value(conflicts)?;
        println!("{value}");
        return Ok(());
    }
    println!(
        "id        {}\nversion   {} (from {})\nstate     {}",
        note.id,
        note.version,
        note.client_id,
        note.state.as_str()
    );
    if let Some(kind) = &note.kind {
        println!("kind      {kind}");
    }
    if let Some(reason) = &note.reason {
        println!("reason    {reason}");
    }
    println!("updated   {}", note.updated_at);
    for c in conflicts {
        println!("conflict  {} ({}): {}", c.id, side(c.side), c.reason);
    }
    if note.deleted {
        println!("(deleted)");
    } else {
        println!("title     {}\n\n{}", note.title, note.body);
    }
    Ok(())
}

fn side(side: Side) -> &'static str {
    match side {
        Side::Mine => "your text",
        Side::Theirs => "the server's text",
    }
}

/// `notes conflicts`: one entry per text set aside, with how to settle it.
pub fn conflicts(conflicts: &[Conflict], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(conflicts)?);
        return Ok(());
    }
    if conflicts.is_empty() {
        println!("no conflicts");
        return Ok(());
    }
    for c in conflicts {
        let title = if c.deleted { "(a delete)".to_owned() } else { cut(&c.title, 40) };
        println!("{}  note {}  {} v{}: {title}\n    {}", c.id, c.note_id, side(c.side), c.version, c.reason);
    }
    println!("settle each with: notes resolve ID --keep mine|theirs");
    Ok(())
}

/// One line for a sync: what was pushed, then what the pull did.
pub fn report(report: &SyncReport, remote: &str) -> String {
    let mut line = format!("sent {}, failed {}, pending {}", report.sent, report.failed, report.pending);
    if report.rejected > 0 {
        line.push_str(&format!(", rejected {}", report.rejected));
    }
    if let Some(p) = &report.pulled {
        line.push_str(&format!(
            "; pulled {} (updated {}, synced {}, conflicts {}, rebased {}, rejected {})",
            p.received, p.updated, p.synced, p.conflicts, p.rebased, p.rejected
        ));
    }
    if let Some(reason) = &report.unreachable {
        line.push_str(&format!(" ({remote} unreachable: {reason})"));
    }
    line
}

/// How many of the oldest pending entries `notes status` lists (the rest are counted).
pub const STATUS_ENTRIES: usize = 20;

/// The summary `notes status` prints; `pending` is the head of the line (at most
/// [`STATUS_ENTRIES`]), `status.pending` the whole count.
pub fn status(status: &Status, flags: &InForce, pending: &[Pending], remote: &RemoteSummary) {
    println!("pending   {}", notes_count(status.pending));
    if let Some(age) = status.oldest_pending_age_s {
        println!("oldest    {} ago", duration(age));
    }
    if status.pending > 0 {
        println!("attempts  up to {}", status.max_attempts);
    }
    if let Some(error) = &status.last_error {
        println!("error     {error}");
    }
    println!(
        "sent      {}\nsynced    {}\nconflict  {}\nrejected  {}",
        notes_count(status.sent),
        notes_count(status.synced),
        notes_count(status.conflict),
        notes_count(status.rejected)
    );
    if status.conflicts > 0 {
        println!("aside     {} set aside by conflicts: notes conflicts", status.conflicts);
    }
    print_summary(remote);
    println!(
        "flags     retry_pending_notes={} retry_interval_seconds={} (from {})",
        flags.flags.retry_pending_notes, flags.flags.retry_interval_seconds, flags.origin
    );
    for p in pending.iter().take(STATUS_ENTRIES) {
        println!("  {:<20} v{:<4} attempts {}", p.note_id, p.version, p.attempts);
    }
    let shown = pending.len().min(STATUS_ENTRIES) as u64;
    if status.pending > shown {
        println!("  ... and {} more", status.pending - shown);
    }
}

/// At most `max` characters, with an ellipsis when cut; line breaks become spaces.
pub fn cut(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= max {
        return flat;
    }
    flat.chars().take(max - 1).chain(std::iter::once('…')).collect()
}
