//! The `notes` client as end users run it, against the real parts: moto's Cognito, the `api`
//! function under `cargo lambda watch`, LocalStack's SQS, the consumer polling it and moto's
//! DynamoDB. Devices have no AWS credentials; each has its own database. What one device
//! writes reaches the user's others, conflicts keep the loser's text, a restored database's
//! edit is stored, a dead-lettered change shows `rejected` to its author, and no user sees
//! another's notes.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::api::LocalApi;
use common::cli::{NotesCli, assert_consistent, change_some};
use common::cognito::{Cognito, User};
use common::proxy::{Mode, Proxy};
use common::system::{Consumer, System, eventually};
use notes_client::outbox::{Lease, OpenOptions, Outbox, State};
use notes_client::sender::SqsTransport;
use notes_client::sync::{Run, sync_once};
use serde_json::Value;

/// The kill test's default seed; `CLIENT_SYNC_KILL_SEED=<n>` replays another run.
const KILL_SEED: u64 = 20261202;
/// Kills that must land while `notes sync` is still running.
const LIVE_KILLS: usize = 20;

struct Stack {
    system: System,
    _consumer: Consumer,
    api: LocalApi,
    /// In front of the API: devices go offline with it.
    switch: Proxy,
    cognito: Cognito,
}

impl Stack {
    async fn start() -> Self {
        let system = System::new("standard").await;
        let consumer = system.start_consumer();
        let api = system.start_api(&[("PULL_OVERLAP_SECONDS", "5".to_owned())]);
        let port: u16 = api.url.split(':').nth(2).and_then(|p| p.split('/').next()).unwrap().parse().unwrap();
        let switch = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port)));
        let cognito = system.cognito().await;
        Self { system, _consumer: consumer, api, switch, cognito }
    }

    /// A device of `user`'s, signed in, talking to the API through the switch.
    fn device(&self, user: &User) -> NotesCli {
        let path = self.api.url.split_once("/lambda-url").map(|(_, p)| p).unwrap();
        let cli = NotesCli::end_user(
            &format!("{}/lambda-url{path}", self.switch.endpoint()),
            &self.cognito.endpoint,
            &self.cognito.client_id,
        );
        let run = cli.login(&user.username, &user.password);
        assert_eq!(run.code, Some(0), "{run:?}");
        cli
    }

    /// `(version, deleted, title)` of `owner`'s note as the table holds it.
    async fn stored(&self, owner: &str, id: &str) -> Option<(u64, bool, Option<String>)> {
        common::stored_of(&self.system.dynamodb, self.system.resources.str("table"), owner, id).await
    }
}

fn show(cli: &NotesCli, id: &str) -> Value {
    cli.ok(&["show", id, "--json"], 0).json()
}

/// `(state, version, body)` of a note on a device.
fn fate(cli: &NotesCli, id: &str) -> (String, u64, String) {
    let n = show(cli, id);
    (n["state"].as_str().unwrap().to_owned(), n["version"].as_u64().unwrap(), n["body"].as_str().unwrap().to_owned())
}

/// Syncs until `id` is synced on the device (the consumer applies changes asynchronously).
async fn synced(cli: &NotesCli, id: &str) {
    eventually(&format!("{id} synced"), Duration::from_secs(30), || async {
        show(cli, id)["state"] == "synced" || {
            cli.run(&["sync"]);
            show(cli, id)["state"] == "synced"
        }
    })
    .await;
}

/// Syncs until nothing on the device is pending or sent; on failure, says what the last sync
/// and the status said (a shared 2-core machine under CI can take a while to settle 120 notes).
async fn all_synced(cli: &NotesCli) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let sync = cli.run(&["sync"]);
        let status = cli.status()["status"].clone();
        if status["pending"] == 0 && status["sent"] == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every note synced within 180 s: status {status}; the last sync exited {:?}: {} {}",
            sync.code,
            sync.stdout,
            sync.stderr
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn add(cli: &NotesCli, title: &str, body: &str) -> String {
    cli.ok(&["add", "--title", title, "--body", body], 0).stdout.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_travels_between_two_devices_a_delete_comes_back_and_another_user_sees_none() {
    crate::require_emulators!();
    let stack = Stack::start().await;
    let (alice, bob) = (stack.cognito.user("alice").await, stack.cognito.user("bob").await);
    let (laptop, phone, bobs) = (stack.device(&alice), stack.device(&alice), stack.device(&bob));

    let id = add(&laptop, "Groceries", "milk");
    synced(&laptop, &id).await;
    phone.ok(&["sync"], 0);
    assert_eq!(fate(&phone, &id), ("synced".into(), 1, "milk".into()));
    phone.ok(&["edit", &id, "--body", "milk, eggs"], 0);
    synced(&phone, &id).await;
    laptop.ok(&["sync"], 0);
    assert_eq!(fate(&laptop, &id), ("synced".into(), 2, "milk, eggs".into()));

    phone.ok(&["delete", &id], 0);
    synced(&phone, &id).await;
    laptop.ok(&["sync"], 0);
    assert_eq!(show(&laptop, &id)["deleted"], true);
    assert!(laptop.ok(&["list", "--json"], 0).json().as_array().unwrap().is_empty(), "gone on the laptop");
    assert_eq!(stack.stored(&alice.sub, &id).await.map(|(v, d, _)| (v, d)), Some((3, true)));

    // Bob, with the same API, sees none of it, and his note is his alone.
    bobs.ok(&["sync"], 0);
    assert!(bobs.ok(&["list", "--json"], 0).json().as_array().unwrap().is_empty());
    assert!(bobs.ok(&["show", &id], 1).stderr.contains("no note with id"));
    let his = add(&bobs, "Bob's", "private");
    synced(&bobs, &his).await;
    laptop.ok(&["sync"], 0);
    assert!(laptop.run(&["show", &his]).code == Some(1), "alice's device never gets bob's note");
    assert_eq!(stack.stored(&alice.sub, &his).await, None);
}

/// Both devices edit one note offline, then sync in one order or the other. The table's winner
/// is the note on both devices; the loser's text is kept as a conflict on its own device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_on_both_devices_in_either_order_converge_on_the_tables_winner_and_the_loser_keeps_its_text() {
    crate::require_emulators!();
    let stack = Stack::start().await;
    let alice = stack.cognito.user("alice").await;
    for laptop_first in [true, false] {
        let (laptop, phone) = (stack.device(&alice), stack.device(&alice));
        let id = add(&laptop, "Plan", "v1");
        synced(&laptop, &id).await;
        phone.ok(&["sync"], 0);

        stack.switch.set(Mode::Down);
        laptop.ok(&["edit", &id, "--body", "from the laptop"], 0);
        phone.ok(&["edit", &id, "--body", "from the phone"], 0);
        assert_eq!(fate(&laptop, &id).0, "pending");
        stack.switch.set(Mode::Up);
        let (first, second) = if laptop_first { (&laptop, &phone) } else { (&phone, &laptop) };
        first.run(&["sync"]);
        second.run(&["sync"]);
        for device in [first, second, first, second] {
            device.run(&["sync"]);
        }

        let (version, _, _) = stack.stored(&alice.sub, &id).await.unwrap();
        let (l, p) = (fate(&laptop, &id), fate(&phone, &id));
        assert_eq!((l.1, &l.2), (p.1, &p.2), "laptop first {laptop_first}: one winner on both devices");
        assert_eq!(l.1, version, "and in the table");
        let winner = l.2.clone();
        let loser = if winner == "from the laptop" { &phone } else { &laptop };
        let kept = loser.ok(&["conflicts", "--json"], 0).json();
        let kept: Vec<&str> = kept.as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
        let lost = if winner == "from the laptop" { "from the phone" } else { "from the laptop" };
        assert!(kept.contains(&lost), "laptop first {laptop_first}: the loser keeps {lost:?}: {kept:?}");
        assert_eq!(fate(loser, &id).0, "conflict");
    }
}

/// The report: edit twice and sync, restore the older notes.db, edit and sync. The
/// table used to keep the old text (`unchanged`); now the edit is rebased and stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_backup_rebases_its_next_edit_so_it_is_stored() {
    crate::require_emulators!();
    let stack = Stack::start().await;
    let alice = stack.cognito.user("alice").await;
    let laptop = stack.device(&alice);
    let id = add(&laptop, "Diary", "monday");
    synced(&laptop, &id).await;
    let backup = laptop.path("backup.db");
    rusqlite::Connection::open(&laptop.db).unwrap().execute("VACUUM INTO ?1", [backup.to_str().unwrap()]).unwrap();
    for day in ["tuesday", "wednesday"] {
        laptop.ok(&["edit", &id, "--body", day], 0);
        synced(&laptop, &id).await;
    }
    assert_eq!(stack.stored(&alice.sub, &id).await.unwrap().0, 3);

    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", laptop.db.display()));
    }
    std::fs::copy(&backup, &laptop.db).unwrap();
    assert_eq!(fate(&laptop, &id), ("synced".into(), 1, "monday".into()), "restored: behind the server");
    laptop.ok(&["edit", &id, "--body", "thursday"], 0);
    synced(&laptop, &id).await;
    eventually("the new edit stored", Duration::from_secs(30), || async {
        stack.stored(&alice.sub, &id).await.map(|(v, _, _)| v) == Some(4)
    })
    .await;
    assert_eq!(fate(&laptop, &id), ("synced".into(), 4, "thursday".into()));
    let kept = laptop.ok(&["conflicts", "--json"], 0).json();
    assert_eq!(kept[0]["body"], "wednesday", "the server's text it replaced is kept");
}

/// A change the consumer refuses (here an invalid one sent straight to SQS as a trusted
/// service for the user, in this device's name) comes back through the pull as a rejection:
/// the device shows `rejected` with the consumer's kind and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_consumer_dead_letters_shows_rejected_with_its_reason_after_a_pull() {
    crate::require_emulators!();
    let stack = Stack::start().await;
    let alice = stack.cognito.user("alice").await;
    let laptop = stack.device(&alice);
    stack.switch.set(Mode::Down);
    let id = add(&laptop, "Broken", "b");
    stack.switch.set(Mode::Up);
    let mut outbox = Outbox::open(&laptop.db, &OpenOptions::default()).unwrap();
    // An older or buggy build of the client: a date the consumer refuses.
    rusqlite::Connection::open(&laptop.db)
        .unwrap()
        .execute(
            "UPDATE outbox SET body = replace(body, json_extract(body, '$.note.updated_at'), 'last tuesday') WHERE note_id = ?1",
            [&id],
        )
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&common::sdk(&stack.system.localstack).await);
    let owner = notes_sync::notes::Owner::parse(&alice.sub).unwrap();
    let trusted = SqsTransport::new(sqs, stack.system.resources.str("queue_url"), &owner);
    let lease = Lease::new(Duration::from_secs(60));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let run = Run { lease: &lease, stop: &stop, confirm_within: Duration::ZERO };
    let report = sync_once(&mut outbox, &trusted, &run, &mut |_| {}).await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(fate(&laptop, &id).0, "sent");

    eventually("the rejection pulled", Duration::from_secs(30), || async {
        laptop.run(&["sync"]);
        show(&laptop, &id)["state"] == "rejected"
    })
    .await;
    let note = show(&laptop, &id);
    assert_eq!(note["kind"], "invalid_field", "{note}");
    assert!(note["reason"].as_str().unwrap().contains("updated_at"), "{note}");
    assert_eq!(laptop.status()["status"]["rejected"], 1);
    assert_eq!(stack.stored(&alice.sub, &id).await, None, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_keeps_changes_pending_a_renewed_token_is_taken_and_a_revoked_sign_in_exits_6() {
    crate::require_emulators!();
    let stack = Stack::start().await;
    let alice = stack.cognito.user("alice").await;
    let laptop = stack.device(&alice);
    stack.switch.set(Mode::Down);
    let id = add(&laptop, "Offline", "b");
    assert_eq!(laptop.ok(&["sync"], 3).code, Some(3));
    let status = laptop.status();
    assert_eq!(status["status"]["pending"], 1);
    let why = status["status"]["last_error"].as_str().unwrap();
    assert!(why.contains("error sending request"), "status says why: {why}");
    stack.switch.set(Mode::Up);

    // An expired access token: renewed without the user, and the real API takes the new one.
    rusqlite::Connection::open(&laptop.db).unwrap().execute("UPDATE session SET expires_at_ms = 0", []).unwrap();
    synced(&laptop, &id).await;
    assert!(laptop.ok(&["whoami", "--json"], 0).json()["token_expires_in_s"].as_i64().unwrap() > 60);

    // Revoked: exit code 6 and "sign in again"; the note written meanwhile stays pending.
    stack.cognito.sign_out("alice").await;
    rusqlite::Connection::open(&laptop.db).unwrap().execute("UPDATE session SET expires_at_ms = 0", []).unwrap();
    let run = laptop.ok(&["sync"], 6);
    assert!(run.stderr.contains("sign in again (notes login): NotAuthorizedException"), "{run:?}");
    let later = laptop.ok(&["add", "--title", "Later", "--body", "b"], 0);
    assert!(later.stderr.contains("saved locally; 1 note pending (sign in again"), "{later:?}");
    let later = later.stdout.trim().to_owned();
    let run = laptop.ok(&["sync"], 6);
    assert!(run.stderr.contains("not signed in: run notes login"), "{run:?}");
    assert_eq!(fate(&laptop, &later).0, "pending");
    assert_eq!(fate(&laptop, &id).0, "synced");
    assert_eq!(laptop.login("alice", &alice.password).code, Some(0));
    synced(&laptop, &later).await;
}

/// SIGKILL at seeded points of `notes sync` through the API: each round edits, deletes and adds
/// about a third of the notes (`change_some`), starts the sync (push, pull, the wait to see its changes stored)
/// and kills it after a delay drawn from zero to 0.6 x an uninterrupted sync's length. Rounds go
/// on until 20 kills have hit a running sync. Nothing is lost, the database is sound after
/// every kill, and after a final sync both of the user's devices and the table agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_seeded_points_of_a_push_and_pull_sync_loses_nothing_and_both_devices_converge() {
    crate::require_emulators!();
    let seed = std::env::var("CLIENT_SYNC_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(KILL_SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    let stack = Stack::start().await;
    let alice = stack.cognito.user("alice").await;
    let (laptop, phone) = (stack.device(&alice), stack.device(&alice));
    let mut outbox = Outbox::open(&laptop.db, &OpenOptions::default()).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..120 {
        let note = outbox.add(&format!("note {i}"), "b").unwrap();
        model.insert(note.id, (note.version, false));
    }
    let started = Instant::now();
    laptop.run(&["sync"]);
    let span = started.elapsed();

    // Where the kills landed: before the push had settled anything, while pushing (entries
    // settled, no pull finished yet), or once a pull had finished (pulling again, waiting to see
    // its changes stored).
    let (mut rounds, mut live, mut delays) = (0, 0, Vec::new());
    let (mut before, mut pushing, mut pulling) = (0, 0, 0);
    while live < LIVE_KILLS {
        rounds += 1;
        assert!(rounds <= 5 * LIVE_KILLS, "only {live} of {rounds} kills hit a running sync (span {span:?})");
        change_some(&mut outbox, &mut model, &mut rng);
        let last_pull = outbox.meta("last_pull_at_ms").unwrap();
        let queued = outbox.pending().unwrap().len();
        let delay = span.mul_f64(0.6 * rng.f64());
        let running = laptop.kill_after(&["sync"], delay);
        assert_consistent(&laptop, &model, &[State::Sent, State::Synced]);
        if running {
            live += 1;
            delays.push(delay.as_millis());
            if outbox.meta("last_pull_at_ms").unwrap() != last_pull {
                pulling += 1;
            } else if outbox.pending().unwrap().len() < queued {
                pushing += 1;
            } else {
                before += 1;
            }
        }
    }
    eprintln!(
        "seed {seed}: {live} kills of a running sync in {rounds} rounds ({before} before its first settlement, \
         {pushing} while pushing, {pulling} after a pull); sync span {span:?}; kill delays (ms) {delays:?}"
    );
    assert!(pulling > 0 && before + pushing > 0, "kills landed in the push and in the pull");

    // Converged: every change stored, both devices at the same versions.
    all_synced(&laptop).await;
    assert_consistent(&laptop, &model, &[State::Sent, State::Synced]);
    phone.ok(&["sync"], 0);
    for (id, &(version, deleted)) in &model {
        let n = show(&phone, id);
        assert_eq!((n["version"].as_u64(), n["deleted"].as_bool()), (Some(version), Some(deleted)), "phone: {id}");
        let stored = stack.stored(&alice.sub, id).await.map(|(v, d, _)| (v, d));
        assert_eq!(stored, Some((version, deleted)), "table: {id}");
    }
    assert_eq!(stack.system.depth(stack.system.resources.str("dlq_url")).await, 0, "nothing dead-lettered");
}
