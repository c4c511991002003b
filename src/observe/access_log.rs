//! The access log and the slow-request log: one line per response, written when its body
//! ends, in the format `--access-log-format` compiled (access_format.rs; Apache's combined
//! format by default), and a warning in the error log for a request slower than
//! `--log-slow-requests`. Both from Rust, never under the GIL. The connection captures an
//! `AccessRecord` before the request is handed on and a `ResponseNote` before the response is
//! written (http/h1/conn.rs).

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::header::{AUTHORIZATION, REFERER, USER_AGENT};
use http::request::Parts;
use http::HeaderName;

use super::access_format::{AccessFormat, Atom};
use super::Sink;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The access log (when `--access-log` is given) and the slow-request threshold.
pub struct AccessLog {
    /// `None`: only slow requests are logged (to the error log).
    sink: Option<Mutex<Sink>>,
    format: AccessFormat,
    /// `--log-slow-requests`.
    slow_after: Option<Duration>,
    /// Headers of the request the format needs, besides Referer and User-Agent.
    request_headers: Vec<HeaderName>,
    /// Headers of the response the format needs (lower case).
    response_headers: Vec<String>,
}

/// How the log is set up; `AccessLog::open` makes it.
pub struct AccessLogOptions<'a> {
    /// `--access-log`: a path, or '-' for stdout.
    pub target: Option<&'a str>,
    pub format: AccessFormat,
    pub slow_after: Option<Duration>,
}

impl AccessLog {
    /// Opens `target` ('-' is stdout) for combined-format lines, nothing else logged.
    pub fn open(target: &str) -> io::Result<AccessLog> {
        AccessLog::open_with(AccessLogOptions {
            target: Some(target),
            format: AccessFormat::Combined,
            slow_after: None,
        })
    }

    /// Opens the target, if any, for lines in `options.format`.
    pub fn open_with(options: AccessLogOptions<'_>) -> io::Result<AccessLog> {
        let sink = match options.target {
            Some(target) => Some(Mutex::new(Sink::open(target, Sink::Stdout)?)),
            None => None,
        };
        Ok(AccessLog {
            sink,
            request_headers: options.format.request_headers(),
            response_headers: options.format.response_headers(),
            format: options.format,
            slow_after: options.slow_after,
        })
    }

    /// Opens the file again (SIGUSR1, after logrotate moved it away).
    pub fn reopen(&self) -> io::Result<()> {
        match &self.sink {
            Some(sink) => sink.lock().unwrap_or_else(|e| e.into_inner()).reopen(),
            None => Ok(()),
        }
    }

    /// The response headers a line needs; the connection copies them into the note.
    pub fn response_headers(&self) -> &[String] {
        &self.response_headers
    }

    /// What a line needs to know of a request, before it is handed on.
    pub fn capture(
        &self,
        head: &Parts,
        remote: Option<SocketAddr>,
        listener: Option<SocketAddr>,
    ) -> AccessRecord {
        let header = |name: &HeaderName| {
            head.headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default()
        };
        let wants_user =
            matches!(&self.format, AccessFormat::Atoms(atoms) if atoms.contains(&Atom::User));
        AccessRecord {
            remote,
            listener,
            method: head.method.as_str().to_string(),
            target: head.uri.to_string(),
            protocol: format!("{:?}", head.version),
            referer: header(&REFERER),
            user_agent: header(&USER_AGENT),
            request_id: header(&X_REQUEST_ID),
            authorization: if wants_user {
                header(&AUTHORIZATION)
            } else {
                String::new()
            },
            headers: self
                .request_headers
                .iter()
                .map(|name| (name.clone(), header(name)))
                .collect(),
            started: Instant::now(),
        }
    }

    /// Logs a response whose body has ended (or broken off).
    pub fn write(&self, record: &AccessRecord, status: u16, body_bytes: u64, note: &ResponseNote) {
        let took = record.started.elapsed();
        if let Some(sink) = &self.sink {
            let done = Done {
                status,
                body_bytes,
                took,
                note,
                // The worker's: the log is opened in the master, before the fork.
                pid: std::process::id(),
            };
            let line = match &self.format {
                AccessFormat::Combined => {
                    record.format_combined(status, body_bytes, chrono::Utc::now())
                }
                AccessFormat::Atoms(atoms) => record.format_atoms(atoms, &done, chrono::Utc::now()),
                AccessFormat::Json => record.format_json(&done, chrono::Utc::now()),
            };
            sink.lock()
                .unwrap_or_else(|e| e.into_inner())
                .write_line(line.as_bytes());
        }
        if self.slow_after.is_some_and(|slow| took > slow) {
            log::warn!(
                "Slow request: {} {} took {:.3}s (queued {:.3}s), status {status}, from {}",
                record.method,
                record.target,
                took.as_secs_f64(),
                note.queue_time.unwrap_or_default().as_secs_f64(),
                record
                    .remote
                    .map_or("unix socket".to_string(), |addr| addr.ip().to_string()),
            );
        }
    }
}

/// What the log needs to know about a request, captured before the request is handed on.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub remote: Option<SocketAddr>,
    /// The address the request arrived on; `None` on a Unix socket.
    pub listener: Option<SocketAddr>,
    pub method: String,
    /// The target undecoded, as received.
    pub target: String,
    /// `HTTP/1.1`
    pub protocol: String,
    pub referer: String,
    pub user_agent: String,
    /// `X-Request-ID` as the client sent it (the response's wins: the RequestId layer's).
    pub request_id: String,
    /// Kept only when the format logs the user (`%(u)s`).
    pub authorization: String,
    /// The request headers the format names.
    pub headers: Vec<(HeaderName, String)>,
    /// When the head had been read.
    pub started: Instant,
}

/// What the log needs to know about a response, noted before it is written.
#[derive(Debug, Clone, Default)]
pub struct ResponseNote {
    /// The wait for a Python thread; `None` when no Python thread answered.
    pub queue_time: Option<Duration>,
    /// The response headers the format names (lower-case name, value).
    pub headers: Vec<(String, String)>,
}

/// A response's end, as a line reports it.
struct Done<'a> {
    status: u16,
    body_bytes: u64,
    took: Duration,
    note: &'a ResponseNote,
    pid: u32,
}

impl AccessRecord {
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, with `-` for empty fields.
    pub fn format_combined(
        &self,
        status: u16,
        body_bytes: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let mut line = String::with_capacity(128 + self.target.len());
        self.push_remote(&mut line);
        let _ = write!(line, " - - [{}] \"", at.format("%d/%b/%Y:%H:%M:%S +0000"));
        push_escaped(&mut line, &self.request_line());
        let _ = write!(line, "\" {status} ");
        if body_bytes == 0 {
            line.push('-');
        } else {
            let _ = write!(line, "{body_bytes}");
        }
        line.push_str(" \"");
        push_escaped(&mut line, or_dash(&self.referer));
        line.push_str("\" \"");
        push_escaped(&mut line, or_dash(&self.user_agent));
        line.push_str("\"\n");
        line
    }

    fn format_atoms(
        &self,
        atoms: &[Atom],
        done: &Done<'_>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let mut line = String::with_capacity(160 + self.target.len());
        for atom in atoms {
            match atom {
                Atom::Text(text) => line.push_str(text),
                Atom::Remote => self.push_remote(&mut line),
                Atom::Dash | Atom::Unknown => line.push('-'),
                Atom::User => push_escaped(&mut line, or_dash(&basic_user(&self.authorization))),
                Atom::Time => {
                    let _ = write!(line, "[{}]", at.format("%d/%b/%Y:%H:%M:%S +0000"));
                }
                Atom::RequestLine => push_escaped(&mut line, &self.request_line()),
                Atom::Method => push_escaped(&mut line, &self.method),
                Atom::Path => push_escaped(&mut line, self.path()),
                Atom::Query => push_escaped(&mut line, self.query()),
                Atom::Protocol => line.push_str(&self.protocol),
                Atom::Status => {
                    let _ = write!(line, "{}", done.status);
                }
                Atom::Bytes => {
                    let _ = write!(line, "{}", done.body_bytes);
                }
                Atom::BytesOrDash if done.body_bytes == 0 => line.push('-'),
                Atom::BytesOrDash => {
                    let _ = write!(line, "{}", done.body_bytes);
                }
                Atom::Referer => push_escaped(&mut line, or_dash(&self.referer)),
                Atom::UserAgent => push_escaped(&mut line, or_dash(&self.user_agent)),
                Atom::Seconds => {
                    let _ = write!(line, "{}", done.took.as_secs());
                }
                Atom::Micros => {
                    let _ = write!(line, "{}", done.took.as_micros());
                }
                Atom::Millis => {
                    let _ = write!(line, "{}", done.took.as_millis());
                }
                Atom::DecimalSeconds => {
                    let _ = write!(line, "{:.6}", done.took.as_secs_f64());
                }
                Atom::Pid => {
                    let _ = write!(line, "<{}>", done.pid);
                }
                Atom::QueueMillis => match done.note.queue_time {
                    Some(queued) => {
                        let _ = write!(line, "{:.3}", queued.as_secs_f64() * 1000.0);
                    }
                    None => line.push('-'),
                },
                Atom::RequestHeader(name) => {
                    let value = self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                    let value = match value {
                        // The RequestId layer's id is on the response, not on this record.
                        _ if name == X_REQUEST_ID => self.request_id(done.note),
                        Some(value) => value.as_str(),
                        None => "",
                    };
                    push_escaped(&mut line, or_dash(value));
                }
                Atom::ResponseHeader(name) => {
                    let value = done.note.headers.iter().find(|(n, _)| n == name);
                    push_escaped(&mut line, or_dash(value.map_or("", |(_, v)| v.as_str())));
                }
            }
        }
        line.push('\n');
        line
    }

    fn format_json(&self, done: &Done<'_>, at: chrono::DateTime<chrono::Utc>) -> String {
        let mut line = String::with_capacity(320 + self.target.len());
        let client = self.remote.map(|addr| addr.ip().to_string());
        let listener = self.listener.map(|addr| addr.to_string());
        let _ = write!(
            line,
            "{{\"time\":\"{}\"",
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        );
        push_json_field(&mut line, "client", client.as_deref());
        push_json_field(&mut line, "method", Some(&self.method));
        push_json_field(&mut line, "path", Some(self.path()));
        push_json_field(&mut line, "query", Some(self.query()));
        push_json_field(&mut line, "protocol", Some(&self.protocol));
        let _ = write!(
            line,
            ",\"status\":{},\"bytes\":{},\"duration_ms\":{:.3}",
            done.status,
            done.body_bytes,
            done.took.as_secs_f64() * 1000.0
        );
        match done.note.queue_time {
            Some(queued) => {
                let _ = write!(line, ",\"queue_ms\":{:.3}", queued.as_secs_f64() * 1000.0);
            }
            None => line.push_str(",\"queue_ms\":null"),
        }
        let request_id = self.request_id(done.note);
        push_json_field(
            &mut line,
            "request_id",
            Some(request_id).filter(|id| !id.is_empty()),
        );
        push_json_field(
            &mut line,
            "user_agent",
            Some(&self.user_agent)
                .filter(|v| !v.is_empty())
                .map(String::as_str),
        );
        push_json_field(
            &mut line,
            "referer",
            Some(&self.referer)
                .filter(|v| !v.is_empty())
                .map(String::as_str),
        );
        push_json_field(&mut line, "listener", listener.as_deref().or(Some("unix")));
        let _ = writeln!(line, ",\"worker_pid\":{}}}", done.pid);
        line
    }

    fn push_remote(&self, line: &mut String) {
        match self.remote {
            Some(addr) => {
                let _ = write!(line, "{}", addr.ip());
            }
            None => line.push('-'),
        }
    }

    fn request_line(&self) -> String {
        format!("{} {} {}", self.method, self.target, self.protocol)
    }

    fn path(&self) -> &str {
        let path = self.target.split('?').next().unwrap_or_default();
        // An absolute-form target (`GET http://host/path`): the path only.
        match path.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
            None => path,
        }
    }

    fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    fn request_id<'a>(&'a self, note: &'a ResponseNote) -> &'a str {
        note.headers
            .iter()
            .find(|(name, _)| name == X_REQUEST_ID.as_str())
            .map_or(self.request_id.as_str(), |(_, id)| id.as_str())
    }
}

/// The user name of `Authorization: Basic ...`, as gunicorn's `%(u)s` logs it.
fn basic_user(authorization: &str) -> String {
    let Some(encoded) = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim())
    else {
        return String::new();
    };
    let decoded = decode_base64(encoded).unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded);
    text.split_once(':')
        .map_or(String::new(), |(user, _)| user.to_string())
}

/// Standard base64 (RFC 4648 §4), as Basic credentials are encoded; `None` if it is not.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |byte: u8| -> Option<u32> {
        Some(match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let mut bits = 0u32;
        for (i, &byte) in group.iter().enumerate() {
            bits |= value(byte)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    Some(out)
}

fn or_dash(value: &str) -> &str {
    if value.is_empty() {
        "-"
    } else {
        value
    }
}

/// Quotes and control characters from the client must not forge log fields or lines.
fn push_escaped(line: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(line, "\\x{:02x}", c as u32);
            }
            c => line.push(c),
        }
    }
}

/// `,"name":"value"` (RFC 8259 §7 escapes), or `,"name":null`.
fn push_json_field(line: &mut String, name: &str, value: Option<&str>) {
    let _ = write!(line, ",\"{name}\":");
    let Some(value) = value else {
        line.push_str("null");
        return;
    };
    line.push('"');
    for ch in value.chars() {
        match ch {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
#[path = "access_log_tests.rs"]
mod tests;
