//! `cargo bench --bench api`: the sync API's push in-process, as `Api::handle` answers it in the
//! function: the bearer token checked (RS256 against a key set, as with the pool's JWKS), each
//! change validated and written again, the per-change answer serialised; the queue a no-op
//! (`NoQueue`), so the figure is the API's own work. Requests of 1, 10 and 100 changes; one
//! table of µs per request and per change, and the token check alone.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it checks that each request is
//! answered 200 with every change accepted.

use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use notes_sync::api::auth::{Keys, StaticKeys, TokenPolicy, Verifier};
use notes_sync::api::{Api, NoQueue, NoteReader, Request};
use notes_sync::notes::{Cursor, Owner, Page, StoreError, StoredNote};
use serde_json::json;

const POOL: &str = "us-east-1_BenchPool";
const CLIENT: &str = "bench-app-client";
const SIZES: [usize; 3] = [1, 10, 100];

/// Pushes never read; the bench measures no pull.
struct NoReader;

impl NoteReader for NoReader {
    async fn page(&self, _owner: &Owner, cursor: Cursor, _limit: u32) -> Result<Page, StoreError> {
        Ok(Page { changes: Vec::new(), cursor, more: false })
    }
    async fn note(&self, _owner: &Owner, _id: &str) -> Result<Option<StoredNote>, StoreError> {
        Ok(None)
    }
}

type BenchApi = Api<StaticKeys, NoQueue, NoReader>;

fn api() -> BenchApi {
    let jwks = include_str!("../../tests/fixtures/test-jwks.json");
    let keys = StaticKeys(Arc::new(Keys::from_jwks(jwks).expect("the fixture JWKS")));
    Api::new(Verifier::new(TokenPolicy::cognito("us-east-1", POOL, vec![CLIENT.into()]), keys), NoQueue, NoReader)
}

fn bearer() -> String {
    let pem = include_str!("../../tests/fixtures/test-signing-key.pem");
    let base64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key = EncodingKey::from_rsa_der(&aws_smithy_types::base64::decode(base64).expect("base64"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iss": format!("https://cognito-idp.us-east-1.amazonaws.com/{POOL}"),
        "sub": "3f9c2e57-7d0b-4b6e-9c1d-2a4f5e6b7c8d", "client_id": CLIENT, "token_use": "access",
        "exp": now + 24 * 3600, "iat": now});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-key-1".into());
    format!("Bearer {}", jsonwebtoken::encode(&header, &claims, &key).expect("signs"))
}

/// A push of `n` changes shaped like the client's (a ~300-byte note each).
fn body(n: usize) -> String {
    let changes: Vec<_> = (0..n)
        .map(|i| {
            json!({"schema": 1, "op": "upsert", "client_id": "laptop-7f3a",
                "note": {"id": format!("n-{i:04}-3f9c2e57"), "version": 3, "title": "Groceries for the week",
                    "body": "milk, eggs, bread, coffee, apples, a birthday card for Sam, batteries (AA), and olive oil. ".repeat(2),
                    "updated_at": "2026-11-27T10:00:00Z"}})
        })
        .collect();
    json!({ "changes": changes }).to_string()
}

fn answer(runtime: &tokio::runtime::Runtime, api: &BenchApi, authorization: &str, body: &str) -> (u16, String) {
    let request = Request {
        method: "POST",
        path: "/v1/changes",
        query: &[],
        authorization: Some(authorization),
        body: body.as_bytes(),
    };
    let response = runtime.block_on(api.handle(request));
    (response.status, response.body)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let (api, authorization) = (api(), bearer());
    if !std::env::args().any(|a| a == "--bench") {
        for n in SIZES {
            let (status, body) = answer(&runtime, &api, &authorization, &body(n));
            assert_eq!(status, 200, "{body}");
            assert_eq!(body.matches(r#""status":"accepted""#).count(), n, "{body}");
        }
        println!("bench api: every change of every request accepted");
        return;
    }
    // The function's request log line is not what is measured.
    let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::new());
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion");
    let mut criterion = Criterion::default().output_directory(&dir).configure_from_args();
    let mut rows = Vec::new();
    let verifier_only = {
        let jwks = include_str!("../../tests/fixtures/test-jwks.json");
        let keys = StaticKeys(Arc::new(Keys::from_jwks(jwks).unwrap()));
        Verifier::new(TokenPolicy::cognito("us-east-1", POOL, vec![CLIENT.into()]), keys)
    };
    let mut group = criterion.benchmark_group("api");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    let started = std::time::Instant::now();
    group.bench_function("token_check", |b| {
        b.iter(|| runtime.block_on(verifier_only.verify(Some(&authorization))).expect("valid"))
    });
    for n in SIZES {
        let body = body(n);
        group.bench_function(format!("push_{n}"), |b| b.iter(|| answer(&runtime, &api, &authorization, &body)));
        rows.push((n, body.len()));
    }
    group.finish();
    let median_ns = |id: &str| -> f64 {
        let path = dir.join("api").join(id).join("new").join("estimates.json");
        let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("estimates")).unwrap();
        estimates["median"]["point_estimate"].as_f64().expect("a median")
    };
    println!();
    println!("api bench: POST /v1/changes in-process (token check + validation + answer; no-op queue), medians");
    println!();
    println!("| changes per request | request bytes | µs per request | µs per change |");
    println!("|---:|---:|---:|---:|");
    for (n, bytes) in rows {
        let ns = median_ns(&format!("push_{n}"));
        println!("| {n} | {bytes} | {:.1} | {:.2} |", ns / 1e3, ns / 1e3 / n as f64);
    }
    println!();
    println!(
        "token check alone (RS256 verify + claims): {:.1} µs; bench wall {:.0} s",
        median_ns("token_check") / 1e3,
        started.elapsed().as_secs_f64()
    );
}
