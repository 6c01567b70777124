//! moto's Cognito as the tests use it: a user pool and app client as `template.yaml` makes them
//! (USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH), users an operator creates, and real signed
//! tokens. moto serves the pool's JWKS at `<endpoint>/<pool id>/.well-known/jwks.json`.

use std::process::Command;

use aws_sdk_cognitoidentityprovider::types::{AuthFlowType, ExplicitAuthFlowsType};
use serde_json::Value;

use super::emulators::venv;

/// One user pool and its app client in a moto server.
pub struct Cognito {
    pub client: aws_sdk_cognitoidentityprovider::Client,
    /// The moto server (it serves DynamoDB too).
    pub endpoint: String,
    pub pool_id: String,
    pub client_id: String,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub username: String,
    pub password: String,
    /// The token's `sub`: the owner of the user's notes.
    pub sub: String,
    pub access_token: String,
    pub id_token: String,
    pub refresh_token: String,
}

impl Cognito {
    /// A new pool and app client in the moto server at `endpoint`.
    pub async fn new(endpoint: &str) -> Self {
        let client = aws_sdk_cognitoidentityprovider::Client::new(&super::sdk(endpoint).await);
        let pool_id = client
            .create_user_pool()
            .pool_name(super::unique("users"))
            .send()
            .await
            .unwrap()
            .user_pool
            .and_then(|p| p.id)
            .unwrap();
        let client_id = client
            .create_user_pool_client()
            .user_pool_id(&pool_id)
            .client_name("notes")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .send()
            .await
            .unwrap()
            .user_pool_client
            .and_then(|c| c.client_id)
            .unwrap();
        Self { client, endpoint: endpoint.to_owned(), pool_id, client_id }
    }

    /// The pool provisioned from the template (`scripts/provision.py`'s output).
    pub async fn provisioned(endpoint: &str, pool_id: &str, client_id: &str) -> Self {
        let client = aws_sdk_cognitoidentityprovider::Client::new(&super::sdk(endpoint).await);
        Self { client, endpoint: endpoint.to_owned(), pool_id: pool_id.to_owned(), client_id: client_id.to_owned() }
    }

    /// The issuer the pool's tokens name.
    pub fn issuer(&self) -> String {
        format!("https://cognito-idp.us-east-1.amazonaws.com/{}", self.pool_id)
    }

    /// Where moto serves the pool's keys.
    pub fn jwks_url(&self) -> String {
        format!("{}/{}/.well-known/jwks.json", self.endpoint, self.pool_id)
    }

    /// Creates `username` as an operator would (the pool takes no self sign-up), with a
    /// permanent password, and signs them in.
    pub async fn user(&self, username: &str) -> User {
        let password = format!("Pw-{username}-0123456789");
        self.client.admin_create_user().user_pool_id(&self.pool_id).username(username).send().await.unwrap();
        self.client
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(&password)
            .permanent(true)
            .send()
            .await
            .unwrap();
        self.sign_in(username, &password).await
    }

    /// `InitiateAuth` with `USER_PASSWORD_AUTH`.
    pub async fn sign_in(&self, username: &str, password: &str) -> User {
        let auth = self
            .client
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .unwrap()
            .authentication_result
            .unwrap();
        let access_token = auth.access_token.unwrap();
        let sub = claims(&access_token)["sub"].as_str().unwrap().to_owned();
        User {
            username: username.to_owned(),
            password: password.to_owned(),
            sub,
            access_token,
            id_token: auth.id_token.unwrap(),
            refresh_token: auth.refresh_token.unwrap(),
        }
    }

    /// Revokes every refresh token of `username` (an operator's global sign-out).
    pub async fn sign_out(&self, username: &str) {
        self.client.admin_user_global_sign_out().user_pool_id(&self.pool_id).username(username).send().await.unwrap();
    }

    /// A token signed with the key moto signs this pool's tokens with, carrying `claims`: what
    /// the pool could issue but a test cannot wait for or ask for (an expired token, another
    /// client's). `scripts/cognito_token.py` signs it.
    pub fn forge(&self, claims: &Value) -> String {
        let output = Command::new(venv("moto").join("bin/python"))
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cognito_token.py"))
            .arg(claims.to_string())
            .output()
            .expect("run cognito_token.py");
        assert!(output.status.success(), "cognito_token.py: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

/// The claims of a token, unverified (the test reads its own tokens).
pub fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let mut base64 = payload.replace('-', "+").replace('_', "/");
    while !base64.len().is_multiple_of(4) {
        base64.push('=');
    }
    serde_json::from_slice(&aws_smithy_types::base64::decode(base64).unwrap()).unwrap()
}
