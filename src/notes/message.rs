//! The note message: its wire schema and its validation.
//!
//! `{"schema":1,"op":"upsert"|"delete","note":{"id","version","title","body","updated_at"},"client_id"}`
//!
//! Parsing borrows every string from the message body that it can. Any problem is a
//! [`Invalid`] error naming what is wrong; the handler turns it into a permanent failure.
//! The client serialises the same types and checks its own messages with [`NoteMessage::parse`],
//! so both sides share one schema and one validation.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use sqs_partial_batch::json::{self, option_cow};

/// The only schema version this consumer understands.
pub const SCHEMA_VERSION: u32 = 1;
/// Longest note id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest title, in bytes.
pub const MAX_TITLE_BYTES: usize = 1024;
/// Longest note body, in bytes: with its attributes, a note must fit in one DynamoDB item
/// (400 KB) and one SQS message (256 KiB by default).
pub const MAX_BODY_BYTES: usize = 200 * 1024;
/// Longest client id, in bytes.
pub const MAX_CLIENT_ID_BYTES: usize = 128;

/// What the message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
// Read through `TryFrom<String>`: serde's own "unknown variant" message quotes the whole
// value between backticks, and a value with backticks of its own defeated the excerpting of
// quoted values (found by the `message` fuzz target: fuzz/regressions/message/).
#[serde(try_from = "String")]
pub enum Op {
    /// Create or replace the note at this version.
    Upsert,
    /// Delete the note: a tombstone at this version.
    Delete,
}

/// An `op` that is neither `upsert` nor `delete`; its text quotes a short escaped excerpt.
#[derive(Debug)]
pub struct UnknownOp(String);

impl std::fmt::Display for UnknownOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let excerpt = sqs_partial_batch::reason::excerpt(&self.0, EXCERPT_CHARS).replace('`', "\\u{60}");
        write!(f, "unknown variant `{excerpt}`, expected `upsert` or `delete`")
    }
}

impl TryFrom<String> for Op {
    type Error = UnknownOp;

    fn try_from(op: String) -> Result<Self, UnknownOp> {
        match op.as_str() {
            "upsert" => Ok(Self::Upsert),
            "delete" => Ok(Self::Delete),
            _ => Err(UnknownOp(op)),
        }
    }
}

/// A note-sync message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NoteMessage<'a> {
    /// Wire schema version.
    pub schema: u32,
    /// Upsert or delete.
    pub op: Op,
    /// The note.
    #[serde(borrow)]
    pub note: Note<'a>,
    /// The sending client.
    #[serde(borrow)]
    pub client_id: Cow<'a, str>,
}

/// A note at one version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Note<'a> {
    /// Stable note id.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// Monotonic per note; a store keeps only the highest version it has seen.
    pub version: u64,
    /// Title (not needed for a delete).
    #[serde(borrow, default, deserialize_with = "option_cow", skip_serializing_if = "Option::is_none")]
    pub title: Option<Cow<'a, str>>,
    /// Body text (not needed for a delete).
    #[serde(borrow, default, deserialize_with = "option_cow", skip_serializing_if = "Option::is_none")]
    pub body: Option<Cow<'a, str>>,
    /// When the client changed the note, RFC 3339.
    #[serde(borrow)]
    pub updated_at: Cow<'a, str>,
}

/// Why a message body is not a valid note message. `kind()` is its class for the
/// dead-letter queue; the text never quotes the note's title or body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not JSON at all.
    #[error("invalid_json: {0}")]
    Json(String),
    /// JSON, but not of the message's shape: a missing or mistyped field, an unknown op.
    #[error("invalid_message: {0}")]
    Shape(String),
    /// A schema version this consumer does not know.
    #[error("unsupported_schema: {}", self.detail())]
    Schema(u32),
    /// A field with a bad value.
    #[error("invalid_field: {0}")]
    Field(String),
    /// The owner (a message attribute or a token's subject, never the body) is not acceptable.
    #[error("invalid_owner: {0}")]
    Owner(String),
}

impl Invalid {
    /// The error class, as written to the dead letter's `error_kind` attribute.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Json(_) => "invalid_json",
            Self::Shape(_) => "invalid_message",
            Self::Schema(_) => "unsupported_schema",
            Self::Field(_) => "invalid_field",
            Self::Owner(_) => "invalid_owner",
        }
    }

    /// What is wrong, without the kind in front: a dead letter and a rejection carry the kind
    /// on its own.
    pub fn detail(&self) -> String {
        match self {
            Self::Json(text) | Self::Shape(text) | Self::Field(text) | Self::Owner(text) => text.clone(),
            Self::Schema(schema) => format!("schema {schema} is not supported (expected {SCHEMA_VERSION})"),
        }
    }
}

/// What can be read of a change that failed validation: enough to tell its author, if the
/// note id and version are there. Lenient on purpose; never used to store anything but the
/// rejection itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The note id.
    pub id: Cow<'a, str>,
    /// The change's version.
    pub version: u64,
    /// The sending client, or empty when the message has none.
    pub client_id: Cow<'a, str>,
}

impl<'a> Identity<'a> {
    /// The note id, version and client id of a message body, when they can be read as a valid
    /// message would carry them (an id of 1 to [`MAX_ID_BYTES`] bytes, a version from 1).
    pub fn peek(body: &'a str) -> Option<Self> {
        #[derive(Deserialize)]
        struct Peek<'a> {
            #[serde(borrow)]
            note: PeekNote<'a>,
            #[serde(borrow, default)]
            client_id: Option<Cow<'a, str>>,
        }
        #[derive(Deserialize)]
        struct PeekNote<'a> {
            #[serde(borrow)]
            id: Cow<'a, str>,
            version: u64,
        }
        let peek: Peek<'a> = serde_json::from_str(body).ok()?;
        let id_ok = !peek.note.id.is_empty() && peek.note.id.len() <= MAX_ID_BYTES;
        let client_ok = peek.client_id.as_ref().is_none_or(|c| c.len() <= MAX_CLIENT_ID_BYTES);
        (id_ok && client_ok && peek.note.version >= 1).then(|| Identity {
            id: peek.note.id,
            version: peek.note.version,
            client_id: peek.client_id.unwrap_or_default(),
        })
    }
}

impl<'a> NoteMessage<'a> {
    /// Parses and validates a message body.
    pub fn parse(body: &'a str) -> Result<Self, Invalid> {
        // serde would read a JSON array as a struct's fields in order, and report a wrong
        // element as bad JSON; say plainly that the message must be an object.
        if !body.trim_start().starts_with('{') {
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(body) {
                Err(e) => Invalid::Json(e.to_string()),
                Ok(_) => Invalid::Shape("the message must be a JSON object".into()),
            });
        }
        let message: Self = json::parse(body).map_err(|e| match e.category() {
            serde_json::error::Category::Data => Invalid::Shape(excerpt_quoted(&e.to_string())),
            _ => Invalid::Json(excerpt_quoted(&e.to_string())),
        })?;
        message.validate()?;
        Ok(message)
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.schema != SCHEMA_VERSION {
            return Err(Invalid::Schema(self.schema));
        }
        let note = &self.note;
        check_len("note.id", &note.id, 1, MAX_ID_BYTES)?;
        if note.id.chars().any(char::is_control) {
            return Err(Invalid::Field("note.id contains a control character".into()));
        }
        check_len("client_id", &self.client_id, 1, MAX_CLIENT_ID_BYTES)?;
        check_sqs_text("note.id", &note.id)?;
        check_sqs_text("client_id", &self.client_id)?;
        if note.version == 0 {
            return Err(Invalid::Field("note.version must be at least 1".into()));
        }
        // DynamoDB numbers hold 38 digits, but clients and JSON tools lose precision past 2^53.
        if note.version > (1 << 53) {
            return Err(Invalid::Field("note.version must be at most 2^53".into()));
        }
        if OffsetDateTime::parse(&note.updated_at, &Rfc3339).is_err() {
            return Err(Invalid::Field("note.updated_at is not an RFC 3339 date-time".into()));
        }
        if self.op == Op::Upsert {
            let title =
                note.title.as_deref().ok_or_else(|| Invalid::Field("note.title is required for upsert".into()))?;
            check_len("note.title", title, 0, MAX_TITLE_BYTES)?;
            let body = note.body.as_deref().ok_or_else(|| Invalid::Field("note.body is required for upsert".into()))?;
            check_len("note.body", body, 0, MAX_BODY_BYTES)?;
            check_sqs_text("note.title", title)?;
            check_sqs_text("note.body", body)?;
        }
        Ok(())
    }
}

/// The longest excerpt of an input value that a reason quotes, in characters.
const EXCERPT_CHARS: usize = 16;

/// A parser message with every quoted value (between backticks or double quotes, as serde
/// writes them) cut to a short escaped excerpt: a reason must not carry the input (a 200 KB
/// field, a NUL that SQS refuses in an attribute) into logs and dead letters.
fn excerpt_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(256));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        // The closing quote; serde escapes a double quote inside a double-quoted value.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                '\\' if quote == '"' && !escaped => escaped = true,
                c if c == quote && !escaped => {
                    close = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(close) = close else {
            out.push_str(&sqs_partial_batch::reason::excerpt(inner, EXCERPT_CHARS));
            return out;
        };
        out.push_str(&sqs_partial_batch::reason::excerpt(&inner[..close], EXCERPT_CHARS));
        out.push(quote);
        rest = &inner[close + 1..];
    }
    out.push_str(rest);
    out
}

/// SQS refuses a message body holding a character outside #x9 | #xA | #xD | #x20-#xD7FF |
/// #xE000-#xFFFD | #x10000-#x10FFFF. JSON escapes the control characters and a Rust string holds
/// no surrogates, which leaves U+FFFE and U+FFFF: a change holding one could never be sent.
fn check_sqs_text(field: &str, value: &str) -> Result<(), Invalid> {
    // Both are `EF BF BE`/`EF BF BF` in UTF-8: a byte scan for their lead byte, which most text
    // lacks, skips decoding every character (~1,600 instructions a note in the consumer bench).
    if !value.as_bytes().contains(&0xEF) {
        return Ok(());
    }
    match value.chars().find(|c| matches!(c, '\u{FFFE}' | '\u{FFFF}')) {
        None => Ok(()),
        Some(c) => Err(Invalid::Field(format!(
            "{field} contains U+{:04X}, a character SQS does not accept in a message",
            u32::from(c)
        ))),
    }
}

fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    if value.len() < min {
        return Err(Invalid::Field(format!("{field} must not be empty")));
    }
    if value.len() > max {
        return Err(Invalid::Field(format!("{field} is {} bytes, more than the limit of {max}", value.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"schema":1,"op":"upsert","client_id":"laptop",
        "note":{"id":"n-1","version":3,"title":"Groceries","body":"milk\neggs","updated_at":"2026-11-27T10:00:00Z"}}"#;

    #[test]
    fn a_character_sqs_refuses_is_refused_naming_the_field() {
        for (field, json) in [
            ("note.title", VALID.replace("Groceries", "Groc\u{FFFF}")),
            ("note.body", VALID.replace("milk", "mi\u{FFFE}lk")),
            ("note.id", VALID.replace("n-1", "n-\u{FFFF}")),
            ("client_id", VALID.replace("laptop", "lap\u{FFFF}")),
            // Escaped, as SQS carries it: the check reads the decoded text.
            ("note.title", VALID.replace("Groceries", r"Groc\uffff")),
        ] {
            let err = NoteMessage::parse(&json).unwrap_err().to_string();
            assert!(err.contains(field) && err.contains("a character SQS does not accept"), "{field}: {err}");
        }
        // The character just below is SQS's, and JSON escapes the control characters.
        assert!(NoteMessage::parse(&VALID.replace("milk", "milk\u{FFFD}\u{7F}")).is_ok());
    }

    fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(VALID).unwrap();
        let pointer = format!("/{}", field.replace('.', "/"));
        *v.pointer_mut(&pointer).unwrap() = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    #[test]
    fn a_valid_upsert_parses_and_borrows_unescaped_strings() {
        let message = NoteMessage::parse(VALID).unwrap();
        assert_eq!(message.op, Op::Upsert);
        assert_eq!(message.note.version, 3);
        assert!(matches!(message.note.id, Cow::Borrowed("n-1")));
        assert_eq!(message.note.body.as_deref(), Some("milk\neggs"));
    }

    #[test]
    fn a_delete_needs_no_title_or_body() {
        let body = r#"{"schema":1,"op":"delete","client_id":"c","note":{"id":"n","version":2,"updated_at":"2026-11-27T10:00:00+01:00"}}"#;
        assert_eq!(NoteMessage::parse(body).unwrap().op, Op::Delete);
    }

    #[test]
    fn each_kind_of_bad_message_is_named() {
        let cases: Vec<(String, &str, &str)> = vec![
            ("not json".into(), "invalid_json", "expected ident at line 1 column 2"),
            ("".into(), "invalid_json", "EOF while parsing a value at line 1 column 0"),
            (format!("{VALID} trailing"), "invalid_json", "trailing characters"),
            ("[1,2]".into(), "invalid_message", "the message must be a JSON object"),
            (r#"{"schema":1,"op":"upsert","client_id":"c"}"#.into(), "invalid_message", "missing field `note`"),
            (with("op", r#""merge""#), "invalid_message", "op: unknown variant `merge`"),
            (with("note.version", r#""7""#), "invalid_message", "note.version: invalid type: string"),
            (with("note.version", "-1"), "invalid_message", "note.version: invalid value: integer `-1`"),
            (with("schema", "2"), "unsupported_schema", "schema 2 is not supported"),
            (with("note.id", r#""""#), "invalid_field", "note.id must not be empty"),
            (with("note.version", "0"), "invalid_field", "note.version must be at least 1"),
            (with("note.updated_at", r#""yesterday""#), "invalid_field", "note.updated_at is not an RFC 3339"),
            (
                with("note.title", &format!("\"{}\"", "t".repeat(MAX_TITLE_BYTES + 1))),
                "invalid_field",
                "note.title is 1025 bytes",
            ),
            (with("note.body", "null"), "invalid_field", "note.body is required for upsert"),
            (with("client_id", r#""""#), "invalid_field", "client_id must not be empty"),
        ];
        for (body, kind, text) in cases {
            let err = NoteMessage::parse(&body).unwrap_err();
            assert_eq!(err.kind(), kind, "{body}: {err}");
            assert!(err.to_string().starts_with(kind), "{err}");
            assert!(err.to_string().contains(text), "{body}: {err}");
        }
    }

    #[test]
    fn quoted_input_is_cut_to_a_short_escaped_excerpt() {
        let err = NoteMessage::parse(&with("op", r#""\u0000""#)).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid_message: op: unknown variant `\\u{0}`, expected `upsert` or `delete`"),
            "{err}"
        );
        let huge = format!("\"{}\"", "x".repeat(200_000));
        let err = NoteMessage::parse(&with("op", &huge)).unwrap_err().to_string();
        assert!(err.len() < 200, "{} bytes: {err}", err.len());
        assert!(err.contains("`xxxxxxxxxxxxxxxx…`"), "{err}");
        let err = NoteMessage::parse(&with("note.version", r#""a \"quoted\" long value here""#)).unwrap_err();
        assert!(err.to_string().contains(r#"string "a \"quoted\" lon…""#), "{err}");
    }

    #[test]
    fn an_op_with_backticks_of_its_own_is_still_cut_to_a_short_excerpt() {
        // fuzz/regressions/message/op-with-backticks.json, minimised.
        let op = format!("\"{}\"", "b````a``del`^^^".repeat(40));
        let err = NoteMessage::parse(&with("op", &op)).unwrap_err().to_string();
        assert!(err.len() < 200, "{} bytes: {err}", err.len());
        assert!(err.starts_with("invalid_message: op: unknown variant `b\\u{60}"), "{err}");
    }

    #[test]
    fn the_reason_is_the_text_without_its_kind() {
        let err = NoteMessage::parse(&with("note.version", "0")).unwrap_err();
        assert_eq!(err.detail(), "note.version must be at least 1");
        assert_eq!(err.to_string(), format!("{}: {}", err.kind(), err.detail()));
        let err = NoteMessage::parse(&with("schema", "2")).unwrap_err();
        assert_eq!(err.to_string(), format!("{}: {}", err.kind(), err.detail()));
    }

    #[test]
    fn an_invalid_change_still_names_its_note_version_and_client_when_they_are_readable() {
        let body = with("note.updated_at", r#""yesterday""#);
        let peek = Identity::peek(&body).unwrap();
        assert_eq!((peek.id.as_ref(), peek.version, peek.client_id.as_ref()), ("n-1", 3, "laptop"));
        assert_eq!(Identity::peek(r#"{"schema":9,"op":"x","note":{"id":"n","version":2}}"#).unwrap().client_id, "");
        for unreadable in ["not json", r#"{"note":{"id":"n"}}"#, &with("note.version", "0"), &with("note.id", r#""""#)]
        {
            assert_eq!(Identity::peek(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn errors_never_quote_the_title_or_body() {
        let body = with("note.version", r#""x""#);
        let err = NoteMessage::parse(&body).unwrap_err().to_string();
        assert!(!err.contains("Groceries") && !err.contains("milk"), "{err}");
        let oversize = with("note.body", &format!("\"secret {}\"", "b".repeat(MAX_BODY_BYTES)));
        let err = NoteMessage::parse(&oversize).unwrap_err().to_string();
        assert!(!err.contains("secret"), "{err}");
    }
}
