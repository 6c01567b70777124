//! Who is calling: a Cognito access token, checked by the function itself (the HTTP API's JWT
//! authorizer checks it first in AWS; checking again keeps the function safe behind a function
//! URL or `cargo lambda watch`, and testable without API Gateway).
//!
//! Every claim relied on is checked: the RS256 signature against the pool's JWKS, `iss`, `exp`
//! (with a small leeway), `token_use` = `access` and `client_id` among the app clients served.
//! A bad token of any kind is one undistinguished [`AuthError::Invalid`]; the class of failure
//! is kept for the function's own log, never for the caller, and the token itself is never
//! logged.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::time::Instant;

use crate::notes::Owner;

/// What a verified token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`: the owner of every note the caller writes or reads.
    pub owner: Owner,
}

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is missing or wrong: answered 401 "invalid token", whatever the cause. The
    /// cause is for the function's log only.
    #[error("invalid token ({0})")]
    Invalid(&'static str),
    /// The pool's keys cannot be read now: answered 503, so that a client retries rather than
    /// asking its user to sign in again.
    #[error("the user pool's keys are unavailable")]
    KeysUnavailable(#[source] KeyError),
}

/// The JWKS could not be fetched or read.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct KeyError {
    what: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl KeyError {
    fn new(what: impl Into<String>, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { what: what.into(), source: Some(source.into()) }
    }
}

/// Where the pool's signing keys come from.
pub trait KeySource: Sync {
    /// The current key set; `refresh` asks for a fresh copy (a token names a key not in the
    /// cached set: the pool may have rotated its keys).
    fn keys(&self, refresh: bool) -> impl Future<Output = Result<Arc<Keys>, KeyError>> + Send;
}

/// A key set ready for verification: RS256 keys by `kid`.
#[derive(Clone, Default)]
pub struct Keys(HashMap<String, DecodingKey>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Keys {
    /// The RS256 keys of a JWKS document (others are skipped: this API accepts RS256 only).
    pub fn from_jwks(document: &str) -> Result<Self, KeyError> {
        let set: JwkSet =
            serde_json::from_str(document).map_err(|e| KeyError::new("the JWKS is not a JSON Web Key Set", e))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(jwk)) else { continue };
            if matches!(&jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) {
                keys.insert(kid, key);
            }
        }
        Ok(Self(keys))
    }
}

/// A fixed key set: tests and benches.
#[derive(Debug, Clone)]
pub struct StaticKeys(pub Arc<Keys>);

impl KeySource for StaticKeys {
    async fn keys(&self, _refresh: bool) -> Result<Arc<Keys>, KeyError> {
        Ok(self.0.clone())
    }
}

/// The pool's JWKS over HTTPS, fetched on first use and cached; refetched when a token names a
/// key the cache lacks, at most once per [`JwksUrl::MIN_REFRESH`].
#[derive(Debug)]
pub struct JwksUrl {
    url: String,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<(Arc<Keys>, Instant)>>,
}

impl JwksUrl {
    /// The least time between two fetches: a flood of tokens with unknown key ids must not
    /// become a flood of requests to Cognito.
    pub const MIN_REFRESH: Duration = Duration::from_secs(60);

    /// Keys from `url` (`https://cognito-idp.<region>.amazonaws.com/<pool id>/.well-known/jwks.json`).
    pub fn new(url: impl Into<String>, http: reqwest::Client) -> Self {
        Self { url: url.into(), http, cache: tokio::sync::Mutex::new(None) }
    }

    async fn fetch(&self) -> Result<Keys, KeyError> {
        let response = self.http.get(&self.url).send().await.map_err(|e| KeyError::new("fetching the JWKS", e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| KeyError::new("reading the JWKS", e))?;
        if !status.is_success() {
            return Err(KeyError { what: format!("fetching the JWKS: HTTP {status}"), source: None });
        }
        Keys::from_jwks(&text)
    }
}

impl KeySource for JwksUrl {
    async fn keys(&self, refresh: bool) -> Result<Arc<Keys>, KeyError> {
        let mut cache = self.cache.lock().await;
        match &*cache {
            Some((keys, fetched)) if !refresh || fetched.elapsed() < Self::MIN_REFRESH => return Ok(keys.clone()),
            _ => {}
        }
        match self.fetch().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *cache = Some((keys.clone(), Instant::now()));
                tracing::info!(event = "jwks_fetched", keys = keys.0.len(), "user pool keys fetched");
                Ok(keys)
            }
            // A failed refresh keeps the keys already known: they still verify what they did.
            Err(e) => match &*cache {
                Some((keys, _)) if refresh => Ok(keys.clone()),
                _ => Err(e),
            },
        }
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// `https://cognito-idp.<region>.amazonaws.com/<pool id>`.
    pub issuer: String,
    /// The app clients whose access tokens are accepted.
    pub client_ids: Vec<String>,
    /// Seconds of clock skew allowed on `exp`.
    pub leeway_seconds: u64,
}

impl TokenPolicy {
    /// The policy of a Cognito user pool: its issuer URL is made from the region and pool id.
    pub fn cognito(region: &str, pool_id: &str, client_ids: Vec<String>) -> Self {
        Self { issuer: format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}"), client_ids, leeway_seconds: 60 }
    }
}

/// The claims this API reads from a Cognito access token.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    token_use: String,
    client_id: Option<String>,
}

/// Checks bearer tokens.
#[derive(Debug)]
pub struct Verifier<K> {
    policy: TokenPolicy,
    validation: Validation,
    keys: K,
}

impl<K: KeySource> Verifier<K> {
    /// A verifier of `policy`'s tokens with keys from `keys`.
    pub fn new(policy: TokenPolicy, keys: K) -> Self {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&policy.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Access tokens carry `client_id`, not `aud`: checked below.
        validation.validate_aud = false;
        validation.leeway = policy.leeway_seconds;
        Self { policy, validation, keys }
    }

    /// The caller of a request whose `Authorization` header is `authorization`.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Invalid("no bearer token"))?;
        // `alg: none`, HS256 and every other algorithm fail here or at the check after.
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid("malformed"))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::Invalid("not RS256"));
        }
        let kid = header.kid.ok_or(AuthError::Invalid("no key id"))?;
        let keys = self.keys.keys(false).await.map_err(AuthError::KeysUnavailable)?;
        let keys = match keys.0.contains_key(&kid) {
            true => keys,
            false => self.keys.keys(true).await.map_err(AuthError::KeysUnavailable)?,
        };
        let key = keys.0.get(&kid).ok_or(AuthError::Invalid("unknown key"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| {
                AuthError::Invalid(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "expired",
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => "another issuer",
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => "bad signature",
                    _ => "rejected claims",
                })
            })?
            .claims;
        if claims.token_use != "access" {
            return Err(AuthError::Invalid("not an access token"));
        }
        if !claims.client_id.as_ref().is_some_and(|c| self.policy.client_ids.contains(c)) {
            return Err(AuthError::Invalid("another app client"));
        }
        let owner = Owner::parse(&claims.sub).map_err(|_| AuthError::Invalid("unusable sub"))?;
        Ok(Identity { owner })
    }
}
