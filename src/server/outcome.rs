//! What the metrics count and the log says of how a connection began and ended: its TLS
//! handshake, whether the server ended it before serving it
//! (`ferrogate_connections_refused_total`), and one readable line for one that ended badly.
//! Called by the accept loop's connection task; knows the errors of `http` and `tls`, not
//! their causes.

use std::io;

use super::tls::{Handshake, HandshakeError};
use crate::handler::ConnectionInfo;
use crate::http::status::Failure;
use crate::http::{ConnectionError, PreambleError, RequestError};
use crate::observe::metrics::{ConnectionRefusal, HandshakeFailure, WorkerMetrics};
use crate::observe::LogThrottle;

/// Counts a handshake's outcome on `listener`. A client that closed before sending a byte is a
/// failure labelled "closed" (a TCP port check does that), but no refusal: nothing was
/// refused. Plain HTTP on the TLS port is counted as refused where its 400 ends the
/// connection (`count_end`).
pub fn count_handshake(
    metrics: &WorkerMetrics,
    handshake: &Result<Handshake, HandshakeError>,
    listener: u8,
) {
    let listener = usize::from(listener);
    let failure = match handshake {
        Ok(Handshake::Done(..)) => return metrics.tls_handshake(Ok(()), listener),
        Ok(Handshake::PlainHttp(_)) => HandshakeFailure::NotTls,
        Err(HandshakeError::TimedOut(_)) => HandshakeFailure::Timeout,
        Err(HandshakeError::Closed) => HandshakeFailure::Closed,
        Err(HandshakeError::NotTls(_)) => HandshakeFailure::NotTls,
        Err(HandshakeError::Tls(_)) => HandshakeFailure::Protocol,
    };
    metrics.tls_handshake(Err(failure), listener);
    if matches!(handshake, Err(error) if !matches!(error, HandshakeError::Closed)) {
        metrics.connection_refused(ConnectionRefusal::TlsHandshake, listener);
    }
}

/// Counts a connection that ended in a refusal on `listener`: its refused request (by status,
/// in `ferrogate_requests_total`) and the connection.
pub fn count_end(metrics: &WorkerMetrics, served: &Result<(), ConnectionError>, listener: u8) {
    let listener = usize::from(listener);
    match served {
        Err(ConnectionError::Refused(error)) => {
            let status = Failure::Refused(error.clone()).status().as_u16();
            metrics.refused(status, listener);
            let why = match error {
                RequestError::PlainHttpOnTlsPort => ConnectionRefusal::TlsHandshake,
                _ => ConnectionRefusal::Request,
            };
            metrics.connection_refused(why, listener);
        }
        // A client that closed before its preamble was not refused (as for TLS).
        Err(ConnectionError::Preamble(PreambleError::Closed)) => {}
        Err(ConnectionError::Preamble(_)) => {
            metrics.connection_refused(ConnectionRefusal::ProxyPreamble, listener)
        }
        _ => {}
    }
}

/// Lines a second about clients that sent something wrong. Why a bound: such lines are
/// caused by clients, and a flood of bad requests must not become a flood of log writes.
static CLIENT_FAULT_LOG: LogThrottle = LogThrottle::new(20);

/// A client that goes away before a byte is only worth a debug line; the rest are clients'
/// faults, throttled like refused requests.
pub fn log_handshake_failure(error: &HandshakeError, info: &ConnectionInfo) {
    let peer = peer_name(info);
    match error {
        HandshakeError::Closed => log::debug!("Connection from {peer}: {error}"),
        _ => {
            if let Some(withheld) = CLIENT_FAULT_LOG.admit() {
                log::warn!(
                    "Closed the connection from {peer}: {error}{}",
                    withheld_note(withheld)
                );
            }
        }
    }
}

pub fn peer_name(info: &ConnectionInfo) -> String {
    info.peer
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unix socket".into())
}

fn withheld_note(withheld: u64) -> String {
    match withheld {
        0 => String::new(),
        n => format!(" ({n} similar lines withheld)"),
    }
}

/// One readable line for a connection that ended badly.
pub fn log_end(result: Result<(), ConnectionError>, info: &ConnectionInfo) {
    let Err(error) = result else { return };
    let peer = peer_name(info);
    match error {
        ConnectionError::Refused(error) => {
            let status = Failure::Refused(error.clone()).status().as_u16();
            if let Some(withheld) = CLIENT_FAULT_LOG.admit() {
                log::warn!("{status} from {peer}: {error}{}", withheld_note(withheld));
            }
        }
        ConnectionError::Preamble(error) => {
            if let Some(withheld) = CLIENT_FAULT_LOG.admit() {
                log::warn!(
                    "Closed the connection from {peer}: {error}{}",
                    withheld_note(withheld)
                );
            }
        }
        ConnectionError::Response(error @ crate::http::BodyError::LengthMismatch { .. }) => {
            log::error!("Response to {peer}: {error}; closing the connection")
        }
        // The app's failure was logged where it happened.
        ConnectionError::Response(error) => {
            log::debug!("Aborted the connection from {peer}: {error}")
        }
        ConnectionError::IncompleteHead => {
            log::debug!("Connection from {peer} closed in the middle of a request head")
        }
        ConnectionError::Io(error) if error.kind() == io::ErrorKind::TimedOut => {
            if let Some(withheld) = CLIENT_FAULT_LOG.admit() {
                log::warn!("Cut off {peer}: {error}{}", withheld_note(withheld));
            }
        }
        ConnectionError::Io(error) => log::debug!("Connection from {peer} ended: {error}"),
    }
}
