//! The PROXY protocol preamble (v1 text, v2 binary) that a load balancer in front sends before
//! the first request, naming the real client and the address it connected to. Parsed with the
//! `ppp` crate; read here before the connection's first request.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use ppp::{v1, v2, HeaderResult, PartialResult};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest preamble: v1's is at most 107 bytes; a v2 preamble is 16 bytes plus its
/// addresses and TLVs, bounded here because nothing a WSGI app sees needs more.
const MAX_PREAMBLE_BYTES: usize = 16 + 2048;

/// Addresses a preamble gave: `None` for `UNKNOWN` / `LOCAL` (a health check from the proxy
/// itself), where the connection's own addresses stand.
pub type ProxiedAddresses = Option<(SocketAddr, SocketAddr)>;

#[derive(Debug)]
pub enum PreambleError {
    /// The peer is not in `--forwarded-allow-ips`.
    Untrusted,
    Malformed(String),
    TimedOut,
    Closed,
}

impl fmt::Display for PreambleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreambleError::Untrusted => {
                f.write_str("PROXY protocol preamble from a peer not in --forwarded-allow-ips")
            }
            PreambleError::Malformed(why) => write!(f, "invalid PROXY protocol preamble: {why}"),
            PreambleError::TimedOut => {
                f.write_str("no PROXY protocol preamble within --header-timeout")
            }
            PreambleError::Closed => f.write_str("closed before its PROXY protocol preamble"),
        }
    }
}

/// Reads the preamble off the front of the connection; what follows it stays in `buf`.
pub async fn read_preamble<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<ProxiedAddresses, PreambleError> {
    let reading = async {
        loop {
            if !buf.is_empty() {
                if let Some(parsed) = parse(buf)? {
                    return Ok(parsed);
                }
                if buf.len() >= MAX_PREAMBLE_BYTES {
                    return Err(PreambleError::Malformed("too long".into()));
                }
            }
            buf.reserve(MAX_PREAMBLE_BYTES);
            match reader.read_buf(buf).await {
                Ok(1..) => {}
                _ => return Err(PreambleError::Closed),
            }
        }
    };
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or(Err(PreambleError::TimedOut))
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8] = b"\r\n\r\n\x00\r\nQUIT\n";
/// The longest v1 line, CRLF included (the protocol's own bound).
const MAX_V1_BYTES: usize = 107;

/// `Ok(None)`: more bytes are needed.
fn parse(buf: &mut BytesMut) -> Result<Option<ProxiedAddresses>, PreambleError> {
    let starts = |prefix: &[u8]| prefix.starts_with(&buf[..buf.len().min(prefix.len())]);
    let is_v1 = starts(V1_PREFIX);
    if !is_v1 && !starts(V2_SIGNATURE) {
        return Err(PreambleError::Malformed(
            "the connection does not start with one".into(),
        ));
    }
    let header = HeaderResult::parse(buf);
    if header.is_incomplete() {
        if is_v1 && buf.len() >= MAX_V1_BYTES {
            return Err(PreambleError::Malformed("v1 line over 107 bytes".into()));
        }
        return Ok(None);
    }
    let (length, addresses) = match header {
        HeaderResult::V1(Ok(header)) => (header.header.len(), v1_addresses(&header.addresses)),
        HeaderResult::V2(Ok(header)) => (header.len(), v2_addresses(&header)),
        HeaderResult::V1(Err(error)) => return Err(PreambleError::Malformed(error.to_string())),
        HeaderResult::V2(Err(error)) => return Err(PreambleError::Malformed(error.to_string())),
    };
    buf.advance(length);
    Ok(Some(addresses))
}

fn v1_addresses(addresses: &v1::Addresses) -> ProxiedAddresses {
    match addresses {
        v1::Addresses::Tcp4(ip) => Some((
            SocketAddr::from((ip.source_address, ip.source_port)),
            SocketAddr::from((ip.destination_address, ip.destination_port)),
        )),
        v1::Addresses::Tcp6(ip) => Some((
            SocketAddr::from((ip.source_address, ip.source_port)),
            SocketAddr::from((ip.destination_address, ip.destination_port)),
        )),
        v1::Addresses::Unknown => None,
    }
}

fn v2_addresses(header: &v2::Header<'_>) -> ProxiedAddresses {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(ip) => Some((
            SocketAddr::from((ip.source_address, ip.source_port)),
            SocketAddr::from((ip.destination_address, ip.destination_port)),
        )),
        v2::Addresses::IPv6(ip) => Some((
            SocketAddr::from((ip.source_address, ip.source_port)),
            SocketAddr::from((ip.destination_address, ip.destination_port)),
        )),
        v2::Addresses::Unix(_) | v2::Addresses::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> (Result<Option<ProxiedAddresses>, PreambleError>, BytesMut) {
        let mut buf = BytesMut::from(bytes);
        (parse(&mut buf), buf)
    }

    #[test]
    fn v1_gives_both_addresses_and_leaves_the_request() {
        let (result, rest) = parsed(b"PROXY TCP4 203.0.113.7 127.0.0.1 56324 8000\r\nGET /");
        let (source, destination) = result.unwrap().unwrap().unwrap();
        assert_eq!(source, "203.0.113.7:56324".parse().unwrap());
        assert_eq!(destination, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(&rest[..], b"GET /");
        let (unknown, _) = parsed(b"PROXY UNKNOWN\r\n");
        assert_eq!(unknown.unwrap(), Some(None));
    }

    #[test]
    fn v2_gives_both_addresses() {
        let mut wire = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
        wire.extend_from_slice(&[203, 0, 113, 7, 127, 0, 0, 1]);
        wire.extend_from_slice(&56324u16.to_be_bytes());
        wire.extend_from_slice(&8000u16.to_be_bytes());
        wire.extend_from_slice(b"GET");
        let (result, rest) = parsed(&wire);
        let (source, _) = result.unwrap().unwrap().unwrap();
        assert_eq!(source, "203.0.113.7:56324".parse().unwrap());
        assert_eq!(&rest[..], b"GET");
    }

    #[test]
    fn partial_preambles_wait_and_wrong_ones_fail() {
        assert!(matches!(parsed(b"PROXY TCP4 1.2").0, Ok(None)));
        assert!(parsed(b"GET / HTTP/1.1\r\n\r\n").0.is_err());
        assert!(parsed(b"PROXY TCP4 1.2.3.4 5.6.7.8 x y\r\n").0.is_err());
    }
}
