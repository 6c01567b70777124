//! `notes dlq` against LocalStack: what it refuses before touching a queue, and what it
//! prints of fields a sender chose.

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use common::cli::NotesCli;
use common::{Emulator, create_queues, sdk, unique};

/// Visible and in-flight counts of `url`.
async fn counts(sqs: &aws_sdk_sqs::Client, url: &str) -> (String, String) {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = out.attributes.unwrap();
    (
        a[&QueueAttributeName::ApproximateNumberOfMessages].clone(),
        a[&QueueAttributeName::ApproximateNumberOfMessagesNotVisible].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_commands_refuse_a_source_queue_and_a_queue_no_one_dead_letters_to() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-refuse"), 5, 30, false).await;
    let lonely = sqs.create_queue().queue_name(unique("lonely")).send().await.unwrap().queue_url.unwrap();
    common::send(&sqs, &queues.url, &[("live note", None)]).await;
    common::send(&sqs, &lonely, &[("other", None)]).await;

    // GIVEN the source queue given as the DLQ
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.url.clone());
    for args in
        [&["dlq", "list"][..], &["dlq", "purge", "--yes"], &["dlq", "redrive", "--reason", "x"], &["dlq", "redrive"]]
    {
        // WHEN any dlq command runs, THEN it is refused, naming why
        let run = cli.ok(args, 1);
        assert!(run.stderr.contains("has a redrive policy of its own"), "{args:?}: {}", run.stderr);
    }
    // THEN nothing was received or purged: the live note is visible, never received
    assert_eq!(counts(&sqs, &queues.url).await, ("1".into(), "0".into()));
    let received = common::receive(&sqs, &queues.url, 10, 1).await;
    assert_eq!(received.len(), 1);
    let count = received[0].attributes.as_ref().unwrap()
        [&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount]
        .clone();
    assert_eq!(count, "1", "the test's own receive is the first");

    // GIVEN a queue no queue dead-letters to
    cli.dlq_url = Some(lonely.clone());
    let run = cli.ok(&["dlq", "purge", "--yes"], 1);
    assert!(run.stderr.contains("no queue names it as its dead-letter target"), "{}", run.stderr);
    assert_eq!(counts(&sqs, &lonely).await, ("1".into(), "0".into()), "not purged");

    // GIVEN the real DLQ, THEN the commands run; an export leaves every letter visible
    cli.dlq_url = Some(queues.dlq_url.clone());
    common::send(&sqs, &queues.dlq_url, &[("dead one", None)]).await;
    cli.ok(&["dlq", "list"], 0);
    let file = cli.path("letters.jsonl");
    let run = cli.ok(&["dlq", "export", file.to_str().unwrap()], 0);
    assert!(run.stdout.contains("receive count raised by one"), "{}", run.stdout);
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["body"], "dead one");
    assert_eq!(lines[0]["dlq_receive_count"], 2, "listed once, exported once");
    assert!(lines[0]["sent_timestamp_ms"].is_i64() && lines[0]["message_id"].is_string());
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("1".into(), "0".into()), "left as it was");
    cli.ok(&["dlq", "export", file.to_str().unwrap()], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_prints_a_forged_reason_escaped_and_unverified() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-forged"), 5, 30, false).await;
    let string = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder().data_type("String").string_value(v).build().unwrap()
    };
    // GIVEN a letter whose sender forged the consumer's attributes, with a terminal control
    // sequence (SQS refuses ESC itself; C1 CSI, U+009B, is a valid character and clears many
    // terminals just the same), new lines and a bidirectional override
    sqs.send_message()
        .queue_url(&queues.dlq_url)
        .message_body("{}")
        .message_attributes("error_kind", string("invalid\u{9b}2J"))
        .message_attributes("error_reason", string("fine\u{9b}2J\nfake line\u{202e}"))
        .message_attributes("source_message_id", string("src\r\n"))
        .send()
        .await
        .unwrap();
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.dlq_url.clone());

    // WHEN listed with the consumer's sender id another than the sender's (LocalStack's
    // SenderId is the caller's account id, 000000000000 here)
    cli.env.push(("NOTES_CONSUMER_SENDER_ID".into(), Some("111111111111".into())));
    let run = cli.ok(&["dlq", "list"], 0);
    // THEN the forged metadata is not shown as the consumer's, and nothing raw reaches the terminal
    assert!(run.stdout.contains("unverified"), "{}", run.stdout);
    assert!(!run.stdout.contains("fine"), "{}", run.stdout);
    assert!(!run.stdout.contains(['\u{9b}', '\u{202e}']) && !run.stdout.contains('\r'), "{:?}", run.stdout);

    // WHEN the sender id matches (the consumer sent it), THEN shown, escaped
    cli.env.push(("NOTES_CONSUMER_SENDER_ID".into(), Some("000000000000".into())));
    let run = cli.ok(&["dlq", "list"], 0);
    assert!(run.stdout.contains("invalid\\u{9b}2J"), "{}", run.stdout);
    assert!(run.stdout.contains("fine\\u{9b}2J\\nfake line\\u{202e}"), "{}", run.stdout);
    assert!(!run.stdout.contains(['\u{9b}', '\u{202e}']) && !run.stdout.contains('\r'), "{:?}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 3, "no fake lines: {}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selective_redrive_releases_at_once_what_it_did_not_resend() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-release"), 5, 30, false).await;
    // A destination that takes no message over 1 KiB: SQS refuses that entry of the batch.
    let small = sqs
        .create_queue()
        .queue_name(unique("small"))
        .attributes(QueueAttributeName::MaximumMessageSize, "1024")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let big = "x".repeat(2000);
    let ids = common::send(&sqs, &queues.dlq_url, &[(big.as_str(), None), ("small one", None)]).await;
    let mut cli = NotesCli::new(&endpoint, &small);
    cli.dlq_url = Some(queues.dlq_url.clone());

    // WHEN both are chosen and SQS acknowledges only the small one
    let report = cli.ok(&["dlq", "redrive", "--id", &ids[0], "--id", &ids[1], "--json"], 0).json();
    assert_eq!((report["resent"].as_u64(), report["kept"].as_u64()), (Some(1), Some(1)), "{report}");
    // THEN the refused one is visible again at once, not hidden for the 60 s hold
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("1".into(), "0".into()));

    // WHEN the resend call itself fails (no such queue), THEN every chosen letter is released
    cli.queue_url = format!("{small}-gone");
    cli.ok(&["dlq", "redrive", "--id", &ids[0]], 1);
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("1".into(), "0".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_redrive_leaves_local_rejected_notes_as_they_are() {
    use notes_client::outbox::{Lease, OpenOptions, Outbox, Settled, State};
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-full"), 5, 30, false).await;
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.dlq_url.clone());
    // GIVEN a note of this client, acknowledged by SQS, then dead-lettered and listed (rejected)
    let mut outbox = Outbox::open(&cli.db, &OpenOptions::default()).unwrap();
    let own = outbox.add("mine", "b").unwrap();
    let lease = Lease::new(std::time::Duration::from_secs(60));
    let claimed = outbox.claim(&lease, 1, 1 << 20).unwrap();
    outbox.settle(&lease, &[(claimed[0].clone(), Settled::Acked)]).unwrap();
    common::send(&sqs, &queues.dlq_url, &[(claimed[0].body.as_str(), None)]).await;
    cli.ok(&["dlq", "list"], 0);
    assert_eq!(outbox.note(&own.id).unwrap().unwrap().state, State::Rejected);

    // WHEN a move task takes everything back, THEN the client does not claim to know which
    // notes it moved (a malformed one comes straight back): the note stays rejected, and it says so
    let run = cli.ok(&["dlq", "redrive"], 0);
    assert!(run.stdout.contains("COMPLETED"), "{run:?}");
    assert!(run.stderr.contains("left so"), "{run:?}");
    assert_eq!(outbox.note(&own.id).unwrap().unwrap().state, State::Rejected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_dry_runs_print_what_would_happen_and_change_nothing() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-dry"), 5, 30, false).await;
    let ids = common::send(&sqs, &queues.dlq_url, &[("dead one", None), ("dead two", None)]).await;
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.dlq_url.clone());

    // WHEN a selective redrive runs dry, THEN it names the matching letter only
    let run = cli.ok(&["dlq", "redrive", "--id", &ids[0], "--dry-run"], 0);
    assert!(run.stdout.contains("would resend 1 dead letter(s)"), "{}", run.stdout);
    assert!(run.stdout.contains(&ids[0]) && !run.stdout.contains(&ids[1]), "{}", run.stdout);
    // THEN every letter is visible again at once and nothing reached the source queue
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("2".into(), "0".into()));
    assert_eq!(counts(&sqs, &queues.url).await, ("0".into(), "0".into()));

    // WHEN a full redrive and a purge run dry, THEN they give the count and change nothing
    let run = cli.ok(&["dlq", "redrive", "--dry-run"], 0);
    assert!(run.stdout.contains("would move about 2 message(s)") && run.stdout.contains(&queues.url), "{}", run.stdout);
    let run = cli.ok(&["dlq", "purge", "--dry-run"], 0);
    assert!(run.stdout.contains("would purge about 2 message(s)"), "{}", run.stdout);
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("2".into(), "0".into()));
    assert_eq!(counts(&sqs, &queues.url).await, ("0".into(), "0".into()));
}

/// Issue 18, item 6: a look that did not receive every letter (some held by another reader,
/// or more than one look gets) used to print its partial list as if it were all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_that_misses_letters_says_so() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-partial"), 5, 30, false).await;
    common::send(&sqs, &queues.dlq_url, &[("one", None), ("two", None), ("three", None)]).await;
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.dlq_url.clone());
    // GIVEN another reader holding one letter
    let held = sqs.receive_message().queue_url(&queues.dlq_url).visibility_timeout(60).send().await.unwrap();
    assert_eq!(held.messages().len(), 1);

    // WHEN listed, exported or chosen from, THEN each says how many it did not look at
    let run = cli.ok(&["dlq", "list"], 0);
    assert!(run.stdout.starts_with("2 dead letter(s)"), "{}", run.stdout);
    assert!(run.stderr.contains("looked at 2 of about 3 dead letter(s)"), "{}", run.stderr);
    let report = cli.ok(&["dlq", "redrive", "--reason", "none-such", "--json"], 0).json();
    assert_eq!((report["matched"].as_u64(), report["not_looked_at"].as_u64()), (Some(0), Some(1)), "{report}");

    // GIVEN nothing held, THEN no notice
    let handle = held.messages()[0].receipt_handle().unwrap();
    sqs.change_message_visibility()
        .queue_url(&queues.dlq_url)
        .receipt_handle(handle)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let run = cli.ok(&["dlq", "list"], 0);
    assert!(run.stdout.starts_with("3 dead letter(s)") && !run.stderr.contains("looked at"), "{run:?}");
}

/// Issue 18, item 6: `--older-than/--newer-than` choose letters for a selective redrive too
/// (a move task takes them all, so with an age the redrive is a selective one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redrive_by_age_resends_only_the_letters_of_that_age() {
    crate::require_emulators!();
    let endpoint = format!("http://127.0.0.1:{}", Emulator::shared_localstack());
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("dlq-age"), 5, 30, false).await;
    common::send(&sqs, &queues.dlq_url, &[("old one", None)]).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let new = common::send(&sqs, &queues.dlq_url, &[("new one", None)]).await;
    let mut cli = NotesCli::new(&endpoint, &queues.url);
    cli.dlq_url = Some(queues.dlq_url.clone());

    // WHEN letters older than 4 s are redriven
    let report = cli.ok(&["dlq", "redrive", "--older-than", "4s", "--json"], 0).json();
    assert_eq!((report["resent"].as_u64(), report["kept"].as_u64()), (Some(1), Some(1)), "{report}");

    // THEN only the old one is back on the source queue, the new one is still dead
    let back = common::receive(&sqs, &queues.url, 10, 1).await;
    assert_eq!(back.iter().filter_map(|m| m.body()).collect::<Vec<_>>(), ["old one"]);
    assert_eq!(counts(&sqs, &queues.dlq_url).await, ("1".into(), "0".into()));
    // A dry run by age names the letters of that age
    let run = cli.ok(&["dlq", "redrive", "--newer-than", "1h", "--dry-run"], 0);
    assert!(run.stdout.contains("would resend 1 dead letter(s)") && run.stdout.contains(&new[0]), "{}", run.stdout);
    // A move task cannot choose: an age with its options is refused
    let run = cli.ok(&["dlq", "redrive", "--older-than", "2s", "--no-wait"], 2);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
}
