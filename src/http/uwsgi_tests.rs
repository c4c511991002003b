use super::*;
use crate::config::Settings;
use clap::Parser;

fn limits() -> Limits {
    Limits::from_settings(&Settings::parse_from(["ferrogate", "app:app"]))
}

/// A packet as nginx's uwsgi module writes it.
fn packet(vars: &[(&str, &str)], body: &[u8]) -> BytesMut {
    let mut block = Vec::new();
    for (key, value) in vars {
        block.extend_from_slice(&(key.len() as u16).to_le_bytes());
        block.extend_from_slice(key.as_bytes());
        block.extend_from_slice(&(value.len() as u16).to_le_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    let mut packet = BytesMut::new();
    packet.extend_from_slice(&[0]);
    packet.extend_from_slice(&(block.len() as u16).to_le_bytes());
    packet.extend_from_slice(&[0]);
    packet.extend_from_slice(&block);
    packet.extend_from_slice(body);
    packet
}

const NGINX_GET: &[(&str, &str)] = &[
    ("QUERY_STRING", "a=1&b=%20"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/caf%C3%A9/x?a=1&b=%20"),
    ("PATH_INFO", "/café/x"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "http"),
    ("REMOTE_ADDR", "203.0.113.9"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_PORT", "8080"),
    ("SERVER_NAME", "example.org"),
    ("HTTP_HOST", "example.org:8080"),
    ("HTTP_USER_AGENT", "curl/8"),
    ("HTTP_X_CUSTOM_THING", "yes"),
];

#[test]
fn an_nginx_packet_becomes_the_request_it_carries() {
    let mut buf = packet(NGINX_GET, b"");
    let head = parse_packet(&mut buf, &limits()).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(head.parts.method, Method::GET);
    assert_eq!(head.parts.uri, "/caf%C3%A9/x?a=1&b=%20");
    assert_eq!(head.parts.version, Version::HTTP_11);
    let headers = &head.parts.headers;
    assert_eq!(headers["host"], "example.org:8080");
    assert_eq!(headers["user-agent"], "curl/8");
    assert_eq!(headers["x-custom-thing"], "yes");
    assert!(!headers.contains_key("content-type") && !headers.contains_key("content-length"));
    assert_eq!(headers.len(), 3);
    assert_eq!(head.framing, BodyFraming::Empty);
    assert!(!head.keep_alive && !head.has_proxy_headers);
    let facts = *head.gateway.unwrap();
    assert_eq!(facts.client, Some("203.0.113.9:51234".parse().unwrap()));
    assert_eq!(facts.server_port, Some(8080));
    assert!(!facts.https);
}

#[test]
fn the_body_after_the_vars_stays_for_the_body_reader() {
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/upload"),
        ("CONTENT_LENGTH", "5"),
        ("CONTENT_TYPE", "text/plain"),
        ("HTTPS", "on"),
    ];
    let mut buf = packet(&vars, b"hello");
    let head = parse_packet(&mut buf, &limits()).unwrap().unwrap();
    assert_eq!(&buf[..], b"hello");
    assert_eq!(head.framing, BodyFraming::Length(5));
    assert_eq!(head.parts.headers["content-type"], "text/plain");
    assert_eq!(head.parts.headers["content-length"], "5");
    assert!(head.gateway.unwrap().https);
}

#[test]
fn a_packet_in_pieces_waits_for_the_rest() {
    let whole = packet(NGINX_GET, b"");
    for cut in [0, 1, 3, 4, 20, whole.len() - 1] {
        let mut buf = BytesMut::from(&whole[..cut]);
        assert!(
            parse_packet(&mut buf, &limits()).unwrap().is_none(),
            "cut at {cut}"
        );
    }
}

#[test]
fn path_info_and_query_make_the_target_without_request_uri() {
    let vars = [
        ("REQUEST_METHOD", "GET"),
        ("PATH_INFO", "/a b/ü"),
        ("QUERY_STRING", "x=1"),
    ];
    let head = parse_packet(&mut packet(&vars, b""), &limits())
        .unwrap()
        .unwrap();
    assert_eq!(head.parts.uri, "/a%20b/%C3%BC?x=1");
}

#[test]
fn malformed_packets_are_refused_with_the_rule_named() {
    let refused = |buf: &mut BytesMut| parse_packet(buf, &limits()).unwrap_err().to_string();
    let mut other_modifier = packet(NGINX_GET, b"");
    other_modifier[0] = 5;
    assert!(refused(&mut other_modifier).contains("modifier1 5"));
    // A key whose size runs past the block.
    let mut cut = BytesMut::from(&[0u8, 3, 0, 0, 9, 0, b'A'][..]);
    assert!(refused(&mut cut).contains("cut inside a variable"));
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("REQUEST_URI", "/")], "without REQUEST_METHOD"),
        (
            &[("REQUEST_METHOD", "G T"), ("REQUEST_URI", "/")],
            "REQUEST_METHOD",
        ),
        (
            &[("REQUEST_METHOD", "GET"), ("REQUEST_URI", "http://evil/")],
            "REQUEST_URI",
        ),
        (
            &[
                ("REQUEST_METHOD", "POST"),
                ("REQUEST_URI", "/"),
                ("CONTENT_LENGTH", "-1"),
            ],
            "CONTENT_LENGTH",
        ),
        (
            &[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", "/"),
                ("HTTP_X", "a\nb"),
            ],
            "header value",
        ),
    ];
    for (vars, named) in cases {
        let why = refused(&mut packet(vars, b""));
        assert!(why.contains(named), "{vars:?}: {why}");
    }
}

#[test]
fn header_limits_hold_at_below_and_above() {
    let mut limits = limits();
    limits.header_fields = 2;
    let vars = |n: usize| {
        let mut vars = vec![
            ("REQUEST_METHOD".to_string(), "GET".to_string()),
            ("REQUEST_URI".into(), "/".into()),
        ];
        vars.extend((0..n).map(|i| (format!("HTTP_X_{i}"), "v".to_string())));
        vars
    };
    for (fields, ok) in [(1, true), (2, true), (3, false)] {
        let vars = vars(fields);
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let parsed = parse_packet(&mut packet(&vars, b""), &limits);
        assert_eq!(parsed.is_ok(), ok, "{fields} fields");
    }
    limits.header_fields = 100;
    limits.body_bytes = Some(10);
    let body = |length: &str| {
        let vars = [
            ("REQUEST_METHOD", "POST"),
            ("REQUEST_URI", "/"),
            ("CONTENT_LENGTH", length),
        ];
        parse_packet(&mut packet(&vars, b""), &limits).is_ok()
    };
    assert!(body("9") && body("10") && !body("11"));
}
