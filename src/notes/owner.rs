//! Who a note belongs to. The owner is never read from a message body: the sync API sets it from
//! the caller's verified token (a Cognito user's `sub`), and a trusted service that sends straight
//! to the queue sets it itself, in the message attribute [`OWNER_ATTRIBUTE`]. Notes are keyed by
//! (owner, note id), so nothing one owner sends can touch another's notes.

use super::message::Invalid;

/// The SQS message attribute (`String`) that carries a change's owner.
pub const OWNER_ATTRIBUTE: &str = "owner";

/// Longest owner, in bytes (a Cognito `sub` is a 36-character UUID).
pub const MAX_OWNER_BYTES: usize = 128;

/// A checked owner: 1 to [`MAX_OWNER_BYTES`] bytes, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner(String);

impl Owner {
    /// Checks an owner read from a message attribute or a token.
    pub fn parse(owner: &str) -> Result<Self, Invalid> {
        if owner.is_empty() {
            return Err(Invalid::Owner("the owner must not be empty".into()));
        }
        if owner.len() > MAX_OWNER_BYTES {
            return Err(Invalid::Owner(format!(
                "the owner is {} bytes, more than the limit of {MAX_OWNER_BYTES}",
                owner.len()
            )));
        }
        if owner.chars().any(char::is_control) {
            return Err(Invalid::Owner("the owner contains a control character".into()));
        }
        Ok(Self(owner.to_owned()))
    }

    /// The owner's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_non_empty_bounded_and_free_of_control_characters() {
        assert_eq!(Owner::parse("3f9c-sub").unwrap().as_str(), "3f9c-sub");
        for (bad, text) in [
            ("", "must not be empty"),
            ("a\u{0}b", "control character"),
            (&"x".repeat(MAX_OWNER_BYTES + 1), "129 bytes, more than the limit of 128"),
        ] {
            let err = Owner::parse(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_owner");
            assert!(err.to_string().contains(text), "{err}");
        }
    }
}
