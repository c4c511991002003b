//! `--access-log-format`: gunicorn's atoms (`%(h)s %(l)s %(u)s %(t)s "%(r)s" ...`) or `json`
//! (one object per line), compiled once when the setting is read, so writing a line is a walk
//! over a few pieces, off the GIL (access_log.rs writes it). Without the setting the line is
//! Apache's combined format, which is gunicorn's default format as well.
//!
//! Atoms are gunicorn's: h l u t r m U q H s B b f a T D L M p, `{header}i`, `{header}o` and
//! `{variable}e`. A `{variable}e` is a WSGI environ key; only the ones the server knows
//! without Python are available (REQUEST_METHOD, PATH_INFO, QUERY_STRING, SERVER_PROTOCOL,
//! REMOTE_ADDR, REMOTE_PORT, HTTP_*); others log `-`. Our own: `Q`, the queue time in
//! milliseconds (the wait for a Python thread, `ferrogate.queue_time`).

use http::HeaderName;

/// What one line is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessFormat {
    /// Apache's combined format (gunicorn's default `access_log_format`).
    Combined,
    Atoms(Vec<Atom>),
    /// One JSON object per line.
    Json,
}

/// One piece of an atoms line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    Text(String),
    /// `h`: the client's address.
    Remote,
    /// `l`: always `-` (identd).
    Dash,
    /// `u`: the user of Basic authentication, or `-`.
    User,
    /// `t`: `[05/Dec/2026:19:00:00 +0000]`.
    Time,
    /// `r`: `GET /path?q HTTP/1.1`.
    RequestLine,
    /// `m`
    Method,
    /// `U`: the path, undecoded, without the query.
    Path,
    /// `q`: the query string.
    Query,
    /// `H`: `HTTP/1.1`.
    Protocol,
    /// `s`
    Status,
    /// `B`: response body bytes.
    Bytes,
    /// `b`: response body bytes, `-` for none.
    BytesOrDash,
    /// `f`
    Referer,
    /// `a`
    UserAgent,
    /// `T`: whole seconds.
    Seconds,
    /// `D`: microseconds.
    Micros,
    /// `M`: milliseconds.
    Millis,
    /// `L`: seconds with six decimals.
    DecimalSeconds,
    /// `p`: `<pid>`.
    Pid,
    /// `Q` (ours): milliseconds waited for a Python thread, three decimals.
    QueueMillis,
    /// `{name}i`
    RequestHeader(HeaderName),
    /// `{name}o`, lower case.
    ResponseHeader(String),
    /// `{var}e` the server cannot know without Python: `-`.
    Unknown,
}

impl AccessFormat {
    /// Compiles `text`: `json`, `combined`, or a gunicorn-style format string. The error
    /// names the atom it does not know.
    pub fn compile(text: &str) -> Result<AccessFormat, String> {
        match text.trim() {
            "json" => return Ok(AccessFormat::Json),
            "combined" => return Ok(AccessFormat::Combined),
            _ => {}
        }
        let mut atoms = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('%') {
            literal.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(after_percent) = after.strip_prefix('%') {
                literal.push('%');
                rest = after_percent;
                continue;
            }
            let Some(inner) = after.strip_prefix('(') else {
                return Err(format!(
                    "a lone '%' in {text:?}: write atoms as %(h)s, and a percent sign as %%"
                ));
            };
            let (name, tail) = inner
                .split_once(')')
                .ok_or_else(|| format!("an atom is not closed in {text:?}"))?;
            let conversion = tail.chars().next();
            if !matches!(conversion, Some('s' | 'd')) {
                return Err(format!("atom %({name}) must end in s, as %({name})s"));
            }
            if !literal.is_empty() {
                atoms.push(Atom::Text(std::mem::take(&mut literal)));
            }
            atoms.push(atom(name)?);
            rest = &tail[1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            atoms.push(Atom::Text(literal));
        }
        Ok(AccessFormat::Atoms(atoms))
    }

    /// The request headers a line needs besides those every record keeps.
    pub fn request_headers(&self) -> Vec<HeaderName> {
        match self {
            AccessFormat::Atoms(atoms) => atoms
                .iter()
                .filter_map(|atom| match atom {
                    Atom::RequestHeader(name) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
            AccessFormat::Combined | AccessFormat::Json => Vec::new(),
        }
    }

    /// The response headers a line needs (lower case).
    pub fn response_headers(&self) -> Vec<String> {
        match self {
            AccessFormat::Atoms(atoms) => atoms
                .iter()
                .filter_map(|atom| match atom {
                    Atom::ResponseHeader(name) => Some(name.clone()),
                    _ => None,
                })
                .collect(),
            // The request id the RequestId layer gave the request is on the response.
            AccessFormat::Json => vec!["x-request-id".to_string()],
            AccessFormat::Combined => Vec::new(),
        }
    }
}

fn atom(name: &str) -> Result<Atom, String> {
    if let Some(inner) = name.strip_prefix('{') {
        let (key, kind) = inner.rsplit_once('}').ok_or_else(|| {
            format!("atom %({name})s: expected {{name}}i, {{name}}o or {{name}}e")
        })?;
        let key = key.to_ascii_lowercase();
        let header = |key: &str| {
            HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("atom %({name})s: {key:?} is not a header name"))
        };
        return match kind {
            "i" => Ok(Atom::RequestHeader(header(&key)?)),
            "o" => Ok(Atom::ResponseHeader(header(&key)?.as_str().to_string())),
            "e" => Ok(environ_atom(&key)),
            _ => Err(format!(
                "atom %({name})s: expected {{name}}i, {{name}}o or {{name}}e"
            )),
        };
    }
    Ok(match name {
        "h" => Atom::Remote,
        "l" => Atom::Dash,
        "u" => Atom::User,
        "t" => Atom::Time,
        "r" => Atom::RequestLine,
        "m" => Atom::Method,
        "U" => Atom::Path,
        "q" => Atom::Query,
        "H" => Atom::Protocol,
        "s" => Atom::Status,
        "B" => Atom::Bytes,
        "b" => Atom::BytesOrDash,
        "f" => Atom::Referer,
        "a" => Atom::UserAgent,
        "T" => Atom::Seconds,
        "D" => Atom::Micros,
        "M" => Atom::Millis,
        "L" => Atom::DecimalSeconds,
        "p" => Atom::Pid,
        "Q" => Atom::QueueMillis,
        _ => return Err(format!("unknown atom %({name})s")),
    })
}

/// A WSGI environ key as the server knows it without Python (gunicorn lower-cases them).
fn environ_atom(key: &str) -> Atom {
    match key {
        "request_method" => Atom::Method,
        "path_info" => Atom::Path,
        "query_string" => Atom::Query,
        "server_protocol" => Atom::Protocol,
        "remote_addr" => Atom::Remote,
        _ => match key.strip_prefix("http_") {
            Some(header) => HeaderName::from_bytes(header.replace('_', "-").as_bytes())
                .map_or(Atom::Unknown, Atom::RequestHeader),
            None => Atom::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunicorns_default_format_compiles_to_its_atoms() {
        let format =
            AccessFormat::compile(r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#)
                .unwrap();
        let AccessFormat::Atoms(atoms) = format else {
            panic!("atoms expected")
        };
        assert_eq!(atoms[0], Atom::Remote);
        assert_eq!(atoms[1], Atom::Text(" ".into()));
        assert_eq!(atoms.last(), Some(&Atom::Text("\"".into())));
        assert_eq!(
            atoms.iter().filter(|a| !matches!(a, Atom::Text(_))).count(),
            9
        );
    }

    #[test]
    fn headers_and_environ_atoms() {
        let format = AccessFormat::compile(
            "%({X-Request-ID}i)s %({content-type}o)s %({HTTP_HOST}e)s %({wsgi.input}e)s %%",
        )
        .unwrap();
        assert_eq!(
            format.request_headers(),
            vec![
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("host")
            ]
        );
        assert_eq!(format.response_headers(), vec!["content-type".to_string()]);
        let AccessFormat::Atoms(atoms) = format else {
            panic!("atoms expected")
        };
        assert!(atoms.contains(&Atom::Unknown));
        assert_eq!(atoms.last(), Some(&Atom::Text(" %".into())));
    }

    #[test]
    fn json_and_combined_are_names() {
        assert_eq!(AccessFormat::compile("json"), Ok(AccessFormat::Json));
        assert_eq!(
            AccessFormat::compile("combined"),
            Ok(AccessFormat::Combined)
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("%(x)s", "unknown atom %(x)s"),
            ("%(h", "not closed"),
            ("100%", "lone '%'"),
            ("%(h)", "must end in s"),
            ("%({bad name}i)s", "not a header name"),
            ("%({a}z)s", "expected"),
        ] {
            let error = AccessFormat::compile(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
