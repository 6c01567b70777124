//! The sync API function's configuration, read from the environment once at start-up; a
//! missing or bad variable is an error naming it.

use std::time::Duration;

use crate::config::{ConfigError, Env};

/// Environment variables of the API function.
pub mod vars {
    /// Required: the notes queue the API sends changes to.
    pub const QUEUE_URL: &str = "QUEUE_URL";
    /// Required: the notes table pulls read.
    pub const TABLE_NAME: &str = "TABLE_NAME";
    /// Required: the Cognito user pool whose access tokens are accepted.
    pub const USER_POOL_ID: &str = "USER_POOL_ID";
    /// Required: the app client ids whose access tokens are accepted, comma-separated.
    pub const USER_POOL_CLIENT_IDS: &str = "USER_POOL_CLIENT_IDS";
    /// The pool's region; default `AWS_REGION` (Lambda sets it).
    pub const USER_POOL_REGION: &str = "USER_POOL_REGION";
    /// Where the pool's keys are fetched; default the pool's own JWKS URL (local runs point it
    /// at moto's server).
    pub const JWKS_URL: &str = "JWKS_URL";
    /// Seconds a write may take from its `applied_at` stamp to its commit, clock skew between
    /// consumers included: the pull re-reads that much (docs/API.md); default 90.
    pub const PULL_OVERLAP_SECONDS: &str = "PULL_OVERLAP_SECONDS";
}

/// Everything the API function needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// The notes queue.
    pub queue_url: String,
    /// The notes table.
    pub table_name: String,
    /// The user pool's region (the token issuer is `https://cognito-idp.<region>.amazonaws.com/<pool id>`).
    pub region: String,
    /// The user pool.
    pub user_pool_id: String,
    /// The app clients served.
    pub client_ids: Vec<String>,
    /// The pool's JWKS.
    pub jwks_url: String,
    /// The pull's overlap.
    pub pull_overlap: Duration,
}

impl ApiConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let user_pool_id = env.required(vars::USER_POOL_ID)?;
        let region = env
            .optional(vars::USER_POOL_REGION)
            .or_else(|| env.optional("AWS_REGION"))
            .ok_or(ConfigError::Missing(vars::USER_POOL_REGION))?;
        let client_ids: Vec<String> = env
            .required(vars::USER_POOL_CLIENT_IDS)?
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect();
        if client_ids.is_empty() {
            return Err(ConfigError::Missing(vars::USER_POOL_CLIENT_IDS));
        }
        let jwks_url = env.optional(vars::JWKS_URL).unwrap_or_else(|| {
            format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}/.well-known/jwks.json")
        });
        Ok(Self {
            queue_url: env.required(vars::QUEUE_URL)?,
            table_name: env.required(vars::TABLE_NAME)?,
            pull_overlap: Duration::from_secs(env.number(vars::PULL_OVERLAP_SECONDS, 90, 1, 3600)?),
            region,
            user_pool_id,
            client_ids,
            jwks_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<ApiConfig, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ApiConfig::from_lookup(|name| map.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 5] = [
        ("QUEUE_URL", "https://sqs/q"),
        ("TABLE_NAME", "notes"),
        ("USER_POOL_ID", "eu-west-1_abc"),
        ("USER_POOL_CLIENT_IDS", "app1, app2"),
        ("AWS_REGION", "eu-west-1"),
    ];

    #[test]
    fn the_pool_gives_the_jwks_url_and_the_clients_are_a_list() {
        let c = config(&REQUIRED).unwrap();
        assert_eq!(c.jwks_url, "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json");
        assert_eq!(c.client_ids, ["app1", "app2"]);
        assert_eq!(c.pull_overlap, Duration::from_secs(90));
        let local = config(&[
            REQUIRED[0],
            REQUIRED[1],
            REQUIRED[2],
            REQUIRED[3],
            REQUIRED[4],
            ("JWKS_URL", "http://127.0.0.1:5000/p/.well-known/jwks.json"),
        ])
        .unwrap();
        assert_eq!(local.jwks_url, "http://127.0.0.1:5000/p/.well-known/jwks.json");
    }

    #[test]
    fn a_missing_or_bad_variable_is_named() {
        assert_eq!(config(&REQUIRED[1..]).unwrap_err(), ConfigError::Missing("QUEUE_URL"));
        let no_clients = config(&[REQUIRED[0], REQUIRED[1], REQUIRED[2], ("USER_POOL_CLIENT_IDS", " , "), REQUIRED[4]]);
        assert_eq!(no_clients.unwrap_err(), ConfigError::Missing("USER_POOL_CLIENT_IDS"));
        let err =
            config(&[REQUIRED[0], REQUIRED[1], REQUIRED[2], REQUIRED[3], REQUIRED[4], ("PULL_OVERLAP_SECONDS", "0")]);
        assert!(err.unwrap_err().to_string().contains("PULL_OVERLAP_SECONDS"));
    }
}
