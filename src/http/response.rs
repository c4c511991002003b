//! The response as a handler gives it: a status, the handler's header lines already encoded
//! (in the case the handler gave them), and a body. The protocol driver adds `Server`, `Date`
//! and the framing headers when it writes the head (`h1::encode`, `h2::stream`).
//!
//! The head is protocol-neutral: HTTP/1 writes the encoded lines as they are, and HTTP/2 (and
//! the layers that rewrite a head) read name/value pairs through the offsets kept beside
//! them, without splitting the bytes again.

use std::borrow::Cow;

use http::StatusCode;
use smallvec::SmallVec;

use super::ResponseBody;

/// Fields whose offsets a block keeps without allocating (hello and a Flask response send 2
/// or 3; more cost one allocation). Not more: every `Response` carries them, and it moves
/// through the handler chain by value (clippy's large-variant bound on `PipelineFuture`).
const INLINE_FIELDS: usize = 4;

/// Where one field's name and line end in `HeaderBlock::encoded` (its line starts where the
/// previous one ended).
#[derive(Clone, Copy)]
struct FieldEnd {
    name: u32,
    line: u32,
}

/// Header lines a handler chose, encoded as `Name: value\r\n`. Callers check names and
/// values (no CR, LF or other control bytes) before pushing them.
#[derive(Default, Clone)]
pub struct HeaderBlock {
    /// Borrowed for a fixed answer's lines (`from_static`), owned once a line is pushed.
    encoded: Cow<'static, [u8]>,
    /// One per line pushed, in order: what `lines` reads instead of searching the bytes.
    // PERF: inline, so HTTP/1 pays no allocation for them (benches/callgrind/count.py,
    // hello: see benches/README.md "Protocol-neutral head").
    ends: SmallVec<[FieldEnd; INLINE_FIELDS]>,
    has_server: bool,
    has_date: bool,
}

impl HeaderBlock {
    pub fn with_capacity(bytes: usize) -> HeaderBlock {
        HeaderBlock {
            encoded: Cow::Owned(Vec::with_capacity(bytes)),
            ..HeaderBlock::default()
        }
    }

    /// A block of fixed lines, `Name: value\r\n` each, borrowed rather than copied. PERF: a
    /// refusal's head allocates nothing (perf, deny403).
    pub fn from_static(lines: &'static [u8]) -> HeaderBlock {
        let mut block = HeaderBlock {
            encoded: Cow::Borrowed(lines),
            ..HeaderBlock::default()
        };
        let mut start = 0;
        while let Some(line_length) = lines[start..].iter().position(|&b| b == b'\n') {
            let line = &lines[start..start + line_length];
            let name_length = line.iter().position(|&b| b == b':').unwrap_or(0);
            block.note_name(&line[..name_length]);
            block.ends.push(FieldEnd {
                name: (start + name_length) as u32,
                line: (start + line_length + 1) as u32,
            });
            start += line_length + 1;
        }
        block
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.note_name(name);
        let encoded = self.encoded.to_mut();
        encoded.extend_from_slice(name);
        let name_end = encoded.len();
        encoded.extend_from_slice(b": ");
        encoded.extend_from_slice(value);
        encoded.extend_from_slice(b"\r\n");
        // A head is bounded far below 4 GiB (the WSGI layer's header limits).
        self.ends.push(FieldEnd {
            name: name_end as u32,
            line: encoded.len() as u32,
        });
    }

    fn note_name(&mut self, name: &[u8]) {
        self.has_server |= name.eq_ignore_ascii_case(b"server");
        self.has_date |= name.eq_ignore_ascii_case(b"date");
    }

    /// The lines pushed so far as (name, value) pairs, as the handler gave them (names in
    /// its case), for HTTP/2 and for a layer that rewrites them.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut start = 0;
        self.ends.iter().map(move |end| {
            let (name, line) = (end.name as usize, end.line as usize);
            // As a client reads the line: the value's leading whitespace is not part of it
            // (RFC 9112 §5.1).
            let value = self.encoded[name + 2..line - 2].trim_ascii_start();
            let field = (&self.encoded[start..name], value);
            start = line;
            field
        })
    }

    /// Rewrites every name as `Foo-Bar` (each '-'-separated word capitalized), as
    /// eventlet.wsgi does by default (`--capitalize-response-headers`). In place: the
    /// lengths do not change.
    pub fn capitalize_names(&mut self) {
        let mut in_name = true;
        let mut word_start = true;
        for byte in self.encoded.to_mut().iter_mut() {
            match (*byte, in_name) {
                (b'\n', _) => (in_name, word_start) = (true, true),
                (b':', true) => in_name = false,
                (b'-', true) => word_start = true,
                (_, true) => {
                    *byte = match word_start {
                        true => byte.to_ascii_uppercase(),
                        false => byte.to_ascii_lowercase(),
                    };
                    word_start = false;
                }
                _ => {}
            }
        }
    }

    /// The lines pushed so far, as they go on the wire.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Whether the handler set `Server` / `Date` itself.
    pub fn has_server(&self) -> bool {
        self.has_server
    }

    pub fn has_date(&self) -> bool {
        self.has_date
    }
}

pub struct Response {
    pub status: StatusCode,
    /// Sent instead of the canonical reason phrase (a latin-1 phrase the handler chose).
    pub reason: Option<Box<[u8]>>,
    pub headers: HeaderBlock,
    pub body: ResponseBody,
    /// How long the request waited for a Python thread, for the access log; `None` when no
    /// Python thread answered it.
    pub queue_time: Option<std::time::Duration>,
}

impl Response {
    pub fn new(status: StatusCode, headers: HeaderBlock, body: ResponseBody) -> Response {
        Response {
            status,
            reason: None,
            headers,
            body,
            queue_time: None,
        }
    }

    /// 1xx, 204 and 304 responses never carry a body (RFC 9110 §6.4.1).
    pub fn allows_body(&self) -> bool {
        !(self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_capitalized_per_word_and_values_left_alone() {
        let mut headers = HeaderBlock::default();
        headers.push(b"content-TYPE", b"text/plain; x-Y=z");
        headers.push(b"etag", b"\"aB-c\"");
        headers.push(b"X-OBJECT-meta-a_b", b"v: w");
        headers.capitalize_names();
        assert_eq!(
            headers.encoded(),
            b"Content-Type: text/plain; x-Y=z\r\nEtag: \"aB-c\"\r\nX-Object-Meta-A_b: v: w\r\n"
        );
        let lines: Vec<_> = headers.lines().collect();
        assert_eq!(lines[2], (&b"X-Object-Meta-A_b"[..], &b"v: w"[..]));
    }

    #[test]
    fn lines_are_the_pairs_pushed_with_empty_and_spaced_values_kept() {
        let mut headers = HeaderBlock::default();
        headers.push(b"X-Empty", b"");
        headers.push(b"X-Colon", b": a:b ");
        headers.push(b"X-Spaced", b"  x ");
        headers.push(b"Set-Cookie", b"a=1");
        headers.push(b"Set-Cookie", b"b=2");
        let lines: Vec<(&[u8], &[u8])> = headers.lines().collect();
        assert_eq!(
            lines,
            [
                (&b"X-Empty"[..], &b""[..]),
                (b"X-Colon", b": a:b "),
                (b"X-Spaced", b"x "),
                (b"Set-Cookie", b"a=1"),
                (b"Set-Cookie", b"b=2"),
            ]
        );
    }

    #[test]
    fn fixed_lines_read_as_pushed_ones_and_take_more() {
        let mut fixed = HeaderBlock::from_static(b"Content-Type: text/plain\r\nServer: x\r\n");
        assert!(fixed.has_server() && !fixed.has_date());
        fixed.push(b"Date", b"today");
        let mut pushed = HeaderBlock::default();
        pushed.push(b"Content-Type", b"text/plain");
        pushed.push(b"Server", b"x");
        pushed.push(b"Date", b"today");
        assert_eq!(fixed.encoded(), pushed.encoded());
        assert!(fixed.lines().eq(pushed.lines()));
        assert!(fixed.has_date());
    }

    #[test]
    fn fields_past_the_inline_ones_are_kept_too() {
        let mut headers = HeaderBlock::default();
        let names: Vec<String> = (0..=INLINE_FIELDS + 1).map(|i| format!("X-{i}")).collect();
        for name in &names {
            headers.push(name.as_bytes(), b"v");
        }
        let lines: Vec<_> = headers.lines().map(|(name, _)| name.to_vec()).collect();
        assert_eq!(lines.len(), INLINE_FIELDS + 2);
        assert_eq!(
            lines[INLINE_FIELDS + 1],
            names[INLINE_FIELDS + 1].as_bytes()
        );
    }
}
