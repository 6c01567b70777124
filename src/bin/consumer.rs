//! The notes consumer: a Lambda function that applies SQS batches of note messages to
//! DynamoDB and answers with a partial batch response.
//!
//! Thin by design: read the configuration, build the AWS clients once per process, run.

use std::process::ExitCode;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use lambda_runtime::{LambdaEvent, service_fn};
use notes_sync::batch::{Batch, Engine, SqsQueues, deadline_from_epoch_ms};
use notes_sync::config::Config;
use notes_sync::notes::{DynamoNoteStore, NotesHandler};
use serde_json::value::RawValue;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "consumer stopped");
            eprintln!("consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    // One SDK configuration for both clients. Each attempt is bounded so that a hung
    // connection cannot eat the invocation; the engine's deadline bounds the rest.
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await;
    let engine = Engine::new(config.settings, SqsQueues::new(aws_sdk_sqs::Client::new(&sdk), config.dlq_url));
    let handler = NotesHandler::new(DynamoNoteStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name));

    // The payload arrives as raw JSON so that records can borrow from it.
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| {
        let (engine, handler) = (&engine, &handler);
        async move {
            let batch = Batch::parse(event.payload.get())?;
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            Ok::<_, lambda_runtime::Error>(engine.process(&batch, deadline, handler).await?)
        }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

/// JSON log lines on stdout, one per event, fields at the top level.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .init();
}
