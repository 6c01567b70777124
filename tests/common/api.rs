//! The sync API function as the tests run it: the built `api` binary serving invocations from
//! `cargo lambda watch --only-lambda-apis` (the Lambda Runtime API and function URLs, emulated),
//! so HTTP requests reach it as a function URL's would. The binary is Cargo's own build of this
//! package (`CARGO_BIN_EXE_api`): nothing is compiled here.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::function::LocalFunction;

/// The API, running.
pub struct LocalApi {
    /// Held for its `Drop`, which stops the function and its watcher.
    _function: LocalFunction,
    /// The base URL apps call: `<url>/v1/changes`.
    pub url: String,
    /// The function's JSON log lines.
    pub logs: Arc<Mutex<Vec<Value>>>,
}

impl LocalApi {
    /// Starts the API with `env` (QUEUE_URL, TABLE_NAME, USER_POOL_ID, ... : `api::config::vars`).
    pub fn start(env: &[(&str, String)]) -> Self {
        let function = LocalFunction::start(env!("CARGO_BIN_EXE_api"), env);
        let (url, logs) = (format!("{}/lambda-url/_", function.base), function.logs.clone());
        Self { _function: function, url, logs }
    }

    /// A request to the API: `(status, JSON body)`.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}
