//! Building the `elasticsearch` client from [`EsConfig`]: connection pool, auth and TLS.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::transport::{
    MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
};

use super::config::{EsAuth, EsConfig};
use super::error::EsError;

/// Builds a client for `cfg` (which must be valid), reading secrets and the CA file now.
///
/// # Errors
/// [`EsError::Config`] for a bad URL, [`EsError::Secret`] or [`EsError::Tls`] when a file or
/// variable cannot be read, [`EsError::Client`] when the HTTP client cannot be built.
pub(crate) fn build_client(cfg: &EsConfig) -> Result<Elasticsearch, EsError> {
    let mut urls = Vec::with_capacity(cfg.urls.len());
    for url in &cfg.urls {
        urls.push(Url::parse(url).map_err(|e| EsError::config("urls", format!("{url:?}: {e}")))?);
    }
    let builder = match urls.len() {
        1 => TransportBuilder::new(SingleNodeConnectionPool::new(urls.remove(0))),
        // No sniffing: in Kubernetes the URLs are Services, and node addresses from sniffing are
        // pod IPs that may not be reachable or covered by the certificate.
        _ => TransportBuilder::new(MultiNodeConnectionPool::round_robin(urls, None)),
    };
    let mut builder = builder
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        // Proxies from the environment would silently reroute log traffic.
        .disable_proxy();
    match &cfg.auth {
        EsAuth::None => {}
        EsAuth::Basic { username, password } => {
            let password = password.resolve("auth.password")?;
            builder = builder.auth(Credentials::Basic(username.clone(), password.0));
        }
        EsAuth::ApiKey { api_key } => {
            let key = api_key.resolve("auth.api_key")?;
            builder = builder.auth(Credentials::EncodedApiKey(key.0));
        }
    }
    if let Some(path) = &cfg.tls.ca_file {
        let pem = std::fs::read(path).map_err(|e| EsError::Tls {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| EsError::Tls {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        builder = builder.cert_validation(CertificateValidation::Full(cert));
    } else if cfg.tls.insecure_skip_verify {
        builder = builder.cert_validation(CertificateValidation::None);
    }
    let transport = builder
        .build()
        .map_err(|e| EsError::Client(e.to_string()))?;
    Ok(Elasticsearch::new(transport))
}
