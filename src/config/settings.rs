//! Every server setting, declared once: name, type, default, unit, doc, section, and
//! gunicorn's spelling where it differs. The command line, the `FERROGATE_*` variables, the
//! config-file keys and `ferrogate.run(**kwargs)` are all derived from it (sources.rs).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::{
    BindAddress, Http2Settings, IpRanges, MiddlewareSettings, ObserveSettings, TlsSettings,
};

/// Most Python threads per worker. Threads start only when requests wait behind blocked ones
/// (see wsgi/pool/mod.rs), so a CPU-bound app keeps using one; 64 lets an app that waits on I/O
/// (a 10 ms database call) keep a wrk -c64 load busy (benches/e2e "sleep 10 ms" row).
pub const DEFAULT_THREADS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// What the listeners speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Protocol {
    /// HTTP/1.1 and 1.0.
    #[default]
    Http,
    /// The uwsgi binary protocol of nginx's `uwsgi_pass` and Apache's mod_proxy_uwsgi.
    Uwsgi,
}

/// Which HTTP versions the listeners speak (`--http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HttpVersions {
    /// HTTP/1.1 and 1.0 only.
    #[value(name = "1")]
    One,
    /// HTTP/2 only: h2c with prior knowledge on plain ports, ALPN `h2` over TLS.
    #[value(name = "2")]
    Two,
    /// HTTP/1 and HTTP/2: h2c when a client opens with the HTTP/2 preface, `h2` when ALPN
    /// asks for it.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ferrogate",
    version,
    about = "A PEP 3333 WSGI server written in Rust",
    after_help = "Every option can also be set as FERROGATE_<OPTION> in the environment, or in a \
                  config file: -c FILE, else ./ferrogate.toml, else [tool.ferrogate] in \
                  ./pyproject.toml (keys spelled as the options: workers = 4). Precedence: \
                  command line, environment, config file, default."
)]
pub struct Settings {
    /// The WSGI app: module:attr, module:factory(), path/to/file.py[:attr], or module
    /// (attribute `application`, then `app`).
    #[arg(value_name = "APP")]
    pub app: Option<String>,

    /// Config file: TOML (ferrogate.toml, or pyproject.toml's [tool.ferrogate]) or a
    /// gunicorn-style Python file (gunicorn.conf.py). Without it, ./ferrogate.toml, else
    /// ./pyproject.toml if it has a [tool.ferrogate] table.
    #[arg(short = 'c', long, value_name = "FILE", help_heading = "Config")]
    pub config: Option<PathBuf>,

    /// Print every effective setting and where it came from (default, file and line, env,
    /// command line), then exit; a bad setting anywhere exits 2 naming it.
    #[arg(long, help_heading = "Config")]
    pub check_config: bool,

    /// Set an environment variable for the app (KEY=VALUE; repeat for several), like
    /// gunicorn's raw_env.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env_pair, help_heading = "App")]
    pub env: Vec<String>,

    /// Where to listen: host:port, [::1]:port, unix:/path, or fd://N (a listening socket this
    /// process was started with). Repeat for several. https://host:port serves TLS there
    /// (with --certfile), http://host:port plain HTTP even with --certfile, uwsgi://host:port
    /// or uwsgi://unix:/path the uwsgi protocol whatever --protocol says. Without it, sockets
    /// passed by systemd socket activation (LISTEN_FDS) are used if there are any.
    #[arg(
        short,
        long = "bind",
        value_name = "ADDRESS",
        default_value = "127.0.0.1:8000",
        value_delimiter = ',',
        help_heading = "Binding"
    )]
    pub bind: Vec<BindAddress>,

    /// Mode of the Unix socket files ferrogate creates (octal, like 0o660); default: what
    /// --umask leaves. Connecting needs write permission, so a proxy's user or group needs w.
    #[arg(long, value_name = "MODE", value_parser = parse_mode, help_heading = "Binding")]
    pub unix_socket_perms: Option<u32>,

    /// Pending connections the kernel queues per listening socket (gunicorn's default).
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 2048,
        value_parser = clap::value_parser!(i32).range(1..=65535),
        help_heading = "Binding"
    )]
    pub backlog: i32,

    /// Each worker listens on a socket of its own (SO_REUSEPORT) on every TCP address, and the
    /// kernel spreads new connections over them, instead of every worker taking them from one
    /// shared socket. The connections still waiting in a worker's own backlog are reset if
    /// that worker dies. Unix sockets and inherited sockets stay shared
    #[arg(long, help_heading = "Binding")]
    pub reuse_port: bool,

    /// Worker processes forked by the master.
    #[arg(
        allow_negative_numbers = true, short, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..), help_heading = "Workers")]
    pub workers: u16,

    /// Most Python threads per worker: how many requests of one worker run the app at once.
    /// Threads start as needed.
    #[arg(
        allow_negative_numbers = true, long, value_name = "N", default_value_t = DEFAULT_THREADS as u16, value_parser = clap::value_parser!(u16).range(1..), help_heading = "Workers")]
    pub threads: u16,

    /// gunicorn's worker class, accepted so that a gunicorn command line carries over:
    /// ferrogate's workers always run the app in threads (sync is gthread with one thread
    /// busy at a time; async classes such as gevent have no meaning here).
    #[arg(short = 'k', long, value_name = "CLASS", default_value = "gthread", value_parser = ["sync", "gthread"], help_heading = "Workers")]
    pub worker_class: String,

    #[command(flatten)]
    pub middleware: MiddlewareSettings,

    #[command(flatten)]
    pub tls: TlsSettings,

    #[command(flatten)]
    pub observe: ObserveSettings,

    /// Mount prefix: becomes SCRIPT_NAME and is stripped from PATH_INFO.
    #[arg(long, value_name = "PREFIX", default_value = "", help_heading = "App")]
    pub root_path: String,

    /// Change to this directory before loading the app.
    #[arg(long, value_name = "DIR", help_heading = "App")]
    pub chdir: Option<PathBuf>,

    /// Import the app in the master before forking the workers (gunicorn's preload_app): an
    /// import error stops the start before any worker exists, and the workers share the
    /// loaded code copy-on-write. SIGHUP then restarts the workers without re-importing it.
    #[arg(long, help_heading = "App")]
    pub preload: bool,

    /// Development: reload (as on SIGHUP) when a file of an imported module changes. A change
    /// that does not import is logged, and the running workers go on serving.
    #[arg(long, help_heading = "App")]
    pub reload: bool,

    /// With --reload, also reload when this file changes (repeat for several).
    #[arg(long, value_name = "FILE", help_heading = "App")]
    pub reload_extra_file: Vec<PathBuf>,

    /// With --reload, also reload when a file matching this glob changes (`templates/*.html`,
    /// relative to the working directory; repeat for several).
    #[arg(long, value_name = "GLOB", help_heading = "App")]
    pub reload_include: Vec<String>,

    /// Serve the app a paste.deploy ini file names (`api-paste.ini`, or `api-paste.ini#name`
    /// for an app other than `main`), loaded by PasteDeploy (`pip install ferrogate[paste]`),
    /// as gunicorn's --paste: the ini's [loggers]/[handlers]/[formatters] configure Python
    /// logging, and --reload watches the file. An APP of the form `config:FILE[#name]` does
    /// the same.
    #[arg(long, value_name = "FILE[#NAME]", help_heading = "App")]
    pub paste: Option<String>,

    /// A value for the paste.deploy ini's global_conf (KEY=VALUE; repeat for several): what
    /// `%(KEY)s` names in the ini, as gunicorn's --paste-global.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env_pair, help_heading = "App")]
    pub paste_global: Vec<String>,

    /// Extra directories to put first on sys.path (repeat, or separate with ',').
    #[arg(long, value_name = "DIR", value_delimiter = ',', help_heading = "App")]
    pub pythonpath: Vec<String>,

    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        value_parser = parse_seconds,
        help_heading = "Timeouts"
    )]
    pub graceful_timeout: f64,

    /// Seconds a request may run before its worker is aborted and replaced: the stacks of its
    /// Python threads go to the error log (faulthandler, on SIGABRT), the master's line names
    /// the request. The same for a worker whose I/O loop stops reporting. 0: no limit.
    #[arg(
        allow_negative_numbers = true,
        short = 't',
        long,
        value_name = "SECONDS",
        default_value_t = 30.0,
        value_parser = parse_seconds,
        help_heading = "Workers"
    )]
    pub timeout: f64,

    /// Requests after which a worker retires gracefully: a replacement starts first, and the
    /// worker stops accepting once it accepts. 0: never.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Workers"
    )]
    pub max_requests: u64,

    /// Up to this many requests more than --max-requests, drawn at random for each worker, so
    /// that workers started together do not retire together.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Workers"
    )]
    pub max_requests_jitter: u64,

    /// Resident memory (RSS) in MiB over which a worker retires gracefully, as with
    /// --max-requests (looked at every 0.1 s). 0: no limit.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "MIB",
        default_value_t = 0,
        help_heading = "Workers"
    )]
    pub max_worker_memory: u64,

    /// Seconds an idle keep-alive connection is waited for between requests before it is
    /// closed (at most half as long again); 0 turns keep-alive off (every response closes).
    #[arg(
        allow_negative_numbers = true,
        long = "keep-alive",
        value_name = "SECONDS",
        default_value_t = 5.0,
        value_parser = parse_seconds,
        help_heading = "Timeouts"
    )]
    pub keep_alive: f64,

    /// Seconds a request head may take to arrive, from its first byte (slowloris); past it the
    /// client gets 408 and the connection is closed.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        value_parser = parse_positive_seconds,
        help_heading = "Timeouts"
    )]
    pub header_timeout: f64,

    /// Seconds a client may stop sending its body, or stop reading its response, before it is
    /// cut off (the app's wsgi.input.read() raises TimeoutError).
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "SECONDS",
        default_value_t = 60.0,
        value_parser = parse_positive_seconds,
        help_heading = "Timeouts"
    )]
    pub socket_timeout: f64,

    /// Longest request line (method, target and version) in bytes; longer gets 414.
    /// 0: no limit but the 64 KiB head cap.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "BYTES",
        default_value_t = 8190,
        help_heading = "Limits"
    )]
    pub limit_request_line: u32,

    /// Most header fields in one request; more gets 431. 0: no limit but the 64 KiB head cap.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 100,
        help_heading = "Limits"
    )]
    pub limit_request_fields: u32,

    /// Longest header line (`Name: value`) in bytes; longer gets 431. 0: no limit but the
    /// 64 KiB head cap.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "BYTES",
        default_value_t = 8190,
        alias = "limit-request-field_size",
        help_heading = "Limits"
    )]
    pub limit_request_field_size: u32,

    /// Largest request body in bytes; larger gets 413 (before the app runs when
    /// Content-Length says so). 0: unlimited.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "BYTES",
        default_value_t = 0,
        help_heading = "Limits"
    )]
    pub max_request_body: u64,

    /// Most open connections per worker; beyond it new ones wait in the listen backlog.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u32).range(1..),
        alias = "worker-connections",
        help_heading = "Limits"
    )]
    pub max_connections: u32,

    /// Accept any token as the request method, as-is (by default a method must be 3 to 20
    /// characters of A-Z, 0-9, '-' and '_', as gunicorn requires).
    #[arg(
        long,
        alias = "permit-unconventional-http-method",
        help_heading = "Limits"
    )]
    pub permit_unconventional_methods: bool,

    /// Peers whose proxy headers (X-Forwarded-*, Forwarded) and PROXY protocol preamble are
    /// trusted: IP addresses, CIDR ranges, `unix` for Unix-socket peers, `*` for every peer.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "127.0.0.1,::1,unix",
        help_heading = "Proxies"
    )]
    pub forwarded_allow_ips: IpRanges,

    /// Every connection starts with a PROXY protocol (v1 or v2) preamble from a trusted peer
    /// (HAProxy, AWS NLB, nginx `proxy_protocol on`) naming the real client.
    #[arg(long, help_heading = "Proxies")]
    pub proxy_protocol: bool,

    /// Send response header names as `Foo-Bar` whatever case the app used, as eventlet.wsgi
    /// does by default. Off: names go out exactly as the app gave them.
    #[arg(long, help_heading = "Compatibility")]
    pub capitalize_response_headers: bool,

    /// What the listeners without a scheme in --bind speak: `http`, or `uwsgi` for a web
    /// server in front using `uwsgi_pass` (nginx) or mod_proxy_uwsgi (Apache). Its client
    /// address and scheme are believed from peers in --forwarded-allow-ips.
    #[arg(long, value_enum, default_value = "http", help_heading = "Proxies")]
    pub protocol: Protocol,

    /// HTTP versions served: `1`, `2` (HTTP/2 only), or `auto` (HTTP/1, and HTTP/2 for
    /// clients that open with its preface (h2c prior knowledge) or ask for it by ALPN).
    /// `Upgrade: h2c` is not offered.
    #[arg(long, value_enum, default_value = "auto", help_heading = "HTTP/2")]
    pub http: HttpVersions,

    #[command(flatten)]
    pub http2: Http2Settings,

    /// Access log: a file path, or '-' for stdout. Off unless given.
    #[arg(
        long,
        alias = "access-logfile",
        value_name = "FILE",
        help_heading = "Logging"
    )]
    pub access_log: Option<String>,

    /// Error log: a file path, or '-' for stderr.
    #[arg(
        long,
        aliases = ["error-logfile", "log-file"],
        value_name = "FILE",
        default_value = "-",
        help_heading = "Logging"
    )]
    pub error_log: String,

    /// Least severe error-log level written.
    #[arg(long, value_enum, default_value = "info", help_heading = "Logging")]
    pub log_level: LogLevel,

    /// Put the traceback of a failed request in the 500 response body (never in production).
    #[arg(long, help_heading = "Logging")]
    pub debug: bool,

    /// Write the master's pid to this file once the sockets are bound; removed on exit.
    #[arg(short = 'p', long, value_name = "FILE", help_heading = "Process")]
    pub pid: Option<PathBuf>,

    /// Run the workers as this user (a name or a uid): the master binds first (so ports
    /// below 1024 work), then gives up root before any app code is imported.
    #[arg(short = 'u', long, value_name = "USER", help_heading = "Process")]
    pub user: Option<String>,

    /// Run the workers as this group (a name or a gid); default: the user's own group.
    #[arg(short = 'g', long, value_name = "GROUP", help_heading = "Process")]
    pub group: Option<String>,

    /// File mode creation mask (octal, like 0o22 or 022) for the files ferrogate and the app
    /// create, Unix sockets included.
    #[arg(short = 'm', long, value_name = "MASK", value_parser = parse_umask, help_heading = "Process")]
    pub umask: Option<u32>,

    /// Not offered: run ferrogate under systemd (or another supervisor) instead, which keeps
    /// its logs and restarts it (README, "Deployment").
    #[arg(short = 'D', long, hide = true, help_heading = "Process")]
    pub daemon: bool,
}

impl Settings {
    /// Settings for servers made from Python (`make_server`): the defaults, nothing from argv,
    /// the environment or a config file.
    pub fn defaults() -> Settings {
        Settings::parse_from(["ferrogate"])
    }

    pub fn graceful_timeout(&self) -> Duration {
        seconds(self.graceful_timeout)
    }

    /// `--timeout`; `None` when it is off (0).
    pub fn timeout(&self) -> Option<Duration> {
        Some(seconds(self.timeout)).filter(|timeout| !timeout.is_zero())
    }

    /// The idle wait between requests; `None` when keep-alive is off (`--keep-alive 0`).
    pub fn keep_alive(&self) -> Option<Duration> {
        Some(seconds(self.keep_alive)).filter(|timeout| !timeout.is_zero())
    }

    pub fn header_timeout(&self) -> Duration {
        seconds(self.header_timeout)
    }

    pub fn socket_timeout(&self) -> Duration {
        seconds(self.socket_timeout)
    }
}

/// `--env KEY=VALUE`: a variable name, `=`, and any value.
fn parse_env_pair(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((key, _)) if !key.is_empty() && !key.contains('\0') => Ok(text.to_string()),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `--unix-socket-perms`: an octal file mode, with or without a leading `0o` or `0`.
fn parse_mode(text: &str) -> Result<u32, String> {
    parse_umask(text).map_err(|_| format!("{text:?} is not an octal file mode from 0 to 0o777"))
}

/// `--umask`: octal, with or without a leading `0o` or `0`.
fn parse_umask(text: &str) -> Result<u32, String> {
    let digits = text.trim().trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("{text:?} is not an octal mask from 0 to 0o777")),
    }
}

/// A duration setting: a number of seconds from 0 to a day.
pub(super) fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(0.0..=MAX_SETTING_SECONDS).contains(&value) {
        return Err(format!(
            "{text} is outside 0 to {MAX_SETTING_SECONDS} seconds"
        ));
    }
    Ok(value)
}

/// A timeout that cannot be off: above 0 seconds.
fn parse_positive_seconds(text: &str) -> Result<f64, String> {
    let value = parse_seconds(text)?;
    if value == 0.0 {
        return Err(
            "0 would time every client out at once; give a number of seconds above 0".into(),
        );
    }
    Ok(value)
}

/// Longest duration a setting takes (a day); beyond it a value is a typo, and deadlines
/// computed from it would overflow.
const MAX_SETTING_SECONDS: f64 = 86_400.0;

/// Seconds as a `Duration`; values come through `parse_seconds`, so the clamp is a backstop.
pub(super) fn seconds(value: f64) -> Duration {
    if value.is_nan() {
        return Duration::ZERO;
    }
    Duration::try_from_secs_f64(value.min(MAX_SETTING_SECONDS)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
