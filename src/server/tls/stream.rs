//! One TLS connection: the handshake (in the connection's task, bounded by
//! `--header-timeout`), the stream as the HTTP/1 driver's `Socket`, and the facts its
//! requests are told (`TlsFacts`).

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConnection;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::ServerTls;
use crate::handler::{ClientCertificate, TlsFacts};
use crate::http::{SendFile, Socket};

/// The first byte of every TLS connection: a handshake record (RFC 8446 §5.1, type 22).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// A TLS connection the HTTP/1 driver serves. Boxed: rustls's state is over 1 KiB, moved
/// through the handshake's result and into the connection's future.
pub struct TlsSocket(Box<TlsStream<TcpStream>>);

impl Socket for TlsSocket {
    // tokio's split takes a lock per poll; uncontended, as both halves live in one task.
    type Reader<'a> = tokio::io::ReadHalf<&'a mut TlsStream<TcpStream>>;
    type Writer<'a> = tokio::io::WriteHalf<&'a mut TlsStream<TcpStream>>;
    const ENCRYPTED: bool = true;

    fn halves(&mut self) -> (Self::Reader<'_>, Self::Writer<'_>) {
        tokio::io::split(&mut *self.0)
    }

    /// The bytes on the socket are records, not the request body.
    fn body_fd(&self) -> Option<RawFd> {
        None
    }
}

impl TlsSocket {
    /// The protocol ALPN settled on (`h2`, `http/1.1`), if the client offered any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.0.get_ref().1.alpn_protocol()
    }
}

/// rustls encrypts in user space, so the kernel cannot send a file's pages: file bodies are
/// read in blocks off the I/O thread instead (http/h1/write.rs), never mapped.
impl SendFile for tokio::io::WriteHalf<&mut TlsStream<TcpStream>> {}

/// How a handshake ended.
pub enum Handshake {
    Done(TlsSocket, Arc<TlsFacts>),
    /// The client spoke plain HTTP to the TLS port: its stream back, to be told so (400).
    PlainHttp(TcpStream),
}

#[derive(Debug)]
pub enum HandshakeError {
    /// Not done within `--header-timeout`.
    TimedOut(Duration),
    /// Closed before a byte was sent (a port check, a health probe).
    Closed,
    /// Neither TLS nor HTTP.
    NotTls(u8),
    /// rustls refused the handshake (no shared version or suite, a bad client certificate...).
    Tls(io::Error),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::TimedOut(timeout) => write!(
                f,
                "TLS handshake not done within {}s (--header-timeout)",
                timeout.as_secs_f64()
            ),
            HandshakeError::Closed => f.write_str("closed before the TLS handshake"),
            HandshakeError::NotTls(byte) => {
                write!(f, "not a TLS handshake (first byte {byte:#04x})")
            }
            HandshakeError::Tls(error) => write!(f, "TLS handshake failed: {error}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// Runs the server side of the handshake on `stream` within `timeout`.
pub async fn handshake(
    stream: TcpStream,
    tls: &ServerTls,
    timeout: Duration,
) -> Result<Handshake, HandshakeError> {
    let acceptor = TlsAcceptor::from(tls.config.clone());
    let shaking = async move {
        // Peeked, not read, so rustls still gets the whole ClientHello.
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await.map_err(HandshakeError::Tls)? {
            0 => return Err(HandshakeError::Closed),
            _ if first[0] == TLS_HANDSHAKE_RECORD => {}
            _ if first[0].is_ascii_uppercase() => return Ok(Handshake::PlainHttp(stream)),
            _ => return Err(HandshakeError::NotTls(first[0])),
        }
        let stream = acceptor.accept(stream).await.map_err(HandshakeError::Tls)?;
        let facts = Arc::new(facts(stream.get_ref().1));
        Ok(Handshake::Done(TlsSocket(Box::new(stream)), facts))
    };
    tokio::time::timeout(timeout, shaking)
        .await
        .unwrap_or(Err(HandshakeError::TimedOut(timeout)))
}

fn facts(connection: &ServerConnection) -> TlsFacts {
    let protocol = match connection.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    };
    let cipher = connection
        .negotiated_cipher_suite()
        .and_then(|suite| suite.suite().as_str())
        .unwrap_or("");
    TlsFacts {
        protocol,
        cipher: iana_name(cipher),
        server_name: connection.server_name().map(Box::from),
        client: connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|der| client_certificate(der.as_ref())),
    }
}

/// rustls names TLS 1.3 suites `TLS13_*`; their IANA (and OpenSSL) names are `TLS_*`. TLS 1.2
/// names are IANA's already.
fn iana_name(rustls_name: &'static str) -> &'static str {
    match rustls_name {
        "TLS13_AES_128_GCM_SHA256" => "TLS_AES_128_GCM_SHA256",
        "TLS13_AES_256_GCM_SHA384" => "TLS_AES_256_GCM_SHA384",
        "TLS13_CHACHA20_POLY1305_SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        other => other,
    }
}

fn client_certificate(der: &[u8]) -> ClientCertificate {
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    let encoded = data_encoding::BASE64.encode(der);
    // RFC 7468 §2: lines of 64 characters.
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    // rustls verified it already, so it parses; an odd one just gets empty fields.
    let Ok((_, certificate)) = X509Certificate::from_der(der) else {
        return ClientCertificate {
            pem,
            subject: String::new(),
            issuer: String::new(),
            serial: String::new(),
            not_before: String::new(),
            not_after: String::new(),
        };
    };
    let serial = certificate.raw_serial();
    let significant = serial.iter().position(|&b| b != 0).unwrap_or(serial.len());
    let validity = certificate.validity();
    ClientCertificate {
        pem,
        subject: distinguished_name(certificate.subject()),
        issuer: distinguished_name(certificate.issuer()),
        serial: data_encoding::HEXUPPER.encode(&serial[significant..]),
        not_before: openssl_time(&validity.not_before.to_string()),
        not_after: openssl_time(&validity.not_after.to_string()),
    }
}

/// `Dec  5 19:41:33 2026 +00:00` (x509-parser) → `Dec  5 19:41:33 2026 GMT` (OpenSSL, so
/// mod_ssl). X.509 times are UTC.
fn openssl_time(shown: &str) -> String {
    format!("{} GMT", shown.trim_end_matches(" +00:00"))
}

/// RFC 4514 (what mod_ssl gives by default): the last RDN first, `,` between RDNs, `+`
/// within one, special characters escaped.
fn distinguished_name(name: &X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let key = x509_parser::objects::oid2abbrev(attribute.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| attribute.attr_type().to_id_string());
                    let value = match attribute.as_str() {
                        Ok(text) => escape_dn_value(text),
                        Err(_) => format!(
                            "#{}",
                            data_encoding::HEXLOWER.encode(attribute.attr_value().data)
                        ),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 §2.4.
fn escape_dn_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_values_are_escaped_as_rfc_4514_says() {
        assert_eq!(escape_dn_value("Example, Inc."), "Example\\, Inc.");
        assert_eq!(escape_dn_value("#1 "), "\\#1\\ ");
        assert_eq!(escape_dn_value("alice"), "alice");
    }

    #[test]
    fn times_are_shown_as_openssl_shows_them() {
        assert_eq!(
            openssl_time("Dec  5 19:41:33 2026 +00:00"),
            "Dec  5 19:41:33 2026 GMT"
        );
    }

    #[test]
    fn tls13_suites_get_their_iana_names() {
        assert_eq!(
            iana_name("TLS13_AES_256_GCM_SHA384"),
            "TLS_AES_256_GCM_SHA384"
        );
        assert_eq!(
            iana_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        );
    }
}
