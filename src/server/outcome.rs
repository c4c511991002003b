//! What the metrics count of how a connection began and ended: its TLS handshake, and whether
//! the server ended it before serving it (`ferrogate_connections_refused_total`). Called by
//! the accept loop's connection task; knows the errors of `http` and `tls`, not their causes.

use super::tls::{Handshake, HandshakeError};
use crate::http::status::Failure;
use crate::http::{ConnectionError, PreambleError, RequestError};
use crate::observe::metrics::{ConnectionRefusal, HandshakeFailure, WorkerMetrics};

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
