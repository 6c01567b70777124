//! The sync API (`docs/API.md`): end-user apps push changes and pull their own notes over
//! HTTPS, authenticated by a Cognito access token, never touching SQS or DynamoDB themselves.
//!
//! HTTP-shaped but free of Lambda: [`Api::handle`] takes a [`Request`] and gives a
//! [`Response`]; `src/bin/api.rs` adapts `lambda_http` to it. Every request is authenticated
//! first, whatever its route; the owner of everything it reads or writes is the token's `sub`.
//!
//! - [`auth`]: the token check and the pool's keys.
//! - `push`: `POST /v1/changes`, validated with the consumer's own rules, sent with the owner.
//! - `pull`: `GET /v1/changes` and `GET /v1/notes/{id}`.
//! - [`config`]: the function's environment.

pub mod auth;
pub mod config;
mod pull;
mod push;

use std::future::Future;

use serde::Serialize;

use crate::notes::{Cursor, Feed, Outgoing, Owner, Page, QueueSender, Sent, StoreError, StoredNote};
use auth::{AuthError, KeySource, Verifier};

pub use push::{MAX_CHANGES, MAX_REQUEST_BYTES};

/// An HTTP request as the API reads it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path; anything before `/v1/` (an API stage) is ignored.
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// The `Authorization` header.
    pub authorization: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// An HTTP response: a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body, JSON.
    pub body: String,
    /// Extra headers (`WWW-Authenticate`, `Allow`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Response {
    fn json(status: u16, body: &impl Serialize) -> Self {
        let body = serde_json::to_string(body).expect("API bodies serialise");
        Self { status, body, headers: Vec::new() }
    }

    fn error(status: u16, error: &'static str, message: impl std::fmt::Display) -> Self {
        #[derive(Serialize)]
        struct Error<'a> {
            error: &'a str,
            message: String,
        }
        Self::json(status, &Error { error, message: message.to_string() })
    }

    /// The one answer to every authentication failure, whatever its cause.
    fn invalid_token() -> Self {
        let mut response = Self::error(401, "invalid_token", "invalid token");
        response.headers.push(("www-authenticate", r#"Bearer error="invalid_token""#));
        response
    }

    fn method_not_allowed(allow: &'static str) -> Self {
        let mut response = Self::error(405, "method_not_allowed", format_args!("this route takes {allow}"));
        response.headers.push(("allow", allow));
        response
    }
}

/// Where pushed changes go: the notes queue ([`QueueSender`]), or a stand-in for tests and
/// benches.
pub trait ChangeQueue: Sync {
    /// Sends one batch (at most ten changes, 256 KiB); one answer per change, in order.
    fn send_batch(&self, batch: &[Outgoing<'_>]) -> impl Future<Output = Vec<Sent>> + Send;
}

impl ChangeQueue for QueueSender {
    fn send_batch(&self, batch: &[Outgoing<'_>]) -> impl Future<Output = Vec<Sent>> + Send {
        QueueSender::send_batch(self, batch)
    }
}

/// A queue that takes every change and keeps none: the API's bench measures the API alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoQueue;

impl ChangeQueue for NoQueue {
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Vec<Sent> {
        batch.iter().map(|_| Sent::Accepted).collect()
    }
}

/// Where an owner's notes are read from: the notes table ([`Feed`]), or a stand-in.
pub trait NoteReader: Sync {
    /// One page of the owner's changes after `cursor`.
    fn page(&self, owner: &Owner, cursor: Cursor, limit: u32) -> impl Future<Output = Result<Page, StoreError>> + Send;
    /// One of the owner's notes.
    fn note(&self, owner: &Owner, id: &str) -> impl Future<Output = Result<Option<StoredNote>, StoreError>> + Send;
}

impl NoteReader for Feed {
    fn page(&self, owner: &Owner, cursor: Cursor, limit: u32) -> impl Future<Output = Result<Page, StoreError>> + Send {
        Feed::page(self, owner, cursor, limit)
    }

    fn note(&self, owner: &Owner, id: &str) -> impl Future<Output = Result<Option<StoredNote>, StoreError>> + Send {
        Feed::note(self, owner, id)
    }
}

/// The API: a token verifier, the queue changes go to and the table they are read from.
#[derive(Debug)]
pub struct Api<K, Q, R> {
    verifier: Verifier<K>,
    queue: Q,
    reader: R,
}

impl<K: KeySource, Q: ChangeQueue, R: NoteReader> Api<K, Q, R> {
    /// An API over these parts. Built once per process.
    pub fn new(verifier: Verifier<K>, queue: Q, reader: R) -> Self {
        Self { verifier, queue, reader }
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request<'_>) -> Response {
        let started = std::time::Instant::now();
        let route = request.path.find("/v1/").map_or("", |i| &request.path[i..]);
        let (response, owner) = match self.verifier.verify(request.authorization).await {
            Err(AuthError::Invalid(why)) => {
                // The cause stays here; the caller learns only "invalid token".
                tracing::info!(event = "unauthenticated", why, "invalid token");
                (Response::invalid_token(), None)
            }
            Err(e @ AuthError::KeysUnavailable(_)) => {
                tracing::error!(
                    event = "keys_unavailable",
                    error = crate::errors::error_chain(&e),
                    "cannot check tokens"
                );
                (Response::error(503, "unavailable", "tokens cannot be checked now: retry"), None)
            }
            Ok(identity) => (self.route(route, &request, &identity.owner).await, Some(identity.owner)),
        };
        tracing::info!(
            event = "request",
            method = request.method,
            route = route_name(route),
            status = response.status,
            owner = owner.as_ref().map(Owner::as_str),
            duration_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        response
    }

    async fn route(&self, route: &str, request: &Request<'_>, owner: &Owner) -> Response {
        match (route, request.method) {
            ("/v1/changes", "POST") => push::push(&self.queue, owner, request.body).await,
            ("/v1/changes", "GET") => pull::changes(&self.reader, owner, request.query).await,
            ("/v1/changes", _) => Response::method_not_allowed("GET, POST"),
            (path, method) => match path.strip_prefix("/v1/notes/") {
                Some(id) if method == "GET" => pull::note(&self.reader, owner, id).await,
                Some(_) => Response::method_not_allowed("GET"),
                None => Response::error(404, "not_found", "no such route"),
            },
        }
    }
}

/// A route's name for the log: never a note id.
fn route_name(route: &str) -> &'static str {
    match route {
        "/v1/changes" => "/v1/changes",
        r if r.starts_with("/v1/notes/") => "/v1/notes/{id}",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests;
