//! The sync API against the real parts: moto's Cognito issuing real signed tokens and serving
//! the pool's JWKS, the `api` function under `cargo lambda watch`, LocalStack's SQS, the consumer
//! polling it, and moto's DynamoDB. Each authorization rule shows the denial and that nothing
//! was read, written or sent.

mod common;

use std::time::Duration;

use common::cognito::{Cognito, claims};
use common::system::{System, eventually};
use notes_sync::notes::{Change, Cursor, DynamoNoteStore, Feed, NoteMessage, Owner};
use serde_json::{Value, json};

fn change(id: &str, version: u64, title: &str) -> Value {
    json!({"schema": 1, "op": "upsert", "client_id": "laptop",
        "note": {"id": id, "version": version, "title": title, "body": format!("body of {id}"), "updated_at": "2026-11-27T10:00:00Z"}})
}

fn push(changes: &[Value]) -> Value {
    json!({ "changes": changes })
}

/// Every change of a pull, through as many pages as it takes.
async fn pull_all(api: &common::api::LocalApi, token: &str) -> Vec<Value> {
    let (mut changes, mut cursor) = (Vec::new(), String::new());
    loop {
        let (status, page) = api.call("GET", &format!("/v1/changes?since={cursor}&limit=2"), Some(token), None).await;
        assert_eq!(status, 200, "{page}");
        changes.extend(page["changes"].as_array().unwrap().iter().cloned());
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["more"] == false {
            return changes;
        }
    }
}

fn stored_of(
    system: &System,
    owner: &str,
    id: &str,
) -> impl std::future::Future<Output = Option<(u64, bool, Option<String>)>> {
    let (dynamodb, table, owner, id) =
        (system.dynamodb.clone(), system.resources.str("table").to_owned(), owner.to_owned(), id.to_owned());
    async move { common::stored_of(&dynamodb, &table, &owner, &id).await }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_pushes_three_changes_one_invalid_and_pulls_back_only_their_own() {
    crate::require_emulators!();
    let system = System::new("standard").await;
    let _consumer = system.start_consumer();
    let api = system.start_api(&[]);
    let cognito = system.cognito().await;
    let (alice, bob) = (cognito.user("alice").await, cognito.user("bob").await);

    let body = push(&[change("n-1", 1, "Groceries"), change("n-2", 1, &"t".repeat(1100)), change("n-3", 2, "Plan")]);
    let (status, answer) = api.call("POST", "/v1/changes", Some(&alice.access_token), Some(&body)).await;
    assert_eq!(status, 200, "{answer}");
    let statuses: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["accepted", "rejected", "accepted"]);
    assert_eq!(answer["results"][1]["kind"], "invalid_field");

    eventually("alice's two notes stored", Duration::from_secs(30), || async {
        stored_of(&system, &alice.sub, "n-1").await.is_some() && stored_of(&system, &alice.sub, "n-3").await.is_some()
    })
    .await;
    assert_eq!(stored_of(&system, &alice.sub, "n-2").await, None, "the invalid change was never sent");
    let mine = pull_all(&api, &alice.access_token).await;
    let ids: Vec<&str> = mine.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["n-1", "n-3"], "{mine:?}");
    assert!(pull_all(&api, &bob.access_token).await.is_empty(), "bob's pull has none of alice's changes");

    let (status, note) = api.call("GET", "/v1/notes/n-1", Some(&alice.access_token), None).await;
    assert_eq!((status, note["title"].as_str()), (200, Some("Groceries")));
    let theirs = api.call("GET", "/v1/notes/n-1", Some(&bob.access_token), None).await;
    let none = api.call("GET", "/v1/notes/n-404", Some(&bob.access_token), None).await;
    assert_eq!(theirs, none, "someone else's note and no note answer alike");
    assert_eq!(theirs.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_overwrite_or_tombstone_a_note_and_an_owner_in_the_body_is_ignored() {
    crate::require_emulators!();
    let system = System::new("standard").await;
    let _consumer = system.start_consumer();
    let api = system.start_api(&[]);
    let cognito = system.cognito().await;
    let (alice, bob) = (cognito.user("alice").await, cognito.user("bob").await);
    api.call("POST", "/v1/changes", Some(&alice.access_token), Some(&push(&[change("shared", 1, "alice's")]))).await;
    eventually("alice's note", Duration::from_secs(30), || async {
        stored_of(&system, &alice.sub, "shared").await.is_some()
    })
    .await;

    // Bob writes alice's note id, claims to be alice in the body, and tombstones it at 2^53.
    let mut forged = change("shared", 5, "bob's");
    forged["owner"] = json!(alice.sub);
    forged["note"]["owner"] = json!(alice.sub);
    let tombstone = json!({"schema": 1, "op": "delete", "client_id": "bob-phone", "owner": alice.sub,
        "note": {"id": "shared", "version": 1u64 << 53, "updated_at": "2026-11-27T10:00:00Z"}});
    let (status, answer) = api.call("POST", "/v1/changes", Some(&bob.access_token), Some(&push(&[forged]))).await;
    assert_eq!((status, answer["results"][0]["status"].as_str()), (200, Some("accepted")));
    api.call("POST", "/v1/changes", Some(&bob.access_token), Some(&push(&[tombstone]))).await;
    eventually("bob's own tombstone", Duration::from_secs(30), || async {
        stored_of(&system, &bob.sub, "shared").await.is_some_and(|(v, deleted, _)| v == 1 << 53 && deleted)
    })
    .await;
    assert_eq!(stored_of(&system, &alice.sub, "shared").await, Some((1, false, Some("alice's".into()))));

    // Alice's note stays hers and editable.
    api.call("POST", "/v1/changes", Some(&alice.access_token), Some(&push(&[change("shared", 2, "alice again")])))
        .await;
    eventually("alice's edit", Duration::from_secs(30), || async {
        stored_of(&system, &alice.sub, "shared").await == Some((2, false, Some("alice again".into())))
    })
    .await;
    let (_, note) = api.call("GET", "/v1/notes/shared", Some(&alice.access_token), None).await;
    assert_eq!(note["title"], "alice again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_one_401_and_nothing_reaches_the_queue() {
    crate::require_emulators!();
    let system = System::new("standard").await;
    // No consumer: whatever the API sent would stay on the queue.
    let api = system.start_api(&[]);
    let cognito = system.cognito().await;
    let alice = cognito.user("alice").await;
    let other_pool = Cognito::new(&system.moto.endpoint()).await;
    let stranger = other_pool.user("alice").await;
    let other_client = {
        let id = cognito
            .client
            .create_user_pool_client()
            .user_pool_id(&cognito.pool_id)
            .client_name("another-app")
            .explicit_auth_flows(aws_sdk_cognitoidentityprovider::types::ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .send()
            .await
            .unwrap()
            .user_pool_client
            .and_then(|c| c.client_id)
            .unwrap();
        let app = Cognito::provisioned(&system.moto.endpoint(), &cognito.pool_id, &id).await;
        app.sign_in("alice", &alice.password).await
    };
    let mut expired = claims(&alice.access_token);
    expired["exp"] = json!(expired["iat"].as_u64().unwrap() - 3600);
    let expired = cognito.forge(&expired);
    let (head, rest) = alice.access_token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let tampered_payload = {
        let mut c = claims(&alice.access_token);
        c["sub"] = json!("someone-else");
        aws_smithy_types::base64::encode(c.to_string()).trim_end_matches('=').replace('+', "-").replace('/', "_")
    };
    let none = aws_smithy_types::base64::encode(r#"{"alg":"none","kid":"dummy"}"#).trim_end_matches('=').to_owned();
    let cases = [
        ("malformed", "not-a-token".to_owned()),
        ("bad signature", format!("{head}.{tampered_payload}.{signature}")),
        ("alg none", format!("{none}.{payload}.")),
        ("expired", expired),
        ("another pool's", stranger.access_token.clone()),
        ("another client's", other_client.access_token.clone()),
        ("an ID token", alice.id_token.clone()),
    ];
    let body = push(&[change("n-1", 1, "t")]);
    let (status, answer) = api.call("POST", "/v1/changes", None, Some(&body)).await;
    assert_eq!((status, &answer), (401, &json!({"error": "invalid_token", "message": "invalid token"})), "missing");
    for (case, token) in &cases {
        for (method, path) in [("POST", "/v1/changes"), ("GET", "/v1/changes"), ("GET", "/v1/notes/n-1")] {
            let body = (method == "POST").then_some(&body);
            let (status, answer) = api.call(method, path, Some(token), body).await;
            assert_eq!(
                (status, &answer),
                (401, &json!({"error": "invalid_token", "message": "invalid token"})),
                "{case}"
            );
        }
    }
    assert_eq!(system.depth(system.resources.str("queue_url")).await, 0, "nothing was sent");
    // The same request with alice's own token goes through.
    let (status, _) = api.call("POST", "/v1/changes", Some(&alice.access_token), Some(&body)).await;
    assert_eq!(status, 200);
    eventually("one message sent", Duration::from_secs(10), || async {
        system.depth(system.resources.str("queue_url")).await == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_consumer_dead_letters_reaches_its_author_as_a_rejection() {
    crate::require_emulators!();
    let system = System::new("standard").await;
    let _consumer = system.start_consumer();
    let api = system.start_api(&[]);
    let alice = system.cognito().await.user("alice").await;
    // A trusted sender's change for alice that fails the consumer's validation (the API would
    // refuse it itself), and one without any owner at all.
    let bad = change("n-9", 4, "t").to_string().replace("2026-11-27T10:00:00Z", "yesterday");
    let owner = common::owner_attribute(&alice.sub);
    system
        .sqs
        .send_message()
        .queue_url(system.resources.str("queue_url"))
        .message_body(&bad)
        .message_attributes(notes_sync::notes::OWNER_ATTRIBUTE, owner)
        .send()
        .await
        .unwrap();
    system
        .sqs
        .send_message()
        .queue_url(system.resources.str("queue_url"))
        .message_body(change("n-8", 1, "no owner").to_string())
        .send()
        .await
        .unwrap();
    eventually("both dead-lettered", Duration::from_secs(30), || async {
        system.depth(system.resources.str("dlq_url")).await == 2
    })
    .await;
    let changes = pull_all(&api, &alice.access_token).await;
    assert_eq!(
        changes,
        [json!({"type": "rejection", "id": "n-9", "version": 4, "client_id": "laptop", "kind": "invalid_field",
            "reason": "note.updated_at is not an RFC 3339 date-time", "applied_at": changes[0]["applied_at"]})]
    );
    let letters = common::receive(&system.sqs, system.resources.str("dlq_url"), 10, 1).await;
    let kinds: std::collections::BTreeSet<&str> = letters
        .iter()
        .map(|m| {
            m.message_attributes().unwrap()[sqs_partial_batch::queue::attribute::ERROR_KIND].string_value().unwrap()
        })
        .collect();
    assert_eq!(kinds, ["invalid_field", "missing_owner"].into());
    assert_eq!(system.stored_count().await, 0, "nothing stored");
}

/// The pull's trap, forced: a write stamped before another commits after it, and after a pull
/// has already seen the later one. A cursor on the last `applied_at` seen would skip it.
#[tokio::test]
async fn a_write_that_commits_late_is_still_pulled() {
    crate::require_emulators!();
    let moto = common::Emulator::moto();
    let dynamodb = aws_sdk_dynamodb::Client::new(&common::sdk(&moto.endpoint()).await);
    common::create_table(&dynamodb, "notes").await;
    let store = DynamoNoteStore::new(dynamodb.clone(), "notes");
    let overlap = Duration::from_secs(30);
    let feed = Feed::new(dynamodb.clone(), "notes", overlap);
    let alice = Owner::parse("alice").unwrap();
    let body = |id: &str| common::note("upsert", id, 1, id);
    let (early, late) = (body("stamped-first"), body("stamped-second"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;

    // Consumer 1 stamps its write at t, then stalls; consumer 2 stamps t + 2 s and commits.
    store.apply_stamped(&alice, &NoteMessage::parse(&late).unwrap(), now + 2_000).await.unwrap();
    let page = feed.page(&alice, Cursor::default(), 100).await.unwrap();
    let seen: Vec<String> = ids(&page.changes);
    assert_eq!(seen, ["stamped-second"]);
    assert!(!page.more);
    // Now consumer 1's write commits, with its earlier stamp.
    store.apply_stamped(&alice, &NoteMessage::parse(&early).unwrap(), now).await.unwrap();
    let next = feed.page(&alice, page.cursor, 100).await.unwrap();
    assert!(ids(&next.changes).contains(&"stamped-first".to_owned()), "the late write was skipped: {:?}", next.changes);
    // The trap itself: a cursor at the last stamp seen would have skipped it.
    let naive = Cursor::parse(&format!("c1.{}", now + 2_000)).unwrap();
    assert!(!ids(&feed.page(&alice, naive, 100).await.unwrap().changes).contains(&"stamped-first".to_owned()));
    // Once everything is older than the overlap, the next pull starts after it.
    let cursor = Cursor::parse(&format!("c1.{}", now + 3_000)).unwrap();
    assert!(feed.page(&alice, cursor, 100).await.unwrap().changes.is_empty());
    // And the index is the table's own: every change of the owner, none of another's.
    let bob = Owner::parse("bob").unwrap();
    assert!(feed.page(&bob, Cursor::default(), 100).await.unwrap().changes.is_empty());
}

fn ids(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Note(n) => n.id.clone(),
            Change::Rejection(r) => r.id.clone(),
        })
        .collect()
}

#[tokio::test]
async fn a_pull_pages_through_many_changes_in_order_and_misses_none() {
    crate::require_emulators!();
    let moto = common::Emulator::moto();
    let dynamodb = aws_sdk_dynamodb::Client::new(&common::sdk(&moto.endpoint()).await);
    common::create_table(&dynamodb, "notes").await;
    let store = DynamoNoteStore::new(dynamodb.clone(), "notes");
    let feed = Feed::new(dynamodb, "notes", Duration::from_secs(30));
    let alice = Owner::parse("alice").unwrap();
    let bodies: Vec<String> = (0..25).map(|i| common::note("upsert", &format!("n{i:02}"), 1, "t")).collect();
    for (i, body) in bodies.iter().enumerate() {
        // Several changes share an instant: a page must not end inside one.
        store.apply_stamped(&alice, &NoteMessage::parse(body).unwrap(), 1_000 + (i as u64 / 3)).await.unwrap();
    }
    let (mut all, mut cursor, mut pages) = (Vec::new(), Cursor::default(), 0);
    loop {
        let page = feed.page(&alice, cursor, 4).await.unwrap();
        pages += 1;
        all.extend(ids(&page.changes));
        cursor = page.cursor;
        if !page.more {
            break;
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    assert_eq!(all, expected, "every change once, oldest first");
    // Four changes, then the rest of the fourth's instant: six per page, three instants of three.
    assert_eq!(pages, 5, "25 changes in pages of six");
}
