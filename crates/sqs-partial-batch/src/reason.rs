//! Failure reasons made safe to log and to send as an SQS message attribute.
//!
//! A reason may quote input (a parser names the unexpected value). SQS refuses attribute
//! values with characters outside its set, so such a letter could not be sent at all and the
//! message would lose its reason on its way to the redrive policy. Every reason therefore
//! passes through [`clean`]: control characters and characters SQS refuses are written as
//! `\u{..}` escapes, and the result is cut to [`MAX_REASON_BYTES`].

use crate::charset::sqs_accepts;

/// The longest reason kept, in bytes: it always fits in a message attribute and a log line.
pub const MAX_REASON_BYTES: usize = 1024;

/// A reason fit for a log line and a dead-letter attribute: one line, control and refused
/// characters escaped, at most [`MAX_REASON_BYTES`] bytes (cut on a character boundary,
/// ending in `…` when cut).
pub fn clean(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_BYTES));
    for c in reason.chars() {
        let mut piece = [0u8; 4];
        let escaped;
        let piece: &str = if c.is_control() || !sqs_accepts(c) {
            escaped = format!("\\u{{{:x}}}", c as u32);
            &escaped
        } else {
            c.encode_utf8(&mut piece)
        };
        if out.len() + piece.len() > MAX_REASON_BYTES - '…'.len_utf8() {
            out.push('…');
            return out;
        }
        out.push_str(piece);
    }
    out
}

/// At most `max_chars` characters of `text`, escaped with [`clean`]'s rules, `…` when cut:
/// the short excerpt of an input value that a reason may quote.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    let cut = text.char_indices().nth(max_chars).map(|(i, _)| i);
    let head = clean(&text[..cut.unwrap_or(text.len())]);
    if cut.is_some() { format!("{head}…") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_sqs_refuses_and_control_characters_are_escaped() {
        assert_eq!(clean("op `\u{0}` bad\n"), "op `\\u{0}` bad\\u{a}");
        assert_eq!(clean("\u{FFFE}\u{1b}"), "\\u{fffe}\\u{1b}");
        assert_eq!(clean("emoji 🎉 ok"), "emoji 🎉 ok");
        assert!(clean("x\u{0}").chars().all(sqs_accepts));
    }

    #[test]
    fn reasons_are_bounded_to_one_kib_on_a_character_boundary() {
        let long = clean(&"é".repeat(10_000));
        assert!(long.len() <= MAX_REASON_BYTES && long.ends_with('…'), "{}", long.len());
        let nul = clean(&"\u{0}".repeat(10_000));
        assert!(nul.len() <= MAX_REASON_BYTES, "escapes count against the bound");
        assert_eq!(clean("short"), "short");
    }

    #[test]
    fn an_excerpt_is_short_and_escaped() {
        assert_eq!(excerpt("secret title text", 6), "secret…");
        assert_eq!(excerpt("a\u{0}", 6), "a\\u{0}");
    }
}
