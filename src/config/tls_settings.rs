//! The TLS settings, flattened into `Settings` under the "TLS" section, with gunicorn's names
//! (`--certfile`, `--keyfile`, `--ca-certs`, `--cert-reqs`, `--ciphers`) so a gunicorn TLS
//! command line carries over. Only declared and checked here; `server::tls` turns them into
//! a rustls configuration.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Whether clients present certificates (mTLS). gunicorn's `cert_reqs` is Python's
/// `ssl.CERT_*` number (0, 1, 2), which is accepted too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertReqs {
    /// No client certificate is asked for.
    #[default]
    None,
    /// One is asked for; a client without one is served (SSL_CLIENT_VERIFY=NONE), a client
    /// with one that does not verify against --ca-certs is refused.
    Optional,
    /// A client without a certificate that verifies against --ca-certs is refused.
    Required,
}

impl std::str::FromStr for CertReqs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" | "0" | "cert_none" => Ok(CertReqs::None),
            "optional" | "1" | "cert_optional" => Ok(CertReqs::Optional),
            "required" | "2" | "cert_required" => Ok(CertReqs::Required),
            _ => Err(format!(
                "{text:?} is not one of none, optional, required (or gunicorn's 0, 1, 2)"
            )),
        }
    }
}

impl std::fmt::Display for CertReqs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertReqs::None => "none",
            CertReqs::Optional => "optional",
            CertReqs::Required => "required",
        })
    }
}

/// The oldest TLS version served. rustls offers 1.2 and 1.3 only: older versions are broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2", alias = "TLSv1.2")]
    Tls12,
    #[value(name = "1.3", alias = "TLSv1.3")]
    Tls13,
}

#[derive(Debug, Clone, Args)]
pub struct TlsSettings {
    /// TLS certificate (PEM; the server's certificate first, then its chain). With it, every
    /// TCP --bind without a scheme serves https; `--bind http://HOST:PORT` stays plain. Read
    /// again on SIGHUP (a bad new file is logged and the old certificate kept)
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub certfile: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC; RSA, ECDSA or
    /// Ed25519). Default: the key in --certfile
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub keyfile: Option<PathBuf>,

    /// Password of an encrypted --keyfile (PKCS#8, `ENCRYPTED PRIVATE KEY`). Better given as
    /// FERROGATE_KEYFILE_PASSWORD than on the command line, which other users can see
    #[arg(
        long,
        value_name = "PASSWORD",
        hide_env_values = true,
        help_heading = "TLS"
    )]
    pub keyfile_password: Option<String>,

    /// CA certificates (PEM) that client certificates must chain to (with --cert-reqs)
    #[arg(long, value_name = "FILE", help_heading = "TLS")]
    pub ca_certs: Option<PathBuf>,

    /// Client certificates: none, optional (verified when given) or required (mTLS); needs
    /// --ca-certs. gunicorn's 0, 1, 2 are accepted
    #[arg(
        long,
        value_name = "MODE",
        default_value = "none",
        help_heading = "TLS"
    )]
    pub cert_reqs: CertReqs,

    /// Oldest TLS version served: 1.2 or 1.3
    #[arg(
        long,
        value_name = "VERSION",
        default_value = "1.2",
        help_heading = "TLS"
    )]
    pub ssl_min_version: TlsVersion,

    /// Cipher suites offered, by rustls's names, separated by ',' or ':'
    /// (TLS13_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...). Default:
    /// rustls's safe list. An unknown name is an error naming it
    #[arg(long, value_name = "LIST", help_heading = "TLS")]
    pub ciphers: Option<String>,

    /// gunicorn's setting, accepted and ignored: the handshake always runs in the connection's
    /// task before its first request, bounded by --header-timeout
    #[arg(long, help_heading = "TLS")]
    pub do_handshake_on_connect: bool,
}

impl TlsSettings {
    /// The files TLS reads, for `--reload` to watch.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.certfile, &self.keyfile, &self.ca_certs]
            .into_iter()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_reqs_takes_names_and_gunicorns_numbers() {
        assert_eq!("required".parse(), Ok(CertReqs::Required));
        assert_eq!("2".parse(), Ok(CertReqs::Required));
        assert_eq!("Optional".parse(), Ok(CertReqs::Optional));
        assert_eq!("0".parse(), Ok(CertReqs::None));
        assert!("3".parse::<CertReqs>().unwrap_err().contains("\"3\""));
    }
}
