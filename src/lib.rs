//! notes-sync: reliable note synchronisation over Amazon SQS.
//!
//! The batch engine is its own crate, `sqs-partial-batch` (`crates/sqs-partial-batch`):
//! notes-sync is its first user.
//!
//! - [`notes`]: the note messages, their validation and their idempotent store.
//! - [`client`]: the `notes` client: SQLite outbox, feature flags, sender, DLQ tools.
//! - [`config`]: the consumer's configuration, read and checked from the environment.
//! - [`logging`]: the consumer's JSON log lines.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod logging;
pub mod notes;
