//! notes-sync: reliable note synchronisation over Amazon SQS.
//!
//! The batch engine is its own crate, `sqs-partial-batch` (`crates/sqs-partial-batch`):
//! notes-sync is its first user. The `notes` client is its own crate too
//! (`crates/notes-client`), so that the consumer's build never compiles SQLite, SSM or the
//! terminal UI.
//!
//! - [`notes`]: the note messages, their validation, their owners, their idempotent store and
//!   the pull that reads them back.
//! - [`api`]: the sync API end-user apps call (`src/bin/api.rs` runs it on Lambda).
//! - [`config`]: the consumer's configuration, read and checked from the environment.
//! - [`aws`]: the one SDK configuration both functions build their clients from.
//! - [`logging`]: the functions' JSON log lines.
//! - [`lambda`]: the consumer's Lambda runtime, which lends each invocation's body to the
//!   handler as read, so that the payload is held once.
#![warn(missing_docs)]

pub mod api;
pub mod aws;
pub mod config;
pub mod errors;
pub mod lambda;
pub mod logging;
pub mod notes;
