//! Zero-copy helpers for serde.
//!
//! `#[serde(borrow)]` borrows a `Cow<str>` field but not an `Option<Cow<str>>` one: serde
//! routes the option through a generic path that always allocates. Optional fields that
//! should borrow use `#[serde(borrow, default, deserialize_with = "borrowed::option_cow")]`.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

/// Deserializes an optional string, borrowing it from the input unless it has escapes.
pub fn option_cow<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|b| b.0))
}
