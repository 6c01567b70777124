//! Signing in, and keeping a valid access token for the sync API.
//!
//! [`sign_in`] trades a user name and password for Cognito's tokens (`USER_PASSWORD_AUTH`) and
//! keeps them in the user's database ([`StoredSession`]). [`Authenticator`] hands the API client
//! an access token, renewed with the refresh token (`REFRESH_TOKEN_AUTH`) shortly before it
//! expires, or at once when the API refused it (a 401). A refresh the identity provider refuses
//! for good (revoked, expired) forgets the tokens and says [`AuthError::SignInAgain`]; the notes
//! stay. The identity provider is behind the [`IdentityProvider`] trait ([`cognito::Cognito`] is
//! the real one), so the renewal rules are tested with a fake.
//!
//! Tokens are never logged or printed, and neither is a password.

pub mod cognito;
mod jwt;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use crate::outbox::{Outbox, OutboxError, StoredSession, now_ms};

pub use jwt::Claims;
#[cfg(test)]
pub(crate) use jwt::token;

/// How long before its expiry an access token is renewed.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// What the identity provider gave back. Its `Debug` never shows a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// For the API.
    pub access_token: String,
    /// To renew it (sign-in only: a refresh returns none).
    pub refresh_token: Option<String>,
    /// Seconds the access token is valid for.
    pub expires_in_s: u64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("expires_in_s", &self.expires_in_s).finish_non_exhaustive()
    }
}

/// Why signing in or renewing a token failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The identity provider said no, for good: a wrong password, an unknown or unconfirmed
    /// user, a revoked or expired refresh token.
    #[error("sign in again (notes login): {reason}")]
    SignInAgain {
        /// The provider's error code and message (never a token or a password).
        reason: String,
    },
    /// Nobody is signed in to this database.
    #[error("not signed in: run notes login")]
    NotSignedIn,
    /// The identity provider asks for a step this client does not do (a new password, MFA).
    #[error("the user pool asks for {challenge}, which notes cannot answer: finish it in the pool's hosted UI")]
    Challenge {
        /// The challenge's name (`NEW_PASSWORD_REQUIRED`, ...).
        challenge: String,
    },
    /// The identity provider could not be reached, or failed: try again later.
    #[error("the identity provider is unavailable: {reason}")]
    Unavailable {
        /// The SDK's error chain.
        reason: String,
    },
    /// The provider answered with a token this client cannot read.
    #[error("the identity provider's access token is unreadable: {0}")]
    BadToken(String),
    /// The local database.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// Signs users in and renews their access tokens.
pub trait IdentityProvider: Sync {
    /// `USER_PASSWORD_AUTH`.
    fn sign_in(&self, username: &str, password: &str) -> impl Future<Output = Result<Tokens, AuthError>> + Send;
    /// `REFRESH_TOKEN_AUTH`.
    fn refresh(&self, refresh_token: &str) -> impl Future<Output = Result<Tokens, AuthError>> + Send;
}

/// Signs `username` in and stores the session, binding the database to the user: refused, with
/// nothing stored, for a database that holds another user's notes.
pub async fn sign_in<I: IdentityProvider>(
    idp: &I,
    outbox: &mut Outbox,
    username: &str,
    password: &str,
) -> Result<StoredSession, AuthError> {
    let tokens = idp.sign_in(username, password).await?;
    let claims = Claims::read(&tokens.access_token)?;
    let refresh_token =
        tokens.refresh_token.ok_or_else(|| AuthError::BadToken("the sign-in returned no refresh token".into()))?;
    let session = StoredSession {
        username: claims.username.clone().unwrap_or_else(|| username.to_owned()),
        sub: claims.sub.clone(),
        access_token: tokens.access_token,
        refresh_token,
        expires_at_ms: expiry(&claims, tokens.expires_in_s),
    };
    outbox.save_session(&session)?;
    Ok(session)
}

/// When a token expires: its own `exp`, or now + `expires_in`, whichever is sooner.
fn expiry(claims: &Claims, expires_in_s: u64) -> i64 {
    let by_lifetime = now_ms() + (expires_in_s as i64) * 1000;
    claims.exp.map_or(by_lifetime, |exp| by_lifetime.min(exp * 1000))
}

/// Keeps a valid access token for the signed-in user of one database.
pub struct Authenticator<I> {
    idp: I,
    db: Mutex<Outbox>,
    sub: String,
}

impl<I> std::fmt::Debug for Authenticator<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("sub", &self.sub).finish_non_exhaustive()
    }
}

impl<I: IdentityProvider> Authenticator<I> {
    /// For the user signed in to `db` (a connection of its own: renewed tokens are stored while
    /// a sync holds the other). [`AuthError::NotSignedIn`] if nobody is.
    pub fn new(idp: I, db: Outbox) -> Result<Self, AuthError> {
        let session = db.session()?.ok_or(AuthError::NotSignedIn)?;
        Ok(Self { idp, db: Mutex::new(db), sub: session.sub })
    }

    /// The user's `sub`: the owner of their notes.
    pub fn sub(&self) -> &str {
        &self.sub
    }

    fn session(&self) -> Result<StoredSession, AuthError> {
        let db = self.db.lock().expect("not poisoned");
        match db.session()? {
            Some(s) if s.sub == self.sub => Ok(s),
            _ => Err(AuthError::NotSignedIn),
        }
    }

    /// An access token valid for at least [`REFRESH_MARGIN`] (renewed first if need be).
    pub async fn access_token(&self) -> Result<String, AuthError> {
        let session = self.session()?;
        if session.expires_at_ms - now_ms() > REFRESH_MARGIN.as_millis() as i64 {
            return Ok(session.access_token);
        }
        self.renew(&session).await
    }

    /// Renews the access token now: the API refused the one it had.
    pub async fn refresh(&self) -> Result<String, AuthError> {
        let session = self.session()?;
        self.renew(&session).await
    }

    async fn renew(&self, session: &StoredSession) -> Result<String, AuthError> {
        let tokens = match self.idp.refresh(&session.refresh_token).await {
            Ok(tokens) => tokens,
            Err(e @ AuthError::SignInAgain { .. }) => {
                // The refresh token is dead: forget it, keep every note.
                self.db.lock().expect("not poisoned").clear_session()?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let claims = Claims::read(&tokens.access_token)?;
        if claims.sub != self.sub {
            return Err(AuthError::BadToken("the renewed token is another user's".into()));
        }
        let expires_at_ms = expiry(&claims, tokens.expires_in_s);
        self.db.lock().expect("not poisoned").renew_access_token(&self.sub, &tokens.access_token, expires_at_ms)?;
        Ok(tokens.access_token)
    }
}

#[cfg(test)]
mod tests;
