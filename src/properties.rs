//! Property tests: the batch invariants of [`crate::testing::check_batch`] over generated
//! events (the fuzz targets' generator), and the store's total order. Case counts are kept
//! small so that they run in `make test` in about a second.

use proptest::prelude::*;

use crate::testing::{run_scenario, scenario_from_bytes};

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
        let scenario = crate::testing::Scenario { event, ..scenario_from_bytes(&[]) };
        prop_assert_eq!(run_scenario(&scenario), Ok(()));
    }

    #[test]
    fn the_change_order_is_total_so_every_replica_keeps_the_same_winner(
        changes in proptest::collection::vec((1u64..4, 0usize..4, 0usize..3), 1..8)
    ) {
        use crate::notes::{NoteMessage, NoteStore};
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
            let store = crate::testing::MemoryStore::default();
            for message in order {
                store.apply(&crate::notes::Owner::parse("o").unwrap(), message).await.unwrap();
            }
            store.winner("o", "n")
        });
        let forward = replica(messages.iter().collect());
        let backward = replica(messages.iter().rev().collect());
        let newest = messages.iter().filter_map(crate::notes::change_order).max().map(|(v, t, c)| (v, t, c.to_owned()));
        prop_assert_eq!(&forward, &backward, "arrival order decided the winner");
        prop_assert_eq!(forward, newest);
    }
}

/// Every input the fuzz targets were seeded with or that once broke them
/// (`fuzz/seeds/<target>`, `fuzz/regressions/<target>`) passes their checks.
#[test]
fn fuzz_seeds_and_regression_inputs_pass_their_targets_checks() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    type Check = fn(&[u8]) -> Result<(), String>;
    let targets: [(&str, Check); 2] =
        [("message", crate::testing::check_message), ("engine", crate::testing::check_event)];
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
