//! `notes`: the client and operator CLI over the `notes_client` crate.
//!
//! Notes are written to a local SQLite database first and sent to SQS after; `sync` and
//! `sync --watch` resend what is pending; `dlq` inspects and redrives the dead-letter queue.
//! Exit codes (one place: [`exit_code`]): 0 done, 1 error, 2 usage, 3 notes still pending
//! after a sync, 4 database locked by another process, 5 database corrupt or not a notes database.

mod commands;
mod dlq;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use clap::{Parser, Subcommand};
use notes_client::flags::FlagsSource;
use notes_client::outbox::{OpenOptions, Outbox, OutboxError, State};
use notes_sync::notes::Owner;

/// Notes that survive being offline: written locally first, sent to SQS when it can be reached.
#[derive(Parser, Debug)]
#[command(name = "notes", version)]
struct Cli {
    /// The local database [default: the platform's data directory, e.g. ~/.local/share/notes-sync/notes.db].
    #[arg(long, env = "NOTES_DB", global = true)]
    db: Option<PathBuf>,
    /// The notes queue (the stack's NotesQueueUrl output).
    #[arg(long, env = "NOTES_QUEUE_URL", global = true)]
    queue_url: Option<String>,
    /// Sending straight to the queue (a trusted service): the owner of the notes it writes.
    #[arg(long, env = "NOTES_OWNER", global = true)]
    owner: Option<String>,
    /// The dead-letter queue (the stack's DeadLetterQueueUrl output), for `notes dlq`.
    #[arg(long, env = "NOTES_DLQ_URL", global = true)]
    dlq_url: Option<String>,
    /// Read the feature flags from this JSON file.
    #[arg(long, env = "NOTES_FLAGS", global = true, conflicts_with = "flags_ssm")]
    flags: Option<PathBuf>,
    /// Read the feature flags from this SSM parameter (the stack's ClientFlagsParameterName output).
    #[arg(long, env = "NOTES_FLAGS_SSM", global = true)]
    flags_ssm: Option<String>,
    /// How long to wait for another process's lock on the database, in milliseconds.
    #[arg(long, env = "NOTES_BUSY_TIMEOUT_MS", default_value_t = 5000, global = true)]
    busy_timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new note, then try to send it.
    Add {
        /// Title.
        #[arg(long)]
        title: String,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Change a note's title and/or body, then try to send it.
    Edit {
        /// The note id.
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        body: BodyArgs,
    },
    /// Delete a note (a tombstone that is synced like any change).
    Delete {
        /// The note id.
        id: String,
    },
    /// Send pending notes to the queue. Exit code 3 if any is still pending.
    Sync {
        /// Keep going: resend every retry_interval_seconds while retry_pending_notes is true.
        #[arg(long)]
        watch: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List notes with their sync state.
    List {
        /// Only notes in this state: pending, sent or rejected.
        #[arg(long)]
        state: Option<State>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one note.
    Show {
        /// The note id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pending notes, oldest pending age, attempts, last error, flags in force.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The feature flags in force and where they came from.
    Flags {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Operator tools for the dead-letter queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
}

/// Where a note's body comes from.
#[derive(clap::Args, Debug)]
struct BodyArgs {
    /// Body text.
    #[arg(long, conflicts_with_all = ["body_file", "stdin"])]
    body: Option<String>,
    /// Read the body from this file.
    #[arg(long, conflicts_with = "stdin")]
    body_file: Option<PathBuf>,
    /// `-`: read the body from standard input.
    #[arg(value_name = "-", value_parser = clap::builder::PossibleValuesParser::new(["-"]))]
    stdin: Option<String>,
}

impl BodyArgs {
    fn read(&self) -> anyhow::Result<Option<String>> {
        if let Some(body) = &self.body {
            return Ok(Some(body.clone()));
        }
        if let Some(path) = &self.body_file {
            return std::fs::read_to_string(path).map(Some).with_context(|| format!("cannot read {}", path.display()));
        }
        if self.stdin.is_some() {
            let mut body = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut body).context("cannot read standard input")?;
            return Ok(Some(body));
        }
        Ok(None)
    }
}

/// A sync that ended with notes still pending: not an error, but exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{0} note(s) still pending")]
struct StillPending(u64);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if !e.is::<StillPending>() {
                eprintln!("notes: {e:#}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Every exit code, in one place.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.is::<StillPending>() {
        return 3;
    }
    match e.chain().find_map(|c| c.downcast_ref::<OutboxError>()) {
        Some(db) if db.is_locked() => 4,
        Some(db) if db.is_corrupt() => 5,
        _ => 1,
    }
}

/// What every command may need, built lazily: the database is opened by all, the AWS SDK
/// only by those that talk to AWS.
struct App {
    cli: Cli,
    stop: Arc<AtomicBool>,
    sdk: std::sync::Mutex<Option<aws_config::SdkConfig>>,
}

impl App {
    /// `--db`, or `notes.db` in the platform's per-user data directory.
    fn db_path(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.cli.db {
            Some(path) => path.clone(),
            None => directories::ProjectDirs::from("", "", "notes-sync")
                .context("no home directory to keep the notes database in: pass --db or set NOTES_DB")?
                .data_dir()
                .join("notes.db"),
        })
    }

    fn open(&self) -> anyhow::Result<Outbox> {
        let path = self.db_path()?;
        let options = OpenOptions::default().busy_timeout(Duration::from_millis(self.cli.busy_timeout_ms));
        Ok(Outbox::open(&path, &options)?)
    }

    /// One SDK configuration for the SQS and SSM clients, loaded on first use.
    async fn sdk(&self) -> aws_config::SdkConfig {
        if let Some(sdk) = self.sdk.lock().expect("not poisoned").clone() {
            return sdk;
        }
        let sdk = self.sdk_with(RetryConfig::standard()).await;
        *self.sdk.lock().expect("not poisoned") = Some(sdk.clone());
        sdk
    }

    /// `add`/`edit`/`delete` try the queue once: offline, the user should not wait for retries
    /// of a send that `sync` makes later anyway.
    async fn sdk_single_attempt(&self) -> aws_config::SdkConfig {
        self.sdk_with(RetryConfig::disabled()).await
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

    async fn flags_source(&self) -> FlagsSource {
        match (&self.cli.flags, &self.cli.flags_ssm) {
            (Some(path), _) => FlagsSource::File(path.clone()),
            (None, Some(name)) => {
                FlagsSource::Ssm { client: aws_sdk_ssm::Client::new(&self.sdk().await), name: name.clone() }
            }
            (None, None) => FlagsSource::None,
        }
    }

    fn dlq_url(&self) -> anyhow::Result<&str> {
        self.cli.dlq_url.as_deref().context("no dead-letter queue: pass --dlq-url or set NOTES_DLQ_URL")
    }

    fn queue_url(&self) -> anyhow::Result<&str> {
        self.cli.queue_url.as_deref().context("no queue: pass --queue-url or set NOTES_QUEUE_URL")
    }

    /// The owner a trusted service writes as, checked as the consumer checks it.
    fn owner(&self) -> anyhow::Result<Owner> {
        let owner = self
            .cli
            .owner
            .as_deref()
            .context("sending straight to the queue needs the notes' owner: pass --owner or set NOTES_OWNER")?;
        Owner::parse(owner).context("--owner")
    }

    /// Sets `stop` on the first SIGINT (Ctrl-C) or SIGTERM: syncs finish the batch in hand.
    fn stop_on_signals(&self) {
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

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = App { cli, stop: Arc::default(), sdk: Default::default() };
    match &ctx.cli.command {
        Command::Add { title, body } => {
            let body = body.read()?.unwrap_or_default();
            let note = ctx.open()?.add(title, &body)?;
            commands::after_write(&ctx, &note).await
        }
        Command::Edit { id, title, body } => {
            let body = body.read()?;
            anyhow::ensure!(title.is_some() || body.is_some(), "nothing to change: give --title and/or a body");
            let note = ctx.open()?.edit(id, title.as_deref(), body.as_deref())?;
            commands::after_write(&ctx, &note).await
        }
        Command::Delete { id } => {
            let note = ctx.open()?.delete(id)?;
            commands::after_write(&ctx, &note).await
        }
        Command::Sync { watch: false, json } => commands::sync(&ctx, *json).await,
        Command::Sync { watch: true, json } => commands::watch(&ctx, *json).await,
        Command::List { state, json } => output::list(&ctx.open()?.notes(*state)?, *json),
        Command::Show { id, json } => {
            let note = ctx.open()?.note(id)?.ok_or_else(|| OutboxError::NotFound(id.clone()))?;
            output::show(&note, *json)
        }
        Command::Status { json } => commands::status(&ctx, *json).await,
        Command::Flags { json } => commands::flags(&ctx, *json).await,
        Command::Dlq(command) => dlq::run(&ctx, command).await,
    }
}
