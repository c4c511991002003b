use super::*;
use chrono::TimeZone;

fn record() -> AccessRecord {
    AccessRecord {
        remote: Some("10.0.0.1:5000".parse().unwrap()),
        listener: Some("127.0.0.1:8000".parse().unwrap()),
        method: "GET".into(),
        target: "/a?b=1".into(),
        protocol: "HTTP/1.1".into(),
        referer: String::new(),
        user_agent: "curl/8".into(),
        request_id: String::new(),
        authorization: "Basic YWxpY2U6c2VjcmV0".into(),
        headers: vec![(HeaderName::from_static("x-tenant"), "acme".into())],
        started: Instant::now(),
    }
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 5).unwrap()
}

fn done(note: &ResponseNote) -> Done<'_> {
    Done {
        status: 200,
        body_bytes: 13,
        took: Duration::from_micros(2_345_678),
        note,
        pid: 42,
    }
}

#[test]
fn formats_a_combined_line() {
    assert_eq!(
        record().format_combined(200, 13, at()),
        "10.0.0.1 - - [21/Nov/2026:08:00:05 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13 \"-\" \"curl/8\"\n"
    );
}

#[test]
fn client_supplied_quotes_and_newlines_are_escaped() {
    let mut record = record();
    record.remote = None;
    record.referer = "x\"\ny".into();
    let line = record.format_combined(404, 0, chrono::Utc::now());
    assert!(line.contains("\"x\\\"\\x0ay\""), "{line}");
    assert_eq!(line.matches('\n').count(), 1);
}

#[test]
fn gunicorn_atoms() {
    let format = AccessFormat::compile(
        "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s %(T)s %(D)s \
         %(M)s %(L)s %(p)s %(Q)s %({x-tenant}i)s %({content-type}o)s %({x-missing}o)s",
    )
    .unwrap();
    let AccessFormat::Atoms(atoms) = format else {
        panic!("atoms expected")
    };
    let note = ResponseNote {
        queue_time: Some(Duration::from_micros(1500)),
        headers: vec![("content-type".into(), "text/plain".into())],
    };
    assert_eq!(
        record().format_atoms(&atoms, &done(&note), at()),
        "10.0.0.1 - alice [21/Nov/2026:08:00:05 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13 GET /a \
         b=1 HTTP/1.1 2 2345678 2345 2.345678 <42> 1.500 acme text/plain -\n"
    );
}

#[test]
fn the_request_id_comes_from_the_response_when_a_layer_made_it() {
    let format = AccessFormat::compile("%({x-request-id}i)s").unwrap();
    let AccessFormat::Atoms(atoms) = format else {
        panic!("atoms expected")
    };
    let note = ResponseNote {
        queue_time: None,
        headers: vec![("x-request-id".into(), "0192-abc".into())],
    };
    assert_eq!(
        record().format_atoms(&atoms, &done(&note), at()),
        "0192-abc\n"
    );
    let none = ResponseNote::default();
    assert_eq!(record().format_atoms(&atoms, &done(&none), at()), "-\n");
}

#[test]
fn json_lines_are_one_object_with_every_field() {
    let note = ResponseNote {
        queue_time: Some(Duration::from_micros(250)),
        headers: vec![("x-request-id".into(), "id-1".into())],
    };
    let mut record = record();
    record.user_agent = "evil\"\n".into();
    let line = record.format_json(&done(&note), at());
    assert_eq!(
        line,
        "{\"time\":\"2026-11-21T08:00:05.000Z\",\"client\":\"10.0.0.1\",\"method\":\"GET\",\
         \"path\":\"/a\",\"query\":\"b=1\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":13,\
         \"duration_ms\":2345.678,\"queue_ms\":0.250,\"request_id\":\"id-1\",\
         \"user_agent\":\"evil\\\"\\u000a\",\"referer\":null,\"listener\":\"127.0.0.1:8000\",\
         \"worker_pid\":42}\n"
    );
}

#[test]
fn basic_user_decodes_only_basic_credentials() {
    assert_eq!(basic_user("Basic YWxpY2U6c2VjcmV0"), "alice");
    assert_eq!(basic_user("basic Ym9iOg=="), "bob");
    assert_eq!(basic_user("Bearer YWxpY2U6c2VjcmV0"), "");
    assert_eq!(basic_user("Basic !!!"), "");
    assert_eq!(basic_user(""), "");
}
