use super::*;
use crate::http::status::Failure;
use http::StatusCode;

fn parse_with(text: &str, limits: &Limits) -> Result<Option<RequestHead>, RequestError> {
    parse_head(&mut BytesMut::from(text), limits)
}

fn parse(text: &str) -> Result<Option<RequestHead>, RequestError> {
    parse_with(text, &Limits::default())
}

fn status(error: RequestError) -> StatusCode {
    Failure::Refused(error).status()
}

#[test]
fn simple_get_is_parsed_and_the_buffer_keeps_what_follows() {
    let mut buf = BytesMut::from("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
    let head = parse_head(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(head.parts.method, Method::GET);
    assert_eq!(head.parts.uri.path(), "/a");
    assert_eq!(head.parts.headers["host"], "x");
    assert_eq!(head.framing, BodyFraming::Empty);
    assert!(head.keep_alive && !head.has_proxy_headers);
    assert_eq!(&buf[..], b"GET /next");
}

#[test]
fn partial_head_asks_for_more() {
    assert!(parse("GET / HTTP/1.1\r\nHost:").unwrap().is_none());
}

#[test]
fn framing_is_unambiguous_or_refused() {
    let framing = |headers: &str| {
        parse(&format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n")).map(|h| h.unwrap().framing)
    };
    assert_eq!(framing("Content-Length: 5\r\n"), Ok(BodyFraming::Length(5)));
    assert_eq!(
        framing("Content-Length: 5\r\nContent-Length: 5\r\n"),
        Ok(BodyFraming::Length(5))
    );
    assert_eq!(
        framing("Transfer-Encoding: Chunked\r\n"),
        Ok(BodyFraming::Chunked)
    );
    for bad in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 1 2\r\n",
        "Content-Length: 0x5\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
    ] {
        assert_eq!(
            status(framing(bad).unwrap_err()),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    assert_eq!(
        status(framing("Transfer-Encoding: gzip, chunked\r\n").unwrap_err()),
        StatusCode::NOT_IMPLEMENTED
    );
}

#[test]
fn http10_keeps_alive_only_when_asked() {
    let head = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert!(!head.keep_alive);
    let head = parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(head.keep_alive);
    let head = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!head.keep_alive);
}

#[test]
fn connection_tokens_are_read_from_every_line_in_any_case() {
    let head =
        parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nConnection: foo, CLOSE\r\n\r\n")
            .unwrap()
            .unwrap();
    assert!(!head.keep_alive);
    let head = parse("GET / HTTP/1.0\r\nConnection: te, Keep-Alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(head.keep_alive);
}

#[test]
fn expect_100_continue_counts_only_for_a_body_on_http11() {
    let expects = |text: &str| parse(text).unwrap().unwrap().expects_continue;
    assert!(expects(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n"
    ));
    assert!(!expects(
        "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n"
    ));
    assert!(!expects(
        "POST / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    ));
    // Only the first Expect line is read, as a header-map lookup would.
    assert!(!expects(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: x\r\nExpect: 100-continue\r\n\r\n"
    ));
}

#[test]
fn higher_minor_version_is_served_as_http11_and_other_majors_are_505() {
    let head = parse("GET / HTTP/1.2\r\nHost: x\r\n\r\n").unwrap().unwrap();
    assert_eq!(head.parts.version, Version::HTTP_11);
    assert!(parse("GET / HTTP/1.9\r\nHost:").unwrap().is_none());
    for refused in [
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/0.9\r\n\r\n",
        "GET / HTTP/1.x\r\n\r\n",
    ] {
        assert_eq!(
            parse(refused).unwrap_err(),
            RequestError::UnsupportedVersion,
            "{refused}"
        );
    }
}

#[test]
fn oversized_heads_are_431() {
    let unlimited = Limits {
        header_field_bytes: usize::MAX,
        ..Limits::default()
    };
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
    assert_eq!(
        parse_with(&huge, &unlimited).unwrap_err(),
        RequestError::HeadTooLarge
    );
}

#[test]
fn header_field_count_is_held_at_the_limit_on_the_stack_and_the_heap() {
    let head_with = |count: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
            "X: y\r\n".repeat(count - 1)
        )
    };
    for limit in [5, 100, 128, 129, 300] {
        let limits = Limits {
            header_fields: limit,
            ..Limits::default()
        };
        for count in [limit - 1, limit] {
            let head = parse_with(&head_with(count), &limits).unwrap().unwrap();
            assert_eq!(head.parts.headers.len(), count, "limit {limit}");
        }
        assert_eq!(
            parse_with(&head_with(limit + 1), &limits).unwrap_err(),
            RequestError::TooManyFields { limit },
        );
    }
    let unlimited = Limits {
        header_fields: usize::MAX,
        ..Limits::default()
    };
    let head = parse_with(&head_with(5000), &unlimited).unwrap().unwrap();
    assert_eq!(head.parts.headers.len(), 5000);
}

#[test]
fn request_line_and_field_lines_are_held_to_their_limits() {
    let limits = Limits {
        request_line_bytes: 20,
        header_field_bytes: 10,
        ..Limits::default()
    };
    // "GET /aaaaa HTTP/1.1" is 19 bytes.
    assert!(parse_with("GET /aaaaa HTTP/1.1\r\nHost: x\r\n\r\n", &limits).is_ok());
    assert!(parse_with("GET /aaaaaa HTTP/1.1\r\nHost: x\r\n\r\n", &limits).is_ok());
    assert_eq!(
        parse_with("GET /aaaaaaa HTTP/1.1\r\nHost: x\r\n\r\n", &limits).unwrap_err(),
        RequestError::LineTooLong { limit: 20 }
    );
    // Refused before the line ends: no need to buffer the rest.
    assert_eq!(
        parse_with("GET /aaaaaaaaaaaaaaaaaaaa", &limits).unwrap_err(),
        RequestError::LineTooLong { limit: 20 }
    );
    // "Host: xxxx" is 10 bytes.
    assert!(parse_with("GET / HTTP/1.1\r\nHost: xxxx\r\n\r\n", &limits).is_ok());
    assert_eq!(
        parse_with("GET / HTTP/1.1\r\nHost: xxxxx\r\n\r\n", &limits).unwrap_err(),
        RequestError::FieldTooLarge { limit: 10 }
    );
}

#[test]
fn a_declared_body_over_the_limit_is_413_before_it_is_read() {
    let limits = Limits {
        body_bytes: Some(10),
        ..Limits::default()
    };
    let post = |length: u64| {
        parse_with(
            &format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"),
            &limits,
        )
    };
    assert_eq!(post(10).unwrap().unwrap().framing, BodyFraming::Length(10));
    assert_eq!(
        post(11).unwrap_err(),
        RequestError::BodyTooLarge { limit: 10 }
    );
}

#[test]
fn methods_are_conventional_unless_permitted() {
    let any = Limits {
        any_method: true,
        ..Limits::default()
    };
    for method in ["GET", "M-SEARCH", "PROPFIND", "X_1"] {
        assert!(parse(&format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n")).is_ok());
    }
    for method in ["get", "Get", "GE", "ABCDEFGHIJKLMNOPQRSTU", "GE.T"] {
        let text = format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            matches!(parse(&text), Err(RequestError::Malformed(_))),
            "{method}"
        );
        let head = parse_with(&text, &any).unwrap().unwrap();
        assert_eq!(head.parts.method.as_str(), method);
    }
    assert!(parse_with("GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", &any).is_err());
}

#[test]
fn host_is_required_once_in_http11() {
    assert!(parse("GET / HTTP/1.1\r\n\r\n").is_err());
    assert!(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").is_err());
    assert!(parse("GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
}

#[test]
fn absolute_form_authority_replaces_host() {
    let head = parse("GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(head.parts.headers["host"], "example.com:8080");
    assert_eq!(head.parts.uri.path(), "/p");
    assert_eq!(head.parts.uri.query(), Some("q=1"));
}

#[test]
fn proxy_headers_are_noted() {
    for line in [
        "X-Forwarded-For: 1.2.3.4",
        "Forwarded: for=1.2.3.4",
        "x-forwarded-proto: https",
    ] {
        let head = parse(&format!("GET / HTTP/1.1\r\nHost: x\r\n{line}\r\n\r\n"))
            .unwrap()
            .unwrap();
        assert!(head.has_proxy_headers, "{line}");
    }
}

#[test]
fn field_syntax_errors_are_400() {
    for bad in [
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX(A): b\r\n\r\n",
    ] {
        assert!(
            matches!(parse(bad), Err(RequestError::Malformed(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn identical_content_lengths_are_merged_into_one_value() {
    let head =
        parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n")
            .unwrap()
            .unwrap();
    assert_eq!(head.framing, BodyFraming::Length(5));
    let values: Vec<_> = head
        .parts
        .headers
        .get_all("content-length")
        .iter()
        .collect();
    assert_eq!(values, ["5"]);
}

#[test]
fn a_whole_head_at_the_cap_with_many_fields_is_served() {
    let unlimited = Limits {
        header_fields: usize::MAX,
        header_field_bytes: usize::MAX,
        ..Limits::default()
    };
    let mut head = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    let padding = MAX_HEAD_BYTES - head.len() - "X-Last: \r\n\r\n".len();
    head.push_str(&format!("X-Last: {}\r\n\r\n", "a".repeat(padding)));
    assert_eq!(head.len(), MAX_HEAD_BYTES);
    assert!(parse_with(&head, &unlimited).unwrap().is_some());
}

#[test]
fn httparse_refuses_every_byte_a_header_value_may_not_hold() {
    for byte in 0..=u8::MAX {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a".to_vec();
        head.extend_from_slice(&[byte, b'b']);
        head.extend_from_slice(b"\r\n\r\n");
        let parsed = parse_head(&mut BytesMut::from(&head[..]), &Limits::default());
        let valid = HeaderValue::from_bytes(&[b'a', byte, b'b']).is_ok();
        assert_eq!(parsed.is_ok(), valid, "byte {byte:#04x}");
    }
}
