//! The naive floor: what a Rust consumer costs that only parses. The event is read into
//! `aws_lambda_events`' owned `SqsEvent` (every string copied, every attribute in a map), each
//! body into an owned note, all records at once with `join_all`; the response lists the notes
//! the store would fail, so it answers exactly what the real consumer answers.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use serde::Deserialize;

use crate::workload::FLAKY_PREFIX;

#[derive(Deserialize)]
#[allow(dead_code)] // Read to be parsed, as a naive consumer would, and not used further.
struct Message {
    schema: u32,
    op: String,
    note: Note,
    client_id: String,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Note {
    id: String,
    version: u64,
    title: Option<String>,
    body: Option<String>,
    updated_at: String,
}

async fn handle(record: &SqsMessage) -> Result<(), String> {
    let body = record.body.as_deref().ok_or("no body")?;
    let message: Message = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if message.note.id.starts_with(FLAKY_PREFIX) {
        return Err("store unavailable".into());
    }
    Ok(())
}

/// Event text in, response text out.
pub async fn consume(payload: &str) -> String {
    let event: SqsEvent = serde_json::from_str(payload).expect("an SQS event");
    let results = join_all(event.records.iter().map(handle)).await;
    let mut response = SqsBatchResponse::default();
    for (record, result) in event.records.iter().zip(results) {
        if result.is_err() {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    serde_json::to_string(&response).expect("a response serialises")
}
