//! IP allow and deny lists on the client address, after trusted-proxy resolution (never on
//! `Host`, which the client writes: the WSGI tutorials' `IPBlacklistMiddleware` reads
//! HTTP_HOST, and so filters nothing).

use std::net::IpAddr;

use crate::config::IpRanges;

pub struct IpFilter {
    /// Empty: everyone not denied is allowed.
    allow: IpRanges,
    deny: IpRanges,
}

impl IpFilter {
    pub fn new(allow: IpRanges, deny: IpRanges) -> IpFilter {
        IpFilter { allow, deny }
    }

    /// Deny wins; a non-empty allow list admits only its members. `None` is a Unix-socket
    /// peer, which the lists name as `unix`. An IPv4-mapped IPv6 address matches IPv4 rules.
    pub fn admits(&self, client: Option<IpAddr>) -> bool {
        let listed = |ranges: &IpRanges| match client {
            Some(ip) => ranges.contains(ip),
            None => ranges.contains_peer(None),
        };
        if listed(&self.deny) {
            return false;
        }
        self.allow.is_empty() || listed(&self.allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(allow: &str, deny: &str) -> IpFilter {
        IpFilter::new(allow.parse().unwrap(), deny.parse().unwrap())
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn deny_wins_over_allow() {
        let f = filter("10.0.0.0/8", "10.6.6.0/24");
        assert!(f.admits(ip("10.1.2.3")));
        assert!(!f.admits(ip("10.6.6.7")));
        assert!(!f.admits(ip("192.168.1.1")));
    }

    #[test]
    fn an_empty_allow_list_admits_all_but_the_denied() {
        let f = filter("", "203.0.113.0/24,2001:db8::/32");
        assert!(f.admits(ip("198.51.100.1")));
        assert!(!f.admits(ip("203.0.113.9")));
        assert!(!f.admits(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_rules() {
        let f = filter("", "10.6.6.0/24");
        assert!(!f.admits(ip("::ffff:10.6.6.1")));
    }

    #[test]
    fn unix_socket_peers_follow_the_unix_entry() {
        assert!(!filter("10.0.0.0/8", "").admits(None));
        assert!(filter("10.0.0.0/8,unix", "").admits(None));
    }
}
