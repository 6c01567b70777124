//! notes-sync: reliable note synchronisation over Amazon SQS.
//!
//! The batch engine is its own crate, `sqs-partial-batch` (`crates/sqs-partial-batch`):
//! notes-sync is its first user. The `notes` client is its own crate too
//! (`crates/notes-client`), so that the consumer's build never compiles SQLite, SSM or the
//! terminal UI.
//!
//! - [`notes`]: the note messages, their validation and their idempotent store.
//! - [`config`]: the consumer's configuration, read and checked from the environment.
//! - [`logging`]: the consumer's JSON log lines.
#![warn(missing_docs)]

#[cfg(test)]
mod adversarial;
pub mod config;
pub mod logging;
pub mod notes;
#[cfg(test)]
mod properties;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
