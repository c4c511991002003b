//! The access log: one Apache combined-format line per response, written when its body ends.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

use super::Sink;

/// A shared, append-only access log. Lines are written whole, one `write` each.
pub struct AccessLog {
    sink: Mutex<Sink>,
}

impl AccessLog {
    /// Opens `target` ('-' is stdout).
    pub fn open(target: &str) -> io::Result<AccessLog> {
        Ok(AccessLog {
            sink: Mutex::new(Sink::open(target, Sink::Stdout)?),
        })
    }

    /// Opens the file again (SIGUSR1, after logrotate moved it away).
    pub fn reopen(&self) -> io::Result<()> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner()).reopen()
    }

    pub fn write(&self, record: &AccessRecord, status: u16, body_bytes: u64) {
        let line = record.format_combined(status, body_bytes, chrono::Utc::now());
        self.sink
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write_line(line.as_bytes());
    }
}

/// What the log needs to know about a request, captured before the request is handed on.
#[derive(Debug, Clone)]
pub struct AccessRecord {
    pub remote: Option<SocketAddr>,
    /// `GET /path?query HTTP/1.1`, the target undecoded as received.
    pub request_line: String,
    pub referer: String,
    pub user_agent: String,
}

impl AccessRecord {
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`, with `-` for empty fields.
    pub fn format_combined(
        &self,
        status: u16,
        body_bytes: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> String {
        let mut line = String::with_capacity(128 + self.request_line.len());
        match self.remote {
            Some(addr) => {
                let _ = write!(line, "{}", addr.ip());
            }
            None => line.push('-'),
        }
        let _ = write!(line, " - - [{}] \"", at.format("%d/%b/%Y:%H:%M:%S +0000"));
        push_escaped(&mut line, &self.request_line);
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn formats_a_combined_line() {
        let record = AccessRecord {
            remote: Some("10.0.0.1:5000".parse().unwrap()),
            request_line: "GET /a?b=1 HTTP/1.1".into(),
            referer: String::new(),
            user_agent: "curl/8".into(),
        };
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 5).unwrap();
        assert_eq!(
            record.format_combined(200, 13, at),
            "10.0.0.1 - - [21/Nov/2026:08:00:05 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13 \"-\" \"curl/8\"\n"
        );
    }

    #[test]
    fn client_supplied_quotes_and_newlines_are_escaped() {
        let record = AccessRecord {
            remote: None,
            request_line: "GET / HTTP/1.1".into(),
            referer: "x\"\ny".into(),
            user_agent: String::new(),
        };
        let line = record.format_combined(404, 0, chrono::Utc::now());
        assert!(line.contains("\"x\\\"\\x0ay\""), "{line}");
        assert_eq!(line.matches('\n').count(), 1);
    }
}
