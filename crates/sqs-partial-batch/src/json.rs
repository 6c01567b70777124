//! Borrowed JSON parsing, as the engine reads SQS events: strings borrowed from the input
//! where they have no escapes, and errors that name the JSON path where reading stopped. For
//! handlers that parse JSON bodies the same way (a dead letter's reason then says where).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

/// Deserializes an optional string, borrowing it from the input unless it has escapes.
///
/// `#[serde(borrow)]` borrows a `Cow<str>` field but not an `Option<Cow<str>>` one: serde
/// routes the option through a generic path that always allocates. Optional fields that
/// should borrow use `#[serde(borrow, default, deserialize_with = "json::option_cow")]`.
pub fn option_cow<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|b| b.0))
}

/// A parse error that names the JSON path where reading stopped.
#[derive(Debug)]
pub struct PathError {
    /// `path: error` for data of the wrong shape, else the error with its position.
    pub message: String,
    /// Syntax, end of input, or data of the wrong shape.
    pub category: serde_json::error::Category,
}

/// Parses `text` as a `T`, borrowing from it, and rejects trailing characters.
///
/// Valid input takes serde_json's plain path; only input that fails is read again with
/// `serde_path_to_error`, whose path tracking allocates a segment per key and cost about a
/// quarter of the engine's time per record (issue 10, `perf` on the bench). Both paths accept
/// and refuse exactly the same input: the second only adds the path to the error.
pub fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, PathError> {
    if let Ok(value) = serde_json::from_str(text) {
        return Ok(value);
    }
    parse_tracked(text)
}

/// [`parse`] with the JSON path of the failure in the error.
fn parse_tracked<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, PathError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let category = inner.classify();
        // A path says where the data was wrong; for a syntax error the position says it.
        let message = match category {
            serde_json::error::Category::Data if path != "." => format!("{path}: {inner}"),
            _ => inner.to_string(),
        };
        PathError { message, category }
    })?;
    de.end().map_err(|e| PathError { message: e.to_string(), category: e.classify() })?;
    Ok(value)
}
