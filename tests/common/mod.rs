//! Shared set-up for the integration tests: emulators, AWS clients pointed at them, and
//! the few SQS/DynamoDB chores every test repeats.
#![allow(dead_code)] // each test binary uses its own subset

pub mod emulators;

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

#[allow(unused_imports)] // not every test binary names it
pub use emulators::Emulator;

/// An SDK configuration for one emulator endpoint, with test credentials and short
/// timeouts (a stopped emulator must fail fast, not hang the test).
pub async fn sdk(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// A source queue with its dead-letter queue and redrive policy.
pub struct Queues {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
}

/// A unique queue-name prefix per test, so tests share one LocalStack safely.
pub fn unique(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let attributes =
        sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::QueueArn).send().await.unwrap();
    attributes.attributes().unwrap()[&QueueAttributeName::QueueArn].clone()
}

/// Creates `<name>` and `<name>-dlq` (FIFO when `fifo`) with a redrive policy.
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    max_receive_count: u32,
    visibility_s: u32,
    fifo: bool,
) -> Queues {
    let suffix = if fifo { ".fifo" } else { "" };
    let mut dlq = sqs.create_queue().queue_name(format!("{name}-dlq{suffix}"));
    if fifo {
        dlq = dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = dlq.send().await.unwrap().queue_url.unwrap();
    let dlq_arn = queue_arn(sqs, &dlq_url).await;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":{max_receive_count}}}"#);
    let mut source = sqs
        .create_queue()
        .queue_name(format!("{name}{suffix}"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_s.to_string());
    if fifo {
        source = source.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let url = source.send().await.unwrap().queue_url.unwrap();
    let arn = queue_arn(sqs, &url).await;
    Queues { url, arn, dlq_url, dlq_arn }
}

/// The owner the tests' notes belong to: what a trusted sender sets in the `owner` attribute.
pub const OWNER: &str = "test-owner";

/// The `owner` message attribute of `owner`.
pub fn owner_attribute(owner: &str) -> aws_sdk_sqs::types::MessageAttributeValue {
    aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(owner).build().unwrap()
}

/// An SQS record of `body` as Lambda hands it over, sent by a trusted sender for [`OWNER`].
pub fn owned_record(body: &str) -> sqs_partial_batch::Record<'static> {
    let record = serde_json::json!({"messageId": "m", "body": body, "eventSource": "aws:sqs",
        "messageAttributes": {notes_sync::notes::OWNER_ATTRIBUTE: {"stringValue": OWNER, "dataType": "String"}}});
    // Records borrow from their event; a test's few events may live as long as it does.
    let event: &'static str = Box::leak(serde_json::json!({ "Records": [record] }).to_string().into_boxed_str());
    sqs_partial_batch::Batch::parse(event).expect("an SQS event").records.remove(0)
}

/// Sends bodies in order as a trusted sender writing for [`OWNER`] (FIFO: each with its group
/// and a deduplication id); returns the message ids.
pub async fn send<B: AsRef<str>>(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[(B, Option<&str>)]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, (body, group)) in bodies.iter().enumerate() {
        let mut send = sqs
            .send_message()
            .queue_url(url)
            .message_body(body.as_ref())
            .message_attributes(notes_sync::notes::OWNER_ATTRIBUTE, owner_attribute(OWNER));
        if let Some(group) = group {
            send = send.message_group_id(*group).message_deduplication_id(format!("d{i}"));
        }
        ids.push(send.send().await.unwrap().message_id.unwrap());
    }
    ids
}

/// Receives up to `max` messages with the attributes the engine reads.
pub async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, max: i32, wait_s: i32) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .wait_time_seconds(wait_s)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

/// Receives until `count` messages arrived or `within` passed (SQS may split a batch).
pub async fn receive_n(sqs: &aws_sdk_sqs::Client, url: &str, count: usize, within: Duration) -> Vec<Message> {
    let deadline = tokio::time::Instant::now() + within;
    let mut all = Vec::new();
    while all.len() < count && tokio::time::Instant::now() < deadline {
        all.extend(receive(sqs, url, (count - all.len()).min(10) as i32, 1).await);
    }
    all
}

/// The notes table as `template.yaml` declares it: keyed by (owner, sort key), with the local
/// secondary index the pull reads.
pub async fn create_table(dynamodb: &aws_sdk_dynamodb::Client, name: &str) {
    use aws_sdk_dynamodb::types::{LocalSecondaryIndex, Projection, ProjectionType};
    use notes_sync::notes::table;
    let attribute =
        |name: &str, kind| AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().unwrap();
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build().unwrap();
    dynamodb
        .create_table()
        .table_name(name)
        .attribute_definitions(attribute(table::OWNER, ScalarAttributeType::S))
        .attribute_definitions(attribute(table::KEY, ScalarAttributeType::S))
        .attribute_definitions(attribute(table::APPLIED_AT, ScalarAttributeType::N))
        .key_schema(key(table::OWNER, KeyType::Hash))
        .key_schema(key(table::KEY, KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name(table::BY_APPLIED_AT)
                .key_schema(key(table::OWNER, KeyType::Hash))
                .key_schema(key(table::APPLIED_AT, KeyType::Range))
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// A stored note of [`OWNER`]'s: `(version, deleted, title)`, if any.
pub async fn stored(dynamodb: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> Option<(u64, bool, Option<String>)> {
    stored_of(dynamodb, table, OWNER, id).await
}

/// A stored note of `owner`'s: `(version, deleted, title)`, if any.
pub async fn stored_of(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    owner: &str,
    id: &str,
) -> Option<(u64, bool, Option<String>)> {
    use notes_sync::notes::{note_key, table as layout};
    let item = dynamodb
        .get_item()
        .table_name(table)
        .key(layout::OWNER, AttributeValue::S(owner.into()))
        .key(layout::KEY, AttributeValue::S(note_key(id)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    let version = item["version"].as_n().unwrap().parse().unwrap();
    let deleted = *item["deleted"].as_bool().unwrap();
    let title = item.get("title").map(|t| t.as_s().unwrap().clone());
    Some((version, deleted, title))
}

/// A note message body: the tests' one note factory. Valid as made; each method changes one
/// field, so a test says only what differs (another client, another instant, a schema or an
/// op this consumer refuses).
#[derive(Debug, Clone)]
pub struct NoteMessage(serde_json::Value);

impl NoteMessage {
    pub fn new(op: &str, id: &str, version: u64, title: &str) -> Self {
        Self(serde_json::json!({
            "schema": 1, "op": op, "client_id": "test-client",
            "note": {"id": id, "version": version, "title": title, "body": format!("body of {id}"), "updated_at": "2026-11-27T10:00:00Z"}
        }))
    }

    pub fn schema(mut self, schema: u64) -> Self {
        self.0["schema"] = schema.into();
        self
    }

    pub fn op(mut self, op: &str) -> Self {
        self.0["op"] = op.into();
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.0["client_id"] = client_id.into();
        self
    }

    pub fn updated_at(mut self, updated_at: &str) -> Self {
        self.0["note"]["updated_at"] = updated_at.into();
        self
    }
}

impl std::fmt::Display for NoteMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A valid note message body, the short form of [`NoteMessage`].
pub fn note(op: &str, id: &str, version: u64, title: &str) -> String {
    NoteMessage::new(op, id, version, title).to_string()
}

pub mod api;
pub mod cli;
pub mod cognito;
pub mod function;
pub mod proxy;
pub mod system;
