//! The real consumer code (engine, notes handler, DynamoDB store, SQS queue operations)
//! against real emulators: LocalStack for SQS, moto for DynamoDB. Messages are sent to and
//! received from real queues, and the engine's response is applied the way Lambda's event
//! source mapping applies it: successes deleted, failures left to their backoff.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use common::{Emulator, Queues, create_queues, create_table, note, receive, receive_n, sdk, send, stored, unique};
use notes_sync::notes::{DynamoNoteStore, NotesHandler};
use sqs_partial_batch::queue::{SqsQueues, attribute};
use sqs_partial_batch::settings::Backoff;
use sqs_partial_batch::{Batch, Engine, Record, Settings};
use tokio::time::Instant;

/// The test queues' own visibility timeout: longer than a batch takes with the store down
/// (the SDK retries a refused connection for about two seconds), shorter than any backoff.
const QUEUE_VISIBILITY_S: u32 = 4;

struct Rig {
    localstack: String,
    moto: Emulator,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    queues: Queues,
    table: String,
    engine: Engine<SqsQueues>,
    handler: NotesHandler<DynamoNoteStore>,
}

impl Rig {
    /// GIVEN a fresh queue pair (visibility 4 s, so a raised visibility is observable), a
    /// fresh table, and the engine with `backoff` wired to both.
    async fn new(fifo: bool, backoff: Backoff) -> Self {
        // The engine's JSON log lines, shown with a failing test's output.
        let _ = tracing_subscriber::fmt().json().flatten_event(true).with_test_writer().try_init();
        let localstack = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
        let moto = Emulator::moto();
        let sqs = aws_sdk_sqs::Client::new(&sdk(&localstack).await);
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk(&moto.endpoint()).await);
        let queues = create_queues(&sqs, &unique("notes"), 5, QUEUE_VISIBILITY_S, fifo).await;
        let table = unique("notes-table");
        create_table(&dynamodb, &table).await;
        let settings = Settings::default().with_backoff(backoff);
        let engine = Engine::new(settings, sqs_queues(&sqs, &localstack, &queues.dlq_url));
        let handler = NotesHandler::new(DynamoNoteStore::new(dynamodb.clone(), &table));
        Self { localstack, moto, sqs, dynamodb, queues, table, engine, handler }
    }

    /// The engine's queue operations on LocalStack, dead letters to `dlq_url`.
    fn queues(&self, dlq_url: &str) -> SqsQueues {
        sqs_queues(&self.sqs, &self.localstack, dlq_url)
    }

    /// Receives `count` messages and runs them through the engine as one batch; deletes the
    /// ones not reported failed. Returns the failed message ids and the messages.
    async fn process(&self, count: usize) -> (BTreeSet<String>, Vec<Message>) {
        let messages = receive_n(&self.sqs, &self.queues.url, count, Duration::from_secs(10)).await;
        assert_eq!(messages.len(), count, "messages received");
        let failed = self.process_messages(&messages).await;
        (failed, messages)
    }

    async fn process_messages(&self, messages: &[Message]) -> BTreeSet<String> {
        self.process_messages_with_outcomes(messages).await.0
    }

    /// [`Rig::process_messages`], with each message's outcome name (`transient`, `skipped`, …)
    /// by message id.
    async fn process_messages_with_outcomes(
        &self,
        messages: &[Message],
    ) -> (BTreeSet<String>, std::collections::BTreeMap<String, &'static str>) {
        let batch = Batch { records: messages.iter().map(|m| Record::from_message(m, &self.queues.arn)).collect() };
        let deadline = Instant::now() + Duration::from_secs(60);
        let report = self.engine.process(&batch, deadline, &self.handler).await;
        let outcomes = report.iter().map(|(r, o)| (r.id().unwrap().to_owned(), o.outcome.name())).collect();
        let response = report.response().expect("a response");
        let failed: BTreeSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        for message in messages.iter().filter(|m| !failed.contains(m.message_id().unwrap())) {
            self.sqs
                .delete_message()
                .queue_url(&self.queues.url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        (failed, outcomes)
    }

    async fn stored(&self, id: &str) -> Option<(u64, bool, Option<String>)> {
        stored(&self.dynamodb, &self.table, id).await
    }

    async fn dead_letters(&self, count: usize) -> Vec<Message> {
        receive_n(&self.sqs, &self.queues.dlq_url, count, Duration::from_secs(5)).await
    }

    async fn queue_attribute(&self, name: QueueAttributeName) -> u64 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queues.url)
            .attribute_names(name.clone())
            .send()
            .await
            .unwrap();
        out.attributes().unwrap()[&name].parse().unwrap()
    }
}

fn sqs_queues(sqs: &aws_sdk_sqs::Client, localstack: &str, dlq_url: &str) -> SqsQueues {
    SqsQueues::new(sqs.clone(), dlq_url).with_endpoint(Some(localstack.to_owned()))
}

fn ids(messages: &[Message], pick: impl Fn(&Message) -> bool) -> BTreeSet<String> {
    messages.iter().filter(|m| pick(m)).map(|m| m.message_id().unwrap().to_owned()).collect()
}

fn attribute<'m>(message: &'m Message, name: &str) -> &'m str {
    message
        .message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .unwrap_or_else(|| panic!("attribute {name}"))
}

#[tokio::test]
async fn valid_notes_are_stored_and_a_redelivered_batch_is_harmless() {
    crate::require_emulators!();
    let rig = Rig::new(false, Backoff::new(5, 900)).await;
    let bodies = [note("upsert", "n1", 1, "one"), note("upsert", "n2", 4, "two"), note("delete", "n3", 2, "")];
    send(&rig.sqs, &rig.queues.url, &bodies.iter().map(|b| (b.as_str(), None)).collect::<Vec<_>>()).await;

    let (failed, messages) = rig.process(3).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(rig.stored("n1").await, Some((1, false, Some("one".into()))));
    assert_eq!(rig.stored("n2").await, Some((4, false, Some("two".into()))));
    assert_eq!(rig.stored("n3").await, Some((2, true, None)), "a delete is a versioned tombstone");

    // At-least-once delivery: the same batch again changes nothing and fails nothing.
    assert!(rig.process_messages(&messages).await.is_empty());
    assert_eq!(rig.stored("n2").await, Some((4, false, Some("two".into()))));

    // An older upsert arriving late cannot revive the deleted note.
    send(&rig.sqs, &rig.queues.url, &[(note("upsert", "n3", 1, "zombie").as_str(), None)]).await;
    assert!(rig.process(1).await.0.is_empty());
    assert_eq!(rig.stored("n3").await, Some((2, true, None)));
}

#[tokio::test]
async fn malformed_messages_are_dead_lettered_on_their_first_receive_with_their_reason() {
    crate::require_emulators!();
    let rig = Rig::new(false, Backoff::new(5, 900)).await;
    let unsupported = common::NoteMessage::new("upsert", "n9", 1, "t").schema(2).to_string();
    let valid = note("upsert", "n1", 1, "t");
    send(&rig.sqs, &rig.queues.url, &[("not json", None), (unsupported.as_str(), None), (valid.as_str(), None)]).await;

    let (failed, messages) = rig.process(3).await;
    assert!(failed.is_empty(), "dead-lettered records are reported as success: {failed:?}");
    assert!(rig.stored("n1").await.is_some());

    let letters = rig.dead_letters(2).await;
    assert_eq!(letters.len(), 2);
    for letter in &letters {
        let source =
            messages.iter().find(|m| m.message_id() == Some(attribute(letter, attribute::SOURCE_MESSAGE_ID))).unwrap();
        assert_eq!(letter.body(), source.body(), "the dead letter carries the original body");
        assert_eq!(attribute(letter, attribute::SOURCE_QUEUE), rig.queues.arn);
        assert_eq!(attribute(letter, attribute::RECEIVE_COUNT), "1");
        let (kind, reason) = (attribute(letter, attribute::ERROR_KIND), attribute(letter, attribute::ERROR_REASON));
        match source.body() {
            Some("not json") => {
                assert_eq!((kind, reason), ("invalid_json", "expected ident at line 1 column 2"))
            }
            _ => assert_eq!(kind, "unsupported_schema", "{reason}"),
        }
    }
    assert_eq!(rig.queue_attribute(QueueAttributeName::ApproximateNumberOfMessages).await, 0);
}

#[tokio::test]
async fn store_down_every_valid_record_fails_and_its_visibility_is_raised() {
    crate::require_emulators!();
    let mut rig = Rig::new(false, Backoff::new(60, 900)).await;
    rig.moto.stop();
    let bodies =
        [note("upsert", "a", 1, "t"), note("upsert", "b", 1, "t"), note("delete", "c", 1, ""), "{}".to_owned()];
    send(&rig.sqs, &rig.queues.url, &bodies.iter().map(|b| (b.as_str(), None)).collect::<Vec<_>>()).await;

    let (failed, messages) = rig.process(4).await;
    assert_eq!(failed, ids(&messages, |m| m.body() != Some("{}")), "every valid record, and only those");
    assert_eq!(rig.dead_letters(1).await.len(), 1, "the malformed one still goes to the DLQ");

    // Backoff raised the visibility from the queue's 4 s to 30..60 s.
    tokio::time::sleep(Duration::from_secs(QUEUE_VISIBILITY_S as u64 + 1)).await;
    assert!(
        receive(&rig.sqs, &rig.queues.url, 10, 0).await.is_empty(),
        "a failed message came back before its backoff"
    );
    assert_eq!(rig.queue_attribute(QueueAttributeName::ApproximateNumberOfMessagesNotVisible).await, 3);
}

#[tokio::test]
async fn dlq_unreachable_permanent_records_are_reported_failed_and_nothing_is_lost() {
    crate::require_emulators!();
    let mut rig = Rig::new(false, Backoff::new(1, 1)).await;
    let missing_dlq = format!("{}-gone", rig.queues.dlq_url);
    rig.engine = Engine::new(rig.engine.settings().clone(), rig.queues(&missing_dlq));
    send(&rig.sqs, &rig.queues.url, &[("not json", None), (note("upsert", "ok", 1, "t").as_str(), None)]).await;

    let (failed, messages) = rig.process(2).await;
    assert_eq!(failed, ids(&messages, |m| m.body() == Some("not json")));
    assert!(rig.stored("ok").await.is_some());

    // The malformed message is still on the source queue: its next receive is the second.
    let again = receive_n(&rig.sqs, &rig.queues.url, 1, Duration::from_secs(10)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].body(), Some("not json"));
    let record = Record::from_message(&again[0], &rig.queues.arn);
    assert_eq!(record.receive_count(), 2);
}

#[tokio::test]
async fn fifo_dead_letters_keep_their_group_and_the_group_goes_on() {
    crate::require_emulators!();
    let rig = Rig::new(true, Backoff::new(5, 900)).await;
    let (a2, b1) = (note("upsert", "a", 2, "t"), note("upsert", "b", 1, "t"));
    send(&rig.sqs, &rig.queues.url, &[("not json", Some("A")), (a2.as_str(), Some("A")), (b1.as_str(), Some("B"))])
        .await;

    let (failed, _) = rig.process(3).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(rig.stored("a").await.map(|s| s.0), Some(2));
    let letters = rig.dead_letters(1).await;
    assert_eq!(letters.len(), 1);
    let group =
        letters[0].attributes().unwrap()[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId].as_str();
    assert_eq!(group, "A");
}

#[tokio::test]
async fn fifo_store_down_fails_each_group_from_its_first_record() {
    crate::require_emulators!();
    let mut rig = Rig::new(true, Backoff::new(60, 900)).await;
    rig.moto.stop();
    let notes = [note("upsert", "a", 1, "t"), note("upsert", "a", 2, "t"), note("upsert", "b", 1, "t")];
    send(
        &rig.sqs,
        &rig.queues.url,
        &[(notes[0].as_str(), Some("A")), (notes[1].as_str(), Some("A")), (notes[2].as_str(), Some("B"))],
    )
    .await;

    let messages = receive_n(&rig.sqs, &rig.queues.url, 3, Duration::from_secs(10)).await;
    let (failed, outcomes) = rig.process_messages_with_outcomes(&messages).await;
    assert_eq!(failed, ids(&messages, |_| true));
    // Every record fails whether or not a group stops: what shows it stopped is that only
    // each group's first record was tried (it met the store), and the one behind it was not.
    let outcome = |i: usize| outcomes[messages[i].message_id().unwrap()];
    let by_body = |body: &str| messages.iter().position(|m| m.body() == Some(body)).unwrap();
    assert_eq!(outcome(by_body(&notes[0])), "transient", "{outcomes:?}");
    assert_eq!(outcome(by_body(&notes[1])), "skipped", "behind a failure in group A: {outcomes:?}");
    assert_eq!(outcome(by_body(&notes[2])), "transient", "group B went on: {outcomes:?}");
}

#[test]
fn the_consumer_refuses_to_start_without_its_configuration_and_names_what_is_missing() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(["poll", "--queue-url", "http://127.0.0.1:1/000000000000/notes"])
        .env_clear()
        .env("DLQ_URL", "http://127.0.0.1:1/000000000000/dlq")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("environment variable TABLE_NAME is required but not set"), "{stderr}");
}

#[test]
fn a_bad_command_line_gets_a_usage_message_and_a_non_zero_exit() {
    let cases: [(&[&str], &str); 4] = [
        (&[], "Usage: consumer <COMMAND>"),
        (&["poll"], "the following required arguments were not provided:\n  --queue-url <QUEUE_URL>"),
        (&["poll", "--queue-url", "u", "--max-messages", "11"], "invalid value '11' for '--max-messages"),
        (&["serve"], "unrecognized subcommand 'serve'"),
    ];
    for (args, expected) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_consumer"))
            .args(args)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Issue 9, item 7: two clients writing the same version used to leave whichever arrived
/// first, and the other edit was acknowledged as stale. Now the total order (version,
/// updated_at as an instant, client_id) picks one winner whatever the arrival order, and a
/// true replay is still a stale success.
#[tokio::test]
async fn equal_versions_from_two_clients_converge_on_one_winner_and_a_replay_stays_stale() {
    crate::require_emulators!();
    use sqs_partial_batch::Ack::{Succeeded, Unchanged};
    use sqs_partial_batch::RecordHandler;
    let rig = Rig::new(false, Backoff::new(5, 900)).await;
    let upsert = |id: &str, client: &str, updated_at: &str, title: &str| {
        let body = common::NoteMessage::new("upsert", id, 3, title).client(client).updated_at(updated_at);
        common::owned_record(&body.to_string())
    };
    // 10:00+02:00 is 08:00Z: earlier than 09:00Z although its text sorts higher.
    let cases = [
        (
            "n1",
            [
                ("laptop", "2026-11-27T09:00:00Z", "late", Succeeded),
                ("phone", "2026-11-27T10:00:00+02:00", "early", Unchanged),
            ],
        ),
        (
            "n2",
            [
                ("phone", "2026-11-27T10:00:00+02:00", "early", Succeeded),
                ("laptop", "2026-11-27T09:00:00Z", "late", Succeeded),
            ],
        ),
        // The same instant, written two ways: the client id decides.
        (
            "t1",
            [
                ("client-a", "2026-11-27T09:00:00Z", "from a", Succeeded),
                ("client-b", "2026-11-27T09:00:00.000Z", "from b", Succeeded),
            ],
        ),
        (
            "t2",
            [
                ("client-b", "2026-11-27T09:00:00.000Z", "from b", Succeeded),
                ("client-a", "2026-11-27T09:00:00Z", "from a", Unchanged),
            ],
        ),
    ];
    for (id, writes) in cases {
        for (client, updated_at, title, expected) in writes {
            let result = rig.handler.handle(&upsert(id, client, updated_at, title)).await;
            assert_eq!(result, Ok(expected), "{id}: {client} {updated_at}");
        }
    }
    for (id, winner) in [("n1", "late"), ("n2", "late"), ("t1", "from b"), ("t2", "from b")] {
        assert_eq!(rig.stored(id).await.unwrap().2.as_deref(), Some(winner), "{id}");
    }
    // A true replay: all three equal.
    let replay = upsert("t1", "client-b", "2026-11-27T09:00:00.000Z", "from b");
    assert_eq!(rig.handler.handle(&replay).await, Ok(Unchanged));
}

/// Runs `consumer poll` on `queue_url`, which must refuse to start; returns its exit code
/// and stderr. One that starts polling instead is killed after 30 s and reported as `None`.
fn refused_start(localstack: &str, queue_url: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_consumer"))
        .args(["poll", "--queue-url", queue_url, "--wait-seconds", "1"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .envs([
            ("TABLE_NAME", "notes"),
            ("DLQ_URL", "http://127.0.0.1:1/000000000000/dlq"),
            ("AWS_ENDPOINT_URL", localstack),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return (None, "started polling instead of refusing".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Issue 9, items 9 and 5: poll mode used to retry forever on a queue without a redrive
/// policy, trust MAX_RECEIVE_COUNT blindly, and accept a margin that cuts every record.
#[tokio::test]
async fn poll_mode_refuses_a_queue_without_redrive_a_receive_count_mismatch_a_margin_too_long_or_another_dlq() {
    crate::require_emulators!();
    let localstack = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&localstack).await);
    let bare = sqs.create_queue().queue_name(unique("bare")).send().await.unwrap().queue_url.unwrap();
    let queues = create_queues(&sqs, &unique("notes"), 5, QUEUE_VISIBILITY_S, false).await;

    let (code, stderr) = refused_start(&localstack, &bare, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the queue has no redrive policy"), "{stderr}");

    let (code, stderr) = refused_start(&localstack, &queues.url, &[("MAX_RECEIVE_COUNT", "3")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("maxReceiveCount=5 but MAX_RECEIVE_COUNT=3"), "{stderr}");

    let (code, stderr) = refused_start(&localstack, &queues.url, &[("DEADLINE_MARGIN_MS", "4000")]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("DEADLINE_MARGIN_MS=4000 must be less than the queue's VisibilityTimeout=4 s"), "{stderr}");

    // Letters to one queue, the redrive policy's to another: split over two queues.
    let (code, stderr) = refused_start(&localstack, &queues.url, &[("DLQ_URL", &bare)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("deadLetterTargetArn is") && stderr.contains(&format!("DLQ_URL={bare}")), "{stderr}");
}

/// Issue 9, item 3: a reason quoting a NUL (an `op` of "\u0000") made SQS refuse the
/// letter's attribute, so the message retried to its redrive and lost its reason.
#[tokio::test]
async fn a_reason_with_characters_sqs_refuses_is_escaped_and_the_letter_is_sent() {
    crate::require_emulators!();
    let rig = Rig::new(false, Backoff::new(5, 900)).await;
    let nul_op = common::NoteMessage::new("upsert", "n1", 1, "t").op("\u{0}").to_string();
    send(&rig.sqs, &rig.queues.url, &[(nul_op.as_str(), None)]).await;
    let (failed, messages) = rig.process(1).await;
    assert!(failed.is_empty(), "the letter could not be sent: {failed:?}");
    let letter = &rig.dead_letters(1).await[0];
    assert_eq!(letter.body(), messages[0].body());
    let reason = attribute(letter, attribute::ERROR_REASON);
    assert!(reason.starts_with(r"op: unknown variant `\u{0}`"), "{reason}");
    let key = format!("{}:1", messages[0].message_id().unwrap());
    assert_eq!(attribute(letter, attribute::DEAD_LETTER_KEY), key, "item 2: a stable key to spot duplicates");
}

/// Issue 9, item 4: a body near the DLQ's limit plus the letter's attributes was refused by
/// SQS. Now attributes are dropped in the documented order until the letter fits.
#[tokio::test]
async fn a_letter_larger_than_the_dlq_allows_drops_attributes_and_is_sent() {
    crate::require_emulators!();
    let mut rig = Rig::new(false, Backoff::new(5, 900)).await;
    let limit = 262_144;
    rig.sqs
        .set_queue_attributes()
        .queue_url(&rig.queues.dlq_url)
        .attributes(QueueAttributeName::MaximumMessageSize, limit.to_string())
        .send()
        .await
        .unwrap();
    let queues = rig.queues(&rig.queues.dlq_url).with_max_message_bytes(limit);
    rig.engine = Engine::new(rig.engine.settings().clone(), queues);
    let body = format!("not json {}", "x".repeat(limit - 100));
    send(&rig.sqs, &rig.queues.url, &[(body.as_str(), None)]).await;
    let (failed, _) = rig.process(1).await;
    assert!(failed.is_empty(), "SQS refused the letter: {failed:?}");
    let letter = &rig.dead_letters(1).await[0];
    assert_eq!(letter.body(), Some(body.as_str()), "the body is never cut");
    assert_eq!(attribute(letter, attribute::ERROR_KIND), "invalid_json");
    assert!(letter.message_attributes().unwrap().get(attribute::ERROR_REASON).is_none(), "dropped first");
}

/// A dead letter keeps the source message's own attributes (an owner set by its sender, say),
/// so a redrive by resending replays the message whole; the engine's names stay its own.
#[tokio::test]
async fn a_dead_letter_carries_the_source_messages_own_attributes_through_sqs() {
    crate::require_emulators!();
    use aws_sdk_sqs::types::MessageAttributeValue;
    let rig = Rig::new(false, Backoff::new(5, 900)).await;
    let string = |v: &str| MessageAttributeValue::builder().data_type("String").string_value(v).build().unwrap();
    rig.sqs
        .send_message()
        .queue_url(&rig.queues.url)
        .message_body("not json")
        .message_attributes("owner", string("alice"))
        .message_attributes("error_kind", string("forged"))
        .message_attributes(
            "priority",
            MessageAttributeValue::builder().data_type("Number").string_value("3").build().unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (failed, messages) = rig.process(1).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(Record::from_message(&messages[0], &rig.queues.arn).message_attribute("owner"), Some("alice"));
    let letter = &rig.dead_letters(1).await[0];
    assert_eq!(attribute(letter, "owner"), "alice");
    let priority = &letter.message_attributes().unwrap()["priority"];
    assert_eq!((priority.data_type(), priority.string_value()), ("Number", Some("3")), "its data type kept");
    assert_eq!(attribute(letter, attribute::ERROR_KIND), "invalid_json", "the engine's attribute wins");
}
