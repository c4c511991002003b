//! The observability and load-control settings (issue 14): health and readiness paths, the
//! drain before a graceful stop, and the queue limits that shed load. Flattened into
//! `Settings` under the "Observability" section, so the CLI flag, `FERROGATE_*` variable,
//! config key and docs derive from these declarations as for every other setting.

use std::time::Duration;

use clap::Args;

use super::settings::{parse_seconds, seconds};
use crate::observe::AccessFormat;

#[derive(Debug, Clone, Args)]
pub struct ObserveSettings {
    /// A path answered by the server itself, without Python: 200 while the worker accepts,
    /// 503 once a graceful stop has begun (a liveness probe: `/healthz`). Off unless given
    #[arg(long, value_name = "PATH", value_parser = parse_probe_path, help_heading = "Observability")]
    pub health_path: Option<String>,

    /// A path answered by the server itself, without Python: 200 once the app is imported in
    /// the worker that answers, 503 while a graceful stop drains (a readiness probe:
    /// `/readyz`). Off unless given
    #[arg(long, value_name = "PATH", value_parser = parse_probe_path, help_heading = "Observability")]
    pub ready_path: Option<String>,

    /// Seconds a graceful stop keeps serving, with --ready-path and --health-path answering
    /// 503, before it stops accepting: the time a load balancer (a Kubernetes Service) takes
    /// to stop sending new requests, so no preStop `sleep` is needed. Added to
    /// --graceful-timeout
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        value_parser = parse_seconds,
        help_heading = "Observability"
    )]
    pub drain_delay: f64,

    /// Most requests of one worker waiting for a Python thread; one more is answered 503
    /// with Retry-After at once, without Python. 0: no limit
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Observability"
    )]
    pub max_queue: u32,

    /// Seconds a request may wait for a Python thread (counting the X-Request-Start of a
    /// trusted proxy). A request expected to wait longer, by the queue ahead of it and the
    /// recent request durations, is answered 503 with Retry-After at once; one that waited
    /// longer all the same is answered so when a thread takes it, without calling the app.
    /// 0: no limit
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        value_parser = parse_seconds,
        help_heading = "Observability"
    )]
    pub max_queue_time: f64,

    /// Access log line format: gunicorn's atoms (`%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s
    /// %(b)s "%(f)s" "%(a)s"`, the default; also %(m)s %(U)s %(q)s %(H)s %(B)s %(T)s %(D)s
    /// %(M)s %(L)s %(p)s, %({header}i)s, %({header}o)s, %({VAR}e)s, and %(Q)s: milliseconds
    /// waited for a Python thread), or `json` for one JSON object per line
    #[arg(
        long,
        alias = "access-logformat",
        value_name = "FORMAT",
        value_parser = parse_access_format,
        help_heading = "Logging"
    )]
    pub access_log_format: Option<String>,

    /// Log a warning to the error log for every request that takes longer than this many
    /// seconds (its method, path, duration and queue time). 0: off
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        value_parser = parse_seconds,
        help_heading = "Logging"
    )]
    pub log_slow_requests: f64,

    /// A Python logging configuration for the app's loggers, applied in the master before the
    /// app is imported (workers inherit it): an ini file for logging.config.fileConfig
    /// (gunicorn's --log-config), or a .json or .toml file holding a
    /// logging.config.dictConfig dictionary (gunicorn's --log-config-json); applied again on
    /// SIGHUP. ferrogate's own error log lines are written without Python, to --error-log.
    /// Off unless given
    #[arg(
        long,
        alias = "log-config-json",
        value_name = "FILE",
        help_heading = "Logging"
    )]
    pub log_config: Option<std::path::PathBuf>,

    /// Seconds a request's app call may run: then ferrogate.RequestTimeout (a BaseException)
    /// is raised in its Python thread, so `finally` blocks and close() run, and the client
    /// gets 504 if no response head was sent (else the connection is aborted); the worker
    /// serves on. time.sleep() ends within 0.05 s of it; a thread blocked in other C code
    /// is left to --timeout. 0: no limit
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 0.0,
        value_parser = parse_seconds,
        help_heading = "Timeouts"
    )]
    pub request_timeout: f64,

    /// Serve Prometheus metrics at http://ADDRESS/metrics from the master (host:port): the
    /// requests, durations, queue times, threads, bytes and connections of every worker,
    /// summed through shared memory. Off unless given
    #[arg(long, value_name = "ADDRESS", help_heading = "Observability")]
    pub metrics_bind: Option<std::net::SocketAddr>,

    /// A Unix socket (mode 0600) on which the master takes commands from `ferrogate ctl`:
    /// status, reload, workers +1|-1|N, kill PID, log-reopen. Its permissions are its access
    /// control: only its owner (and root) can connect. Off unless given
    #[arg(long, value_name = "PATH", help_heading = "Process")]
    pub control_socket: Option<std::path::PathBuf>,
}

impl ObserveSettings {
    pub fn drain_delay(&self) -> Duration {
        seconds(self.drain_delay)
    }

    /// `--max-queue`; `None` when it is off (0).
    pub fn max_queue(&self) -> Option<usize> {
        Some(self.max_queue as usize).filter(|max| *max > 0)
    }

    /// `--log-slow-requests`; `None` when it is off (0).
    pub fn log_slow_requests(&self) -> Option<Duration> {
        Some(seconds(self.log_slow_requests)).filter(|slow| !slow.is_zero())
    }

    /// `--access-log-format`, compiled (it was checked when the setting was read).
    pub fn access_format(&self) -> AccessFormat {
        match &self.access_log_format {
            Some(text) => AccessFormat::compile(text).unwrap_or(AccessFormat::Combined),
            None => AccessFormat::Combined,
        }
    }

    /// `--request-timeout`; `None` when it is off (0).
    pub fn request_timeout(&self) -> Option<Duration> {
        Some(seconds(self.request_timeout)).filter(|timeout| !timeout.is_zero())
    }

    /// `--max-queue-time`; `None` when it is off (0).
    pub fn max_queue_time(&self) -> Option<Duration> {
        Some(seconds(self.max_queue_time)).filter(|max| !max.is_zero())
    }
}

/// `--access-log-format`: compiled once here, so a mistake is refused at start naming it.
fn parse_access_format(text: &str) -> Result<String, String> {
    AccessFormat::compile(text).map(|_| text.to_string())
}

/// `--health-path` / `--ready-path`: an absolute path, matched exactly (no query).
fn parse_probe_path(text: &str) -> Result<String, String> {
    let valid = text.starts_with('/')
        && !text.contains(['?', '#'])
        && text.bytes().all(|b| b.is_ascii_graphic());
    match valid {
        true => Ok(text.to_string()),
        false => Err(format!(
            "{text:?} is not a path: it must start with '/' and have no spaces, '?' or '#'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Settings;
    use clap::Parser;
    use std::time::Duration;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        Settings::try_parse_from(["f", "app"].iter().chain(args))
    }

    #[test]
    fn everything_is_off_by_default() {
        let settings = Settings::defaults().observe;
        assert_eq!(settings.health_path, None);
        assert_eq!(settings.ready_path, None);
        assert_eq!(settings.drain_delay(), Duration::ZERO);
        assert_eq!(settings.max_queue(), None);
        assert_eq!(settings.max_queue_time(), None);
        assert_eq!(settings.request_timeout(), None);
    }

    #[test]
    fn probe_paths_must_be_plain_absolute_paths() {
        let s = parse(&["--health-path", "/healthz", "--ready-path", "/readyz"]).unwrap();
        assert_eq!(s.observe.health_path.as_deref(), Some("/healthz"));
        assert_eq!(s.observe.ready_path.as_deref(), Some("/readyz"));
        for bad in ["healthz", "/a b", "/h?x=1", ""] {
            let error = parse(&["--health-path", bad]).unwrap_err();
            assert!(error.to_string().contains("--health-path"), "{error}");
        }
    }

    #[test]
    fn access_log_format_is_checked_when_read() {
        let s = parse(&["--access-log-format", "json", "--log-slow-requests", "1.5"]).unwrap();
        assert_eq!(
            s.observe.access_format(),
            crate::observe::AccessFormat::Json
        );
        assert_eq!(
            s.observe.log_slow_requests(),
            Some(Duration::from_millis(1500))
        );
        let error = parse(&["--access-log-format", "%(nope)s"]).unwrap_err();
        assert!(
            error.to_string().contains("unknown atom %(nope)s"),
            "{error}"
        );
        let gunicorn = parse(&["--access-logformat", "%(h)s %(s)s"]).unwrap();
        assert!(gunicorn.observe.access_log_format.is_some());
        assert_eq!(Settings::defaults().observe.log_slow_requests(), None);
    }

    #[test]
    fn queue_limits_at_below_and_above_zero() {
        let s = parse(&["--max-queue", "1", "--max-queue-time", "0.25"]).unwrap();
        assert_eq!(s.observe.max_queue(), Some(1));
        assert_eq!(s.observe.max_queue_time(), Some(Duration::from_millis(250)));
        let off = parse(&["--max-queue", "0", "--max-queue-time", "0"]).unwrap();
        assert_eq!(
            (off.observe.max_queue(), off.observe.max_queue_time()),
            (None, None)
        );
        for (flag, bad) in [
            ("--max-queue", "-1"),
            ("--max-queue-time", "-0.5"),
            ("--drain-delay", "-1"),
            ("--drain-delay", "1e9"),
        ] {
            let error = parse(&[flag, bad]).unwrap_err();
            assert!(error.to_string().contains(flag), "{error}");
        }
        let timeout = parse(&["--request-timeout", "1.5"]).unwrap();
        assert_eq!(
            timeout.observe.request_timeout(),
            Some(Duration::from_millis(1500))
        );
        assert!(parse(&["--request-timeout", "-1"]).is_err());
        let drain = parse(&["--drain-delay", "2.5"]).unwrap();
        assert_eq!(drain.observe.drain_delay(), Duration::from_millis(2500));
    }
}
