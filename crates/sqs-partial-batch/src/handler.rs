//! The handler a user writes: one record in, [`Ack`] or [`RecordError`] out. The engine owns
//! retries, dead-lettering and the response.

use std::future::Future;

use crate::event::Record;
use crate::outcome::{Ack, RecordError};

/// Handles one record. The engine owns retries, dead-lettering and the response; a handler
/// only says what happened, with the error's variant deciding retry or dead-letter. A panic,
/// in the call itself or in the future it returns, fails only its own record.
pub trait RecordHandler: Sync {
    /// Processes one record.
    fn handle(&self, record: &Record<'_>) -> impl Future<Output = Result<Ack, RecordError>> + Send;
}

/// A [`RecordHandler`] from a closure, in the style of `lambda_runtime::service_fn`. The
/// closure reads what it needs from the record (parsing the body, usually) and returns a
/// future that owns it:
///
/// ```
/// use sqs_partial_batch::{Ack, RecordError, handler_fn};
///
/// let handler = handler_fn(|record| {
///     let body = record.body.as_deref().unwrap_or_default().to_owned();
///     async move {
///         if body.is_empty() {
///             return Err(RecordError::permanent("empty_body", "the message has no body"));
///         }
///         Ok(Ack::Succeeded)
///     }
/// });
/// # let _ = handler;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> HandlerFn<F>
where
    F: Fn(&Record<'_>) -> Fut + Sync,
    Fut: Future<Output = Result<Ack, RecordError>> + Send,
{
    HandlerFn(f)
}

/// The [`RecordHandler`] made by [`handler_fn`].
#[derive(Debug, Clone, Copy)]
pub struct HandlerFn<F>(F);

impl<F, Fut> RecordHandler for HandlerFn<F>
where
    F: Fn(&Record<'_>) -> Fut + Sync,
    Fut: Future<Output = Result<Ack, RecordError>> + Send,
{
    fn handle(&self, record: &Record<'_>) -> impl Future<Output = Result<Ack, RecordError>> + Send {
        (self.0)(record)
    }
}
