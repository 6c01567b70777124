//! notes-sync: reliable note synchronisation over Amazon SQS.
//!
//! - [`batch`]: a domain-free SQS partial-batch engine (backoff, dead letters, FIFO, deadline).
//! - [`notes`]: the note messages, their validation and their idempotent store.
//! - [`client`]: the `notes` client: SQLite outbox, feature flags, sender, DLQ tools.
//! - [`config`]: the consumer's configuration, read and checked from the environment.
#![warn(missing_docs)]

#[cfg(test)]
mod adversarial;
pub mod batch;
pub mod client;
pub mod config;
mod errors;
mod json;
pub mod notes;
#[cfg(test)]
mod properties;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
