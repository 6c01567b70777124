//! The notes-sync client: a durable SQLite outbox of note changes, feature flags that steer its
//! retries, a sender over SQS, and the operator's tools for the dead-letter queue. The `notes`
//! binary is a thin CLI over this crate; an app can embed it the same way.
//!
//! A crate of its own so that the server side (the consumer's Lambda build) never compiles
//! SQLite, SSM or the terminal UI. It shares the message schema and its validation with the
//! consumer ([`notes_sync::notes`]) and knows nothing of the consumer's batch engine.
//!
//! - [`outbox`]: notes and their pending changes, written before any network call.
//! - [`sender`]: the [`Transport`](sender::Transport) trait and `SendMessageBatch` over SQS.
//! - [`sync`]: one pass over the outbox, and the flag-driven `--watch` loop.
//! - [`flags`]: `retry_pending_notes` / `retry_interval_seconds` from a file or SSM.
//! - [`dlq`]: peek, full and selective redrive, purge.

#![warn(missing_docs)]

pub mod dlq;
pub mod flags;
pub mod outbox;
pub mod sender;
pub mod sync;

/// An error and its sources, joined by `: `. The AWS SDK's top-level messages ("dispatch
/// failure", "service error") do not say what went wrong; their sources do.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
