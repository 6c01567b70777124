//! Reading an access token's claims. The client only reads them (who signed in, when the token
//! expires); the API verifies the signature, and nothing here trusts a claim for access.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::AuthError;

/// What the client reads from an access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// The user: the owner of their notes.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Cognito's user name.
    #[serde(default)]
    pub username: Option<String>,
}

impl Claims {
    /// The claims of a JWT (`header.payload.signature`), unverified.
    pub fn read(token: &str) -> Result<Self, AuthError> {
        let payload = token.split('.').nth(1).ok_or_else(|| AuthError::BadToken("not a JWT".into()))?;
        // Some issuers pad; the standard says not to.
        let bytes = URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| AuthError::BadToken(format!("its payload is not base64url: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| AuthError::BadToken(format!("its payload: {e}")))
    }
}

#[cfg(test)]
pub(crate) fn token(sub: &str, exp: i64) -> String {
    let payload =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"{sub}","exp":{exp},"username":"u-{sub}","token_use":"access"}}"#));
    format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claims_of_an_access_token_are_read_and_garbage_is_refused() {
        let claims = Claims::read(&token("3f9c", 1_800_000_000)).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.exp, claims.username.as_deref()),
            ("3f9c", Some(1_800_000_000), Some("u-3f9c"))
        );
        for bad in ["", "abc", "a.!!!.c", "a.bm90IGpzb24.c"] {
            assert!(matches!(Claims::read(bad), Err(AuthError::BadToken(_))), "{bad}");
        }
    }
}
