//! The rustls server configuration, built from the TLS settings: the certificate chain and
//! key (PEM), the client-certificate policy (`--ca-certs`, `--cert-reqs`), the versions
//! (`--ssl-min-version`), the cipher suites (`--ciphers`) and ALPN. Built by the master, at
//! start and again on SIGHUP (a failure then keeps the configuration it had), and inherited
//! by the workers it forks.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::session_cache::SharedSessionCache;
use super::tickets::SharedTicketer;
use crate::config::{CertReqs, HttpVersions, TlsSettings, TlsVersion};
use crate::http::h2::alpn_protocols;

/// What a TLS listener hands each connection: the configuration, shared.
#[derive(Clone)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

/// Why the TLS settings give no configuration; names the setting and the file.
#[derive(Debug)]
pub enum TlsConfigError {
    /// An https listener without `--certfile`.
    NoCertificate,
    /// A file could not be read or holds nothing usable; `setting` names it.
    File {
        setting: &'static str,
        path: PathBuf,
        why: String,
    },
    /// A setting that does not make sense as given.
    Setting { setting: &'static str, why: String },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::NoCertificate => f.write_str(
                "an https:// --bind needs a certificate: set --certfile (and --keyfile)",
            ),
            TlsConfigError::File { setting, path, why } => {
                write!(f, "--{setting} {}: {why}", path.display())
            }
            TlsConfigError::Setting { setting, why } => write!(f, "--{setting}: {why}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

fn file_error(setting: &'static str, path: &Path, why: impl fmt::Display) -> TlsConfigError {
    TlsConfigError::File {
        setting,
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

impl ServerTls {
    /// The configuration the settings describe, or `None` when no certificate is set.
    pub fn from_settings(
        settings: &TlsSettings,
        http: HttpVersions,
    ) -> Result<Option<ServerTls>, TlsConfigError> {
        let Some(certfile) = &settings.certfile else {
            return Ok(None);
        };
        let chain = read_certificates("certfile", certfile)?;
        let keyfile = settings.keyfile.as_deref().unwrap_or(certfile);
        let key = read_key(keyfile, settings.keyfile_password.as_deref())?;
        let provider = Arc::new(provider(settings.ciphers.as_deref())?);
        let versions = versions(settings.ssl_min_version, &provider)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|error| TlsConfigError::Setting {
                setting: "ciphers",
                why: error.to_string(),
            })?;
        let builder = match client_verifier(settings, provider)? {
            Some(verifier) => builder.with_client_cert_verifier(verifier),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|error| file_error("keyfile", keyfile, error))?;
        // ALPN: what `--http` allows, h2 first (`--http 1` never offers h2: a client that
        // picked it would get HTTP/1 back).
        config.alpn_protocols = alpn_protocols(http).iter().map(|p| p.to_vec()).collect();
        // Resumption that works whichever worker takes the connection: the ticket keys and
        // the session cache are made once per process tree (see `resumption`).
        let resumption = resumption()?;
        config.ticketer = resumption.tickets.clone();
        config.session_storage = resumption.sessions.clone();
        Ok(Some(ServerTls {
            config: Arc::new(config),
        }))
    }
}

/// The ticket keys and session cache a master and all its workers share.
struct Resumption {
    tickets: Arc<SharedTicketer>,
    sessions: Arc<SharedSessionCache>,
}

/// One per process tree: made by the first configuration built, which is the master's before
/// it forks, so every worker and every configuration a SIGHUP loads share them (a reload
/// keeps the sessions clients hold).
static RESUMPTION: OnceLock<Resumption> = OnceLock::new();

fn resumption() -> Result<&'static Resumption, TlsConfigError> {
    if let Some(resumption) = RESUMPTION.get() {
        return Ok(resumption);
    }
    let fail = |why: String| TlsConfigError::Setting {
        setting: "certfile",
        why,
    };
    let tickets = SharedTicketer::new()
        .map_err(|_| fail("cannot make a session ticket key: no system randomness".into()))?;
    let sessions = SharedSessionCache::new()
        .map_err(|error| fail(format!("cannot map the shared TLS session cache: {error}")))?;
    Ok(RESUMPTION.get_or_init(|| Resumption {
        tickets: Arc::new(tickets),
        sessions: Arc::new(sessions),
    }))
}

/// Steps the shared ticket keys to the current period; the master calls it before a fork, as
/// it seals no ticket itself (see `tickets.rs`).
pub fn roll_ticket_keys() {
    if let Some(resumption) = RESUMPTION.get() {
        resumption.tickets.roll();
    }
}

fn read_certificates(
    setting: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|error| file_error(setting, path, pem_reason(error)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| file_error(setting, path, pem_reason(error)))?;
    if certificates.is_empty() {
        return Err(file_error(setting, path, "no PEM CERTIFICATE in it"));
    }
    Ok(certificates)
}

/// The PEM key in `path`; an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`, PBES2) is
/// decrypted with `password`.
fn read_key(path: &Path, password: Option<&str>) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let text = std::fs::read(path).map_err(|error| file_error("keyfile", path, error))?;
    let has = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    if has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return decrypt_key(path, &text, password);
    }
    if has(b"Proc-Type: 4,ENCRYPTED") {
        return Err(file_error(
            "keyfile",
            path,
            "the key uses OpenSSL's legacy PEM encryption, which is not supported; convert it \
             with `openssl pkcs8 -topk8 -in KEY -out KEY.p8` (PKCS#8, encrypted or not)",
        ));
    }
    PrivateKeyDer::from_pem_slice(&text)
        .map_err(|error| file_error("keyfile", path, pem_reason(error)))
}

fn decrypt_key(
    path: &Path,
    text: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let Some(password) = password else {
        return Err(file_error(
            "keyfile",
            path,
            "the key is encrypted: give its password with --keyfile-password \
             (FERROGATE_KEYFILE_PASSWORD keeps it off the command line)",
        ));
    };
    let fail = |why: String| file_error("keyfile", path, why);
    let text = std::str::from_utf8(text).map_err(|_| fail("not valid PEM (not UTF-8)".into()))?;
    let (_, document) = pkcs8::der::Document::from_pem(text)
        .map_err(|error| fail(format!("not valid PEM ({error})")))?;
    let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes())
        .map_err(|error| fail(format!("not an encrypted PKCS#8 key ({error})")))?;
    let decrypted = encrypted.decrypt(password).map_err(|error| {
        fail(format!(
            "cannot decrypt the key with --keyfile-password (a wrong password, or an \
             encryption scheme other than PBES2 with PBKDF2 or scrypt and AES-CBC: {error})"
        ))
    })?;
    Ok(PrivateKeyDer::Pkcs8(decrypted.as_bytes().to_vec().into()))
}

fn pem_reason(error: rustls_pki_types::pem::Error) -> String {
    match error {
        rustls_pki_types::pem::Error::NoItemsFound => {
            "no PEM private key in it (PKCS#8, PKCS#1 RSA or SEC1 EC)".into()
        }
        rustls_pki_types::pem::Error::Io(error) => error.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// ring's provider, its cipher suites narrowed to `--ciphers` when given. rustls 0.23.48
/// deprecates it for lacking post-quantum key exchange (X25519MLKEM768); aws-lc-rs has it but
/// needs cmake and a long C build, so ring it is until the provider is a setting (issue 13).
#[allow(deprecated)]
fn provider(ciphers: Option<&str>) -> Result<CryptoProvider, TlsConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some(ciphers) = ciphers else {
        return Ok(provider);
    };
    let all = provider.cipher_suites.clone();
    let mut chosen = Vec::new();
    for name in ciphers
        .split([',', ':'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let found = all.iter().find(|suite| {
            suite
                .suite()
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(name))
        });
        match found {
            Some(suite) => chosen.push(*suite),
            None => {
                let known: Vec<&str> = all.iter().filter_map(|s| s.suite().as_str()).collect();
                return Err(TlsConfigError::Setting {
                    setting: "ciphers",
                    why: format!(
                        "unknown cipher suite {name:?}; rustls offers {}",
                        known.join(", ")
                    ),
                });
            }
        }
    }
    if chosen.is_empty() {
        return Err(TlsConfigError::Setting {
            setting: "ciphers",
            why: "no cipher suite named".into(),
        });
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// The versions from `--ssl-min-version` up that the chosen suites can serve.
fn versions(
    min: TlsVersion,
    provider: &CryptoProvider,
) -> Result<Vec<&'static SupportedProtocolVersion>, TlsConfigError> {
    let has = |version: &SupportedProtocolVersion| {
        provider
            .cipher_suites
            .iter()
            .any(|suite| suite.version() == version)
    };
    let mut versions = vec![];
    if has(&rustls::version::TLS13) {
        versions.push(&rustls::version::TLS13);
    }
    if min == TlsVersion::Tls12 && has(&rustls::version::TLS12) {
        versions.push(&rustls::version::TLS12);
    }
    if versions.is_empty() {
        return Err(TlsConfigError::Setting {
            setting: "ciphers",
            why: "none of the suites named is for a TLS version --ssl-min-version allows".into(),
        });
    }
    Ok(versions)
}

fn client_verifier(
    settings: &TlsSettings,
    provider: Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, TlsConfigError> {
    let ca_certs = match (settings.cert_reqs, &settings.ca_certs) {
        (CertReqs::None, _) => return Ok(None),
        (_, None) => {
            return Err(TlsConfigError::Setting {
                setting: "cert-reqs",
                why: format!(
                    "{} needs --ca-certs, the CAs client certificates must chain to",
                    settings.cert_reqs
                ),
            })
        }
        (_, Some(ca_certs)) => ca_certs,
    };
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates("ca-certs", ca_certs)? {
        roots
            .add(certificate)
            .map_err(|error| file_error("ca-certs", ca_certs, error))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match settings.cert_reqs {
        CertReqs::Optional => builder.allow_unauthenticated(),
        _ => builder,
    };
    builder
        .build()
        .map(Some)
        .map_err(|error| file_error("ca-certs", ca_certs, error))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
