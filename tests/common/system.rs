//! The whole local system for end-to-end tests: emulators provisioned from template.yaml by
//! `scripts/provision.py`, the store behind a switchable proxy, and the `consumer` binary in
//! poll mode as a child process whose JSON log lines are collected.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

use super::emulators::{Emulator, dies_with_test, venv};
use super::proxy::Proxy;
use super::{sdk, unique};

/// Provisioned resources of one queue type, as `provision.py` reports them.
pub struct Provisioned(pub Value);

impl Provisioned {
    pub fn str(&self, key: &str) -> &str {
        self.0[key].as_str().unwrap_or_else(|| panic!("provision output has no {key}"))
    }
    pub fn num(&self, key: &str) -> u64 {
        self.0[key].as_f64().unwrap_or_else(|| panic!("provision output has no {key}")) as u64
    }
}

/// Runs `scripts/provision.py` for a fresh stack name; the alarm period is shortened to
/// 10 s (the template's is 60) so an alarm test takes seconds, not minutes.
pub fn provision(localstack: &str, dynamodb: &str, queue_type: &str) -> Provisioned {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/provision.py");
    let output = Command::new(venv("scripts").join("bin/python"))
        .arg(script)
        .args(["--sqs-endpoint", localstack, "--dynamodb-endpoint", dynamodb, "--queue-type", queue_type])
        .args(["--stack", &unique("e2e"), "--alarm-period", "10"])
        .envs([("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")])
        .output()
        .expect("run provision.py");
    assert!(output.status.success(), "provision.py: {}", String::from_utf8_lossy(&output.stderr));
    let all: Value = serde_json::from_slice(&output.stdout).expect("provision.py prints JSON");
    Provisioned(all[queue_type].clone())
}

/// LocalStack, moto behind a proxy, the provisioned resources, and clients for checking.
pub struct System {
    pub localstack: String,
    pub moto: Emulator,
    pub store: Proxy,
    pub resources: Provisioned,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub logs: Arc<Mutex<Vec<Value>>>,
}

impl System {
    pub async fn new(queue_type: &str) -> Self {
        let localstack = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
        let moto = Emulator::moto();
        let store = Proxy::start(moto.addr());
        let resources = provision(&localstack, &moto.endpoint(), queue_type);
        let sqs = aws_sdk_sqs::Client::new(&sdk(&localstack).await);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk(&moto.endpoint()).await);
        Self { localstack, moto, store, resources, sqs, dynamodb, logs: Arc::default() }
    }

    /// Starts `consumer poll` on the source queue, the store reached through the proxy,
    /// backoff 1 s doubling to at most 16 s, so five receives fit in a test and their delays
    /// stay below the cap, where jitter could make one shorter than the last.
    pub fn start_consumer(&self) -> Consumer {
        self.start_consumer_with(&["--wait-seconds", "1"], &[])
    }

    /// [`System::start_consumer`] with other poll arguments (none: the defaults) and extra
    /// environment variables.
    pub fn start_consumer_with(&self, args: &[&str], env: &[(&str, &str)]) -> Consumer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_consumer"));
        command
            .args(["poll", "--queue-url", self.resources.str("queue_url")])
            .args(args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .envs([
                ("TABLE_NAME", self.resources.str("table").to_owned()),
                ("DLQ_URL", self.resources.str("dlq_url").to_owned()),
                ("MAX_RECEIVE_COUNT", self.resources.num("max_receive_count").to_string()),
                ("BACKOFF_BASE_SECONDS", "1".to_owned()),
                ("BACKOFF_MAX_SECONDS", "16".to_owned()),
                ("AWS_ENDPOINT_URL", self.localstack.clone()),
                ("AWS_ENDPOINT_URL_DYNAMODB", self.store.endpoint()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("RUST_LOG", "info".to_owned()),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = dies_with_test(&mut command).spawn().expect("start consumer");
        let stdout = child.stdout.take().unwrap();
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    logs.lock().unwrap().push(value);
                }
            }
        });
        Consumer { child }
    }

    /// The template's user pool, as provisioned in moto.
    pub async fn cognito(&self) -> super::cognito::Cognito {
        let (pool, client) = (self.resources.str("user_pool_id"), self.resources.str("user_pool_client_id"));
        super::cognito::Cognito::provisioned(&self.moto.endpoint(), pool, client).await
    }

    /// Starts the sync API on the provisioned queue, table and user pool (the table reached
    /// directly, not through the store's proxy; the JWKS from moto), with `env` on top.
    pub fn start_api(&self, env: &[(&str, String)]) -> super::api::LocalApi {
        let mut all = vec![
            ("QUEUE_URL", self.resources.str("queue_url").to_owned()),
            ("TABLE_NAME", self.resources.str("table").to_owned()),
            ("USER_POOL_ID", self.resources.str("user_pool_id").to_owned()),
            ("USER_POOL_CLIENT_IDS", self.resources.str("user_pool_client_id").to_owned()),
            ("JWKS_URL", self.resources.str("jwks_url").to_owned()),
            ("AWS_ENDPOINT_URL", self.localstack.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.moto.endpoint()),
        ];
        all.extend(env.iter().cloned());
        super::api::LocalApi::start(&all)
    }

    /// Log lines with `event` = `name`.
    pub fn events(&self, name: &str) -> Vec<Value> {
        self.logs.lock().unwrap().iter().filter(|l| l["event"] == name).cloned().collect()
    }

    /// Messages on a queue, visible or in flight.
    pub async fn depth(&self, url: &str) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        out.attributes().unwrap().values().map(|v| v.parse::<u64>().unwrap()).sum()
    }

    /// Notes in the table (its rejections left out).
    pub async fn stored_count(&self) -> u64 {
        let out = self
            .dynamodb
            .scan()
            .table_name(self.resources.str("table"))
            .filter_expression("#entry = :note")
            .expression_attribute_names("#entry", notes_sync::notes::table::ENTRY)
            .expression_attribute_values(":note", aws_sdk_dynamodb::types::AttributeValue::S("note".into()))
            .send()
            .await
            .unwrap();
        out.count as u64
    }

    /// Sends bodies in order (FIFO: with their group); returns the message ids.
    pub async fn send(&self, bodies: &[(String, Option<&str>)]) -> Vec<String> {
        super::send(&self.sqs, self.resources.str("queue_url"), bodies).await
    }
}

/// A running `consumer poll`.
pub struct Consumer {
    child: Child,
}

impl Consumer {
    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap().code()
    }

    /// SIGTERM, then wait at most `within`; `Err` (after SIGKILL) if it did not exit by then.
    pub fn terminate_within(&mut self, within: Duration) -> Result<Option<i32>, String> {
        self.sigterm();
        self.wait_within(within)
    }

    /// SIGTERM, without waiting.
    pub fn sigterm(&self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
    }

    /// Waits at most `within` for the exit; `Err` (after SIGKILL) if it did not exit by then.
    pub fn wait_within(&mut self, within: Duration) -> Result<Option<i32>, String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Ok(status.code());
            }
            if std::time::Instant::now() >= deadline {
                self.kill();
                return Err(format!("still running {within:?} after SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 250 ms until it holds; panics naming `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
