//! Order events through the engine, without AWS: a handler for orders, a [`QueueOps`] that
//! prints what it would send, and one SQS event from a file.
//!
//! ```sh
//! cargo run -p sqs-partial-batch --example orders -- crates/sqs-partial-batch/examples/orders-event.json
//! ```
//!
//! Accepted orders go to stdout, one JSON line each, then the partial batch response; the
//! engine's log lines, the dead letters and the visibility changes go to stderr.

use std::io::Write;
use std::sync::Mutex;

use serde::Deserialize;
use sqs_partial_batch::queue::{DeadLetter, QueueError, QueueOps, VisibilityChange, attribute};
use sqs_partial_batch::{Ack, Engine, LogSink, RecordError, Settings, handler_fn};

/// The message this example's producer sends.
#[derive(Debug, Deserialize)]
struct Order {
    id: String,
    sku: String,
    quantity: u32,
}

/// Prints dead letters and visibility changes instead of calling SQS.
struct PrintedQueues;

impl QueueOps for PrintedQueues {
    async fn dead_letter(&self, letter: &DeadLetter<'_>) -> Result<(), QueueError> {
        let id = letter.source_message_id.unwrap_or("-");
        eprintln!(
            "dead letter: {}={id} {}={}: {}",
            attribute::SOURCE_MESSAGE_ID,
            attribute::ERROR_KIND,
            letter.kind,
            letter.reason
        );
        Ok(())
    }

    async fn change_visibility(
        &self,
        source_queue_arn: &str,
        changes: &[VisibilityChange<'_>],
    ) -> Result<Vec<(String, String)>, QueueError> {
        for change in changes {
            eprintln!("visibility: {} hidden {} s on {source_queue_arn}", change.message_id, change.seconds);
        }
        Ok(Vec::new())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: orders <sqs-event.json>")?;
    let event = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;

    // The sink for accepted orders: stdout, one line each. A warehouse that is "down" for a
    // SKU stands for a dependency failing: those orders are retried with backoff.
    let shipped = Mutex::new(std::io::stdout());
    let handler = handler_fn(|record| {
        let order = serde_json::from_str::<Order>(record.body.as_deref().unwrap_or_default());
        let shipped = &shipped;
        async move {
            let order = order.map_err(|e| RecordError::permanent("invalid_order", e))?;
            if order.quantity == 0 {
                return Err(RecordError::permanent("empty_order", format!("order {} has quantity 0", order.id)));
            }
            if order.sku.starts_with("backorder-") {
                return Err(RecordError::transient(format!("warehouse has no stock of {}", order.sku)));
            }
            let line = serde_json::json!({ "shipped": order.id, "sku": order.sku, "quantity": order.quantity });
            writeln!(shipped.lock().expect("stdout"), "{line}").map_err(RecordError::transient)?;
            Ok(Ack::Succeeded)
        }
    });

    let settings = Settings::default().with_metrics("Orders", "orders-example");
    let engine = Engine::new(settings, PrintedQueues).with_log(LogSink::new(std::io::stderr()));
    // The deadline as Lambda gives it, here in its relative form: 30 s from now.
    let response = engine.invoke(&event, 30_000, &handler).await?;
    println!("{}", serde_json::to_string(&response)?);
    Ok(())
}
