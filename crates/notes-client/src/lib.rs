//! The notes-sync client: a durable SQLite outbox of note changes, sign-in, sync both ways
//! through the sync API (or straight to SQS for a trusted service), feature flags that steer its
//! retries, and the operator's tools for the dead-letter queue. The `notes` binary is a thin CLI
//! over this crate; an app can embed it the same way.
//!
//! A crate of its own so that the server side (the consumer's Lambda build) never compiles
//! SQLite, SSM or the terminal UI. It shares the message schema and its validation with the
//! consumer ([`notes_sync::notes`]) and knows nothing of the consumer's batch engine.
//!
//! - [`outbox`]: notes, their pending changes and fates, conflicts, the session: written before
//!   any network call, each change and each settlement one transaction.
//! - [`changes`]: what a pull returns.
//! - [`sender`]: the [`Transport`](sender::Transport) trait and `SendMessageBatch` over SQS.
//! - [`auth`]: Cognito sign-in and a valid access token.
//! - [`api`]: the sync API as a transport: push and pull.
//! - [`sync`]: one push and pull, and the flag-driven `--watch` loop.
//! - [`flags`]: `retry_pending_notes` / `retry_interval_seconds` from a file or SSM.
//! - [`dlq`]: peek, full and selective redrive, purge.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod changes;
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
