//! Borrowed JSON parsing, as the engine reads SQS events: strings borrowed from the input
//! where they have no escapes, and errors that name the JSON path where reading stopped. For
//! handlers that parse JSON bodies the same way (a dead letter's reason then says where).

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// A string borrowed from the input unless it has escapes.
#[derive(Deserialize)]
pub(crate) struct Borrowed<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

/// Deserializes an optional string, borrowing it from the input unless it has escapes.
///
/// `#[serde(borrow)]` borrows a `Cow<str>` field but not an `Option<Cow<str>>` one: serde
/// routes the option through a generic path that always allocates. Optional fields that
/// should borrow use `#[serde(borrow, default, deserialize_with = "json::option_cow")]`.
pub fn option_cow<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|b| b.0))
}

/// A parse error that names the JSON path where reading stopped.
///
/// Its message is `path: error` for data of the wrong shape (the error alone for a syntax
/// error, whose position says where). As with `serde_path_to_error`, whose path it reports,
/// the parser's error is part of that message, so [`source`](std::error::Error::source) is
/// that error's own source.
#[derive(Debug)]
pub struct PathError {
    path: Option<String>,
    error: serde_json::Error,
}

impl PathError {
    /// Where the data was of the wrong shape (`Records[0].messageId`); `None` for a syntax
    /// error, an early end of input, or a document wrong as a whole.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Syntax, end of input, or data of the wrong shape.
    pub fn category(&self) -> serde_json::error::Category {
        self.error.classify()
    }
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        self.error.fmt(f)
    }
}

impl std::error::Error for PathError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// Parses `text` as a `T`, borrowing from it, and rejects trailing characters.
///
/// Valid input takes serde_json's plain path; only input that fails is read again with
/// `serde_path_to_error`, whose path tracking allocates a segment per key: about a quarter of
/// the engine's time per record when every input paid for it (`perf` on the consumer bench).
/// Both paths accept and refuse exactly the same input: the second only adds the path.
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
        let error = e.into_inner();
        // A path says where the data was wrong; for a syntax error the position says it.
        let path = (error.classify() == serde_json::error::Category::Data && path != ".").then_some(path);
        PathError { path, error }
    })?;
    de.end().map_err(|error| PathError { path: None, error })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)] // read only to be refused
    struct Shape {
        items: Vec<u32>,
    }

    #[test]
    fn a_path_error_names_where_the_data_was_wrong_and_is_an_error() {
        let err = parse::<Shape>(r#"{"items":[1,"x"]}"#).unwrap_err();
        assert_eq!(err.path(), Some("items[1]"));
        assert_eq!(err.category(), serde_json::error::Category::Data);
        assert!(err.to_string().starts_with("items[1]: invalid type: string \"x\", expected u32"), "{err}");
        let err: Box<dyn std::error::Error> = Box::new(parse::<Shape>("{").unwrap_err());
        assert!(err.to_string().contains("EOF while parsing an object"), "{err}");
        assert!(parse::<Shape>(r#"{"items":[]} x"#).unwrap_err().path().is_none(), "trailing characters");
    }
}
