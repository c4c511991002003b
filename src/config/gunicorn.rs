//! gunicorn's settings, by their config-file names (gunicorn.conf.py, and the same names in a
//! TOML file), and what each is in ferrogate: the same setting, a renamed one, accepted and
//! ignored, or refused with why. One table, read by the config-file layer and printed as the
//! README's mapping table (`ferrogate._ferrogate.gunicorn_table()`).

/// What a gunicorn setting is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Our setting of the same name.
    Same,
    /// Our setting of another name.
    Renamed(&'static str),
    /// Accepted and ignored: ferrogate already behaves so (the text says why).
    Ignored(&'static str),
    /// Refused with an error: no meaning here, or not offered (the text says why).
    Unsupported(&'static str),
    /// A server hook: a function in a Python config file (ferrogate/hooks.py calls it).
    Hook,
}

/// What `lookup` finds for a name that is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GunicornName {
    Ours(&'static str),
    Ignored(&'static str),
    Unsupported(&'static str),
}

const NOT_YET: &str = "not supported yet";
const USE_SYSTEMD: &str =
    "not offered; run ferrogate under systemd or another supervisor (README, Deployment)";
const LOGGING: &str = "ferrogate's logs are written by its own logger; use --error-log and --access-log and the log shipper of your platform";
const NO_STATSD: &str = "statsd is not supported";
const NO_PYTHON_ON_ABORT: &str = "a worker stopped by SIGINT or by --timeout runs no Python; the timeout's SIGABRT makes faulthandler write every thread's stack to the error log instead";
const PER_REQUEST: &str = "a per-request hook would take the GIL for every request on the I/O path; wrap the app in WSGI middleware instead";
const HOOK_IN_TOML: &str =
    "a server hook is a Python function: define it in a Python config file (-c gunicorn.conf.py)";
const SSL_CONTEXT: &str = "a Python ssl.SSLContext cannot configure rustls; use certfile, keyfile, ca_certs, cert_reqs, ciphers and ssl_min_version";
const STRICT: &str =
    "ferrogate's HTTP parsing is strict and not configurable here (README, Limits and timeouts)";

/// Every setting in gunicorn's settings reference, in its order.
pub const GUNICORN_SETTINGS: &[(&str, Mapping)] = &[
    ("config", Mapping::Same),
    ("wsgi_app", Mapping::Renamed("app")),
    ("bind", Mapping::Same),
    ("backlog", Mapping::Same),
    ("workers", Mapping::Same),
    ("worker_class", Mapping::Same),
    ("threads", Mapping::Same),
    ("worker_connections", Mapping::Renamed("max_connections")),
    ("max_requests", Mapping::Same),
    ("max_requests_jitter", Mapping::Same),
    ("timeout", Mapping::Same),
    ("graceful_timeout", Mapping::Same),
    ("keepalive", Mapping::Renamed("keep_alive")),
    ("limit_request_line", Mapping::Same),
    ("limit_request_fields", Mapping::Same),
    ("limit_request_field_size", Mapping::Same),
    ("reload", Mapping::Same),
    ("reload_engine", Mapping::Ignored("ferrogate always watches with the kernel's notifications (inotify)")),
    ("reload_extra_files", Mapping::Renamed("reload_extra_file")),
    ("spew", Mapping::Unsupported("tracing every line executed is a debugging aid ferrogate does not offer; use a debugger or sys.settrace in the app")),
    ("check_config", Mapping::Same),
    ("print_config", Mapping::Renamed("check_config")),
    ("preload_app", Mapping::Renamed("preload")),
    ("sendfile", Mapping::Ignored("ferrogate sends file bodies (wsgi.file_wrapper) with sendfile whenever it can")),
    ("reuse_port", Mapping::Same),
    ("chdir", Mapping::Same),
    ("daemon", Mapping::Unsupported(USE_SYSTEMD)),
    ("raw_env", Mapping::Renamed("env")),
    ("pidfile", Mapping::Renamed("pid")),
    ("worker_tmp_dir", Mapping::Ignored("ferrogate's workers report to the master through memory they share, not temporary files")),
    ("user", Mapping::Same),
    ("group", Mapping::Same),
    ("umask", Mapping::Same),
    ("initgroups", Mapping::Ignored("ferrogate always sets the user's supplementary groups when it drops privileges")),
    ("tmp_upload_dir", Mapping::Ignored("ferrogate does not spool request bodies to disk; the app reads them from the socket")),
    ("secure_scheme_headers", Mapping::Ignored("ferrogate reads X-Forwarded-Proto, X-Forwarded-Ssl and Forwarded from --forwarded-allow-ips peers")),
    ("forwarded_allow_ips", Mapping::Same),
    ("accesslog", Mapping::Renamed("access_log")),
    ("disable_redirect_access_to_syslog", Mapping::Ignored(LOGGING)),
    ("access_log_format", Mapping::Same),
    ("errorlog", Mapping::Renamed("error_log")),
    ("loglevel", Mapping::Renamed("log_level")),
    ("capture_output", Mapping::Unsupported(NOT_YET)),
    ("logger_class", Mapping::Unsupported(LOGGING)),
    ("logconfig", Mapping::Renamed("log_config")),
    ("logconfig_dict", Mapping::Unsupported(LOGGING)),
    ("logconfig_json", Mapping::Renamed("log_config")),
    ("syslog_addr", Mapping::Unsupported(LOGGING)),
    ("syslog", Mapping::Unsupported(LOGGING)),
    ("syslog_prefix", Mapping::Unsupported(LOGGING)),
    ("syslog_facility", Mapping::Unsupported(LOGGING)),
    ("enable_stdio_inheritance", Mapping::Ignored("ferrogate's workers keep the master's stdout and stderr")),
    ("statsd_host", Mapping::Unsupported(NO_STATSD)),
    ("dogstatsd_tags", Mapping::Unsupported(NO_STATSD)),
    ("statsd_prefix", Mapping::Unsupported(NO_STATSD)),
    ("proc_name", Mapping::Unsupported(NOT_YET)),
    ("default_proc_name", Mapping::Unsupported(NOT_YET)),
    ("pythonpath", Mapping::Same),
    ("paste", Mapping::Same),
    ("on_starting", Mapping::Hook),
    ("on_reload", Mapping::Hook),
    ("when_ready", Mapping::Hook),
    ("pre_fork", Mapping::Hook),
    ("post_fork", Mapping::Hook),
    ("post_worker_init", Mapping::Hook),
    ("worker_int", Mapping::Unsupported(NO_PYTHON_ON_ABORT)),
    ("worker_abort", Mapping::Unsupported(NO_PYTHON_ON_ABORT)),
    ("pre_exec", Mapping::Hook),
    ("pre_request", Mapping::Unsupported(PER_REQUEST)),
    ("post_request", Mapping::Unsupported(PER_REQUEST)),
    ("child_exit", Mapping::Hook),
    ("worker_exit", Mapping::Hook),
    ("nworkers_changed", Mapping::Hook),
    ("on_exit", Mapping::Hook),
    ("ssl_context", Mapping::Unsupported(SSL_CONTEXT)),
    ("proxy_protocol", Mapping::Same),
    ("proxy_allow_ips", Mapping::Renamed("forwarded_allow_ips")),
    ("keyfile", Mapping::Same),
    ("certfile", Mapping::Same),
    ("ssl_version", Mapping::Ignored("deprecated in gunicorn too; ferrogate serves TLS 1.2 and 1.3 (--ssl-min-version)")),
    ("cert_reqs", Mapping::Same),
    ("ca_certs", Mapping::Same),
    ("suppress_ragged_eofs", Mapping::Ignored("ferrogate frames every request body, so a connection closed without close_notify never truncates one silently")),
    ("do_handshake_on_connect", Mapping::Same),
    ("ciphers", Mapping::Same),
    ("raw_paste_global_conf", Mapping::Renamed("paste_global")),
    ("permit_obsolete_folding", Mapping::Unsupported(STRICT)),
    ("strip_header_spaces", Mapping::Unsupported(STRICT)),
    ("permit_unconventional_http_method", Mapping::Renamed("permit_unconventional_methods")),
    ("permit_unconventional_http_version", Mapping::Unsupported(STRICT)),
    ("casefold_http_method", Mapping::Unsupported(STRICT)),
    ("forwarder_headers", Mapping::Ignored("ferrogate passes every header to the app; the proxy headers it acts on are fixed")),
    ("header_map", Mapping::Unsupported(STRICT)),
    ("tolerate_dangerous_framing", Mapping::Unsupported(STRICT)),
];

/// What gunicorn's `name` is here.
pub fn lookup(name: &str) -> Option<GunicornName> {
    let (gunicorn_name, mapping) = GUNICORN_SETTINGS.iter().find(|(n, _)| *n == name)?;
    Some(match *mapping {
        Mapping::Same => GunicornName::Ours(gunicorn_name),
        Mapping::Renamed(ours) => GunicornName::Ours(ours),
        Mapping::Ignored(why) => GunicornName::Ignored(why),
        Mapping::Unsupported(why) => GunicornName::Unsupported(why),
        Mapping::Hook => GunicornName::Unsupported(HOOK_IN_TOML),
    })
}

/// gunicorn's names, for "did you mean".
pub fn names() -> impl Iterator<Item = &'static str> {
    GUNICORN_SETTINGS.iter().map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_same_or_renamed_name_is_one_of_ours() {
        let ours: Vec<String> = crate::config::command()
            .get_arguments()
            .map(|arg| arg.get_id().as_str().to_string())
            .collect();
        for (name, mapping) in GUNICORN_SETTINGS {
            let target = match mapping {
                Mapping::Same => *name,
                Mapping::Renamed(target) => target,
                _ => continue,
            };
            assert!(
                ours.iter().any(|o| o == target),
                "{name} maps to unknown {target}"
            );
        }
    }
}
