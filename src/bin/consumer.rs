//! The notes consumer: applies SQS batches of note messages to DynamoDB.
//!
//! Inside Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves invocations and answers each batch
//! with a partial batch response. Outside, `consumer poll --queue-url URL` long-polls the
//! queue and runs the same engine, for local runs, tests and container services.
//!
//! Thin by design: read the configuration, build the AWS clients once per process, run.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use notes_sync::config::{Config, MARGIN_CONFLICT, vars};
use notes_sync::notes::{DynamoNoteStore, NotesHandler};
use sqs_partial_batch::poll::{PollError, PollOptions, poll};
use sqs_partial_batch::queue::SqsQueues;
use sqs_partial_batch::{Engine, LogSink};

/// Applies note changes from SQS to DynamoDB. Configured by environment variables
/// (TABLE_NAME and DLQ_URL required; see README.md).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Serve Lambda invocations (the mode inside Lambda, whatever the arguments).
    Lambda,
    /// Long-poll a queue outside Lambda; delete what succeeded; stop cleanly on SIGTERM or Ctrl-C.
    Poll {
        /// The source queue URL.
        #[arg(long)]
        queue_url: String,
        /// Messages per receive.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=10))]
        max_messages: u8,
        /// Long-poll wait in seconds.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
        wait_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // Lambda starts the bootstrap without arguments.
    let mode = if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() { Mode::Lambda } else { Cli::parse().mode };
    notes_sync::logging::init_json_logs(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    );
    match run(mode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "consumer stopped");
            eprintln!("consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    // One SDK configuration for every client (notes_sync::aws: compiled-in roots, bounded
    // attempts; poll mode's long receive overrides the attempt timeout for itself).
    let sdk = notes_sync::aws::sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dlq_url = config.dlq_url.clone();
    let queues = SqsQueues::new(sqs.clone(), config.dlq_url)
        .with_max_message_bytes(config.dlq_max_message_bytes)
        .with_endpoint(config.sqs_endpoint);
    // The engine's own lines (one per record, buffered per batch) and its EMF go to stdout,
    // where Lambda's log capture reads them; tracing writes the rest there too.
    let engine = Engine::new(config.settings, queues).with_log(LogSink::new(std::io::stdout()));
    let store = DynamoNoteStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name)
        .with_rejection_ttl(config.rejection_ttl);
    let handler = NotesHandler::new(store);

    match mode {
        Mode::Lambda => {
            // The payload as the runtime read it, once: the records borrow from it.
            let (engine, handler) = (&engine, &handler);
            notes_sync::lambda::run(async |payload: &str, context: lambda_runtime::Context| {
                Ok::<_, lambda_runtime::Error>(engine.invoke(payload, context.deadline, handler).await?)
            })
            .await
            .map_err(|e| anyhow::anyhow!(e))
        }
        Mode::Poll { queue_url, max_messages, wait_seconds } => {
            let options = PollOptions::new(queue_url)
                .with_max_messages(max_messages)
                .with_wait(Duration::from_secs(wait_seconds))
                .with_shutdown_grace(config.shutdown_grace)
                .with_dead_letter_queue(dlq_url);
            poll(&engine, &handler, &sqs, &options, shutdown_signal()).await.map_err(in_our_variables)?;
            Ok(())
        }
    }
}

/// The poller's refusals, with the environment variables that set the engine's side named.
fn in_our_variables(error: PollError) -> anyhow::Error {
    match error {
        PollError::MaxReceiveCount { queue_url, queue, engine } => anyhow::anyhow!(
            "{queue_url}: the queue's redrive policy has maxReceiveCount={queue} but {}={engine}: set them equal, \
             so the consumer knows which failure is the last",
            vars::MAX_RECEIVE_COUNT
        ),
        PollError::MarginTooLong { queue_url, margin, visibility } => anyhow::anyhow!(
            "{queue_url}: {}={} must be less than the queue's VisibilityTimeout={} s ({} ms): {MARGIN_CONFLICT}",
            vars::DEADLINE_MARGIN_MS,
            margin.as_millis(),
            visibility.as_secs(),
            visibility.as_millis(),
        ),
        PollError::DeadLetterQueueMismatch { queue_url, target_arn, dlq_url, dlq_arn } => anyhow::anyhow!(
            "{queue_url}: its redrive policy's deadLetterTargetArn is {target_arn} but {}={dlq_url} is {dlq_arn}: \
             set {} to the queue the redrive policy names, or the letters are split over two queues",
            vars::DLQ_URL,
            vars::DLQ_URL
        ),
        other => other.into(),
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!(event = "shutdown", "signal received: no more receives; the batch in hand has its grace");
}
