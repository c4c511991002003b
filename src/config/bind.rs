//! `--bind` addresses: `host:port`, `[v6]:port`, `:port`, `unix:/path`, `fd://N` (a listening
//! socket inherited from the process that started ferrogate), `https://` or `http://` in
//! front of a TCP address to say whether it serves TLS, and `uwsgi://` in front of a TCP
//! address or `unix:/path` to say it speaks the uwsgi protocol whatever `--protocol` says.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::Protocol;

/// What a TCP address serves, as its `--bind` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindScheme {
    /// No scheme written: TLS when `--certfile` is given (gunicorn's rule), else plain.
    #[default]
    Unspecified,
    /// `http://`: plain HTTP even with `--certfile`.
    Http,
    /// `https://`: TLS, which needs `--certfile`.
    Https,
    /// `uwsgi://`: the uwsgi protocol (a web server's `uwsgi_pass` in front), never TLS.
    Uwsgi,
}

impl BindScheme {
    /// Whether the address serves TLS, given whether a certificate is configured.
    pub fn is_tls(self, has_certificate: bool) -> bool {
        match self {
            BindScheme::Unspecified => has_certificate,
            BindScheme::Http | BindScheme::Uwsgi => false,
            BindScheme::Https => true,
        }
    }

    /// What the address speaks, given `--protocol` (which binds without a scheme follow).
    pub fn protocol(self, default: Protocol) -> Protocol {
        match self {
            BindScheme::Unspecified => default,
            BindScheme::Http | BindScheme::Https => Protocol::Http,
            BindScheme::Uwsgi => Protocol::Uwsgi,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            BindScheme::Unspecified => "",
            BindScheme::Http => "http://",
            BindScheme::Https => "https://",
            BindScheme::Uwsgi => "uwsgi://",
        }
    }
}

/// One place to listen, as the user wrote it; resolved to sockets by `server::listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// Host name or IP literal (without brackets) and port; resolved at bind time.
    Tcp {
        host: String,
        port: u16,
        scheme: BindScheme,
    },
    /// A Unix socket; its scheme is `Unspecified` or `Uwsgi`.
    Unix { path: PathBuf, scheme: BindScheme },
    /// A listening socket already open as this descriptor (systemd, or a parent process).
    Fd(i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindParseError(String);

impl fmt::Display for BindParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BindParseError {}

impl BindAddress {
    /// A Unix socket address without a scheme.
    pub fn unix(path: impl Into<PathBuf>) -> BindAddress {
        BindAddress::Unix {
            path: path.into(),
            scheme: BindScheme::Unspecified,
        }
    }

    /// The scheme written in front of the address (`Unspecified` for `fd://`).
    pub fn scheme(&self) -> BindScheme {
        match self {
            BindAddress::Tcp { scheme, .. } | BindAddress::Unix { scheme, .. } => *scheme,
            BindAddress::Fd(_) => BindScheme::Unspecified,
        }
    }
}

impl FromStr for BindAddress {
    type Err = BindParseError;

    fn from_str(written: &str) -> Result<Self, Self::Err> {
        let (scheme, text) = if let Some(rest) = written.strip_prefix("https://") {
            (BindScheme::Https, rest)
        } else if let Some(rest) = written.strip_prefix("http://") {
            (BindScheme::Http, rest)
        } else if let Some(rest) = written.strip_prefix("uwsgi://") {
            (BindScheme::Uwsgi, rest)
        } else {
            (BindScheme::Unspecified, written)
        };
        // A Unix socket is never TLS, so only uwsgi:// says something in front of one.
        let fits = match scheme {
            BindScheme::Unspecified => true,
            BindScheme::Uwsgi => !text.starts_with("fd://"),
            BindScheme::Http | BindScheme::Https => {
                !text.starts_with("unix:") && !text.starts_with("fd://")
            }
        };
        if !fits {
            return Err(BindParseError(format!(
                "{written:?}: http:// and https:// go only in front of host:port, uwsgi:// \
                 in front of host:port or unix:/path"
            )));
        }
        if let Some(number) = text.strip_prefix("fd://") {
            return match number.parse::<i32>() {
                Ok(fd) if fd >= 0 => Ok(BindAddress::Fd(fd)),
                _ => Err(BindParseError(format!(
                    "{text:?}: fd:// needs a descriptor number"
                ))),
            };
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(BindParseError("unix: needs a socket path".into()));
            }
            return Ok(BindAddress::Unix {
                path: PathBuf::from(path),
                scheme,
            });
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| {
                BindParseError(format!("{text:?}: missing ']' after IPv6 address"))
            })?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| BindParseError(format!("{text:?}: expected [address]:port")))?;
            (host, port)
        } else {
            text.rsplit_once(':').ok_or_else(|| {
                BindParseError(format!("{text:?}: expected host:port or unix:/path"))
            })?
        };
        let port = port.parse::<u16>().map_err(|_| {
            BindParseError(format!(
                "{text:?}: port {port:?} is not a number from 0 to 65535"
            ))
        })?;
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        Ok(BindAddress::Tcp {
            host: host.to_string(),
            port,
            scheme,
        })
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddress::Tcp { host, port, scheme } => {
                f.write_str(scheme.prefix())?;
                match host.contains(':') {
                    true => write!(f, "[{host}]:{port}"),
                    false => write!(f, "{host}:{port}"),
                }
            }
            BindAddress::Unix { path, scheme } => {
                write!(f, "{}unix:{}", scheme.prefix(), path.display())
            }
            BindAddress::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> BindAddress {
        BindAddress::Tcp {
            host: host.into(),
            port,
            scheme: BindScheme::Unspecified,
        }
    }

    #[test]
    fn a_scheme_says_whether_a_tcp_address_serves_tls() {
        let https: BindAddress = "https://0.0.0.0:8443".parse().unwrap();
        let BindAddress::Tcp { scheme, port, .. } = &https else {
            panic!("{https:?}")
        };
        assert_eq!((*scheme, *port), (BindScheme::Https, 8443));
        assert!(scheme.is_tls(false));
        assert_eq!(https.to_string(), "https://0.0.0.0:8443");
        let http: BindAddress = "http://[::1]:80".parse().unwrap();
        assert_eq!(http.to_string(), "http://[::1]:80");
        let BindAddress::Tcp { scheme, .. } = http else {
            panic!()
        };
        assert!(!scheme.is_tls(true));
        assert!(BindScheme::Unspecified.is_tls(true));
        assert!(!BindScheme::Unspecified.is_tls(false));
        for bad in ["https://unix:/tmp/x", "http://fd://3", "https://8443"] {
            assert!(bad.parse::<BindAddress>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uwsgi_scheme_sets_the_protocol_of_one_tcp_or_unix_address() {
        let tcp: BindAddress = "uwsgi://127.0.0.1:3031".parse().unwrap();
        assert_eq!(tcp.scheme(), BindScheme::Uwsgi);
        assert_eq!(tcp.to_string(), "uwsgi://127.0.0.1:3031");
        let unix: BindAddress = "uwsgi://unix:/run/app.sock".parse().unwrap();
        assert_eq!(
            unix,
            BindAddress::Unix {
                path: "/run/app.sock".into(),
                scheme: BindScheme::Uwsgi
            }
        );
        assert_eq!(unix.to_string(), "uwsgi://unix:/run/app.sock");
        assert!(!BindScheme::Uwsgi.is_tls(true));
        assert_eq!(BindScheme::Uwsgi.protocol(Protocol::Http), Protocol::Uwsgi);
        assert_eq!(BindScheme::Http.protocol(Protocol::Uwsgi), Protocol::Http);
        assert_eq!(
            BindScheme::Unspecified.protocol(Protocol::Uwsgi),
            Protocol::Uwsgi
        );
        assert!("uwsgi://fd://3".parse::<BindAddress>().is_err());
        assert!("uwsgi://3031".parse::<BindAddress>().is_err());
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!("127.0.0.1:8000".parse(), Ok(tcp("127.0.0.1", 8000)));
        assert_eq!("[::1]:9000".parse(), Ok(tcp("::1", 9000)));
        assert_eq!(":80".parse(), Ok(tcp("0.0.0.0", 80)));
        assert_eq!("localhost:0".parse(), Ok(tcp("localhost", 0)));
        assert_eq!(
            "unix:/tmp/x.sock".parse(),
            Ok(BindAddress::unix("/tmp/x.sock"))
        );
        assert_eq!("fd://3".parse(), Ok(BindAddress::Fd(3)));
    }

    #[test]
    fn rejects_malformed_addresses_with_the_culprit_named() {
        for bad in [
            "8000",
            "host:http",
            "host:70000",
            "[::1]9000",
            "unix:",
            "fd://",
            "fd://-1",
        ] {
            let err = bad.parse::<BindAddress>().unwrap_err();
            assert!(!err.to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(tcp("::1", 1).to_string(), "[::1]:1");
        assert_eq!(tcp("0.0.0.0", 1).to_string(), "0.0.0.0:1");
    }
}
