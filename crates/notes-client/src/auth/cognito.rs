//! [`IdentityProvider`] over a Cognito user pool's app client: `InitiateAuth` with
//! `USER_PASSWORD_AUTH` and `REFRESH_TOKEN_AUTH`, and `RevokeToken` on sign-out.
//!
//! These calls are unsigned (the model marks them so): an end user has no AWS credentials. The
//! SDK configuration is built without a credentials provider ([`sdk_config`]), so nothing
//! looks for credentials either. The app client must be a public one (no secret).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cognitoidentityprovider::types::AuthFlowType;

use super::{AuthError, IdentityProvider, Tokens};

/// The SDK configuration for Cognito's unsigned calls in `region`: no credentials, short
/// timeouts (a sign-in waits on a person; a refresh must fit in the outbox's lease).
pub async fn sdk_config(region: String) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .no_credentials()
        .region(Region::new(region))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .load()
        .await
}

/// A user pool's app client.
#[derive(Debug, Clone)]
pub struct Cognito {
    client: Client,
    app_client_id: String,
}

impl Cognito {
    /// Signs in through `app_client_id` (the stack's `UserPoolClientId` output).
    pub fn new(config: &aws_config::SdkConfig, app_client_id: impl Into<String>) -> Self {
        Self { client: Client::new(config), app_client_id: app_client_id.into() }
    }

    async fn initiate(&self, flow: AuthFlowType, parameters: &[(&str, &str)]) -> Result<Tokens, AuthError> {
        let mut call = self.client.initiate_auth().auth_flow(flow).client_id(&self.app_client_id);
        for (key, value) in parameters {
            call = call.auth_parameters(*key, *value);
        }
        let out = call.send().await.map_err(classify)?;
        if let Some(challenge) = out.challenge_name() {
            return Err(AuthError::Challenge { challenge: challenge.as_str().to_owned() });
        }
        let result = out
            .authentication_result()
            .ok_or_else(|| AuthError::BadToken("the answer has neither tokens nor a challenge".into()))?;
        Ok(Tokens {
            access_token: result
                .access_token()
                .ok_or_else(|| AuthError::BadToken("the answer has no access token".into()))?
                .to_owned(),
            refresh_token: result.refresh_token().map(str::to_owned),
            expires_in_s: result.expires_in().max(0) as u64,
        })
    }

    /// Revokes a refresh token (sign-out). Best effort: the caller forgets it anyway.
    pub async fn revoke(&self, refresh_token: &str) -> Result<(), AuthError> {
        self.client
            .revoke_token()
            .client_id(&self.app_client_id)
            .token(refresh_token)
            .send()
            .await
            .map(drop)
            .map_err(classify)
    }
}

impl IdentityProvider for Cognito {
    async fn sign_in(&self, username: &str, password: &str) -> Result<Tokens, AuthError> {
        self.initiate(AuthFlowType::UserPasswordAuth, &[("USERNAME", username), ("PASSWORD", password)]).await
    }

    async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        self.initiate(AuthFlowType::RefreshTokenAuth, &[("REFRESH_TOKEN", refresh_token)]).await
    }
}

/// Errors that signing in again fixes, and the rest (retry later).
fn classify<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> AuthError {
    if let Some(service) = error.as_service_error() {
        let code = service.code().unwrap_or("Unknown");
        let reason = format!("{code}: {}", service.message().unwrap_or("no message"));
        return match code {
            "NotAuthorizedException"
            | "UserNotFoundException"
            | "UserNotConfirmedException"
            | "PasswordResetRequiredException"
            | "ResourceNotFoundException"
            | "InvalidParameterException" => AuthError::SignInAgain { reason },
            _ => AuthError::Unavailable { reason },
        };
    }
    AuthError::Unavailable { reason: crate::error_chain(&error) }
}
