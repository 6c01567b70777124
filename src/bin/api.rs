//! The sync API function (`docs/API.md`): HTTP events from API Gateway (or a function URL, or
//! `cargo lambda watch`) answered by `notes_sync::api`.
//!
//! Thin by design: read the configuration, build the clients once per process, then adapt
//! each `lambda_http` request to the API's own request type and back.

use std::process::ExitCode;
use std::sync::Arc;

use lambda_http::{Body, RequestExt, Response, service_fn};
use notes_sync::api::auth::{JwksUrl, TokenPolicy, Verifier};
use notes_sync::api::config::ApiConfig;
use notes_sync::api::{Api, Request};
use notes_sync::notes::{Feed, QueueSender};

#[tokio::main]
async fn main() -> ExitCode {
    notes_sync::logging::init_json_logs(
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
    );
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "api stopped");
            eprintln!("api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = ApiConfig::from_env()?;
    let sdk = notes_sync::aws::sdk_config().await;
    // The JWKS comes over HTTPS with the same compiled-in roots as the SDK's calls.
    let roots = notes_sync::aws::root_certificates().iter().filter_map(|der| reqwest::Certificate::from_der(der).ok());
    let http = reqwest::Client::builder()
        .tls_certs_only(roots)
        .connect_timeout(std::time::Duration::from_secs(2))
        .timeout(std::time::Duration::from_secs(5))
        .build()?;
    let verifier = Verifier::new(
        TokenPolicy::cognito(&config.region, &config.user_pool_id, config.client_ids.clone()),
        JwksUrl::new(config.jwks_url.clone(), http),
    );
    let api = Arc::new(Api::new(
        verifier,
        QueueSender::new(aws_sdk_sqs::Client::new(&sdk), config.queue_url.clone()),
        Feed::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name.clone(), config.pull_overlap),
    ));
    lambda_http::run(service_fn(move |event: lambda_http::Request| {
        let api = api.clone();
        async move { Ok::<_, lambda_http::Error>(answer(&api, event).await) }
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

async fn answer<K, Q, R>(api: &Api<K, Q, R>, event: lambda_http::Request) -> Response<Body>
where
    K: notes_sync::api::auth::KeySource,
    Q: notes_sync::api::ChangeQueue,
    R: notes_sync::api::NoteReader,
{
    let query: Vec<(String, String)> =
        event.query_string_parameters().iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    let authorization = event.headers().get("authorization").and_then(|v| v.to_str().ok());
    let request = Request {
        method: event.method().as_str(),
        path: event.uri().path(),
        query: &query,
        authorization,
        body: event.body().as_ref(),
    };
    let answer = api.handle(request).await;
    let mut response = Response::builder().status(answer.status).header("content-type", "application/json");
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body(Body::Text(answer.body)).expect("a status and plain headers")
}
