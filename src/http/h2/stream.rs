//! One HTTP/2 stream as one request to the handler: the request head made from the
//! pseudo-headers, the body fed as the app reads (`body.rs`), and the response sent within
//! the client's flow-control windows. A stream the client resets drops the handler's reply,
//! and so its body: the app's `close()` runs (wsgi/reply.rs).

use std::future::poll_fn;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{CONTENT_LENGTH, COOKIE, DATE, HOST, SERVER};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Uri, Version};

use super::body::{stream_body, BodyReading};
use crate::handler::{ConnectionInfo, Handler};
use crate::http::body::{FileRange, Source};
use crate::http::date::with_http_date;
use crate::http::error::RequestError;
use crate::http::h1::{note_response, ConnectionActivity, ConnectionOptions};
use crate::http::status::Failure;
use crate::http::{forwarded, BodyError, InFlight, Response};
use crate::observe::metrics::ResponseFacts;

/// Bytes of a file body read per blocking read, as for HTTP/1 over TLS.
const FILE_READ_BYTES: usize = 256 * 1024;

/// What the streams of one connection share.
pub struct StreamShared<H> {
    pub handler: H,
    pub options: ConnectionOptions,
    pub info: ConnectionInfo,
    /// Streams the client reset before their response ended (rapid reset, CVE-2023-44487).
    pub cancelled: AtomicU32,
    /// The server's requests in flight, which defer accepting (`max_in_flight`), as over HTTP/1.
    pub in_flight: std::sync::Arc<InFlight>,
}

/// Serves one stream to its end. Returns whether the client reset it before the response ended.
pub async fn serve_stream<H: Handler>(
    shared: std::sync::Arc<StreamShared<H>>,
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    activity: std::sync::Arc<ConnectionActivity>,
) {
    let _in_progress = activity.request_started();
    let _in_flight = (shared.options.max_in_flight > 0).then(|| shared.in_flight.enter());
    let limits = &shared.options.limits;
    let (mut parts, recv) = request.into_parts();
    into_origin_form(&mut parts);
    let mut info = shared.info.clone();
    let access = shared
        .options
        .access_log
        .as_ref()
        .map(|log| (log, log.capture(&parts, info.peer, info.local)));
    let is_head = parts.method == Method::HEAD;
    let metrics = shared.options.metrics.as_ref();
    let measured = metrics.map(|metrics| {
        let started = std::time::Instant::now();
        (metrics.request(), parts.method.clone(), started)
    });
    let refusal = refusal(&mut parts, &mut info, &shared.options);
    let reply = match refusal {
        Some(error) => Failure::Refused(error).into_response(),
        None => {
            let body = match recv.is_end_stream() {
                true => None,
                false => Some(stream_body(
                    recv,
                    BodyReading {
                        body_limit: limits.body_bytes,
                        socket_timeout: limits.socket_timeout,
                        metrics: metrics.cloned(),
                    },
                )),
            };
            let reply = shared.handler.call(parts, body, &info);
            // A reset before the answer drops the handler's reply at once.
            let reset = poll_fn(|cx| respond.poll_reset(cx));
            tokio::select! {
                response = reply => response,
                _ = reset => {
                    shared.cancelled.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    };
    let status = reply.status.as_u16();
    let queue_time = reply.queue_time;
    // Before the reply is consumed: the queue time and the response headers the format names.
    let note = access
        .as_ref()
        .map(|(log, _)| note_response(Some(log), &reply));
    let sent = send_response(reply, respond, is_head, limits.socket_timeout).await;
    let body_bytes = match sent {
        Ok(bytes) => bytes,
        Err(Sent::Reset(bytes)) => {
            shared.cancelled.fetch_add(1, Ordering::Relaxed);
            bytes
        }
        Err(Sent::Broken(bytes)) => bytes,
    };
    if let (Some(metrics), Some((_in_flight, method, started))) = (metrics, &measured) {
        metrics.response(&ResponseFacts {
            method: method.as_str(),
            status,
            listener: usize::from(info.listener),
            body_bytes,
            duration: started.elapsed(),
            queue_time,
        });
    }
    if let (Some((log, record)), Some(note)) = (access, note) {
        log.write(&record, status, body_bytes, &note);
    }
}

/// RFC 9113 §8.3.1: `:path` is the target in origin form; `:authority` stands for Host, and
/// the request URI the environ sees is the origin form with Host beside it, as over HTTP/1.
fn into_origin_form(parts: &mut Parts) {
    if let Some(authority) = parts.uri.authority() {
        if !parts.headers.contains_key(HOST) {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                parts.headers.insert(HOST, host);
            }
        }
    }
    if let Some(origin) = parts.uri.path_and_query() {
        if let Ok(uri) = Uri::try_from(origin.as_str()) {
            parts.uri = uri;
        }
    }
    // RFC 9113 §8.2.3: cookie crumbs sent as separate fields are joined with "; ".
    let mut cookies = parts.headers.get_all(COOKIE).iter();
    if let (Some(first), Some(_)) = (cookies.next(), cookies.next()) {
        let mut joined = first.as_bytes().to_vec();
        for crumb in parts.headers.get_all(COOKIE).iter().skip(1) {
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(crumb.as_bytes());
        }
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            parts.headers.insert(COOKIE, value);
        }
    }
    parts.version = Version::HTTP_2;
}

/// The refusal a stream gets before the app is called: a declared body over the limit, or
/// proxy headers from a trusted proxy that do not parse.
fn refusal(
    parts: &mut Parts,
    info: &mut ConnectionInfo,
    options: &ConnectionOptions,
) -> Option<RequestError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let (Some(declared), Some(limit)) = (declared, options.limits.body_bytes) {
        if declared > limit {
            return Some(RequestError::BodyTooLarge { limit });
        }
    }
    if info.from_trusted_proxy {
        return forwarded::resolve(parts, info, &options.trusted_proxies).err();
    }
    None
}

/// How a response failed; each carries the body bytes sent before.
enum Sent {
    /// The client reset the stream (or the connection went).
    Reset(u64),
    /// The body broke off on our side (the app failed, a wrong length, a stalled window).
    Broken(u64),
}

/// Sends `response` on the stream; the body bytes sent.
async fn send_response(
    response: Response,
    mut respond: SendResponse<Bytes>,
    is_head: bool,
    timeout: Duration,
) -> Result<u64, Sent> {
    let with_body = response.allows_body() && !is_head;
    let head = response_head(&response);
    let body = response.body;
    let empty = matches!(&body.source, Source::Full(bytes) if bytes.is_empty());
    let mut stream = respond
        .send_response(head, !with_body || empty)
        .map_err(|_| Sent::Reset(0))?;
    if !with_body || empty {
        return Ok(0);
    }
    let mut out = Sender {
        stream: &mut stream,
        timeout,
        sent: 0,
        declared: body.declared_length,
    };
    let result = match body.source {
        Source::Full(bytes) => out.send(bytes, true).await,
        Source::Chunks(chunks) => {
            let last = chunks.len().saturating_sub(1);
            let mut result = Ok(());
            for (i, chunk) in chunks.into_iter().enumerate() {
                result = out.send(chunk, i == last).await;
                if result.is_err() {
                    break;
                }
            }
            result
        }
        Source::Stream { first, mut rx } => {
            let mut result = out.send(first, false).await;
            while result.is_ok() {
                match rx.recv().await {
                    Some(Ok(chunk)) => result = out.send(chunk, false).await,
                    Some(Err(_)) => result = Err(Sent::Broken(out.sent)),
                    None => {
                        result = out.send(Bytes::new(), true).await;
                        break;
                    }
                }
            }
            result
        }
        Source::File(range) => out.send_file(range).await,
    };
    let sent = out.sent;
    match result {
        Ok(()) => Ok(sent),
        Err(error) => {
            stream.send_reset(match error {
                Sent::Reset(_) => Reason::CANCEL,
                Sent::Broken(_) => Reason::INTERNAL_ERROR,
            });
            Err(error)
        }
    }
}

/// The response head as HTTP/2 fields: names lowercased (RFC 9113 §8.2), the
/// connection-specific fields left out (§8.2.2), `Server`, `Date` and the length added.
fn response_head(response: &Response) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status;
    let headers = head.headers_mut();
    let mut has_length = false;
    // The pairs read from the head's offsets; `from_bytes` lowercases the name itself.
    for (name, value) in response.headers.lines() {
        if is_connection_specific(name) {
            continue;
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        has_length |= name == CONTENT_LENGTH;
        headers.append(name, value);
    }
    if !response.headers.has_server() {
        headers.insert(SERVER, HeaderValue::from_static("ferrogate"));
    }
    if !response.headers.has_date() {
        // The per-second cache HTTP/1 uses, not a format per response.
        if let Ok(date) = with_http_date(HeaderValue::from_bytes) {
            headers.insert(DATE, date);
        }
    }
    if !has_length && response.allows_body() {
        if let Some(length) = response.body.known_length() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    head
}

/// RFC 9113 §8.2.2: fields that only mean something on one HTTP/1 connection.
fn is_connection_specific(name: &[u8]) -> bool {
    [
        &b"connection"[..],
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    ]
    .iter()
    .any(|field| field.eq_ignore_ascii_case(name))
}

/// Writes body bytes as the client's windows allow.
struct Sender<'a> {
    stream: &'a mut SendStream<Bytes>,
    /// `--socket-timeout`: longest wait for window (a client that never opens it is cut off).
    timeout: Duration,
    sent: u64,
    /// The app's Content-Length, which the body is held to.
    declared: Option<u64>,
}

impl Sender<'_> {
    async fn send(&mut self, mut data: Bytes, end: bool) -> Result<(), Sent> {
        let total = self.sent + data.len() as u64;
        if let Some(declared) = self.declared {
            if total > declared || (end && total < declared) {
                log::error!(
                    "HTTP/2 response: {}; resetting the stream",
                    BodyError::LengthMismatch {
                        declared,
                        produced: total
                    }
                );
                return Err(Sent::Broken(self.sent));
            }
        }
        if data.is_empty() {
            if end {
                self.stream
                    .send_data(data, true)
                    .map_err(|_| Sent::Reset(self.sent))?;
            }
            return Ok(());
        }
        while !data.is_empty() {
            self.stream.reserve_capacity(data.len());
            let granted = poll_fn(|cx| self.stream.poll_capacity(cx));
            let capacity = match tokio::time::timeout(self.timeout, granted).await {
                Err(_) => {
                    log::warn!(
                        "HTTP/2 client opened no window for {}s (--socket-timeout); resetting the stream",
                        self.timeout.as_secs_f64()
                    );
                    return Err(Sent::Broken(self.sent));
                }
                Ok(Some(Ok(capacity))) => capacity,
                Ok(Some(Err(_)) | None) => return Err(Sent::Reset(self.sent)),
            };
            if capacity == 0 {
                continue;
            }
            let piece = data.split_to(capacity.min(data.len()));
            let n = piece.len() as u64;
            self.stream
                .send_data(piece, end && data.is_empty())
                .map_err(|_| Sent::Reset(self.sent))?;
            self.sent += n;
        }
        Ok(())
    }

    /// A file range read in blocks on a blocking thread (never on the I/O thread, never mapped).
    async fn send_file(&mut self, range: FileRange) -> Result<(), Sent> {
        let file = std::sync::Arc::new(range.file);
        let end = range.offset + range.len;
        let mut offset = range.offset;
        if range.len == 0 {
            return self.send(Bytes::new(), true).await;
        }
        while offset < end {
            let want = (end - offset).min(FILE_READ_BYTES as u64) as usize;
            let reading = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut block = vec![0; want];
                let got = std::os::unix::fs::FileExt::read_at(&*reading, &mut block, offset)?;
                block.truncate(got);
                Ok::<_, std::io::Error>(block)
            })
            .await;
            let block = match read {
                Ok(Ok(block)) if !block.is_empty() => block,
                // Unreadable, or shrunk after its length was sent: the client must see a cut.
                _ => return Err(Sent::Broken(self.sent)),
            };
            offset += block.len() as u64;
            self.send(Bytes::from(block), offset >= end).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{HeaderBlock, ResponseBody};

    fn parts(request: http::request::Builder) -> Parts {
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authority_becomes_host_and_the_uri_its_origin_form() {
        let mut head = parts(Request::get("http://example.com:8080/a%20b?x=1"));
        into_origin_form(&mut head);
        assert_eq!(head.uri, "/a%20b?x=1");
        assert_eq!(head.headers[HOST], "example.com:8080");
        assert_eq!(head.version, Version::HTTP_2);
    }

    #[test]
    fn cookie_crumbs_are_joined_with_semicolons() {
        let mut head = parts(
            Request::get("http://h/")
                .header(COOKIE, "a=1")
                .header(COOKIE, "b=2")
                .header(COOKIE, "c=3"),
        );
        into_origin_form(&mut head);
        let cookies: Vec<_> = head.headers.get_all(COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; b=2; c=3"]);
    }

    #[test]
    fn response_names_are_lowercased_and_connection_fields_dropped() {
        let mut headers = HeaderBlock::default();
        headers.push(b"Content-Type", b"text/plain");
        headers.push(b"Connection", b"close");
        headers.push(b"Keep-Alive", b"timeout=5");
        headers.push(b"X-Custom", b"Value");
        let response = Response::new(
            http::StatusCode::OK,
            headers,
            ResponseBody::full(Bytes::from_static(b"hello")),
        );
        let head = response_head(&response);
        let names: Vec<_> = head.headers().keys().map(|n| n.as_str()).collect();
        assert!(names.contains(&"content-type") && names.contains(&"x-custom"));
        assert!(!names.contains(&"connection") && !names.contains(&"keep-alive"));
        assert_eq!(head.headers()[CONTENT_LENGTH], "5");
        assert_eq!(head.headers()[SERVER], "ferrogate");
    }
}
