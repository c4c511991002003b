//! `--bind` addresses: `host:port`, `[v6]:port`, `:port`, `unix:/path`, `fd://N` (a listening
//! socket inherited from the process that started ferrogate).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// One place to listen, as the user wrote it; resolved to sockets by `server::listener`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddress {
    /// Host name or IP literal (without brackets) and port; resolved at bind time.
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
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

impl FromStr for BindAddress {
    type Err = BindParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
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
            return Ok(BindAddress::Unix(PathBuf::from(path)));
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
        })
    }
}

impl fmt::Display for BindAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddress::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            BindAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
            BindAddress::Unix(path) => write!(f, "unix:{}", path.display()),
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
        }
    }

    #[test]
    fn parses_every_documented_form() {
        assert_eq!("127.0.0.1:8000".parse(), Ok(tcp("127.0.0.1", 8000)));
        assert_eq!("[::1]:9000".parse(), Ok(tcp("::1", 9000)));
        assert_eq!(":80".parse(), Ok(tcp("0.0.0.0", 80)));
        assert_eq!("localhost:0".parse(), Ok(tcp("localhost", 0)));
        assert_eq!(
            "unix:/tmp/x.sock".parse(),
            Ok(BindAddress::Unix("/tmp/x.sock".into()))
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
