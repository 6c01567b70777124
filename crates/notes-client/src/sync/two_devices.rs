//! Push and pull between devices of one user, against the fake server ([`super::fake`]): every
//! change's fate, conflicts kept and resolved, a database behind the server, rejections, and a
//! pull that repeats itself.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::fake::{Device, Server};
use super::*;
use crate::changes::{Change, Page};
use crate::outbox::{Keep, OpenOptions, Side, State};

struct Phone {
    outbox: Outbox,
    api: Device,
    _dir: tempfile::TempDir,
}

impl Phone {
    fn new(server: &Server) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap();
        Self { outbox, api: server.device(), _dir: dir }
    }

    async fn sync(&mut self) -> SyncReport {
        let lease = Lease::new(Duration::from_secs(60));
        sync_once(
            &mut self.outbox,
            &self.api,
            &Run { lease: &lease, stop: &AtomicBool::new(false), confirm_within: Duration::ZERO },
            &mut |_| {},
        )
        .await
        .unwrap()
    }

    fn state(&self, id: &str) -> (State, u64, String) {
        let n = self.outbox.note(id).unwrap().unwrap();
        (n.state, n.version, if n.deleted { "(deleted)".into() } else { n.body })
    }
}

/// A note written on `a`, stored, and pulled by `b`: the start of most stories here.
async fn shared(server: &Server, a: &mut Phone, b: &mut Phone, title: &str, body: &str) -> String {
    let id = a.outbox.add(title, body).unwrap().id;
    a.sync().await;
    server.deliver();
    b.sync().await;
    id
}

#[tokio::test]
async fn an_edit_on_one_device_reaches_the_other_and_a_delete_comes_back() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = a.outbox.add("Groceries", "milk").unwrap().id;
    let report = a.sync().await;
    assert_eq!((report.sent, report.pending), (1, 0));
    assert_eq!(a.state(&id).0, State::Sent, "accepted, not yet seen stored: sent, not synced");
    server.deliver();
    a.sync().await;
    assert_eq!(a.state(&id), (State::Synced, 1, "milk".into()), "the server holds exactly v1");

    b.sync().await;
    assert_eq!(b.state(&id), (State::Synced, 1, "milk".into()));
    b.outbox.delete(&id).unwrap();
    b.sync().await;
    server.deliver();
    a.sync().await;
    b.sync().await;
    assert_eq!(a.state(&id), (State::Synced, 2, "(deleted)".into()));
    assert_eq!(b.state(&id), (State::Synced, 2, "(deleted)".into()));
    assert!(a.outbox.notes(None).unwrap().is_empty(), "a synced delete is not listed");
}

/// Both devices edit v1 offline; their v2s reach the queue in one order or the other. The
/// consumer's order picks one winner; both devices end with it, and the loser's text is kept
/// as a conflict on the loser's device only.
#[tokio::test]
async fn offline_edits_on_both_devices_converge_on_the_tables_winner_and_the_loser_keeps_its_text() {
    for reversed in [false, true] {
        let server = Server::new();
        let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
        let id = shared(&server, &mut a, &mut b, "Plan", "v1").await;
        a.outbox.edit(&id, None, Some("from A")).unwrap();
        b.outbox.edit(&id, None, Some("from B")).unwrap();
        a.sync().await;
        b.sync().await;
        if reversed {
            server.reverse_queue();
        }
        server.deliver();
        a.sync().await;
        b.sync().await;

        let stored = server.stored(&id).unwrap();
        let winner = stored.body.clone().unwrap();
        let (loser, winner_phone) = if winner == "from A" { (&b, &a) } else { (&a, &b) };
        for phone in [&a, &b] {
            let (_, version, body) = phone.state(&id);
            assert_eq!((version, body.as_str()), (2, winner.as_str()), "reversed {reversed}: same winner");
        }
        assert_eq!(winner_phone.state(&id).0, State::Synced);
        assert_eq!(loser.state(&id).0, State::Conflict, "the loser is told");
        let kept = loser.outbox.conflicts().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].side, Side::Mine);
        assert_ne!(kept[0].body, winner, "the losing text is kept, not the winner's");
        assert!(kept[0].reason.starts_with("lost to v2 from"), "{}", kept[0].reason);
        assert!(winner_phone.outbox.conflicts().unwrap().is_empty());
        assert_eq!(loser.outbox.pending().unwrap().len(), 0, "nothing left to send: it lost");
    }
}

#[tokio::test]
async fn resolving_keep_mine_stores_our_text_as_the_next_version_and_keep_theirs_lets_it_go() {
    for keep in [Keep::Mine, Keep::Theirs] {
        let server = Server::new();
        let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
        let id = shared(&server, &mut a, &mut b, "Plan", "v1").await;
        // B's edit is older in the consumer's order (same version, earlier instant): A's wins.
        b.outbox.edit(&id, None, Some("from B")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        a.outbox.edit(&id, None, Some("from A")).unwrap();
        b.sync().await;
        a.sync().await;
        server.deliver();
        a.sync().await;
        b.sync().await;
        assert_eq!(a.state(&id), (State::Synced, 2, "from A".into()), "A saw its own change stored");
        assert_eq!(b.state(&id), (State::Conflict, 2, "from A".into()));

        let note = b.outbox.resolve(&id, keep).unwrap();
        assert!(b.outbox.conflicts().unwrap().is_empty());
        b.sync().await;
        server.deliver();
        b.sync().await;
        a.sync().await;
        let expected = if keep == Keep::Mine { (State::Synced, 3, "from B") } else { (State::Synced, 2, "from A") };
        assert_eq!(note.state, if keep == Keep::Mine { State::Pending } else { State::Synced });
        let expected = (expected.0, expected.1, expected.2.to_owned());
        assert_eq!(b.state(&id), expected, "{keep:?}");
        assert_eq!(a.state(&id), expected, "{keep:?}: the other device follows");
        assert_eq!(server.stored(&id).unwrap().body.as_deref(), Some(expected.2.as_str()));
    }
}

/// The report: edit twice and sync, restore the older database, edit and sync. Before,
/// the new edit went as v2 and the table kept v3 (`unchanged`). Now the pull finds the
/// database behind and rebases the edit onto v3, so it is stored, and v3's text is kept.
#[tokio::test]
async fn a_database_restored_from_a_backup_rebases_its_next_edit_so_it_is_stored() {
    let server = Server::new();
    let mut a = Phone::new(&server);
    let id = a.outbox.add("Diary", "monday").unwrap().id;
    a.sync().await;
    server.deliver();
    a.sync().await;
    let backup = a._dir.path().join("backup.db");
    rusqlite::Connection::open(a.outbox.path()).unwrap().execute("VACUUM INTO ?1", [backup.to_str().unwrap()]).unwrap();
    for day in ["tuesday", "wednesday"] {
        a.outbox.edit(&id, None, Some(day)).unwrap();
        a.sync().await;
        server.deliver();
    }
    assert_eq!(server.stored(&id).unwrap().version, 3);

    // Restored: v1 again, with the same client id.
    let mut restored = Phone {
        outbox: Outbox::open(&backup, &OpenOptions::default()).unwrap(),
        api: server.device(),
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(restored.outbox.client_id(), a.outbox.client_id());
    restored.outbox.edit(&id, None, Some("thursday")).unwrap();
    let report = restored.sync().await;
    assert_eq!(report.pulled.as_ref().unwrap().rebased, 1, "{report:?}");
    server.deliver();
    restored.sync().await;

    let stored = server.stored(&id).unwrap();
    assert_eq!((stored.version, stored.body.as_deref()), (4, Some("thursday")), "the new edit is stored");
    assert_eq!(restored.state(&id), (State::Synced, 4, "thursday".into()));
    let kept = restored.outbox.conflicts().unwrap();
    assert_eq!((kept.len(), kept[0].side, kept[0].body.as_str()), (1, Side::Theirs, "wednesday"), "v3 kept");
}

#[tokio::test]
async fn a_pull_never_overwrites_a_pending_local_edit() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = shared(&server, &mut a, &mut b, "Plan", "v1").await;
    // B edits v1 to its own v2 while the server is unreachable for it; then A edits v1 twice
    // (one v2, later) and syncs.
    b.outbox.edit(&id, None, Some("b2")).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    a.outbox.edit(&id, None, Some("a2")).unwrap();
    a.outbox.edit(&id, None, Some("a2, again")).unwrap();
    a.sync().await;
    server.deliver();
    let before = b.outbox.note(&id).unwrap().unwrap();
    // A page with A's v2 arrives while B's v2 is still pending (not yet pushed): B's text is
    // kept, never overwritten, and its entry leaves the outbox (it lost the tie: discarded).
    let page = Page { changes: vec![Change::Note(server.stored(&id).unwrap())], cursor: "c9".into(), more: false };
    assert_eq!((before.state, before.version), (State::Pending, 2));
    let applied = b.outbox.apply_page("fake api as user", &page).unwrap();
    assert_eq!(applied.conflicts, 1);
    assert!(b.outbox.pending().unwrap().is_empty());
    let kept = b.outbox.conflicts().unwrap();
    assert_eq!((kept.len(), kept[0].side, kept[0].body.as_str()), (1, Side::Mine, "b2"));
    assert_eq!(b.state(&id), (State::Conflict, 2, "a2, again".into()));

    // The other way round: B's pending edit wins over a page with an older change of A's.
    // B keeps its edit (still pending) and keeps A's text aside: its push will overwrite it.
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = shared(&server, &mut a, &mut b, "Plan", "v1").await;
    a.outbox.edit(&id, None, Some("a2")).unwrap();
    a.sync().await;
    server.deliver();
    b.outbox.edit(&id, None, Some("b2, later")).unwrap();
    let page = Page { changes: vec![Change::Note(server.stored(&id).unwrap())], cursor: "c9".into(), more: false };
    assert_eq!(b.outbox.apply_page("fake api as user", &page).unwrap().conflicts, 1);
    assert_eq!(b.state(&id), (State::Pending, 2, "b2, later".into()), "the local edit stays");
    let kept = b.outbox.conflicts().unwrap();
    assert_eq!((kept[0].side, kept[0].body.as_str()), (Side::Theirs, "a2"));
}

#[tokio::test]
async fn a_change_the_consumer_refuses_shows_rejected_with_its_kind_and_reason_after_a_pull() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = a.outbox.add("Secret", "poison").unwrap().id;
    server.poison(&id);
    a.sync().await;
    assert_eq!(a.state(&id).0, State::Sent);
    server.deliver();
    let report = a.sync().await;
    assert_eq!(report.pulled.unwrap().rejected, 1);
    let note = a.outbox.note(&id).unwrap().unwrap();
    assert_eq!(
        (note.state, note.kind.as_deref(), note.reason.as_deref()),
        (State::Rejected, Some("invalid_field"), Some("note.body is poisoned in this test"))
    );
    assert_eq!(a.outbox.status().unwrap().rejected, 1);
    // Another device of the user sees no note and no rejection of its own.
    b.sync().await;
    assert!(b.outbox.notes(None).unwrap().is_empty());
}

#[tokio::test]
async fn applying_a_page_twice_and_pulls_that_repeat_themselves_change_nothing() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let ids: Vec<String> = (0..7).map(|i| a.outbox.add(&format!("n{i}"), "b").unwrap().id).collect();
    a.sync().await;
    server.deliver();
    let first = b.sync().await.pulled.unwrap();
    assert_eq!(first.updated, 7, "{first:?}");
    b.outbox.edit(&ids[6], None, Some("local")).unwrap();
    for _ in 0..3 {
        let again = b.sync().await.pulled.unwrap();
        assert_eq!((again.updated, again.conflicts), (0, 0), "the repeated items are known: {again:?}");
    }
    let page = Page { changes: vec![Change::Note(server.stored(&ids[0]).unwrap())], cursor: "c1".into(), more: false };
    for _ in 0..2 {
        let applied = b.outbox.apply_page("fake api as user", &page).unwrap();
        assert_eq!((applied.known, applied.updated), (1, 0));
    }
    assert_eq!(b.state(&ids[6]), (State::Sent, 2, "local".into()), "the local edit is untouched");
    assert_eq!(b.outbox.notes(None).unwrap().len(), 7);
}

#[tokio::test]
async fn an_unreachable_api_keeps_every_change_pending_and_says_why() {
    let server = Server::new();
    let mut a = Phone::new(&server);
    server.set_down(true);
    let id = a.outbox.add("t", "b").unwrap().id;
    let report = a.sync().await;
    assert_eq!(report.unreachable.as_deref(), Some("connection refused"));
    assert_eq!((report.pending, report.pulled.is_none()), (1, true), "no pull while the push could not go");
    assert_eq!(a.state(&id).0, State::Pending);
    assert_eq!(a.outbox.status().unwrap().last_error.as_deref(), Some("connection refused"));
    server.set_down(false);
    assert_eq!(a.sync().await.pending, 0);
}

/// The client cannot tell whether a device that wrote a newer version had seen ours: a change
/// accepted but never seen stored is kept as a conflict when a newer one of another device's
/// turns up (nothing is lost; a sync waits to see its own changes stored to keep this rare).
#[tokio::test]
async fn a_change_never_seen_stored_and_then_superseded_is_kept_as_a_conflict_not_dropped() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = shared(&server, &mut a, &mut b, "Plan", "a1").await;
    b.outbox.edit(&id, None, Some("b2")).unwrap();
    b.sync().await;
    server.deliver();
    a.sync().await;
    assert_eq!(a.state(&id), (State::Conflict, 2, "b2".into()));
    assert_eq!(a.outbox.conflicts().unwrap()[0].body, "a1");
}

#[tokio::test]
async fn a_sync_that_waits_sees_its_own_change_stored_and_says_synced() {
    let server = Server::new();
    let mut a = Phone::new(&server);
    let id = a.outbox.add("Plan", "a1").unwrap().id;
    let lease = Lease::new(Duration::from_secs(60));
    let delivery = {
        let server = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            server.deliver();
        })
    };
    let report = sync_once(
        &mut a.outbox,
        &a.api,
        &Run { lease: &lease, stop: &AtomicBool::new(false), confirm_within: Duration::from_secs(5) },
        &mut |_| {},
    )
    .await
    .unwrap();
    delivery.await.unwrap();
    assert_eq!(report.pulled.unwrap().synced, 1);
    assert_eq!(a.state(&id).0, State::Synced);
}

/// Both devices edit offline; the laptop syncs first and sees its v2 stored; the phone's v2,
/// later in time, then replaces it (the consumer's tie-break). The laptop's text is not
/// dropped: same version, another client, after ours was stored: a conflict on the laptop.
#[tokio::test]
async fn a_stored_version_replaced_by_a_concurrent_one_of_the_same_version_is_kept_as_a_conflict() {
    let server = Server::new();
    let (mut laptop, mut phone) = (Phone::new(&server), Phone::new(&server));
    let id = shared(&server, &mut laptop, &mut phone, "Groceries", "milk").await;
    laptop.outbox.edit(&id, None, Some("milk, eggs")).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    phone.outbox.edit(&id, None, Some("milk, bread")).unwrap();
    laptop.sync().await;
    server.deliver();
    laptop.sync().await;
    assert_eq!(laptop.state(&id), (State::Synced, 2, "milk, eggs".into()));
    phone.sync().await;
    server.deliver();
    laptop.sync().await;
    phone.sync().await;
    assert_eq!(server.stored(&id).unwrap().body.as_deref(), Some("milk, bread"));
    assert_eq!(laptop.state(&id), (State::Conflict, 2, "milk, bread".into()));
    assert_eq!(laptop.outbox.conflicts().unwrap()[0].body, "milk, eggs", "the laptop's text is kept");
    assert_eq!(phone.state(&id), (State::Synced, 2, "milk, bread".into()));

    // The laptop keeps its text; once the phone pulls it, nothing is left aside anywhere.
    laptop.outbox.resolve(&id, Keep::Mine).unwrap();
    laptop.sync().await;
    server.deliver();
    laptop.sync().await;
    phone.sync().await;
    for device in [&laptop, &phone] {
        assert_eq!(device.state(&id), (State::Synced, 3, "milk, eggs".into()));
        assert!(device.outbox.conflicts().unwrap().is_empty(), "a text the server holds is let go");
    }
}

/// A device that edits a note three times offline sends one version above what it built on
/// (not three): against another device's one edit it is a tie the loser is told about, never
/// a higher version taken for one made on top of the other's.
#[tokio::test]
async fn several_offline_edits_on_one_device_do_not_outrank_a_concurrent_edit_unseen() {
    let server = Server::new();
    let (mut a, mut b) = (Phone::new(&server), Phone::new(&server));
    let id = shared(&server, &mut a, &mut b, "Plan", "v1").await;
    a.outbox.edit(&id, None, Some("a once")).unwrap();
    a.sync().await;
    server.deliver();
    a.sync().await;
    for text in ["b 1", "b 2", "b 3"] {
        std::thread::sleep(Duration::from_millis(2));
        b.outbox.edit(&id, None, Some(text)).unwrap();
    }
    assert_eq!(b.outbox.pending().unwrap()[0].version, 2, "one version above v1");
    b.sync().await;
    server.deliver();
    a.sync().await;
    b.sync().await;
    // B's v2 is later: it wins the tie; A, whose v2 was stored first, keeps its text.
    assert_eq!(server.stored(&id).unwrap().body.as_deref(), Some("b 3"));
    assert_eq!(a.state(&id).0, State::Conflict);
    assert_eq!(a.outbox.conflicts().unwrap()[0].body, "a once");
}
