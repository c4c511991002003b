use super::*;

fn resolved(
    lines: &[(&str, &str)],
    trusted: &str,
) -> Result<(ConnectionInfo, HeaderMap), RequestError> {
    let mut request = http::Request::builder().uri("/");
    for (name, value) in lines {
        request = request.header(*name, *value);
    }
    let (mut parts, ()) = request.body(()).unwrap().into_parts();
    let mut info = ConnectionInfo {
        peer: Some("127.0.0.1:5000".parse().unwrap()),
        local: Some("127.0.0.1:8000".parse().unwrap()),
        scheme: Scheme::Http,
        server_port: None,
        from_trusted_proxy: true,
        mount: None,
        tls: None,
        listener: 0,
    };
    resolve(&mut parts, &mut info, &trusted.parse().unwrap())?;
    Ok((info, parts.headers))
}

fn client(lines: &[(&str, &str)]) -> String {
    resolved(lines, "127.0.0.1,10.0.0.0/8")
        .unwrap()
        .0
        .peer
        .unwrap()
        .to_string()
}

#[test]
fn the_right_most_untrusted_hop_is_the_client() {
    assert_eq!(
        client(&[("x-forwarded-for", "203.0.113.9")]),
        "203.0.113.9:0"
    );
    assert_eq!(
        client(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9, 10.1.1.1")]),
        "203.0.113.9:0"
    );
    assert_eq!(
        client(&[("x-forwarded-for", "10.0.0.2, 10.1.1.1")]),
        "10.0.0.2:0"
    );
    assert_eq!(
        client(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9")
        ]),
        "203.0.113.9:0"
    );
    // Garbage from the nearest proxy: the connection's peer stands.
    assert_eq!(
        client(&[("x-forwarded-for", "1.2.3.4, nonsense")]),
        "127.0.0.1:5000"
    );
}

#[test]
fn scheme_host_and_port_come_from_the_proxy() {
    let (info, headers) = resolved(
        &[
            ("host", "internal"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "example.com"),
            ("x-forwarded-port", "8443"),
        ],
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(info.scheme, Scheme::Https);
    assert_eq!(headers["host"], "example.com");
    assert_eq!(info.server_port, Some(8443));
    let (info, _) = resolved(&[("x-forwarded-ssl", "on")], "127.0.0.1").unwrap();
    assert_eq!(info.scheme, Scheme::Https);
    assert!(resolved(
        &[("x-forwarded-proto", "http"), ("x-forwarded-ssl", "on")],
        "127.0.0.1"
    )
    .is_err());
}

#[test]
fn forwarded_elements_speak_for_the_right_most_untrusted_hop() {
    let (info, headers) = resolved(
        &[
            ("forwarded", "for=198.51.100.1;proto=http, for=\"[2001:db8::1]:4711\";proto=https;host=example.com"),
            ("forwarded", "for=10.0.0.1"),
            ("x-forwarded-for", "192.0.2.99"),
        ],
        "127.0.0.1,10.0.0.0/8",
    )
    .unwrap();
    assert_eq!(info.peer.unwrap().to_string(), "[2001:db8::1]:4711");
    assert_eq!(info.scheme, Scheme::Https);
    assert_eq!(headers["host"], "example.com");
}
