//! URL dispatch to mounted apps, by werkzeug's `DispatcherMiddleware` rules and Paste
//! `urlmap`'s host keys (with or without a port): the longest prefix that ends on a segment
//! boundary wins, the prefix moves from PATH_INFO to SCRIPT_NAME, and a request no prefix
//! claims goes to the default.
//! Generic over what is mounted (a native node, a Python app), so the same table serves the
//! lifted pipeline and the WSGI object.

use std::fmt;

use crate::handler::Scheme;

/// One mount key as the user wrote it: `/api`, `domain:example.com/api`, or
/// `http://api.example.com:8080/v1` (Paste urlmap's forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountKey {
    /// Lowercased host the request's Host must name, if the key has one.
    pub host: Option<String>,
    /// The port the request's Host must name (its scheme's default when it names none), if
    /// the key has one; a key without one matches any port, as Paste's urlmap does.
    pub port: Option<u16>,
    /// Decoded path prefix, without a trailing '/'; empty for the root.
    pub prefix: Vec<u8>,
}

impl MountKey {
    pub fn parse(key: &str) -> Result<MountKey, String> {
        let (host, path) = if let Some(rest) = key.strip_prefix("domain:") {
            split_host(rest)
        } else if let Some(rest) = key
            .strip_prefix("http://")
            .or_else(|| key.strip_prefix("https://"))
        {
            split_host(rest)
        } else {
            (None, key)
        };
        if !path.is_empty() && !path.starts_with('/') {
            return Err(format!("mount prefix {key:?} must start with '/'"));
        }
        let port = match host.and_then(port_of) {
            Some(port) => Some(port.parse::<u16>().map_err(|_| {
                format!("mount key {key:?}: port {port:?} is not a number from 0 to 65535")
            })?),
            None => None,
        };
        let host = host.map(|host| strip_port(host).to_ascii_lowercase());
        if host.as_deref() == Some("") {
            return Err(format!("mount key {key:?} names an empty host"));
        }
        Ok(MountKey {
            host,
            port,
            prefix: path.trim_end_matches('/').as_bytes().to_vec(),
        })
    }
}

impl fmt::Display for MountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            write!(f, "domain:{host}")?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        let prefix = String::from_utf8_lossy(&self.prefix);
        f.write_str(if prefix.is_empty() { "/" } else { &prefix })
    }
}

fn split_host(rest: &str) -> (Option<&str>, &str) {
    match rest.find('/') {
        Some(slash) => (Some(&rest[..slash]), &rest[slash..]),
        None => (Some(rest), ""),
    }
}

/// The port a `host[:port]` names, if any (`[v6]:port` too).
fn port_of(host: &str) -> Option<&str> {
    let rest = match host.starts_with('[') {
        true => host.split_once(']')?.1,
        false => host,
    };
    rest.rsplit_once(':').map(|(_, port)| port)
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(v6, _)| &host[..v6.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The table: mounted entries, most specific first.
pub struct Mount<T> {
    entries: Vec<(MountKey, T)>,
    default: Option<T>,
}

/// Where a request goes: the entry (or the default) and how many bytes of the path became
/// SCRIPT_NAME.
pub struct Routed<'a, T> {
    pub target: &'a T,
    pub prefix_len: usize,
}

impl<T> Mount<T> {
    pub fn new(mut entries: Vec<(MountKey, T)>, default: Option<T>) -> Mount<T> {
        // urlmap's order: host keys before host-less ones, by host, a host without a port
        // before the same host with one, then the longest prefix first.
        entries.sort_by(|(a, _), (b, _)| {
            let order = |key: &MountKey| {
                let host = key.host.clone();
                (host.is_none(), host, key.port.is_some())
            };
            order(a)
                .cmp(&order(b))
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Mount { entries, default }
    }

    pub fn entries(&self) -> impl Iterator<Item = &(MountKey, T)> {
        self.entries.iter()
    }

    pub fn default(&self) -> Option<&T> {
        self.default.as_ref()
    }

    /// Whether a key names a host: without one, the caller need not look the Host up.
    pub fn needs_host(&self) -> bool {
        // PERF: `new` sorts the host keys first (benches/callgrind mount3).
        self.entries
            .first()
            .is_some_and(|(key, _)| key.host.is_some())
    }

    /// `path`: PATH_INFO (decoded); `host`: the request's Host header, if any; `scheme`:
    /// the request's, whose default port a Host without one names.
    pub fn route(&self, path: &[u8], host: Option<&[u8]>, scheme: Scheme) -> Option<Routed<'_, T>> {
        let host = host.map(|h| std::str::from_utf8(h).unwrap_or(""));
        let name = host.map(strip_port);
        for (key, target) in &self.entries {
            if let Some(wanted) = &key.host {
                if !name.is_some_and(|h| h.eq_ignore_ascii_case(wanted)) {
                    continue;
                }
                if key.port.is_some() && key.port != host.map(|h| port_in(h, scheme)) {
                    continue;
                }
            }
            if claims(&key.prefix, path) {
                return Some(Routed {
                    target,
                    prefix_len: key.prefix.len(),
                });
            }
        }
        self.default.as_ref().map(|target| Routed {
            target,
            prefix_len: 0,
        })
    }
}

/// Whether a prefix claims a path: on a segment boundary, so `/api` claims `/api` and
/// `/api/x`, never `/apix`.
fn claims(prefix: &[u8], path: &[u8]) -> bool {
    let Some(head) = path.get(..prefix.len()) else {
        return false;
    };
    // PERF: sibling prefixes mostly differ in their last byte; comparing it first spares
    // each entry that does not match a memcmp call (benches/callgrind mount3).
    head.last() == prefix.last()
        && head == prefix
        && matches!(path.get(prefix.len()), None | Some(b'/'))
}

/// The port a Host value names, or the scheme's default (Paste urlmap's rule); a port that
/// is not a number matches no key.
fn port_in(host: &str, scheme: Scheme) -> u16 {
    match port_of(host) {
        Some(port) => port.parse().unwrap_or(0),
        None => match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Mount<&'static str> {
        let key = |k: &str| MountKey::parse(k).unwrap();
        Mount::new(
            vec![
                (key("/api"), "api"),
                (key("/api/v2/"), "v2"),
                (key("domain:admin.example.com/"), "admin"),
            ],
            Some("site"),
        )
    }

    fn route(path: &str, host: Option<&str>) -> (&'static str, usize) {
        let t = table();
        let routed = t
            .route(path.as_bytes(), host.map(str::as_bytes), Scheme::Http)
            .unwrap();
        (*routed.target, routed.prefix_len)
    }

    #[test]
    fn longest_prefix_on_a_segment_boundary_wins() {
        assert_eq!(route("/api", None), ("api", 4));
        assert_eq!(route("/api/x", None), ("api", 4));
        assert_eq!(route("/api/v2/users", None), ("v2", 7));
        assert_eq!(route("/apix", None), ("site", 0));
        assert_eq!(route("/", None), ("site", 0));
    }

    #[test]
    fn host_keys_match_the_host_without_its_port() {
        assert_eq!(
            route("/api/x", Some("Admin.Example.com:8080")),
            ("admin", 0)
        );
        assert_eq!(route("/api/x", Some("other.example.com")), ("api", 4));
    }

    #[test]
    fn no_default_and_no_match_routes_nowhere() {
        let t = Mount::new(vec![(MountKey::parse("/a").unwrap(), 1)], None);
        assert!(t.route(b"/b", None, Scheme::Http).is_none());
    }

    #[test]
    fn keys_are_checked() {
        assert!(MountKey::parse("api").is_err());
        assert!(MountKey::parse("domain:").is_err());
        assert_eq!(
            MountKey::parse("http://x.org:80/a/").unwrap().to_string(),
            "domain:x.org:80/a"
        );
        assert!(MountKey::parse("http://x.org:http/a").is_err());
        assert!(MountKey::parse("http://x.org:70000/").is_err());
    }

    #[test]
    fn a_key_with_a_port_matches_that_port_or_the_schemes_default() {
        let key = |k: &str| MountKey::parse(k).unwrap();
        let t = Mount::new(
            vec![
                (key("http://api.example.com:8080/"), "8080"),
                (key("http://api.example.com:443/"), "443"),
                (key("http://[::1]:81/"), "v6"),
            ],
            Some("site"),
        );
        let to = |host: &str, scheme| {
            *t.route(b"/x", Some(host.as_bytes()), scheme)
                .unwrap()
                .target
        };
        assert_eq!(to("API.example.com:8080", Scheme::Http), "8080");
        assert_eq!(to("api.example.com:8081", Scheme::Http), "site");
        assert_eq!(to("api.example.com", Scheme::Http), "site");
        assert_eq!(to("api.example.com", Scheme::Https), "443");
        assert_eq!(to("[::1]:81", Scheme::Http), "v6");
        assert_eq!(to("[::1]", Scheme::Http), "site");
    }

    #[test]
    fn a_host_without_a_port_is_tried_before_the_same_host_with_one() {
        // Paste's urlmap sorts its keys by domain, "a.org" before "a.org:8080".
        let key = |k: &str| MountKey::parse(k).unwrap();
        let t = Mount::new(
            vec![
                (key("http://a.org:8080/v1"), "port"),
                (key("http://a.org/"), "any"),
            ],
            None,
        );
        let routed = t
            .route(b"/v1/x", Some(b"a.org:8080"), Scheme::Http)
            .unwrap();
        assert_eq!(*routed.target, "any");
    }
}
