//! The `notes` client against LocalStack (SQS, SSM): offline writes, the flag-driven
//! `sync --watch`, two syncs at once, and a locked or corrupt database. The binary is driven
//! as a user would; SQS is taken away with the fault proxy in front of LocalStack.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::cli::{NotesCli, terminate};
use common::proxy::{Mode, Proxy};
use common::{Emulator, create_queues, receive_n, sdk, unique};
use notes_client::outbox::{OpenOptions, Outbox};

fn localstack() -> (String, SocketAddr) {
    let port = Emulator::shared_localstack();
    (format!("http://127.0.0.1:{port}"), SocketAddr::from(([127, 0, 0, 1], port)))
}

fn flags(on: bool, every: u32) -> String {
    format!(r#"{{"features":{{"retry_pending_notes":{on},"retry_interval_seconds":{every}}}}}"#)
}

/// `(note id, version)` of each message body.
fn sent(messages: &[aws_sdk_sqs::types::Message]) -> Vec<(String, u64)> {
    messages
        .iter()
        .map(|m| {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            (body["note"]["id"].as_str().unwrap().to_owned(), body["note"]["version"].as_u64().unwrap())
        })
        .collect()
}

/// The fault proxy these tests (and the e2e ones, and `make demo`) rely on: a switch is in
/// force when `set` returns, open connections included. A plain TCP upstream, no emulator.
#[test]
fn the_fault_proxy_cuts_open_connections_and_obeys_each_switch_before_it_returns() {
    crate::require_emulators!();
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = Proxy::start(upstream.local_addr().unwrap());
    let port: u16 = proxy.endpoint().rsplit(':').next().unwrap().parse().unwrap();
    let connect = || {
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Only a guard against a hang: a cut connection answers at once.
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        client
    };
    // Up: a round trip through the proxy; returns the client side, still open.
    let round_trip = || {
        let mut client = connect();
        client.write_all(b"ping").unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        let mut buf = [0; 4];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        server.write_all(b"pong").unwrap();
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        (client, server)
    };
    // Closed: end of stream or a reset, not data and not a timeout.
    let closed = |stream: &mut TcpStream, what: &str| match stream.read(&mut [0; 16]) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what} still open after the switch: {other:?}"),
    };

    let (mut client, mut server) = round_trip();
    proxy.set(Mode::Down);
    closed(&mut client, "the client side");
    closed(&mut server, "the upstream side");
    let mut refused = connect();
    let _ = refused.write_all(b"ping");
    closed(&mut refused, "a connection made while down");

    proxy.set(Mode::Up);
    let (mut client, _server) = round_trip();
    proxy.set(Mode::Stall);
    closed(&mut client, "a connection open before the stall");
    proxy.set(Mode::Up);
    round_trip();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_notes_stay_pending_then_watch_drains_them_and_follows_the_flags_file() {
    crate::require_emulators!();
    let (endpoint, addr) = localstack();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("offline"), 5, 30, false).await;
    let proxy = Proxy::start(addr);
    proxy.set(Mode::Down);
    let cli = NotesCli::new(&proxy.endpoint(), &queues.url);

    // GIVEN three notes written while SQS is unreachable
    let mut ids = BTreeSet::new();
    for i in 1..=3 {
        let run = cli.ok(&["add", "--title", &format!("offline {i}"), "--body", "written on a train"], 0);
        ids.insert(run.stdout.trim().to_owned());
        assert!(run.stderr.contains(&format!("saved locally; {i} note")), "{}", run.stderr);
        assert!(run.stderr.contains("queue unreachable"), "{}", run.stderr);
    }
    let status = cli.status();
    assert_eq!(status["status"]["pending"], 3);
    let why = status["status"]["last_error"].as_str().unwrap();
    assert!(why.contains("dispatch failure") || why.contains("connect"), "status says why: {why}");
    assert_eq!(cli.run(&["sync"]).code, Some(3), "sync says something is still pending");

    // WHEN `sync --watch` runs with retries every second and SQS comes back
    let flags_file = cli.path("flags.json");
    std::fs::write(&flags_file, flags(true, 1)).unwrap();
    let (mut watch, mut lines) = cli.spawn(&["sync", "--watch", "--flags", flags_file.to_str().unwrap()]);
    lines.wait_for("queue unreachable", Duration::from_secs(20));
    proxy.set(Mode::Up);

    // THEN it drains them, each once
    lines.wait_for("sent 3, failed 0, pending 0", Duration::from_secs(30));
    let messages = receive_n(&sqs, &queues.url, 3, Duration::from_secs(10)).await;
    assert_eq!(sent(&messages).into_iter().map(|(id, _)| id).collect::<BTreeSet<_>>(), ids);

    // AND turning retries off takes effect on the next cycle: a new pending note stays
    std::fs::write(&flags_file, flags(false, 1)).unwrap();
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(10));
    proxy.set(Mode::Down);
    let late = cli.ok(&["add", "--title", "late", "--body", "b"], 0).stdout.trim().to_owned();
    proxy.set(Mode::Up);
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(10));
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(10));
    assert_eq!(cli.status()["status"]["pending"], 1, "paused: nothing sent");
    // AND turning them on again sends it
    std::fs::write(&flags_file, flags(true, 1)).unwrap();
    lines.wait_for("sent 1, failed 0, pending 0", Duration::from_secs(10));
    assert_eq!(sent(&receive_n(&sqs, &queues.url, 1, Duration::from_secs(10)).await)[0].0, late);
    assert_eq!(terminate(&mut watch), Some(0), "Ctrl-C/SIGTERM stops it cleanly");
    assert_eq!(cli.status()["status"]["pending"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_from_ssm_take_effect_mid_watch_and_a_broken_parameter_keeps_the_last_good() {
    crate::require_emulators!();
    let (endpoint, _) = localstack();
    let config = sdk(&endpoint).await;
    let (sqs, ssm) = (aws_sdk_sqs::Client::new(&config), aws_sdk_ssm::Client::new(&config));
    let queues = create_queues(&sqs, &unique("ssm"), 5, 30, false).await;
    let name = format!("/{}/client-flags", unique("stack"));
    let put = |value: String| {
        let (ssm, name) = (ssm.clone(), name.clone());
        async move {
            ssm.put_parameter().name(name).value(value).r#type("String".into()).overwrite(true).send().await.unwrap()
        }
    };
    put(flags(false, 1)).await;
    let cli = NotesCli::new(&endpoint, &queues.url);
    let shown = cli.ok(&["flags", "--flags-ssm", &name, "--json"], 0).json();
    assert_eq!(shown["flags"]["retry_pending_notes"], false);
    assert_eq!(shown["origin"], format!("ssm {name}"));

    // GIVEN a note written by an embedding app (no immediate send) and retries off in SSM
    let note = Outbox::open(&cli.db, &OpenOptions::default()).unwrap().add("from the app", "b").unwrap();
    let (mut watch, mut lines) = cli.spawn(&["sync", "--watch", "--flags-ssm", &name]);
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(20));

    // WHEN the parameter breaks, THEN the last good flags stay (still off), with one warning
    put("{\"features\":".into()).await;
    lines.wait_for("malformed flags", Duration::from_secs(10));
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(10));
    lines.wait_for("retry_pending_notes is off", Duration::from_secs(10));
    assert_eq!(lines.seen.iter().filter(|l| l.contains("malformed flags")).count(), 1, "warned once");
    assert_eq!(cli.status()["status"]["pending"], 1);

    // WHEN retries are turned on in SSM, THEN the next cycle sends the note
    put(flags(true, 1)).await;
    lines.wait_for("sent 1, failed 0, pending 0", Duration::from_secs(10));
    assert_eq!(sent(&receive_n(&sqs, &queues.url, 1, Duration::from_secs(10)).await), vec![(note.id, 1)]);
    assert_eq!(terminate(&mut watch), Some(0));

    // AND an out-of-range value is refused naming the field, keeping the last good flags
    put(flags(true, 0)).await;
    let run = cli.ok(&["flags", "--flags-ssm", &name, "--json"], 0);
    assert!(run.stderr.contains("features.retry_interval_seconds is 0"), "{}", run.stderr);
    assert_eq!(run.json()["flags"]["retry_pending_notes"], true);
    assert!(run.json()["origin"].as_str().unwrap().contains("last good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_at_once_never_send_the_same_entry_twice() {
    crate::require_emulators!();
    const NOTES: usize = 600;
    let (endpoint, _) = localstack();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("two"), 5, 30, false).await;
    let cli = NotesCli::new(&endpoint, &queues.url);
    let mut outbox = Outbox::open(&cli.db, &OpenOptions::default()).unwrap();
    let mut expected = BTreeSet::new();
    for i in 0..NOTES {
        let note = outbox.add(&format!("n{i}"), "b").unwrap();
        expected.insert((note.id, 1));
    }
    drop(outbox);

    let a = cli.command(&["sync", "--json"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let b = cli.command(&["sync", "--json"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    // One may finish while the other still holds its last batch: "still pending" (3).
    for run in [&a, &b] {
        assert!(matches!(run.status.code(), Some(0 | 3)), "{run:?}");
    }
    let count = |out: &std::process::Output| -> u64 {
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["sent"].as_u64().unwrap()
    };
    eprintln!("the two syncs sent {} and {}", count(&a), count(&b));
    // Both must have sent: a sync that started after the other had finished would prove
    // nothing about two at once (enough entries that neither drains them alone before the
    // other's first claim).
    assert!(count(&a) > 0 && count(&b) > 0, "the two syncs overlapped and both sent");
    assert_eq!(count(&a) + count(&b), NOTES as u64, "each entry acknowledged once");
    assert_eq!(cli.status()["status"]["pending"], 0);

    let messages = receive_n(&sqs, &queues.url, NOTES + 1, Duration::from_secs(15)).await;
    let all = sent(&messages);
    let unique: BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "an entry was sent twice");
    assert_eq!(unique, expected);
}

#[test]
fn a_locked_or_corrupt_database_gives_a_clear_error_and_its_exit_code() {
    let cli = NotesCli::new("http://127.0.0.1:9", "http://127.0.0.1:9/000000000000/none");
    cli.ok(&["add", "--title", "t", "--body", "b"], 0);
    let holder = rusqlite::Connection::open(&cli.db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let run = cli.ok(&["--busy-timeout-ms", "100", "add", "--title", "t2", "--body", "b"], 4);
    assert!(run.stderr.contains("is locked by another process"), "{}", run.stderr);
    cli.ok(&["status"], 0); // readers are not blocked by a writer (WAL)
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    std::fs::write(&cli.db, "not a database ".repeat(300)).unwrap();
    for file in ["notes.db-wal", "notes.db-shm"] {
        let _ = std::fs::remove_file(cli.path(file));
    }
    let run = cli.ok(&["status"], 5);
    assert!(run.stderr.contains("is not a notes database or it is corrupt"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_fifo_queue_each_note_is_its_own_group_deduplicated_per_change() {
    crate::require_emulators!();
    let (endpoint, _) = localstack();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("fifo"), 5, 30, true).await;
    let cli = NotesCli::new(&endpoint, &queues.url);
    let id = cli.ok(&["add", "--title", "ordered", "--body", "1"], 0).stdout.trim().to_owned();
    let run = cli.ok(&["edit", &id, "--body", "2"], 0);
    assert!(run.stderr.contains("sent; nothing pending"), "{}", run.stderr);

    let messages = receive_n(&sqs, &queues.url, 2, Duration::from_secs(10)).await;
    assert_eq!(sent(&messages), vec![(id.clone(), 1), (id.clone(), 2)], "in order");
    for (m, version) in messages.iter().zip(1..) {
        let attributes = m.attributes().unwrap();
        assert_eq!(attributes[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId], id);
        // Deduplicated per change: its note, version and a hash of its body (a resend of the
        // same change is dropped by SQS, a later edit is not).
        let dedup = &attributes[&aws_sdk_sqs::types::MessageSystemAttributeName::MessageDeduplicationId];
        assert!(dedup.starts_with(&format!("{id}:{version}:")), "{dedup}");
        // A trusted service names the owner of its notes in the attribute the consumer keys them by.
        let owner = m.message_attributes().and_then(|a| a.get(notes_sync::notes::OWNER_ATTRIBUTE));
        assert_eq!(owner.and_then(|o| o.string_value()), Some(common::cli::TEST_OWNER));
    }
    // Without an owner the client refuses to send straight to the queue (and keeps the note).
    let run = cli.command(&["edit", &id, "--body", "3"]).env_remove("NOTES_OWNER").output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_ne!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("needs the notes' owner: pass --owner or set NOTES_OWNER"), "{stderr}");
    assert_eq!(cli.ok(&["show", &id, "--json"], 0).json()["state"], "pending");
}

/// Issue 18, item 2: the deduplication id used to be the note id and version alone, so when a
/// second client wrote the same note at the same version within SQS's 5 minutes, SQS dropped it
/// silently, the client marked it sent, and the consumer's tie-break never saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_fifo_queue_two_clients_changes_at_one_version_are_both_delivered_and_a_resend_is_not() {
    use notes_client::sender::{EntryResult, Outgoing, SqsTransport, Transport};
    crate::require_emulators!();
    let (endpoint, _) = localstack();
    let sqs = aws_sdk_sqs::Client::new(&sdk(&endpoint).await);
    let queues = create_queues(&sqs, &unique("fifo-two"), 5, 30, true).await;
    let owner = notes_sync::notes::Owner::parse(common::cli::TEST_OWNER).unwrap();
    let laptop = SqsTransport::new(sqs.clone(), &queues.url, &owner);
    let phone = SqsTransport::new(sqs.clone(), &queues.url, &owner);
    let body = |client: &str| common::NoteMessage::new("upsert", "n-1", 3, client).client(client).to_string();
    let (from_laptop, from_phone) = (body("laptop"), body("phone"));

    // WHEN two clients send the same note at the same version, and the first one resends it
    // (its acknowledgement lost)
    for (transport, body) in [(&laptop, &from_laptop), (&phone, &from_phone), (&laptop, &from_laptop)] {
        let change = [Outgoing { note_id: "n-1", version: 3, body }];
        assert_eq!(transport.send_batch(&change).await.unwrap(), [EntryResult::Accepted]);
    }

    // THEN both changes are on the queue, once each
    let messages = receive_n(&sqs, &queues.url, 3, Duration::from_secs(5)).await;
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m.body()).collect();
    assert_eq!(bodies, [from_laptop.as_str(), from_phone.as_str()]);
}

#[test]
fn notes_are_written_read_and_refused_as_the_cli_promises() {
    let cli = NotesCli::new("http://127.0.0.1:9", "");
    let body_file = cli.path("plan.md");
    std::fs::write(&body_file, "line 1\nline 2\n").unwrap();
    let from_file = cli.ok(&["add", "--title", "Plan", "--body-file", body_file.to_str().unwrap()], 0);
    assert!(from_file.stderr.contains("saved locally; 1 note pending (no API or queue configured)"), "{from_file:?}");
    let plan = from_file.stdout.trim().to_owned();
    let mut stdin = cli.command(&["add", "--title", "Piped", "-"]);
    let mut child = stdin.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"from stdin").unwrap();
    let piped = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_owned();

    let shown = cli.ok(&["show", &plan, "--json"], 0).json();
    assert_eq!((shown["body"].as_str(), shown["version"].as_u64()), (Some("line 1\nline 2\n"), Some(1)));
    assert_eq!(cli.ok(&["show", &piped, "--json"], 0).json()["body"], "from stdin");
    cli.ok(&["edit", &plan, "--title", "Plan B"], 0);
    let shown = cli.ok(&["show", &plan, "--json"], 0).json();
    // Never sent: the edit coalesces at version 1, one above what the note builds on (nothing).
    assert_eq!(
        (shown["title"].as_str(), shown["body"].as_str(), shown["version"].as_u64()),
        (Some("Plan B"), Some("line 1\nline 2\n"), Some(1))
    );
    assert!(cli.ok(&["edit", &plan], 1).stderr.contains("nothing to change"));

    cli.ok(&["delete", &piped], 0);
    assert!(cli.ok(&["edit", &piped, "--body", "x"], 1).stderr.contains(&format!("note {piped} is deleted")));
    assert!(cli.ok(&["show", "n-missing"], 1).stderr.contains("no note with id n-missing"));
    let refused = cli.ok(&["add", "--title", &"t".repeat(1100)], 1);
    assert!(
        refused.stderr.contains("refused: invalid_field: note.title is 1100 bytes, more than the limit of 1024"),
        "{refused:?}"
    );
    assert!(!refused.stderr.contains("ttttt"), "the title is not echoed");

    let pending = cli.ok(&["list", "--state", "pending", "--json"], 0).json();
    let states: Vec<(&str, bool)> = pending
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(states.contains(&(plan.as_str(), false)) && states.contains(&(piped.as_str(), true)));
    assert!(cli.ok(&["list", "--state", "sent", "--json"], 0).json().as_array().unwrap().is_empty());
    assert_eq!(cli.run(&["list", "--state", "lost"]).code, Some(2), "usage error");
    let status = cli.status();
    assert_eq!((status["status"]["pending"].as_u64(), status["flags"]["origin"].as_str()), (Some(2), Some("defaults")));
    let nowhere = cli.ok(&["sync"], 1).stderr;
    assert!(
        nowhere.contains("nothing to sync with: notes login (with --api-url), or --queue-url and --owner"),
        "{nowhere}"
    );
}
