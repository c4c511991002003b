//! Lists of client addresses (`--forwarded-allow-ips`): IP addresses, CIDR ranges, `unix` for
//! Unix-socket peers, `*` for everyone. Parsed once; matched per connection.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;

/// A set of peers, as the user listed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRanges {
    /// `*`: every peer.
    any: bool,
    /// `unix`: peers on a Unix socket (only local processes that may open its file).
    unix: bool,
    nets: Vec<IpNet>,
    /// The list as written, for messages and `--check-config`.
    text: String,
}

impl IpRanges {
    /// Whether `peer` (`None` on a Unix socket) is in the set.
    pub fn contains_peer(&self, peer: Option<SocketAddr>) -> bool {
        match peer {
            None => self.any || self.unix,
            Some(peer) => self.contains(peer.ip()),
        }
    }

    /// Whether `ip` is in the set; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) matches the
    /// IPv4 rules, as the same client seen through a dual-stack socket must.
    pub fn contains(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// Whether no peer at all is in the set.
    pub fn is_empty(&self) -> bool {
        !self.any && !self.unix && self.nets.is_empty()
    }
}

impl FromStr for IpRanges {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut ranges = IpRanges {
            any: false,
            unix: false,
            nets: Vec::new(),
            text: text.to_string(),
        };
        for item in text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
        {
            match item {
                "*" => ranges.any = true,
                "unix" => ranges.unix = true,
                _ => ranges.nets.push(parse_net(item)?),
            }
        }
        Ok(ranges)
    }
}

fn parse_net(item: &str) -> Result<IpNet, String> {
    if let Ok(net) = item.parse::<IpNet>() {
        // `10.0.0.7/8` names the network 10.0.0.0/8; say what is meant, not what was typed.
        return Ok(net.trunc());
    }
    let bare = item.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip.to_canonical())),
        Err(_) => Err(format!(
            "{item:?} is not an IP address, a CIDR range (10.0.0.0/8), `unix` or `*`"
        )),
    }
}

impl fmt::Display for IpRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(text: &str) -> IpRanges {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn addresses_and_cidr_ranges_match_both_families() {
        let list = ranges("127.0.0.1, 10.0.0.0/8,2001:db8::/32");
        assert!(list.contains(ip("127.0.0.1")));
        assert!(!list.contains(ip("127.0.0.2")));
        assert!(list.contains(ip("10.200.3.4")));
        assert!(!list.contains(ip("11.0.0.1")));
        assert!(list.contains(ip("2001:db8::5")));
        assert!(!list.contains(ip("2001:db9::5")));
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_rules() {
        assert!(ranges("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(ranges("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
    }

    #[test]
    fn star_trusts_everyone_and_unix_only_unix_peers() {
        assert!(ranges("*").contains(ip("203.0.113.1")));
        assert!(ranges("*").contains_peer(None));
        assert!(ranges("unix").contains_peer(None));
        assert!(!ranges("unix").contains(ip("127.0.0.1")));
        assert!(!ranges("127.0.0.1").contains_peer(None));
        assert!(ranges("").is_empty());
    }

    #[test]
    fn a_bad_item_is_named() {
        let error = "127.0.0.1,localhost".parse::<IpRanges>().unwrap_err();
        assert!(error.contains("\"localhost\""), "{error}");
        assert!("10.0.0.0/33".parse::<IpRanges>().is_err());
    }
}
