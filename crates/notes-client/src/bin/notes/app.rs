//! What every command may need, built lazily: the database (all of them), the AWS SDK (only
//! those that talk to AWS), and the remote a sync talks to: the sync API as the signed-in user,
//! or the queue as a trusted service.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use notes_client::api::ApiTransport;
use notes_client::auth::Authenticator;
use notes_client::auth::cognito::{self, Cognito};
use notes_client::flags::FlagsSource;
use notes_client::outbox::{OpenOptions, Outbox};
use notes_client::sender::SqsTransport;
use notes_sync::notes::Owner;

use super::Cli;

/// Settings `notes login` keeps in the database, so later commands need no flags.
pub const API_URL: &str = "api_url";
pub const USER_POOL_CLIENT_ID: &str = "user_pool_client_id";
pub const REGION: &str = "region";

/// Where a sync goes.
pub enum Remote {
    /// The sync API, as the signed-in user: push and pull.
    Api(Box<ApiTransport<Cognito>>),
    /// Straight to the queue, as a trusted service: push only.
    Sqs(SqsTransport),
    /// Nothing configured: notes stay local.
    None,
}

pub struct App {
    pub cli: Cli,
    pub stop: Arc<AtomicBool>,
    sdk: std::sync::Mutex<Option<aws_config::SdkConfig>>,
}

impl App {
    pub fn new(cli: Cli) -> Self {
        Self { cli, stop: Arc::default(), sdk: Default::default() }
    }

    /// `--db`, or `notes.db` in the platform's per-user data directory.
    pub fn db_path(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.cli.db {
            Some(path) => path.clone(),
            None => directories::ProjectDirs::from("", "", "notes-sync")
                .context("no home directory to keep the notes database in: pass --db or set NOTES_DB")?
                .data_dir()
                .join("notes.db"),
        })
    }

    pub fn open(&self) -> anyhow::Result<Outbox> {
        let path = self.db_path()?;
        let options = OpenOptions::default().busy_timeout(Duration::from_millis(self.cli.busy_timeout_ms));
        Ok(Outbox::open(&path, &options)?)
    }

    /// One SDK configuration for the SQS and SSM clients, loaded on first use.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        if let Some(sdk) = self.sdk.lock().expect("not poisoned").clone() {
            return sdk;
        }
        let sdk = self.sdk_with(RetryConfig::standard()).await;
        *self.sdk.lock().expect("not poisoned") = Some(sdk.clone());
        sdk
    }

    async fn sdk_with(&self, retry: RetryConfig) -> aws_config::SdkConfig {
        // Each call must end well within the outbox lease (60 s), so that no entry is still
        // being sent when another process may claim it.
        aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await
    }

    pub async fn flags_source(&self) -> FlagsSource {
        match (&self.cli.flags, &self.cli.flags_ssm) {
            (Some(path), _) => FlagsSource::File(path.clone()),
            (None, Some(name)) => {
                FlagsSource::Ssm { client: aws_sdk_ssm::Client::new(&self.sdk().await), name: name.clone() }
            }
            (None, None) => FlagsSource::None,
        }
    }

    pub fn dlq_url(&self) -> anyhow::Result<&str> {
        self.cli.dlq_url.as_deref().context("no dead-letter queue: pass --dlq-url or set NOTES_DLQ_URL")
    }

    pub fn queue_url(&self) -> anyhow::Result<&str> {
        self.cli.queue_url.as_deref().context("no queue: pass --queue-url or set NOTES_QUEUE_URL")
    }

    /// A setting: the flag or its variable, else what `notes login` stored.
    pub fn setting(&self, outbox: &Outbox, given: Option<&String>, key: &str) -> anyhow::Result<Option<String>> {
        Ok(match given {
            Some(value) => Some(value.clone()),
            None => outbox.meta(key)?,
        })
    }

    /// The user pool's region: `--region`, else the one in `--user-pool-id` (`us-east-1_AbC`),
    /// else the stored one, else the SDK's usual `AWS_REGION`.
    pub fn region(&self, outbox: &Outbox) -> anyhow::Result<String> {
        let from_pool = self.cli.user_pool_id.as_deref().and_then(|p| p.split_once('_')).map(|(r, _)| r.to_owned());
        let region = self.cli.region.clone().or(from_pool).map_or_else(|| outbox.meta(REGION), |r| Ok(Some(r)))?;
        region
            .or_else(|| std::env::var("AWS_REGION").ok())
            .context("no region for the user pool: pass --region (the stack's region) or --user-pool-id")
    }

    /// The identity provider: the user pool's app client, called unsigned.
    pub async fn cognito(&self, outbox: &Outbox) -> anyhow::Result<Cognito> {
        let client_id = self.setting(outbox, self.cli.user_pool_client_id.as_ref(), USER_POOL_CLIENT_ID)?.context(
            "no app client: pass --user-pool-client-id or set NOTES_USER_POOL_CLIENT_ID (the stack's UserPoolClientId output)",
        )?;
        let config = cognito::sdk_config(self.region(outbox)?).await;
        Ok(Cognito::new(&config, client_id))
    }

    /// The owner a trusted service writes as, checked as the consumer checks it, and bound to
    /// the database (which then refuses any other).
    fn owner(&self, outbox: &Outbox) -> anyhow::Result<Owner> {
        let owner = self
            .cli
            .owner
            .as_deref()
            .context("sending straight to the queue needs the notes' owner: pass --owner or set NOTES_OWNER")?;
        let owner = Owner::parse(owner).context("--owner")?;
        outbox.bind_owner(owner.as_str())?;
        Ok(owner)
    }

    /// The remote a sync of `outbox` talks to: the API when one is configured (or was at
    /// `login`), else the queue, else none. `single_attempt`: after a write, try once only.
    pub async fn remote(&self, outbox: &Outbox, single_attempt: bool) -> anyhow::Result<Remote> {
        if let Some(url) = self.setting(outbox, self.cli.api_url.as_ref(), API_URL)? {
            let idp = self.cognito(outbox).await?;
            let auth = Authenticator::new(idp, self.open()?)?;
            return Ok(Remote::Api(Box::new(ApiTransport::new(&url, auth)?)));
        }
        let Some(url) = self.cli.queue_url.as_deref() else { return Ok(Remote::None) };
        let owner = self.owner(outbox)?;
        let sdk = if single_attempt { self.sdk_with(RetryConfig::disabled()).await } else { self.sdk().await };
        Ok(Remote::Sqs(SqsTransport::new(aws_sdk_sqs::Client::new(&sdk), url, &owner)))
    }

    /// Sets `stop` on the first SIGINT (Ctrl-C) or SIGTERM: syncs finish the batch in hand.
    pub fn stop_on_signals(&self) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
}
