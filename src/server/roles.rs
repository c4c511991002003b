//! What each listener serves, decided once in the master from the `--bind` it came from:
//! whether it speaks TLS (`https://`, or `--certfile` without a scheme) and which protocol
//! inside (`uwsgi://`, else `--protocol`). Called by python/entry.rs before the workers fork;
//! the workers build their `Endpoint`s from the result (python/launcher.rs).

use super::tls::TlsConfigError;
use super::Listener;
use crate::config::{BindAddress, BindScheme, Protocol, Settings};

/// The scheme each listener's `--bind` wrote; sockets inherited whole from an old master
/// (or from systemd without one bind each) have none, so they follow `--certfile` and
/// `--protocol`.
pub fn listener_schemes(binds: &[BindAddress], listeners: &[Listener]) -> Vec<BindScheme> {
    match binds.len() == listeners.len() {
        true => binds.iter().map(BindAddress::scheme).collect(),
        false => vec![BindScheme::Unspecified; listeners.len()],
    }
}

/// Which listeners serve TLS: an `https://` bind, or with `--certfile` a TCP bind without a
/// scheme. Such a bind under `--protocol uwsgi` is refused, naming it: a web server speaking
/// uwsgi does not wrap it in TLS (an `https://` bind says HTTP, whatever `--protocol` says).
pub fn encrypted_listeners(
    schemes: &[BindScheme],
    listeners: &[Listener],
    has_certificate: bool,
    settings: &Settings,
) -> Result<Vec<bool>, TlsConfigError> {
    let encrypted: Vec<bool> = schemes
        .iter()
        .zip(listeners)
        .map(|(scheme, listener)| scheme.is_tls(has_certificate) && listener.local_addr().is_some())
        .collect();
    let uwsgi_over_tls = encrypted
        .iter()
        .zip(schemes)
        .zip(listeners)
        .find(|((tls, scheme), _)| **tls && scheme.protocol(settings.protocol) == Protocol::Uwsgi);
    if let Some((_, listener)) = uwsgi_over_tls {
        return Err(TlsConfigError::Setting {
            setting: "bind",
            why: format!(
                "{} serves TLS (--certfile, no scheme) and --protocol uwsgi is not served \
                 over TLS (a web server speaks uwsgi in plain text); bind it as \
                 uwsgi://host:port, or https://host:port for HTTPS",
                listener.to_string().replacen("http://", "", 1)
            ),
        });
    }
    if encrypted.contains(&true) && !has_certificate {
        return Err(TlsConfigError::NoCertificate);
    }
    if encrypted.contains(&true) && settings.proxy_protocol {
        return Err(TlsConfigError::Setting {
            setting: "proxy-protocol",
            why: "not supported yet on TLS listeners (the preamble comes before the \
                  handshake); terminate TLS at the proxy or serve plain HTTP behind it"
                .into(),
        });
    }
    Ok(encrypted)
}
