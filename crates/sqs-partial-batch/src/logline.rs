//! One JSON log line, written field by field into a batch's buffer: the shape of
//! tracing-subscriber's flattened JSON lines (`timestamp`, `level`, `event`, the fields,
//! `message`), at a fraction of their cost. Formatting through tracing-subscriber's JSON layer
//! was more than half of a record's cost in the consumer bench (UTF-8 checks of its own
//! output, `fmt` plumbing, serde escaping, one allocation and one write per line).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A line being written into a buffer; [`Line::end`] closes it with its newline.
pub(crate) struct Line<'b>(&'b mut String);

impl<'b> Line<'b> {
    /// `{"timestamp":"<stamp>","level":"…","event":"…"`, with `stamp` from [`timestamp`].
    pub(crate) fn start(out: &'b mut String, stamp: &str, level: &str, event: &str) -> Self {
        out.push_str("{\"timestamp\":\"");
        out.push_str(stamp);
        out.push_str("\",\"level\":\"");
        out.push_str(level);
        out.push('"');
        let mut line = Self(out);
        line.str("event", event);
        line
    }

    /// A string field, escaped.
    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_json_string(self.0, value);
        self
    }

    /// A number field.
    pub(crate) fn num(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        push_u64(self.0, value);
        self
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.0.push_str(if value { "true" } else { "false" });
        self
    }

    fn key(&mut self, key: &str) {
        // Keys are the engine's own constants: nothing to escape.
        self.0.push_str(",\"");
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    /// Closes the line, with its newline.
    pub(crate) fn end(self) {
        self.0.push_str("}\n");
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
pub(crate) fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    // Every byte to escape is ASCII, so a byte scan finds them (and only at char boundaries).
    while let Some(i) = rest.bytes().position(|b| b == b'"' || b == b'\\' || b < b' ') {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// A number in decimal, without `fmt`'s machinery (a few times per line, so it shows).
pub(crate) fn push_u64(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// An RFC 3339 stamp, in a buffer of its own (no allocation): see [`timestamp`].
#[derive(Clone, Copy)]
pub(crate) struct Stamp([u8; 24]);

impl Stamp {
    /// RFC 3339 in UTC with milliseconds, `2026-11-30T22:08:13.123Z` (years 0000–9999).
    pub(crate) fn at(now: SystemTime) -> Self {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
        // Days since the epoch to a civil date (Howard Hinnant's algorithm, proleptic Gregorian).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, value: u64| {
            let mut rest = value;
            for i in (at..at + width).rev() {
                text[i] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
        };
        put(0, 4, year.clamp(0, 9999) as u64);
        put(5, 2, month as u64);
        put(8, 2, day as u64);
        put(11, 2, rem / 3600);
        put(14, 2, rem % 3600 / 60);
        put(17, 2, rem % 60);
        put(20, 3, u64::from(since.subsec_millis()));
        Self(text)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// RFC 3339 in UTC with milliseconds, `2026-11-30T22:08:13.123Z`.
#[cfg(test)]
pub(crate) fn timestamp(now: SystemTime) -> String {
    Stamp::at(now).as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds_across_leap_years_and_month_ends() {
        let at = |secs: u64, ms: u64| timestamp(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_796_076_493, 123), "2026-11-30T22:08:13.123Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000Z");
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 123, 99_999, u64::MAX] {
            let mut text = String::from("x");
            push_u64(&mut text, n);
            assert_eq!(text, format!("x{n}"));
        }
    }

    #[test]
    fn every_string_is_escaped_so_the_line_stays_one_json_object() {
        let mut text = String::new();
        let mut line = Line::start(&mut text, &timestamp(UNIX_EPOCH), "WARN", "outcome");
        line.str("reason", "a \"quoted\" \\ back\nslash\t\u{1}é").num("n", 7).bool("b", false);
        line.end();
        assert!(text.ends_with("}\n") && text.matches('\n').count() == 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["reason"], "a \"quoted\" \\ back\nslash\t\u{1}é");
        assert_eq!(value["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["event"], "outcome");
        assert_eq!(value["n"], 7);
        assert_eq!(value["b"], false);
    }
}
