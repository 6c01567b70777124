//! The outbox's guarantees, one test each, on a database in a temporary directory.

use std::time::Duration;

use super::*;

fn open(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap()
}

fn entries(outbox: &Outbox) -> Vec<(String, u64)> {
    outbox.pending().unwrap().into_iter().map(|p| (p.note_id, p.version)).collect()
}

#[test]
fn a_new_note_and_its_outbox_entry_are_written_together_at_version_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let note = outbox.add("Groceries", "milk").unwrap();
    assert_eq!((note.version, note.state, note.deleted), (1, State::Pending, false));
    assert_eq!(entries(&outbox), vec![(note.id.clone(), 1)]);
    let body: serde_json::Value =
        serde_json::from_str(&outbox.claim(&Lease::new(Duration::from_secs(60)), 10, 1 << 20).unwrap()[0].body)
            .unwrap();
    assert_eq!(body["note"]["id"], note.id.as_str());
    assert_eq!(body["client_id"], outbox.client_id());
    assert_eq!(body["op"], "upsert");
}

#[test]
fn the_client_id_is_made_once_per_database_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&dir).client_id().to_owned();
    assert!(first.starts_with("c-"));
    assert_eq!(open(&dir).client_id(), first);
    let other = tempfile::tempdir().unwrap();
    assert_ne!(open(&other).client_id(), first);
}

#[test]
fn edits_while_offline_coalesce_into_one_entry_at_the_latest_version_keeping_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let a = outbox.add("a", "1").unwrap();
    let b = outbox.add("b", "1").unwrap();
    outbox.edit(&a.id, None, Some("2")).unwrap();
    let a3 = outbox.edit(&a.id, Some("a!"), None).unwrap();
    // Unsent edits stay one version above what the note builds on (nothing yet: version 1).
    assert_eq!((a3.version, a3.title.as_str(), a3.body.as_str()), (1, "a!", "2"));
    assert_eq!(entries(&outbox), vec![(a.id.clone(), 1), (b.id.clone(), 1)], "one entry per note, oldest first");
}

#[test]
fn a_delete_supersedes_pending_edits() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let a = outbox.add("a", "1").unwrap();
    outbox.edit(&a.id, None, Some("2")).unwrap();
    let deleted = outbox.delete(&a.id).unwrap();
    assert!(deleted.deleted && deleted.title.is_empty() && deleted.body.is_empty());
    let claimed = outbox.claim(&Lease::new(Duration::from_secs(60)), 10, 1 << 20).unwrap();
    assert_eq!(claimed.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&claimed[0].body).unwrap();
    assert_eq!((body["op"].as_str(), body["note"]["version"].as_u64()), (Some("delete"), Some(1)));
    assert!(matches!(outbox.edit(&a.id, Some("x"), None), Err(OutboxError::Deleted(_))));
    assert!(matches!(outbox.delete("nope"), Err(OutboxError::NotFound(_))));
}

#[test]
fn a_note_the_consumer_would_refuse_is_refused_with_the_consumers_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let err = outbox.add(&"t".repeat(notes_sync::notes::MAX_TITLE_BYTES + 1), "").unwrap_err();
    let text = crate::error_chain(&err);
    assert_eq!(text, "refused: invalid_field: note.title is 1025 bytes, more than the limit of 1024");
    assert!(outbox.pending().unwrap().is_empty(), "nothing written");
}

#[test]
fn a_body_within_the_consumers_limit_that_escapes_past_the_sqs_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    // 200 KiB of a control character: allowed by the consumer, 6 bytes each once JSON-escaped.
    let err = outbox.add("t", &"\u{1}".repeat(notes_sync::notes::MAX_BODY_BYTES)).unwrap_err();
    assert!(err.to_string().starts_with("refused: the message is 1228"), "{err}");
    assert!(outbox.pending().unwrap().is_empty());
}

#[test]
fn an_ack_removes_only_the_version_sent_and_a_newer_change_stays_pending() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let lease = Lease::new(Duration::from_secs(60));
    let a = outbox.add("a", "1").unwrap();
    let b = outbox.add("b", "1").unwrap();
    let claimed = outbox.claim(&lease, 10, 1 << 20).unwrap();
    // Edited while its version 1 is on the wire.
    outbox.edit(&a.id, None, Some("2")).unwrap();
    let results: Vec<_> = claimed.into_iter().map(|c| (c, Settled::Acked)).collect();
    outbox.settle(&lease, &results).unwrap();
    assert_eq!(entries(&outbox), vec![(a.id.clone(), 2)]);
    assert_eq!(outbox.note(&a.id).unwrap().unwrap().state, State::Pending);
    assert_eq!(outbox.note(&b.id).unwrap().unwrap().state, State::Sent);
    assert_eq!(outbox.claim(&Lease::new(Duration::from_secs(60)), 10, 1 << 20).unwrap()[0].version, 2, "released");
}

#[test]
fn a_failed_entry_keeps_its_place_with_an_attempt_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let lease = Lease::new(Duration::from_secs(60));
    outbox.add("a", "1").unwrap();
    let claimed = outbox.claim(&lease, 10, 1 << 20).unwrap();
    outbox.settle(&lease, &[(claimed[0].clone(), Settled::Failed("throttled".into()))]).unwrap();
    let pending = outbox.pending().unwrap();
    assert_eq!((pending[0].attempts, pending[0].last_error.as_deref()), (1, Some("throttled")));
    assert_eq!(outbox.status().unwrap().last_error.as_deref(), Some("throttled"));
}

#[test]
fn a_leased_entry_is_not_claimed_by_another_sender_until_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox.add("a", "1").unwrap();
    let (first, second) = (Lease::new(Duration::from_secs(60)), Lease::new(Duration::from_secs(60)));
    assert_eq!(outbox.claim(&first, 10, 1 << 20).unwrap().len(), 1);
    assert!(outbox.claim(&second, 10, 1 << 20).unwrap().is_empty(), "held by a live lease");
    outbox.conn.execute("UPDATE outbox SET lease_until = 0", []).unwrap();
    assert_eq!(outbox.claim(&second, 10, 1 << 20).unwrap().len(), 1, "an expired lease is free");
}

#[test]
fn the_lease_of_a_process_that_is_gone_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox.add("a", "1").unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    outbox
        .conn
        .execute("UPDATE outbox SET lease_owner = 'gone', lease_pid = ?1, lease_until = ?2", params_pid(dead_pid))
        .unwrap();
    assert_eq!(outbox.claim(&Lease::new(Duration::from_secs(60)), 10, 1 << 20).unwrap().len(), 1);
}

fn params_pid(pid: u32) -> (u32, i64) {
    (pid, now_ms() + 3_600_000)
}

#[test]
fn a_claim_takes_at_most_ten_entries_and_the_byte_limit_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let ids: Vec<String> = (0..12).map(|i| outbox.add(&format!("t{i}"), &"b".repeat(1000)).unwrap().id).collect();
    let lease = Lease::new(Duration::from_secs(60));
    let ten = outbox.claim(&lease, 10, 1 << 20).unwrap();
    assert_eq!(ten.iter().map(|c| c.note_id.clone()).collect::<Vec<_>>(), ids[..10]);
    let other = Lease::new(Duration::from_secs(60));
    let by_size = outbox.claim(&other, 10, 1500).unwrap();
    assert_eq!(by_size.len(), 1, "the second entry would pass 1500 bytes");
    assert_eq!(by_size[0].note_id, ids[10]);
}

#[test]
fn a_file_that_is_not_a_database_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(&path, "this is not a database, it is a grocery list ".repeat(100)).unwrap();
    let err = Outbox::open(&path, &OpenOptions::default()).unwrap_err();
    assert!(err.is_corrupt(), "{err:?}");
}

#[test]
fn a_database_locked_by_another_writer_is_reported_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let holder = rusqlite::Connection::open(dir.path().join("notes.db")).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    outbox.conn.busy_timeout(Duration::from_millis(50)).unwrap();
    let err = outbox.add("a", "b").unwrap_err();
    assert!(err.is_locked(), "{err:?}");
    assert!(err.to_string().contains("is locked by another process"));
    holder.execute_batch("ROLLBACK").unwrap();
    outbox.add("a", "b").unwrap();
}

#[test]
fn rejected_marks_only_the_latest_sent_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let lease = Lease::new(Duration::from_secs(60));
    let a = outbox.add("a", "1").unwrap();
    let claimed = outbox.claim(&lease, 10, 1 << 20).unwrap();
    outbox.settle(&lease, &[(claimed[0].clone(), Settled::Acked)]).unwrap();
    assert!(!outbox.mark_rejected(&a.id, 2, "invalid_field", "x").unwrap(), "not its version");
    assert!(outbox.mark_rejected(&a.id, 1, "invalid_field", "y").unwrap());
    let note = outbox.note(&a.id).unwrap().unwrap();
    assert_eq!(
        (note.state, note.kind.as_deref(), note.reason.as_deref()),
        (State::Rejected, Some("invalid_field"), Some("y"))
    );
    assert_eq!(outbox.notes(Some(State::Rejected)).unwrap().len(), 1);
    assert_eq!(outbox.unreject(Some((&a.id, 1))).unwrap(), 1, "its dead letter went back to the queue");
    assert_eq!(outbox.note(&a.id).unwrap().unwrap().state, State::Sent);
}

#[test]
fn a_version_1_database_is_migrated_keeping_every_note_entry_and_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(schema::V1).unwrap();
        old.execute_batch(
            "INSERT INTO meta VALUES ('client_id', 'c-old'), ('flags', '{}');
             INSERT INTO notes VALUES ('n-1', 2, 't', 'b', 0, '2026-11-27T10:00:00Z', 'pending', NULL);
             INSERT INTO notes VALUES ('n-2', 1, 'u', 'c', 0, '2026-11-27T10:00:00Z', 'rejected', 'invalid_field: x');
             INSERT INTO outbox (note_id, seq, version, body, queued_at) VALUES ('n-1', 1, 2, '{}', 0);",
        )
        .unwrap();
    }
    let outbox = Outbox::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(outbox.client_id(), "c-old");
    let n1 = outbox.note("n-1").unwrap().unwrap();
    assert_eq!((n1.version, n1.state, n1.client_id.as_str()), (2, State::Pending, "c-old"));
    let n2 = outbox.note("n-2").unwrap().unwrap();
    assert_eq!((n2.state, n2.reason.as_deref()), (State::Rejected, Some("invalid_field: x")));
    assert_eq!(entries(&outbox), vec![("n-1".to_owned(), 2)]);
    assert_eq!(outbox.meta("flags").unwrap().as_deref(), Some("{}"));
    assert_eq!(outbox.integrity_check().unwrap(), vec!["ok".to_owned()]);
    let fk: i64 = outbox.conn.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).unwrap_or(0);
    assert_eq!(fk, 0);
    drop(outbox);
    Outbox::open(&path, &OpenOptions::default()).unwrap(); // and opens again at the current version
}

#[test]
fn a_version_2_database_is_migrated_to_3_keeping_every_entry_and_gains_the_claims_indexes() {
    use super::plans::{PER_CLAIM, plan, whole_table_reads};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(&schema::v2()).unwrap();
        old.execute_batch(
            "INSERT INTO meta VALUES ('client_id', 'c-old');
             INSERT INTO notes (id, version, title, body, updated_at, client_id, state, sent_version)
               VALUES ('n-1', 2, 't', 'b', '2026-11-27T10:00:00Z', 'c-old', 'pending', 1),
                      ('n-2', 1, 'u', 'c', '2026-11-27T10:00:00Z', 'c-old', 'synced', 1);
             INSERT INTO outbox (note_id, seq, version, body, queued_at, attempts, last_error, last_attempt_at)
               VALUES ('n-1', 7, 2, '{}', 5, 3, 'throttled', 9);",
        )
        .unwrap();
        // The check below can fail: on version 2 the lease query reads the whole outbox.
        let scans = PER_CLAIM.iter().flat_map(|sql| whole_table_reads(&plan(&old, sql))).collect::<Vec<_>>();
        assert!(scans.iter().any(|line| line == "SCAN outbox"), "{scans:?}");
    }
    let mut outbox = Outbox::open(&path, &OpenOptions::default()).unwrap();
    let version: i32 = outbox.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, schema::VERSION);
    for sql in PER_CLAIM {
        assert_eq!(whole_table_reads(&plan(&outbox.conn, sql)), Vec::<String>::new(), "{sql}");
    }
    assert_eq!(outbox.client_id(), "c-old");
    let pending = outbox.pending().unwrap();
    assert_eq!(
        (pending[0].note_id.as_str(), pending[0].version, pending[0].attempts, pending[0].last_error.as_deref()),
        ("n-1", 2, 3, Some("throttled"))
    );
    let status = outbox.status().unwrap();
    assert_eq!((status.pending, status.max_attempts, status.synced), (1, 3, 1));
    assert_eq!(outbox.claim(&Lease::new(Duration::from_secs(60)), 10, 1 << 20).unwrap().len(), 1);
    assert_eq!(outbox.integrity_check().unwrap(), vec!["ok".to_owned()]);
    drop(outbox);
    Outbox::open(&path, &OpenOptions::default()).unwrap(); // and opens again at version 3
}

#[test]
fn a_trusted_owner_binds_the_database_and_another_owner_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    outbox.bind_owner("service-a").unwrap();
    outbox.add("a", "1").unwrap();
    outbox.bind_owner("service-a").unwrap();
    let err = outbox.bind_owner("service-b").unwrap_err();
    assert!(matches!(err, OutboxError::OtherOwner { .. }), "{err}");
}

/// Two conflicts on one note: `resolve NOTE` asks which; each is settled by its own id.
#[test]
fn a_note_with_several_conflicts_is_resolved_one_conflict_at_a_time() {
    use crate::changes::{Change, Page, ServerNote};
    let dir = tempfile::tempdir().unwrap();
    let mut outbox = open(&dir);
    let id = outbox.add("t", "mine 1").unwrap().id;
    let theirs = |version: u64, body: &str| Page {
        changes: vec![Change::Note(ServerNote {
            id: id.clone(),
            version,
            // Later than any local edit: theirs wins even a tie of versions.
            updated_at: "2099-01-01T00:00:00Z".into(),
            client_id: "c-other".into(),
            deleted: false,
            title: Some("t".into()),
            body: Some(body.into()),
        })],
        cursor: format!("c{version}"),
        more: false,
    };
    assert_eq!(outbox.apply_page("o", &theirs(1, "theirs 1")).unwrap().conflicts, 1);
    outbox.edit(&id, None, Some("mine 2")).unwrap();
    assert_eq!(outbox.note(&id).unwrap().unwrap().version, 2, "the edit builds on the server's version");
    assert_eq!(outbox.apply_page("o", &theirs(3, "theirs 3")).unwrap().conflicts, 1);
    assert_eq!(outbox.status().unwrap().conflicts, 2);

    let err = outbox.resolve(&id, Keep::Theirs).unwrap_err();
    assert!(matches!(&err, OutboxError::SeveralConflicts { ids, .. } if ids.len() == 2), "{err}");
    let ids: Vec<String> = outbox.conflicts().unwrap().into_iter().map(|c| c.id).collect();
    let note = outbox.resolve(&ids[0], Keep::Theirs).unwrap();
    assert_eq!((note.state, note.conflicts), (State::Conflict, 1), "one is still set aside");
    let note = outbox.resolve(&id, Keep::Mine).unwrap();
    assert_eq!((note.state, note.version, note.body.as_str(), note.conflicts), (State::Pending, 4, "mine 2", 0));
    assert_eq!(entries(&outbox), vec![(id.clone(), 4)]);
    assert!(matches!(outbox.resolve(&id, Keep::Mine), Err(OutboxError::NoConflict(_))));
}
