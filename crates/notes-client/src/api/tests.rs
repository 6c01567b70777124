//! The API client over real HTTP, against a scripted server on 127.0.0.1: what it sends, how it
//! reads each answer, and a 401 renewing the token once.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::*;
use crate::auth::{Tokens, sign_in, token};
use crate::outbox::{OpenOptions, Outbox};

/// Hands out a new token per call (`t1`, `t2`, ... as the subject's suffix), never refused.
#[derive(Default)]
struct CountingIdp(AtomicU32);

impl IdentityProvider for CountingIdp {
    async fn sign_in(&self, _: &str, _: &str) -> Result<Tokens, AuthError> {
        Ok(self.next())
    }
    async fn refresh(&self, _: &str) -> Result<Tokens, AuthError> {
        Ok(self.next())
    }
}

impl CountingIdp {
    fn next(&self) -> Tokens {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        // The same subject always; the expiry differs, so each token is distinct.
        let exp = crate::outbox::now_ms() / 1000 + 3600 + n as i64;
        Tokens { access_token: token("sub-a", exp), refresh_token: Some("r".into()), expires_in_s: 3600 }
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    authorization: String,
    body: String,
}

/// Answers each request with the next `(status, body)` of the script, recording what it saw.
async fn server(script: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/prod", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        for (status, answer) in script {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            let (mut line, mut authorization, mut length) = (String::new(), String::new(), 0);
            stream.read_line(&mut line).await.unwrap();
            loop {
                let mut header = String::new();
                stream.read_line(&mut header).await.unwrap();
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(": ").unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "authorization" => authorization = value.to_owned(),
                    "content-length" => length = value.parse().unwrap(),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.unwrap();
            record.lock().unwrap().push(Seen {
                line: line.trim_end().to_owned(),
                authorization,
                body: String::from_utf8(body).unwrap(),
            });
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.get_mut().write_all(response.as_bytes()).await.unwrap();
        }
    });
    (base, seen)
}

async fn transport(dir: &tempfile::TempDir, base: &str) -> ApiTransport<CountingIdp> {
    let path = dir.path().join("notes.db");
    let mut outbox = Outbox::open(&path, &OpenOptions::default()).unwrap();
    sign_in(&CountingIdp::default(), &mut outbox, "alice", "pw").await.unwrap();
    let auth = Authenticator::new(CountingIdp(AtomicU32::new(10)), outbox).unwrap();
    ApiTransport::new(base, auth).unwrap()
}

fn outgoing(bodies: &[&'static str]) -> Vec<Outgoing<'static>> {
    bodies.iter().map(|b| Outgoing { note_id: "n", version: 1, body: b }).collect()
}

#[tokio::test]
async fn a_push_posts_the_changes_with_the_token_and_reads_each_changes_fate() {
    let answer = r#"{"results":[{"index":0,"id":"a","version":1,"status":"accepted"},
        {"index":1,"id":"b","version":1,"status":"rejected","kind":"invalid_field","reason":"too long"},
        {"index":2,"status":"retry","reason":"the queue did not take it: resend"}]}"#;
    let (base, seen) = server(vec![(200, answer)]).await;
    let dir = tempfile::tempdir().unwrap();
    let api = transport(&dir, &base).await;
    let results = api.send_batch(&outgoing(&[r#"{"x":1}"#, r#"{"x":2}"#, r#"{"x":3}"#, r#"{"x":4}"#])).await.unwrap();
    assert_eq!(
        results,
        vec![
            EntryResult::Accepted,
            EntryResult::Rejected { kind: "invalid_field".into(), reason: "too long".into() },
            EntryResult::Retry("the queue did not take it: resend".into()),
            EntryResult::Retry("no answer for this change".into()),
        ]
    );
    let seen = seen.lock().unwrap()[0].clone();
    assert_eq!(seen.line, "POST /prod/v1/changes HTTP/1.1");
    assert!(seen.authorization.starts_with("Bearer eyJ"), "{}", seen.authorization);
    assert_eq!(seen.body, r#"{"changes":[{"x":1},{"x":2},{"x":3},{"x":4}]}"#);
}

#[tokio::test]
async fn a_401_renews_the_token_once_and_repeats_the_request_and_a_second_says_sign_in_again() {
    let page = r#"{"changes":[],"cursor":"c1.5","more":false}"#;
    let (base, seen) = server(vec![(401, r#"{"error":"invalid_token"}"#), (200, page)]).await;
    let dir = tempfile::tempdir().unwrap();
    let api = transport(&dir, &base).await;
    let got = api.pull(Some("c1.0")).unwrap().await.unwrap();
    assert_eq!(got.cursor, "c1.5");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].line, "GET /prod/v1/changes?since=c1.0&limit=1000 HTTP/1.1");
    assert_ne!(seen[0].authorization, seen[1].authorization, "the repeat carries the renewed token");

    let (base, _) = server(vec![(401, "{}"), (401, "{}")]).await;
    let dir = tempfile::tempdir().unwrap();
    let api = transport(&dir, &base).await;
    let err = api.send_batch(&outgoing(&["{}"])).await.unwrap_err();
    assert!(matches!(err, TransportError::SignInAgain { .. }), "{err}");
}

#[tokio::test]
async fn errors_and_a_closed_port_are_unreachable_with_the_apis_message() {
    let (base, _) =
        server(vec![(503, r#"{"error":"unavailable","message":"the notes table is unavailable: retry"}"#)]).await;
    let dir = tempfile::tempdir().unwrap();
    let api = transport(&dir, &base).await;
    let err = api.pull(None).unwrap().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "pull: the API answered 503 Service Unavailable: the notes table is unavailable: retry"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let api = transport(&tempfile::tempdir().unwrap(), &format!("http://{closed}")).await;
    let err = api.send_batch(&outgoing(&["{}"])).await.unwrap_err();
    assert!(matches!(err, TransportError::Unreachable { .. }), "{err}");
    assert!(
        ApiTransport::new("ftp://x", Authenticator::new(CountingIdp::default(), signed_in(&dir)).unwrap()).is_err()
    );
}

fn signed_in(dir: &tempfile::TempDir) -> Outbox {
    Outbox::open(&dir.path().join("notes.db"), &OpenOptions::default()).unwrap()
}
