//! The `notes` client with the whole system behind it: LocalStack and moto provisioned from
//! template.yaml, the real consumer in poll mode. What a client sends must end up stored (or
//! in the DLQ with its reason), whatever happens to the client on the way.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use common::cli::{NotesCli, assert_consistent, change_some};
use common::system::{System, eventually};
use common::{note, stored};
use notes_client::outbox::{Lease, OpenOptions, Outbox, Settled, State};
use serde_json::Value;

/// The kill test's default seed; `CLIENT_KILL_SEED=<n>` replays another run.
const KILL_SEED: u64 = 20261130;
/// Kills that must land while `notes sync` is still running.
const LIVE_KILLS: usize = 20;

fn open(cli: &NotesCli) -> Outbox {
    Outbox::open(&cli.db, &OpenOptions::default()).unwrap()
}

/// Kill points: each round changes about a third of the notes, starts `notes sync`, and
/// SIGKILLs it after a delay drawn (seeded) uniformly from zero to 0.6 x the measured length of
/// an uninterrupted sync of all the notes: a round sends about a third of them, so the range
/// covers its start-up, claims, sends and settles, and most kills hit a running process.
/// Rounds go on until 20 kills have hit a running sync; each is followed by the checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_of_sync_loses_no_note_and_every_latest_version_is_stored() {
    crate::require_emulators!();
    let seed = std::env::var("CLIENT_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(KILL_SEED);
    let mut rng = fastrand::Rng::with_seed(seed);
    let system = System::new("standard").await;
    let _consumer = system.start_consumer();
    let cli = NotesCli::new(&system.localstack, system.resources.str("queue_url"));
    let mut outbox = open(&cli);
    let mut model = BTreeMap::new();
    for i in 0..150 {
        let note = outbox.add(&format!("note {i}"), "b").unwrap();
        model.insert(note.id, (1, false));
    }
    let started = Instant::now();
    cli.ok(&["sync"], 0);
    let span = started.elapsed();

    // Where the kills landed: before the first acknowledgement was recorded, while the
    // outbox was draining, or (not counted) after the sync had exited.
    let (mut rounds, mut before, mut draining, mut delays) = (0, 0, 0, Vec::new());
    while before + draining < LIVE_KILLS {
        rounds += 1;
        assert!(
            rounds <= 5 * LIVE_KILLS,
            "only {} of {rounds} kills hit a running sync (span {span:?})",
            before + draining
        );
        change_some(&mut outbox, &mut model, &mut rng);
        let queued = outbox.pending().unwrap().len();
        let delay = span.mul_f64(0.6 * rng.f64());
        let running = cli.kill_after(&["sync"], delay);
        assert_consistent(&cli, &model, &[State::Sent]);
        if running {
            delays.push(delay.as_millis());
            if outbox.pending().unwrap().len() == queued { before += 1 } else { draining += 1 }
        }
    }
    eprintln!(
        "seed {seed}: {} kills of a running sync in {rounds} rounds ({before} before its first acknowledgement, \
         {draining} while draining); sync span {span:?}; kill delays (ms) {delays:?}",
        before + draining
    );
    assert!(draining > 0, "no kill landed while the outbox was draining");

    cli.ok(&["sync"], 0);
    assert_consistent(&cli, &model, &[State::Sent]);
    eventually("every note's latest version stored", Duration::from_secs(60), || async {
        for (id, &(version, deleted)) in &model {
            match stored(&system.dynamodb, system.resources.str("table"), id).await {
                Some((v, d, _)) if (v, d) == (version, deleted) => {}
                _ => return false,
            }
        }
        true
    })
    .await;
    assert_eq!(system.depth(system.resources.str("dlq_url")).await, 0, "nothing dead-lettered");
}

fn letters(cli: &NotesCli, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["dlq", "list", "--json"];
    all.extend_from_slice(args);
    cli.ok(&all, 0).json().as_array().unwrap().clone()
}

fn kinds(letters: &[Value]) -> BTreeMap<String, usize> {
    letters.iter().fold(BTreeMap::new(), |mut m, l| {
        *m.entry(l["kind"].as_str().unwrap().to_owned()).or_default() += 1;
        m
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_leaves_the_dlq_unchanged_and_full_and_selective_redrive_lose_nothing() {
    crate::require_emulators!();
    let system = System::new("standard").await;
    let _consumer = system.start_consumer();
    let (queue, dlq) = (system.resources.str("queue_url"), system.resources.str("dlq_url"));
    let mut cli = NotesCli::new(&system.localstack, queue);
    cli.dlq_url = Some(dlq.to_owned());
    // LocalStack's SenderId is the caller's account id: the consumer's under test credentials.
    cli.env.push(("NOTES_CONSUMER_SENDER_ID".into(), Some("000000000000".into())));

    // GIVEN three malformed messages the consumer dead-letters with their reason, and three
    // valid notes in the DLQ as the redrive policy leaves them (no attributes), one of them
    // a note of this client that SQS had acknowledged
    system.send(&[("not json".into(), None), ("{\"schema\":1".into(), None)]).await;
    system.send(&[(common::NoteMessage::new("upsert", "future", 1, "t").schema(2).to_string(), None)]).await;
    let mut outbox = open(&cli);
    let own = outbox.add("mine", "b").unwrap();
    let lease = Lease::new(Duration::from_secs(60));
    let claimed = outbox.claim(&lease, 1, 1 << 20).unwrap();
    outbox.settle(&lease, &[(claimed[0].clone(), Settled::Acked)]).unwrap();
    common::send(
        &system.sqs,
        dlq,
        &[
            (claimed[0].body.as_str(), None),
            (&note("upsert", "v1", 1, "t"), None),
            (&note("upsert", "v2", 1, "t"), None),
        ],
    )
    .await;
    eventually("6 dead letters", Duration::from_secs(30), || async { system.depth(dlq).await == 6 }).await;

    // WHEN listed twice, THEN the same letters with their reasons, all still visible
    let first = letters(&cli, &[]);
    let second = letters(&cli, &[]);
    let view =
        |ls: &[Value]| ls.iter().map(|l| (l["message_id"].to_string(), l["body"].to_string())).collect::<BTreeSet<_>>();
    assert_eq!(view(&first), view(&second));
    assert_eq!(first.len(), 6);
    let expected: BTreeMap<String, usize> = [("invalid_json", 2), ("unsupported_schema", 1), ("max_receive_count", 3)]
        .map(|(k, n)| (k.to_owned(), n))
        .into();
    assert_eq!(kinds(&first), expected);
    assert!(first.iter().any(|l| l["kind"] == "invalid_json" && l["reason"].as_str().unwrap().contains("expected")));
    let visible = system
        .sqs
        .get_queue_attributes()
        .queue_url(dlq)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    assert_eq!(
        visible.attributes().unwrap()[&QueueAttributeName::ApproximateNumberOfMessages],
        "6",
        "all visible again"
    );
    assert_eq!(letters(&cli, &["--reason", "invalid_json"]).len(), 2);
    assert_eq!(open(&cli).note(&own.id).unwrap().unwrap().state, State::Rejected, "own dead letter marked");

    // WHEN one is redriven by id, THEN it is stored and gone from the DLQ
    let pick = first.iter().find(|l| l["body"].as_str().unwrap().contains("\"v1\"")).unwrap();
    let report = cli.ok(&["dlq", "redrive", "--id", pick["message_id"].as_str().unwrap(), "--json"], 0).json();
    assert_eq!(
        (report["matched"].as_u64(), report["resent"].as_u64(), report["deleted"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    eventually("v1 stored", Duration::from_secs(30), || async { system.stored_count().await == 1 }).await;
    // WHEN the rest of the valid ones are redriven by kind
    let report = cli.ok(&["dlq", "redrive", "--reason", "max_receive_count", "--json"], 0).json();
    assert_eq!(
        (report["matched"].as_u64(), report["deleted"].as_u64(), report["kept"].as_u64()),
        (Some(2), Some(2), Some(3))
    );
    eventually("3 stored", Duration::from_secs(30), || async { system.stored_count().await == 3 }).await;
    assert_eq!(open(&cli).note(&own.id).unwrap().unwrap().state, State::Sent, "own note back in the queue");
    // WHEN the malformed ones are moved back with a move task, THEN they return with their reason
    let run = cli.ok(&["dlq", "redrive"], 0);
    assert!(run.stdout.contains("COMPLETED: moved 3"), "{run:?}");
    eventually("the malformed back in the DLQ, source empty", Duration::from_secs(30), || async {
        system.depth(dlq).await == 3 && system.depth(queue).await == 0
    })
    .await;
    let (stored, dead) = (system.stored_count().await, system.depth(dlq).await);
    eprintln!("ledger: sent 6 = stored {stored} + in DLQ {dead}");
    assert_eq!((stored, dead), (3, 3), "sent 6 = stored 3 + in DLQ 3, lost 0");
    assert_eq!(
        kinds(&letters(&cli, &[])),
        [("invalid_json".to_owned(), 2), ("unsupported_schema".to_owned(), 1)].into()
    );

    // purge only when told
    let run = cli.ok(&["dlq", "purge"], 1);
    assert!(run.stderr.contains("refusing to purge the DLQ without --yes"), "{}", run.stderr);
    assert_eq!(system.depth(dlq).await, 3);
    cli.ok(&["dlq", "purge", "--yes"], 0);
    eventually("DLQ purged", Duration::from_secs(30), || async { system.depth(dlq).await == 0 }).await;
}
