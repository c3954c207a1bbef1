//! The credential injector: the agent's plain-HTTP requests to `api.anthropic.com` carry the
//! sandbox's placeholder; they leave with the real credential, over TLS with certificate
//! verification, to the configured upstream. Only GET and POST, only the API's paths, the
//! placeholder compared in constant time, no header ever logged. The response is relayed
//! as it comes: a redirect is the client's to follow, through the allowlist, without the
//! credential.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use subtle::ConstantTimeEq;

use super::credential::{Credential, Kind};
use crate::error::DeckError;

/// What one sandbox's proxy injects, and where it sends the result.
pub struct Injection {
    pub placeholder: String,
    pub credential: Credential,
    /// The upstream's name (checked in its certificate) and port.
    pub host: String,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Injection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Injection({}:{}, {:?})",
            self.host, self.port, self.credential
        )
    }
}

/// The host's trusted roots, and the PEM file `extra_ca` names (a gateway's own CA).
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, DeckError> {
    let tls = |what: String| {
        move |e: rustls::pki_types::pem::Error| DeckError::Tls {
            what,
            source: Box::new(e),
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra_ca {
        let reading = || format!("reading {}", path.display());
        let certs =
            rustls::pki_types::CertificateDer::pem_file_iter(path).map_err(tls(reading()))?;
        for cert in certs {
            let cert = cert.map_err(tls(reading()))?;
            roots.add(cert).map_err(|e| DeckError::Tls {
                what: format!("trusting a certificate in {}", path.display()),
                source: Box::new(e),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(DeckError::host(
            "setting up TLS for the API",
            "no trusted certificate authority found on this host",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DeckError::Tls {
            what: "setting up TLS for the API".into(),
            source: Box::new(e),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Whether this path is one the agent's API calls use. The OAuth endpoints are not: no
/// sandbox may mint or refresh a credential.
pub fn path_allowed(method: &str, path: &str) -> bool {
    matches!(method, "GET" | "POST")
        && (path.starts_with("/v1/") || path.starts_with("/api/"))
        && !path.starts_with("/v1/oauth")
        && !path.starts_with("/api/oauth")
        && !path.contains("..")
}

/// Whether the request's own credential header carries exactly this sandbox's placeholder.
pub fn carries_placeholder(injection: &Injection, headers: &[(String, Vec<u8>)]) -> bool {
    let (name, prefix) = match injection.credential.kind {
        Kind::OauthToken => ("authorization", "Bearer "),
        Kind::ApiKey => ("x-api-key", ""),
    };
    let values: Vec<&Vec<u8>> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect();
    let [value] = values.as_slice() else {
        return false;
    };
    let expected = format!("{prefix}{}", injection.placeholder);
    expected.as_bytes().ct_eq(value.as_slice()).into()
}

/// The headers that carry the real credential upstream (replacing every credential header
/// the client sent).
pub fn credential_headers(injection: &Injection) -> Vec<(String, Vec<u8>)> {
    let token = &injection.credential.token;
    match injection.credential.kind {
        Kind::OauthToken => vec![(
            "Authorization".into(),
            format!("Bearer {token}").into_bytes(),
        )],
        Kind::ApiKey => vec![("x-api-key".into(), token.clone().into_bytes())],
    }
}

/// Headers that can carry a credential, dropped from the client's request.
pub const CREDENTIAL_HEADERS: [&str; 3] = ["authorization", "x-api-key", "cookie"];

/// Opens the TLS connection to the upstream at `address` (resolved and checked by the
/// caller), verifying its certificate for the upstream's name.
pub async fn connect(
    injection: &Injection,
    address: SocketAddr,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let name = ServerName::try_from(injection.host.clone()).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| format!("{address}: {e}"))?;
    // Only the latency of small exchanges: not a reason to fail the request.
    let _ = tcp.set_nodelay(true);
    tokio_rustls::TlsConnector::from(injection.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {}: {e}", injection.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injection(kind: Kind) -> Injection {
        Injection {
            placeholder: "sk-ant-oat01-sandbox-deck-placeholder-aa".into(),
            credential: Credential {
                kind,
                token: "real".into(),
            },
            host: "api.anthropic.com".into(),
            port: 443,
            tls: Arc::new(tls_config(None).unwrap()),
        }
    }

    #[test]
    fn only_the_sandboxs_own_placeholder_passes() {
        let i = injection(Kind::OauthToken);
        let with = |v: &str| vec![("Authorization".to_string(), v.as_bytes().to_vec())];
        assert!(carries_placeholder(
            &i,
            &with("Bearer sk-ant-oat01-sandbox-deck-placeholder-aa")
        ));
        assert!(!carries_placeholder(
            &i,
            &with("Bearer sk-ant-oat01-sandbox-deck-placeholder-ab")
        ));
        assert!(!carries_placeholder(
            &i,
            &with("Bearer sk-ant-oat01-sandbox-deck-placeholder-a")
        ));
        assert!(!carries_placeholder(&i, &[]));
        let mut twice = with("Bearer sk-ant-oat01-sandbox-deck-placeholder-aa");
        twice.extend(with("Bearer other"));
        assert!(!carries_placeholder(&i, &twice), "two credential headers");
        let key = injection(Kind::ApiKey);
        let header = vec![(
            "X-Api-Key".to_string(),
            b"sk-ant-oat01-sandbox-deck-placeholder-aa".to_vec(),
        )];
        assert!(carries_placeholder(&key, &header));
    }

    #[test]
    fn only_the_apis_paths_and_never_the_oauth_endpoints() {
        assert!(path_allowed("POST", "/v1/messages?beta=true"));
        assert!(path_allowed("GET", "/api/web/domain_info?domain=x"));
        assert!(!path_allowed("POST", "/v1/oauth/token"));
        assert!(!path_allowed(
            "POST",
            "/api/oauth/claude_cli/create_api_key"
        ));
        assert!(!path_allowed("DELETE", "/v1/messages"));
        assert!(!path_allowed("GET", "/"));
        assert!(!path_allowed("GET", "/v1/../api/oauth/x"));
    }
}
