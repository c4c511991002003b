//! The rate-limit layer: a `Limiter` (rate_limit/) and what part of a request is its key, as
//! the native pipeline and the WSGI object both use it.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderName;

use super::rate_limit::{self, Decision, Limiter};

/// What a request is counted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateKey {
    /// The client address after trusted-proxy resolution (REMOTE_ADDR).
    ClientIp,
    /// A request header (`header:X-Api-Key`); a request without it is counted by its client
    /// address, so leaving the header out is no way around the limit.
    Header(HeaderName),
}

impl FromStr for RateKey {
    type Err = String;

    fn from_str(text: &str) -> Result<RateKey, String> {
        match text.split_once(':') {
            None if text == "client_ip" => Ok(RateKey::ClientIp),
            Some(("header", name)) => HeaderName::from_bytes(name.trim().as_bytes())
                .map(RateKey::Header)
                .map_err(|_| format!("rate limit key {text:?}: {name:?} is not a header name")),
            _ => Err(format!(
                "rate limit key {text:?} is not client_ip or header:NAME"
            )),
        }
    }
}

impl RateKey {
    /// The WSGI environ key the header is found under (`HTTP_X_API_KEY`).
    pub fn environ_key(&self) -> Option<String> {
        match self {
            RateKey::ClientIp => None,
            RateKey::Header(name) => Some(format!(
                "HTTP_{}",
                name.as_str().to_ascii_uppercase().replace('-', "_")
            )),
        }
    }
}

/// The key bytes for a client address: IPv4-mapped IPv6 counts as the IPv4 client;
/// Unix-socket peers share one key.
pub fn client_key(client: Option<IpAddr>) -> Vec<u8> {
    match client.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.octets().to_vec(),
        Some(IpAddr::V6(v6)) => v6.octets().to_vec(),
        None => b"unix".to_vec(),
    }
}

pub struct RateLimit {
    pub limiter: Limiter,
    pub key: RateKey,
}

impl RateLimit {
    /// Decides one request keyed by `key` now; the headers to send either way.
    pub fn check(&self, key: &[u8]) -> (Decision, Vec<(&'static str, String)>) {
        let decision = self.limiter.check(key, rate_limit::monotonic_ns());
        let headers = rate_limit::headers(self.limiter.options(), &decision);
        (decision, headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_name_their_environ_key() {
        assert_eq!("client_ip".parse::<RateKey>().unwrap(), RateKey::ClientIp);
        let header: RateKey = "header:X-Api-Key".parse().unwrap();
        assert_eq!(header.environ_key().unwrap(), "HTTP_X_API_KEY");
        assert!("header:bad name".parse::<RateKey>().is_err());
        assert!("cookie".parse::<RateKey>().is_err());
    }

    #[test]
    fn mapped_ipv6_counts_as_its_ipv4_client() {
        assert_eq!(
            client_key(Some("::ffff:10.0.0.1".parse().unwrap())),
            client_key(Some("10.0.0.1".parse().unwrap()))
        );
    }
}
