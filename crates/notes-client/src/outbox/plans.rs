//! The query plans of what every claim and every `status` runs: an index lookup or a walk of an
//! index that stops early, never a read of the whole outbox or notes table. Issue 18: the lease
//! query read the whole outbox once per claim of ten, so draining N entries cost O(N²).

use rusqlite::{Connection, params_from_iter, types::Null};

use super::claim::{CANDIDATES, END_LEASES_OF, FREE_ENTRY_OF, LIVE_HOLDERS};
use super::notes::{
    OLDEST_PENDING, PENDING_COUNT, STATUS_BY_STATE, STATUS_LAST_ERROR, STATUS_MAX_ATTEMPTS, STATUS_OLDEST,
};
use super::*;

/// The lines of SQLite's `EXPLAIN QUERY PLAN` for `sql` (its parameters left NULL).
pub(super) fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let nulls = params_from_iter(std::iter::repeat_n(Null, stmt.parameter_count()));
    stmt.query_map(nulls, |r| r.get::<_, String>(3)).unwrap().collect::<Result<_, _>>().unwrap()
}

/// What in `plan` costs a read of every row: a table scan without an index (`SCAN outbox`),
/// or a temporary b-tree (every matching row sorted or deduplicated before the first is
/// returned).
pub(super) fn whole_table_reads(plan: &[String]) -> Vec<String> {
    plan.iter()
        .filter(|line| (line.starts_with("SCAN ") && !line.contains(" USING ")) || line.contains("TEMP B-TREE"))
        .cloned()
        .collect()
}

/// The queries a claim runs, each once per claim of at most ten entries.
pub(super) const PER_CLAIM: [&str; 4] = [LIVE_HOLDERS, END_LEASES_OF, FREE_ENTRY_OF, CANDIDATES];

fn open(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap()
}

#[test]
fn every_query_a_claim_runs_uses_an_index_and_none_reads_the_whole_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    for sql in PER_CLAIM {
        let plan = plan(&outbox.conn, sql);
        assert_eq!(whole_table_reads(&plan), Vec::<String>::new(), "{sql}\n{plan:?}");
    }
    // The candidates are the head of the line: a walk of `outbox_by_seq` that stops at LIMIT.
    assert_eq!(plan(&outbox.conn, CANDIDATES), vec!["SCAN outbox USING INDEX outbox_by_seq"]);
    let leases = plan(&outbox.conn, LIVE_HOLDERS);
    assert!(leases.iter().all(|line| line.contains("outbox_leased")), "{leases:?}");
}

#[test]
fn status_reads_indexes_and_never_a_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir);
    for sql in [PENDING_COUNT, STATUS_OLDEST, STATUS_MAX_ATTEMPTS, STATUS_LAST_ERROR, STATUS_BY_STATE, OLDEST_PENDING] {
        let plan = plan(&outbox.conn, sql);
        assert_eq!(whole_table_reads(&plan), Vec::<String>::new(), "{sql}\n{plan:?}");
    }
    // Counting the notes by state reads their index only, never their titles and bodies.
    assert!(plan(&outbox.conn, STATUS_BY_STATE).iter().any(|l| l.contains("COVERING INDEX notes_by_state")));
}

#[test]
fn status_counts_are_right_with_the_index_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let lease = Lease::new(std::time::Duration::from_secs(60));
    let ids: Vec<String> = (0..5).map(|i| outbox.add(&format!("t{i}"), "b").unwrap().id).collect();
    let claimed = outbox.claim(&lease, 3, 1 << 20).unwrap();
    let answers = vec![
        (claimed[0].clone(), Settled::Acked),
        (claimed[1].clone(), Settled::Rejected { kind: "invalid_field".into(), reason: "r".into() }),
        (claimed[2].clone(), Settled::Failed("first".into())),
    ];
    outbox.settle(&lease, &answers).unwrap();
    let again = outbox.claim_first(&lease, Some(&ids[2]), 1, 1 << 20).unwrap();
    assert_eq!(again[0].note_id, ids[2], "the named entry comes first");
    outbox.settle(&lease, &[(again[0].clone(), Settled::Failed("second".into()))]).unwrap();
    let status = outbox.status().unwrap();
    assert_eq!(
        (status.pending, status.max_attempts, status.last_error.as_deref(), status.sent, status.rejected),
        (3, 2, Some("second"), 1, 1)
    );
    assert_eq!(status.oldest_pending_age_s, Some(0));
    let head: Vec<String> = outbox.oldest_pending(2).unwrap().into_iter().map(|p| p.note_id).collect();
    assert_eq!(head, ids[2..4], "the oldest two, oldest first");
    assert_eq!(outbox.pending_count().unwrap(), 3);
}
