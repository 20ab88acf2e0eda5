//! Building the `elasticsearch` client from [`EsConfig`]: connection pool, auth and TLS.

use std::time::Duration;

use elasticsearch::Elasticsearch;
use elasticsearch::auth::Credentials;
use elasticsearch::cert::{Certificate, CertificateValidation};
use elasticsearch::http::Url;
use elasticsearch::http::transport::{
    BuildError, MultiNodeConnectionPool, SingleNodeConnectionPool, TransportBuilder,
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
    let transport = builder.build().map_err(|e| match (&e, &cfg.tls.ca_file) {
        // rustls parses the CA only here; say which file it rejected.
        (BuildError::Cert(_), Some(path)) => EsError::Tls {
            path: path.clone(),
            reason: error_chain(&e),
        },
        _ => EsError::Client(error_chain(&e)),
    })?;
    Ok(Elasticsearch::new(transport))
}

/// `e` and its sources, `outer: inner: innermost` (reqwest's own message is just "builder
/// error").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elasticsearch::config::{EsTls, SecretSource};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn a_missing_or_garbled_ca_file_is_a_tls_error() -> TestResult {
        let dir = tempfile::tempdir()?;
        let garbled = dir.path().join("ca.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        )?;
        for path in [dir.path().join("missing.pem"), garbled] {
            let cfg = EsConfig {
                urls: vec!["https://127.0.0.1:9200".into()],
                tls: EsTls {
                    ca_file: Some(path.clone()),
                    insecure_skip_verify: false,
                },
                ..EsConfig::default()
            };
            match build_client(&cfg) {
                Err(EsError::Tls { path: got, .. }) => assert_eq!(got, path),
                other => panic!("expected a tls error for {}, got {other:?}", path.display()),
            }
        }
        Ok(())
    }

    #[test]
    fn secrets_are_read_when_the_client_is_built() -> TestResult {
        let dir = tempfile::tempdir()?;
        let cfg = EsConfig {
            auth: EsAuth::Basic {
                username: "sluice".into(),
                password: SecretSource {
                    env: None,
                    file: Some(dir.path().join("absent")),
                },
            },
            ..EsConfig::default()
        };
        match build_client(&cfg) {
            Err(err @ EsError::Secret { .. }) => assert_eq!(err.error_code(), "es_secret"),
            other => panic!("expected a secret error, got {other:?}"),
        }
        std::fs::write(dir.path().join("absent"), "pw\n")?;
        build_client(&cfg)?;
        Ok(())
    }
}
