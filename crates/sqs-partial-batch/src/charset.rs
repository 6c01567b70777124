//! SQS's character set: the characters it accepts in a message body and in an attribute value,
//! and text made to fit it. A letter with one character outside the set is refused whole.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>

use std::borrow::Cow;
use std::fmt::Write;

/// Whether SQS accepts `c` in a message body or attribute value: `#x9 | #xA | #xD |
/// [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`.
pub fn sqs_accepts(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// `text` with every character SQS refuses written as a `\u{..}` escape; borrowed when nothing
/// needed escaping.
pub fn sqs_text(text: &str) -> Cow<'_, str> {
    if text.chars().all(sqs_accepts) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if sqs_accepts(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_sqs_refuses_are_escaped_and_text_it_accepts_is_borrowed() {
        assert_eq!(sqs_text("a\u{0}b\u{FFFE}"), "a\\u{0}b\\u{fffe}");
        assert!(matches!(sqs_text("fine\n🎉"), Cow::Borrowed(_)));
        assert!(!sqs_accepts('\u{1}') && sqs_accepts('\t') && sqs_accepts('🎉'));
    }
}
