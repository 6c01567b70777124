//! The API's rules, one test each, with the repository's test signing key
//! (`tests/fixtures/test-signing-key.pem`), a recording queue and an in-memory reader behind the
//! API's own traits. The real JWKS, Cognito tokens, SQS and DynamoDB are `tests/sync_api.rs`'s.

use std::sync::{Arc, Mutex};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::auth::{Keys, StaticKeys, TokenPolicy, Verifier};
use super::*;
use crate::notes::{Change, Cursor, Page, StoreError, StoredNote};

const POOL: &str = "us-east-1_TestPool";
const CLIENT: &str = "test-app-client";
const JWKS: &str = include_str!("../../tests/fixtures/test-jwks.json");
const SIGNING_KEY: &str = include_str!("../../tests/fixtures/test-signing-key.pem");

fn issuer() -> String {
    format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// The claims of a valid access token for `sub`.
fn claims(sub: &str) -> Value {
    json!({"iss": issuer(), "sub": sub, "client_id": CLIENT, "token_use": "access", "exp": now() + 600, "iat": now()})
}

fn signing_key() -> EncodingKey {
    let base64: String = SIGNING_KEY.lines().filter(|l| !l.starts_with("-----")).collect();
    EncodingKey::from_rsa_der(&aws_smithy_types::base64::decode(base64).unwrap())
}

fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    jsonwebtoken::encode(&header, claims, &signing_key()).unwrap()
}

fn bearer(sub: &str) -> String {
    format!("Bearer {}", sign(&claims(sub)))
}

/// Remembers what it was asked to send; answers each change as `answer` says.
#[derive(Default)]
struct RecordingQueue {
    sent: Mutex<Vec<(String, String, String)>>,
    answer: Option<fn(&str) -> Sent>,
}

impl ChangeQueue for RecordingQueue {
    async fn send_batch(&self, batch: &[Outgoing<'_>]) -> Vec<Sent> {
        let mut sent = self.sent.lock().unwrap();
        batch
            .iter()
            .map(|c| {
                sent.push((c.owner.to_string(), c.note_id.to_owned(), c.body.to_owned()));
                self.answer.map_or(Sent::Accepted, |answer| answer(c.note_id))
            })
            .collect()
    }
}

/// Each owner's notes, in memory.
#[derive(Default)]
struct MemoryReader {
    notes: Vec<(String, StoredNote)>,
}

impl NoteReader for MemoryReader {
    async fn page(&self, owner: &Owner, cursor: Cursor, _limit: u32) -> Result<Page, StoreError> {
        let changes =
            self.notes.iter().filter(|(o, _)| o == owner.as_str()).map(|(_, n)| Change::Note(n.clone())).collect();
        Ok(Page { changes, cursor, more: false })
    }

    async fn note(&self, owner: &Owner, id: &str) -> Result<Option<StoredNote>, StoreError> {
        Ok(self.notes.iter().find(|(o, n)| o == owner.as_str() && n.id == id).map(|(_, n)| n.clone()))
    }
}

fn stored(id: &str, title: &str) -> StoredNote {
    StoredNote {
        id: id.into(),
        version: 2,
        updated_at: "2026-11-27T10:00:00Z".into(),
        client_id: "laptop".into(),
        deleted: false,
        title: Some(title.into()),
        body: Some("b".into()),
        applied_at: 1,
    }
}

type TestApi = Api<StaticKeys, RecordingQueue, MemoryReader>;

fn api_with(queue: RecordingQueue, reader: MemoryReader) -> TestApi {
    let keys = StaticKeys(Arc::new(Keys::from_jwks(JWKS).unwrap()));
    let policy = TokenPolicy::cognito("us-east-1", POOL, vec![CLIENT.into()]);
    Api::new(Verifier::new(policy, keys), queue, reader)
}

fn api() -> TestApi {
    api_with(RecordingQueue::default(), MemoryReader::default())
}

async fn call(api: &TestApi, method: &str, path: &str, authorization: Option<&str>, body: &str) -> (u16, Value) {
    let query: Vec<(String, String)> = path
        .split_once('?')
        .map(|(_, q)| q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect())
        .unwrap_or_default();
    let request =
        Request { method, path: path.split('?').next().unwrap(), query: &query, authorization, body: body.as_bytes() };
    let response = api.handle(request).await;
    (response.status, serde_json::from_str(&response.body).unwrap())
}

fn change(id: &str, version: u64, title: &str) -> Value {
    json!({"schema": 1, "op": "upsert", "client_id": "laptop",
        "note": {"id": id, "version": version, "title": title, "body": "milk", "updated_at": "2026-11-27T10:00:00Z"}})
}

fn push_body(changes: &[Value]) -> String {
    json!({ "changes": changes }).to_string()
}

#[tokio::test]
async fn a_push_answers_every_change_and_sends_only_the_valid_ones_with_the_callers_owner() {
    let api = api();
    let invalid = change("n-2", 1, &"t".repeat(1100));
    let body = push_body(&[change("n-1", 3, "Groceries"), invalid, change("n-3", 1, "Plan")]);
    let (status, answer) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["results"],
        json!([
            {"index": 0, "id": "n-1", "version": 3, "status": "accepted"},
            {"index": 1, "id": "n-2", "version": 1, "status": "rejected", "kind": "invalid_field",
             "reason": "note.title is 1100 bytes, more than the limit of 1024"},
            {"index": 2, "id": "n-3", "version": 1, "status": "accepted"},
        ])
    );
    let sent = api.queue.sent.lock().unwrap().clone();
    assert_eq!(
        sent.iter().map(|(o, id, _)| (o.as_str(), id.as_str())).collect::<Vec<_>>(),
        [("alice", "n-1"), ("alice", "n-3")]
    );
}

#[tokio::test]
async fn an_owner_in_the_body_is_ignored_the_caller_is_the_owner() {
    let api = api();
    let mut forged = change("n-1", 1, "t");
    forged["owner"] = json!("bob");
    forged["note"]["owner"] = json!("bob");
    // What an SQS message's attributes look like, smuggled into the change: it is not one.
    forged["messageAttributes"] = json!({"owner": {"stringValue": "bob", "dataType": "String"}});
    let (status, _) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), &push_body(&[forged])).await;
    assert_eq!(status, 200);
    let sent = api.queue.sent.lock().unwrap().clone();
    assert_eq!(sent[0].0, "alice");
    assert!(
        !sent[0].2.contains("owner") && !sent[0].2.contains("bob"),
        "only the schema's fields travel: {}",
        sent[0].2
    );
}

#[tokio::test]
async fn a_change_sqs_refuses_as_the_senders_fault_is_rejected_and_an_sqs_failure_is_retry() {
    let queue = RecordingQueue {
        answer: Some(|id| match id {
            "refused" => Sent::Refused { reason: "InvalidMessageContents: bad character".into() },
            "throttled" => Sent::Retry { reason: "RequestThrottled".into() },
            _ => Sent::Accepted,
        }),
        ..RecordingQueue::default()
    };
    let api = api_with(queue, MemoryReader::default());
    let body = push_body(&[change("refused", 1, "t"), change("throttled", 1, "t"), change("fine", 1, "t")]);
    let (_, answer) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), &body).await;
    let statuses: Vec<&str> =
        answer["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["rejected", "retry", "accepted"]);
    assert_eq!(answer["results"][0]["kind"], "refused_by_queue");
    assert_eq!(answer["results"][0]["reason"], "InvalidMessageContents: bad character");
    assert_eq!(answer["results"][1]["reason"], "the queue did not take it: resend");
}

#[tokio::test]
async fn push_limits_are_answered_413_and_400_naming_the_limit_and_nothing_is_sent() {
    let api = api();
    let many: Vec<Value> = (0..=MAX_CHANGES as u64).map(|i| change(&format!("n{i}"), 1, "t")).collect();
    let (status, answer) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), &push_body(&many)).await;
    assert_eq!((status, answer["message"].as_str().unwrap()), (400, "at most 100 changes per request, got 101"));
    let huge = format!(r#"{{"changes":[],"pad":"{}"}}"#, "x".repeat(MAX_REQUEST_BYTES));
    let (status, answer) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), &huge).await;
    assert_eq!(status, 413);
    assert!(answer["message"].as_str().unwrap().contains("more than the limit of 5242880"), "{answer}");
    for (bad, text) in [("not json", "expected ident"), (r#"{"changes":{}}"#, "changes: invalid type"), ("[]", "")] {
        let (status, answer) = call(&api, "POST", "/v1/changes", Some(&bearer("alice")), bad).await;
        assert_eq!(status, 400, "{bad}");
        assert!(answer["message"].as_str().unwrap().contains(text), "{bad}: {answer}");
    }
    assert!(api.queue.sent.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_bad_token_gets_the_same_401_and_nothing_is_read_or_sent() {
    let api =
        api_with(RecordingQueue::default(), MemoryReader { notes: vec![("alice".into(), stored("n-1", "secret"))] });
    let expired =
        sign(&json!({"iss": issuer(), "sub": "alice", "client_id": CLIENT, "token_use": "access", "exp": now() - 120}));
    let other_pool =
        sign(&json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other", "sub": "alice",
        "client_id": CLIENT, "token_use": "access", "exp": now() + 600}));
    let other_client = sign(
        &json!({"iss": issuer(), "sub": "alice", "client_id": "another-app", "token_use": "access", "exp": now() + 600}),
    );
    let id_token =
        sign(&json!({"iss": issuer(), "sub": "alice", "aud": CLIENT, "token_use": "id", "exp": now() + 600}));
    // Not a Cognito shape, but it isolates the `token_use` check from the `client_id` one.
    let id_use =
        sign(&json!({"iss": issuer(), "sub": "alice", "client_id": CLIENT, "token_use": "id", "exp": now() + 600}));
    let valid = sign(&claims("alice"));
    let (head, rest) = valid.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut flipped = signature.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let bad_signature = format!("{head}.{payload}.{}", String::from_utf8(flipped).unwrap());
    let none_header = aws_smithy_types::base64::encode(r#"{"alg":"none","typ":"JWT","kid":"test-key-1"}"#);
    let alg_none = format!("{}.{payload}.", none_header.trim_end_matches('=').replace('+', "-").replace('/', "_"));
    // The classic key confusion: HS256 "signed" with the public key's bytes.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    let hs256 =
        jsonwebtoken::encode(&hs, &claims("alice"), &EncodingKey::from_secret(JWKS.as_bytes()).unwrap()).unwrap();
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("not bearer", Some(format!("Basic {valid}"))),
        ("malformed", Some("Bearer not.a.token".into())),
        ("bad signature", Some(format!("Bearer {bad_signature}"))),
        ("alg none", Some(format!("Bearer {alg_none}"))),
        ("HS256", Some(format!("Bearer {hs256}"))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("another pool's", Some(format!("Bearer {other_pool}"))),
        ("another client's", Some(format!("Bearer {other_client}"))),
        ("an ID token", Some(format!("Bearer {id_token}"))),
        ("token_use id", Some(format!("Bearer {id_use}"))),
    ];
    for (case, authorization) in &cases {
        for (method, path, body) in [
            ("POST", "/v1/changes", push_body(&[change("n-1", 9, "overwrite")])),
            ("GET", "/v1/changes", String::new()),
            ("GET", "/v1/notes/n-1", String::new()),
        ] {
            let (status, answer) = call(&api, method, path, authorization.as_deref(), &body).await;
            assert_eq!(
                (status, &answer),
                (401, &json!({"error": "invalid_token", "message": "invalid token"})),
                "{case}"
            );
        }
    }
    assert!(api.queue.sent.lock().unwrap().is_empty(), "nothing sent");
    let (status, answer) = call(&api, "GET", "/v1/notes/n-1", Some(&format!("Bearer {valid}")), "").await;
    assert_eq!((status, answer["title"].as_str()), (200, Some("secret")), "and the valid token still works");
}

#[tokio::test]
async fn another_owners_note_is_404_exactly_like_no_note() {
    let reader = MemoryReader { notes: vec![("alice".into(), stored("n-1", "alice's"))] };
    let api = api_with(RecordingQueue::default(), reader);
    let (status, mine) = call(&api, "GET", "/v1/notes/n-1", Some(&bearer("alice")), "").await;
    assert_eq!((status, mine["title"].as_str()), (200, Some("alice's")));
    let theirs = call(&api, "GET", "/v1/notes/n-1", Some(&bearer("bob")), "").await;
    let nothing = call(&api, "GET", "/v1/notes/n-404", Some(&bearer("bob")), "").await;
    assert_eq!(theirs, nothing);
    assert_eq!(theirs.0, 404);
    let (status, changes) = call(&api, "GET", "/v1/changes", Some(&bearer("bob")), "").await;
    assert_eq!((status, changes["changes"].clone()), (200, json!([])), "bob's pull has none of alice's");
}

#[tokio::test]
async fn a_pull_answers_its_changes_and_cursor_and_refuses_bad_parameters() {
    let api = api_with(RecordingQueue::default(), MemoryReader { notes: vec![("alice".into(), stored("n-1", "t"))] });
    let (status, page) = call(&api, "GET", "/v1/changes?since=c1.17", Some(&bearer("alice")), "").await;
    assert_eq!(status, 200);
    assert_eq!(page["changes"][0]["type"], "note");
    assert_eq!(page["changes"][0]["id"], "n-1");
    assert_eq!((page["cursor"].as_str(), page["more"].as_bool()), (Some("c1.17"), Some(false)));
    for (query, text) in
        [("since=17", "`since` is not a cursor"), ("limit=0", "from 1 to 1000"), ("limit=1001", "from 1 to 1000")]
    {
        let (status, answer) = call(&api, "GET", &format!("/v1/changes?{query}"), Some(&bearer("alice")), "").await;
        assert_eq!(status, 400, "{query}");
        assert!(answer["message"].as_str().unwrap().contains(text), "{query}: {answer}");
    }
}

#[tokio::test]
async fn routes_and_methods_outside_the_api_are_named() {
    let api = api();
    let (status, _) = call(&api, "DELETE", "/v1/changes", Some(&bearer("alice")), "").await;
    assert_eq!(status, 405);
    let (status, _) = call(&api, "GET", "/v2/changes", Some(&bearer("alice")), "").await;
    assert_eq!(status, 404);
    // An API stage before `/v1/` is ignored.
    let (status, _) = call(&api, "GET", "/prod/v1/changes", Some(&bearer("alice")), "").await;
    assert_eq!(status, 200);
}
