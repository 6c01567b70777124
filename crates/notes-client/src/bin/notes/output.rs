//! Human and JSON output of notes and status. Titles and bodies go to stdout only, on request.

use notes_client::flags::InForce;
use notes_client::outbox::{NoteRecord, Pending, Status};

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

/// One line per note: id, state, version, title (cut to fit a terminal line).
pub fn list(notes: &[NoteRecord], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(notes)?);
        return Ok(());
    }
    for n in notes {
        let title = if n.deleted { "(deleted)".to_owned() } else { cut(&n.title, 48) };
        println!("{:<20} {:<8} v{:<4} {title}", n.id, n.state.as_str(), n.version);
    }
    Ok(())
}

/// A note in full.
pub fn show(note: &NoteRecord, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(note)?);
        return Ok(());
    }
    println!("id        {}\nversion   {}\nstate     {}", note.id, note.version, note.state.as_str());
    if let Some(reason) = &note.reason {
        println!("reason    {reason}");
    }
    println!("updated   {}", note.updated_at);
    if note.deleted {
        println!("(deleted)");
    } else {
        println!("title     {}\n\n{}", note.title, note.body);
    }
    Ok(())
}

/// The summary `notes status` prints.
pub fn status(status: &Status, flags: &InForce, pending: &[Pending]) {
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
    println!("sent      {}\nrejected  {}", notes_count(status.sent), notes_count(status.rejected));
    println!(
        "flags     retry_pending_notes={} retry_interval_seconds={} (from {})",
        flags.flags.retry_pending_notes, flags.flags.retry_interval_seconds, flags.origin
    );
    for p in pending.iter().take(20) {
        println!("  {:<20} v{:<4} attempts {}", p.note_id, p.version, p.attempts);
    }
    if pending.len() > 20 {
        println!("  ... and {} more", pending.len() - 20);
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
