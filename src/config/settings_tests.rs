//! Tests of settings.rs: the defaults the docs state, and how its values are parsed or refused.

use super::*;

#[test]
fn defaults_match_the_documentation() {
    let settings = Settings::defaults();
    assert_eq!(settings.workers, 1);
    assert_eq!(settings.threads as usize, DEFAULT_THREADS);
    assert_eq!(settings.bind, vec!["127.0.0.1:8000".parse().unwrap()]);
    assert_eq!(settings.graceful_timeout(), Duration::from_secs(30));
    assert!(settings.access_log.is_none());
    assert_eq!(settings.timeout(), Some(Duration::from_secs(30)));
    assert_eq!(
        (settings.max_requests, settings.max_requests_jitter),
        (0, 0)
    );
    assert_eq!(settings.max_worker_memory, 0);
}

#[test]
fn bind_repeats_and_zero_workers_is_refused() {
    let s = Settings::try_parse_from(["f", "app", "-b", ":1", "--bind", "unix:/x"]).unwrap();
    assert_eq!(s.bind.len(), 2);
    assert!(Settings::try_parse_from(["f", "app", "--workers", "0"]).is_err());
    assert!(Settings::try_parse_from(["f", "app", "--bind", "nonsense"]).is_err());
}

#[test]
fn bad_durations_are_refused_naming_the_value() {
    for bad in ["-1", "nan", "1e19", "soon"] {
        let error = Settings::try_parse_from(["f", "app", "--keep-alive", bad]).unwrap_err();
        assert!(error.to_string().contains("--keep-alive"), "{error}");
    }
    assert!(Settings::try_parse_from(["f", "app", "--header-timeout", "0"]).is_err());
    assert_eq!(
        Settings::try_parse_from(["f", "app", "--keep-alive", "0"])
            .unwrap()
            .keep_alive(),
        None
    );
}

#[test]
fn worker_limits_take_gunicorns_spellings_and_zero_turns_them_off() {
    let s = Settings::try_parse_from([
        "f",
        "app",
        "-t",
        "2.5",
        "--max-requests",
        "50",
        "--max-requests-jitter",
        "5",
        "--max-worker-memory",
        "300",
    ])
    .unwrap();
    assert_eq!(s.timeout(), Some(Duration::from_millis(2500)));
    assert_eq!(
        (s.max_requests, s.max_requests_jitter, s.max_worker_memory),
        (50, 5, 300)
    );
    let off = Settings::try_parse_from(["f", "app", "--timeout", "0"]).unwrap();
    assert_eq!(off.timeout(), None);
    for (flag, bad) in [
        ("--timeout", "-1"),
        ("--max-requests", "-1"),
        ("--max-worker-memory", "lots"),
    ] {
        let error = Settings::try_parse_from(["f", "app", flag, bad]).unwrap_err();
        assert!(error.to_string().contains(flag), "{error}");
    }
}

#[test]
fn hardening_defaults_are_gunicorns() {
    let settings = Settings::defaults();
    assert_eq!(settings.limit_request_line, 8190);
    assert_eq!(settings.limit_request_fields, 100);
    assert_eq!(settings.limit_request_field_size, 8190);
    assert_eq!(settings.max_request_body, 0);
    assert_eq!(settings.max_connections, 1024);
    assert_eq!(settings.header_timeout(), Duration::from_secs(10));
    assert_eq!(settings.socket_timeout(), Duration::from_secs(60));
    assert_eq!(settings.keep_alive(), Some(Duration::from_secs(5)));
    assert!(settings.forwarded_allow_ips.contains_peer(None));
    assert!(!settings.proxy_protocol && !settings.permit_unconventional_methods);
}
