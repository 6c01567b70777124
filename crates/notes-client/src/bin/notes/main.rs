//! `notes`: the client and operator CLI over the `notes_client` crate.
//!
//! Notes are written to a local SQLite database first and synced after: through the sync API
//! as the signed-in user (`login`), or straight to SQS as a trusted service (`--owner`).
//! `sync` and `sync --watch` push what is pending and pull what other devices wrote; `dlq`
//! inspects and redrives the dead-letter queue.
//! Exit codes (one place: [`exit_code`]): 0 done, 1 error, 2 usage, 3 notes still pending
//! after a sync, 4 database locked by another process, 5 database corrupt or not a notes
//! database, 6 sign in again (`notes login`; every note is kept).

mod app;
mod commands;
mod dlq;
mod output;
mod session;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use notes_client::auth::AuthError;
use notes_client::outbox::{Keep, OutboxError, State};
use notes_client::sender::TransportError;
use notes_client::sync::SyncError;

use app::App;

/// Notes that survive being offline: written locally first, synced when the server can be reached.
#[derive(Parser, Debug)]
#[command(name = "notes", version)]
struct Cli {
    /// The local database [default: the platform's data directory, e.g. ~/.local/share/notes-sync/notes.db].
    #[arg(long, env = "NOTES_DB", global = true)]
    db: Option<PathBuf>,
    /// The sync API (the stack's ApiUrl output); kept by `notes login`.
    #[arg(long, env = "NOTES_API_URL", global = true)]
    api_url: Option<String>,
    /// The user pool's app client (the stack's UserPoolClientId output); kept by `notes login`.
    #[arg(long, env = "NOTES_USER_POOL_CLIENT_ID", global = true)]
    user_pool_client_id: Option<String>,
    /// The user pool (the stack's UserPoolId output): its region is the one before the `_`.
    #[arg(long, env = "NOTES_USER_POOL_ID", global = true)]
    user_pool_id: Option<String>,
    /// The user pool's region (the stack's); kept by `notes login`.
    #[arg(long, env = "NOTES_REGION", global = true)]
    region: Option<String>,
    /// The notes queue (the stack's NotesQueueUrl output): a trusted service sends straight to it.
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
    /// Sign in (Cognito): the password from a prompt, or the first line of stdin.
    Login {
        /// The user name (asked for when not given).
        #[arg(long, env = "NOTES_USERNAME")]
        username: Option<String>,
        /// Read the password from standard input (never from an argument).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign out: forget the tokens (and revoke the refresh token). Every note is kept.
    Logout,
    /// Who is signed in, to which API, until when.
    Whoami {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push pending notes and pull other devices' changes. Exit code 3 if any is still pending.
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
        /// Only notes in this state: pending, sent, synced, conflict or rejected.
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
    /// Texts set aside by conflicts, to keep or let go with `notes resolve`.
    Conflicts {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Settle a conflict: keep our text (queued as the note's next version) or theirs.
    Resolve {
        /// The conflict id (k-...), or the note id when it has one conflict.
        id: String,
        /// Which text the note keeps.
        #[arg(long, value_enum)]
        keep: KeepArg,
    },
    /// Pending notes, every state's count, the last error and pull, the sign-in, flags in force.
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

/// `--keep mine|theirs`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum KeepArg {
    /// Our text.
    Mine,
    /// The other client's (or the server's).
    Theirs,
}

impl From<KeepArg> for Keep {
    fn from(keep: KeepArg) -> Self {
        match keep {
            KeepArg::Mine => Keep::Mine,
            KeepArg::Theirs => Keep::Theirs,
        }
    }
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
    if signed_out(e) {
        return 6;
    }
    match e.chain().find_map(|c| c.downcast_ref::<OutboxError>()) {
        Some(db) if db.is_locked() => 4,
        Some(db) if db.is_corrupt() => 5,
        _ => 1,
    }
}

/// Whether only signing in again helps.
pub fn signed_out(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<SyncError>(), Some(SyncError::SignInAgain { .. }))
            || matches!(c.downcast_ref::<TransportError>(), Some(TransportError::SignInAgain { .. }))
            || matches!(c.downcast_ref::<AuthError>(), Some(AuthError::SignInAgain { .. } | AuthError::NotSignedIn))
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = App::new(cli);
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
        Command::Login { username, password_stdin } => session::login(&ctx, username.as_deref(), *password_stdin).await,
        Command::Logout => session::logout(&ctx).await,
        Command::Whoami { json } => session::whoami(&ctx, *json),
        Command::Sync { watch: false, json } => commands::sync(&ctx, *json).await,
        Command::Sync { watch: true, json } => commands::watch(&ctx, *json).await,
        Command::List { state, json } => output::list(&ctx.open()?.notes(*state)?, *json),
        Command::Show { id, json } => {
            let outbox = ctx.open()?;
            let note = outbox.note(id)?.ok_or_else(|| OutboxError::NotFound(id.clone()))?;
            let conflicts: Vec<_> = outbox.conflicts()?.into_iter().filter(|c| c.note_id == note.id).collect();
            output::show(&note, &conflicts, *json)
        }
        Command::Conflicts { json } => output::conflicts(&ctx.open()?.conflicts()?, *json),
        Command::Resolve { id, keep } => {
            let note = ctx.open()?.resolve(id, (*keep).into())?;
            commands::after_write(&ctx, &note).await
        }
        Command::Status { json } => commands::status(&ctx, *json).await,
        Command::Flags { json } => commands::flags(&ctx, *json).await,
        Command::Dlq(command) => dlq::run(&ctx, command).await,
    }
}
