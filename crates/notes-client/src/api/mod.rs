//! [`Transport`] through the sync API (docs/API.md), for an end user: `POST /v1/changes` pushes
//! a batch and answers per change (`accepted` / `rejected` / `retry`), `GET /v1/changes` pulls
//! the user's stored changes a page at a time. Every request carries the access token that the
//! [`Authenticator`] keeps valid; a 401 renews it once and repeats the request.

use std::future::Future;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use crate::auth::{AuthError, Authenticator, IdentityProvider};
use crate::changes::Page;
use crate::sender::{EntryResult, Limits, Outgoing, PullResult, Transport, TransportError};

/// The API takes at most 100 changes per push.
pub const MAX_PUSH_CHANGES: usize = 100;
/// The API takes at most 5 MiB per push body; the envelope (`{"changes":[...]}` and the
/// commas) is kept below the rest.
pub const MAX_PUSH_BYTES: usize = 5 * 1024 * 1024 - 4096;
/// Changes per pulled page (the API's most).
pub const PULL_PAGE: u32 = 1000;

/// A base URL the client cannot use.
#[derive(Debug, thiserror::Error)]
#[error("the API URL {url:?} is not an http(s) URL")]
pub struct BadApiUrl {
    /// What was given.
    pub url: String,
}

/// The sync API of one stack, as one signed-in user.
pub struct ApiTransport<I> {
    http: reqwest::Client,
    changes: Url,
    auth: Authenticator<I>,
    origin: String,
}

impl<I> std::fmt::Debug for ApiTransport<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiTransport").field("changes", &self.changes.as_str()).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct PushAnswer {
    results: Vec<PushResult>,
}

#[derive(Deserialize)]
struct PushResult {
    index: usize,
    status: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// Each attempt must end well within the outbox lease (60 s).
const TIMEOUT: Duration = Duration::from_secs(30);

impl<I: IdentityProvider> ApiTransport<I> {
    /// The API at `base_url` (the stack's `ApiUrl` output), as `auth`'s user.
    pub fn new(base_url: &str, auth: Authenticator<I>) -> Result<Self, BadApiUrl> {
        let bad = || BadApiUrl { url: base_url.to_owned() };
        let mut base = Url::parse(base_url).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad());
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let changes = base.join("v1/changes").map_err(|_| bad())?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(TIMEOUT)
            .user_agent(concat!("notes-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with rustls");
        let origin = format!("{} as {}", base, auth.sub());
        Ok(Self { http, changes, auth, origin })
    }

    /// Sends the request `make` builds with a valid token; after a 401, renews the token and
    /// sends it once more. Returns the status and body of the answer.
    async fn send(
        &self,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), TransportError> {
        let token = self.auth.access_token().await.map_err(auth_failure)?;
        let (status, body) = round_trip(make(&token)).await?;
        if status != StatusCode::UNAUTHORIZED {
            return Ok((status, body));
        }
        let token = self.auth.refresh().await.map_err(auth_failure)?;
        let (status, body) = round_trip(make(&token)).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(TransportError::SignInAgain {
                reason: "the API refused a renewed access token (is the API URL this user pool's?)".into(),
            });
        }
        Ok((status, body))
    }
}

async fn round_trip(request: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), TransportError> {
    let response = request.send().await.map_err(|e| TransportError::unreachable(crate::error_chain(&e)))?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| TransportError::unreachable(crate::error_chain(&e)))?;
    Ok((status, body.to_vec()))
}

fn auth_failure(e: AuthError) -> TransportError {
    match e {
        AuthError::SignInAgain { reason } => TransportError::SignInAgain { reason },
        AuthError::NotSignedIn => TransportError::SignInAgain { reason: "not signed in".into() },
        other => TransportError::unreachable(crate::error_chain(&other)),
    }
}

/// A status other than 200: the API's `message`, or the start of the body.
fn failed(what: &str, status: StatusCode, body: &[u8]) -> TransportError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    TransportError::unreachable(format!("{what}: the API answered {status}: {message}"))
}

impl<I: IdentityProvider> Transport for ApiTransport<I> {
    fn limits(&self) -> Limits {
        Limits { max_entries: MAX_PUSH_CHANGES, max_bytes: MAX_PUSH_BYTES }
    }

    fn pull_origin(&self) -> Option<String> {
        Some(self.origin.clone())
    }

    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Result<Vec<EntryResult>, TransportError> {
        // The bodies are note messages already: the request embeds them as they are.
        let mut body = String::from("{\"changes\":[");
        for (i, m) in batch.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(m.body);
        }
        body.push_str("]}");
        let (status, answer) = self
            .send(|token| {
                self.http
                    .post(self.changes.clone())
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        if status != StatusCode::OK {
            return Err(failed("push", status, &answer));
        }
        let answer: PushAnswer = serde_json::from_slice(&answer)
            .map_err(|e| TransportError::unreachable(format!("push: the API's answer is not the contract's: {e}")))?;
        let mut results = vec![None; batch.len()];
        for r in answer.results {
            let Some(slot) = results.get_mut(r.index) else { continue };
            let reason = r.reason.unwrap_or_default();
            *slot = Some(match r.status.as_str() {
                "accepted" => EntryResult::Accepted,
                "rejected" => EntryResult::Rejected { kind: r.kind.unwrap_or_else(|| "rejected".into()), reason },
                _ => EntryResult::Retry(if reason.is_empty() { format!("the API said {}", r.status) } else { reason }),
            });
        }
        // A change the answer does not mention is not known to have been taken.
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| EntryResult::Retry("no answer for this change".into())))
            .collect())
    }

    fn pull(&self, since: Option<&str>) -> Option<impl Future<Output = PullResult> + Send> {
        let mut url = self.changes.clone();
        url.query_pairs_mut().append_pair("since", since.unwrap_or("")).append_pair("limit", &PULL_PAGE.to_string());
        Some(async move {
            let (status, body) = self.send(|token| self.http.get(url.clone()).bearer_auth(token)).await?;
            if status != StatusCode::OK {
                return Err(failed("pull", status, &body));
            }
            let mut de = serde_json::Deserializer::from_slice(&body);
            serde_path_to_error::deserialize::<_, Page>(&mut de)
                .map_err(|e| TransportError::unreachable(format!("pull: the API's page is not the contract's: {e}")))
        })
    }
}

#[cfg(test)]
mod tests;
