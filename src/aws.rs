//! The one AWS SDK configuration a function builds its clients from: an HTTPS client that
//! trusts the Mozilla root certificates compiled into the binary and is built on first use,
//! and bounded attempts, so that a hung connection cannot eat an invocation.
//!
//! The SDK's default client read the system's CA store file by file before the first
//! invocation (440 of ~1,100 system calls at cold start) and built a throwaway connector for
//! each client; this one does no TLS work before a request.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The SDK configuration from the environment (region, credentials, endpoint overrides), with
/// the lazy HTTPS client and each attempt bounded: 2 s to connect, 5 s per attempt. The
/// engine's deadline bounds the rest; poll mode's long receive overrides the attempt timeout
/// for itself.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(SharedHttpClient::new(LazyHttps::default()))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .load()
        .await
}

/// The compiled-in root certificates (DER), for HTTPS clients other than the SDK's.
pub fn root_certificates() -> &'static [rustls_pki_types::CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// The SDK's HTTPS client, built on first use.
#[derive(Debug, Default)]
struct LazyHttps(OnceLock<SharedHttpClient>);

impl HttpClient for LazyHttps {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        self.0.get_or_init(https_client).http_connector(settings, components)
    }
}

fn https_client() -> SharedHttpClient {
    let mut trust = tls::TrustStore::empty();
    for der in root_certificates() {
        trust.add_pem_certificate(pem(der));
    }
    // Fails only on an empty or malformed set; a test checks every compiled-in root.
    let context = tls::TlsContext::builder().with_trust_store(trust).build().expect("the compiled-in roots");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https()
}

/// A DER certificate as PEM, the form the SDK's trust store takes.
fn pem(der: &[u8]) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", aws_smithy_types::base64::encode(der))
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn every_compiled_in_root_survives_the_pem_round_trip_into_the_trust_store() {
        let roots = super::root_certificates();
        assert!(roots.len() > 100, "the Mozilla set: {} roots", roots.len());
        for der in roots {
            let back = CertificateDer::from_pem_slice(super::pem(der).as_bytes()).expect("PEM");
            assert_eq!(back.as_ref(), der.as_ref());
        }
        let _client = super::https_client();
    }
}
