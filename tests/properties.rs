//! Property tests: the batch invariants of `sqs_partial_batch::testing::check_batch` over
//! generated events (the fuzz targets' generator), and the store's total order. Case counts
//! are kept small so that they run in `make test` in a few seconds.

use proptest::prelude::*;

use notes_testing::{run_scenario, scenario_from_bytes};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_record_gets_exactly_one_outcome_and_the_response_names_exactly_the_failed(
        data in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        let scenario = scenario_from_bytes(&data);
        prop_assert_eq!(run_scenario(&scenario), Ok(()), "event: {}", scenario.event);
    }

    #[test]
    fn arbitrary_text_as_an_event_is_refused_or_processed_never_a_panic(event in ".{0,200}") {
        let scenario = notes_testing::Scenario { event, ..scenario_from_bytes(&[]) };
        prop_assert_eq!(run_scenario(&scenario), Ok(()));
    }

    #[test]
    fn the_change_order_is_total_so_every_replica_keeps_the_same_winner(
        changes in proptest::collection::vec((1u64..4, 0usize..4, 0usize..3), 1..8)
    ) {
        use notes_sync::notes::{NoteMessage, NoteStore};
        const TIMES: [&str; 4] =
            ["2026-11-27T09:00:00Z", "2026-11-27T10:00:00+01:00", "2026-11-27T10:30:00+01:00", "2026-11-27T09:00:00.5Z"];
        const CLIENTS: [&str; 3] = ["a", "b", "c"];
        let bodies: Vec<String> = changes.iter().map(|(v, t, c)| format!(
            r#"{{"schema":1,"op":"delete","client_id":"{}","note":{{"id":"n","version":{v},"updated_at":"{}"}}}}"#,
            CLIENTS[*c], TIMES[*t]
        )).collect();
        let messages: Vec<NoteMessage<'_>> = bodies.iter().map(|b| NoteMessage::parse(b).unwrap()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let replica = |order: Vec<&NoteMessage<'_>>| runtime.block_on(async {
            let store = notes_testing::MemoryStore::default();
            for message in order {
                store.apply(&notes_sync::notes::Owner::parse("o").unwrap(), message).await.unwrap();
            }
            store.winner("o", "n")
        });
        let forward = replica(messages.iter().collect());
        let backward = replica(messages.iter().rev().collect());
        let newest = messages.iter().filter_map(notes_sync::notes::change_order).max().map(|(v, t, c)| (v, t, c.to_owned()));
        prop_assert_eq!(&forward, &backward, "arrival order decided the winner");
        prop_assert_eq!(forward, newest);
    }
}

proptest! {
    // More cases than above: each case changes a few of an event's thirty-odd parts, and a
    // rare part (a FIFO record's group, a receive count of "0") should meet each op often.
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Text of any shape almost never parses as an event, so the case above meets only the
    /// JSON parser; these events are valid ones with a part or two changed, and a third still
    /// parse, so the engine meets a receive count of "0", a record without an ARN, an owner
    /// attribute that is an object (`many_mutants_parse_as_events_and_some_do_not` keeps that so).
    #[test]
    fn an_event_with_a_part_changed_is_refused_or_processed_never_a_panic(scenario in mutated_scenario()) {
        prop_assert_eq!(run_scenario(&scenario), Ok(()), "event: {}", scenario.event);
    }
}

/// Every input the fuzz targets were seeded with or that once broke them
/// (`fuzz/seeds/<target>`, `fuzz/regressions/<target>`) passes their checks.
#[test]
fn fuzz_seeds_and_regression_inputs_pass_their_targets_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    type Check = fn(&[u8]) -> Result<(), String>;
    let targets: [(&str, Check); 2] =
        [("message", notes_testing::check_message), ("engine", notes_testing::check_event)];
    let mut checked = 0;
    for (target, check) in targets {
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                assert_eq!(check(&data), Ok(()), "{}", path.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "fuzz inputs missing: {checked}");
}

/// A scenario whose valid event has one or two parts changed: a key or element removed, or a
/// value replaced by one of another type or by text the engine reads as a number.
fn mutated_scenario() -> impl Strategy<Value = notes_testing::Scenario> {
    let change = (any::<prop::sample::Index>(), 0u8..7, ".{0,12}");
    (proptest::collection::vec(any::<u8>(), 8..200), proptest::collection::vec(change, 1..=2)).prop_map(
        |(seed, changes)| {
            let scenario = scenario_from_bytes(&seed);
            let mut event: serde_json::Value = serde_json::from_str(&scenario.event).unwrap();
            for (at, op, text) in changes {
                change_one_part(&mut event, at, op, &text);
            }
            notes_testing::Scenario { event: event.to_string(), ..scenario }
        },
    )
}

/// Removes the part at the `at`-th JSON pointer of `event`, or replaces it (`op`).
fn change_one_part(event: &mut serde_json::Value, at: prop::sample::Index, op: u8, text: &str) {
    use serde_json::{Value, json};
    let mut paths = Vec::new();
    pointers(event, String::new(), &mut paths);
    let path = at.get(&paths).clone();
    let replacement = match op {
        0 => None,
        1 => Some(Value::Null),
        2 => Some(json!(-1)),
        3 => Some(json!(text)),
        4 => Some(json!(["0", "-1", "", "4294967296", "1e3"][text.len() % 5])),
        5 => Some(json!([])),
        _ => Some(json!({})),
    };
    // "" is the root: `pointer_mut` finds it, and removing it leaves null.
    match (replacement, path.rsplit_once('/')) {
        (Some(value), _) => *event.pointer_mut(&path).unwrap() = value,
        (None, Some((parent, key))) => match event.pointer_mut(parent).unwrap() {
            Value::Object(map) => drop(map.remove(key)),
            Value::Array(items) => drop(items.remove(key.parse::<usize>().unwrap())),
            _ => unreachable!("a parent is an object or an array"),
        },
        (None, None) => *event = Value::Null,
    }
}

/// Every JSON pointer in `value` (the root is "").
fn pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &serde_json::Value)> = match value {
        serde_json::Value::Object(map) => {
            map.iter().map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v)).collect()
        }
        serde_json::Value::Array(items) => items.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        pointers(child, format!("{at}/{key}"), out);
    }
    out.push(at);
}

/// The mutants reach the engine, not only the parser: many still parse as an event with
/// records (79 of the 256 this deterministic run makes), and the rest do not.
#[test]
fn many_mutants_parse_as_events_and_some_do_not() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = mutated_scenario();
    let (mut parsed, total) = (0, 256);
    for _ in 0..total {
        let event = strategy.new_tree(&mut runner).unwrap().current().event;
        if sqs_partial_batch::Batch::parse(&event).is_ok_and(|b| !b.records.is_empty()) {
            parsed += 1;
        }
    }
    assert!((total / 4..total).contains(&parsed), "{parsed} of {total} mutants parse as events with records");
}
