//! TLS to `https://` upstreams: the rustls client configuration (ring, as the server side),
//! made once per `Forward` when one of its upstreams is https. Certificates are verified
//! against the system's CA store by default, or only against the CAs of `ca_certs`; `verify`
//! off accepts any certificate (an explicit opt-out, warned about when the layer is made).
//! Knows nothing of HTTP or of the pool; the connector (upstream.rs) does the handshake.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// How upstream certificates are checked (the `verify` and `ca_certs` keywords).
#[derive(Debug, Clone, Default)]
pub struct UpstreamTls {
    /// false: any certificate is accepted (`verify=False`).
    pub verify: bool,
    /// PEM CAs trusted instead of the system's store.
    pub ca_certs: Option<std::path::PathBuf>,
}

/// ring's provider, as the server's (src/server/tls/config.rs says why not aws-lc-rs).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for the upstreams; an error names the file or the store.
pub fn client_config(tls: &UpstreamTls) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?;
    let mut config = match tls.verify {
        true => builder
            .with_root_certificates(roots(tls.ca_certs.as_deref())?)
            .with_no_client_auth(),
        false => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
    };
    // The pool speaks HTTP/1.1 to upstreams; saying so lets an h2-preferring one agree.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CAs of `ca_certs`, or the system's store (a store without one usable CA is an error:
/// every https upstream would be refused).
fn roots(ca_certs: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> = match ca_certs {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| format!("ca_certs {}: {error:?}", path.display()))?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "no CA certificate in the system store ({why}); give ca_certs=PATH"
                ));
            }
            found.certs
        }
    };
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        let from = ca_certs.map_or("the system store".into(), |p| p.display().to_string());
        return Err(format!("ca_certs: no usable CA certificate in {from}"));
    }
    Ok(roots)
}

/// `verify=False`: the handshake still checks that the server holds the key of the
/// certificate it sent (signatures), but not who issued it or for which name.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let tls = UpstreamTls {
            verify: true,
            ca_certs: Some("/nonexistent/ca.pem".into()),
        };
        let error = client_config(&tls).unwrap_err();
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let path = std::env::temp_dir().join(format!("fg-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let tls = UpstreamTls {
            verify: true,
            ca_certs: Some(path.clone()),
        };
        let error = client_config(&tls).unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert!(error.contains("no usable CA"), "{error}");
    }

    #[test]
    fn without_verification_any_store_will_do() {
        let tls = UpstreamTls {
            verify: false,
            ca_certs: None,
        };
        assert!(client_config(&tls).is_ok());
    }
}
