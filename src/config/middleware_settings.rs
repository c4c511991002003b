//! The middleware settings: the native layers declared without code, flattened into
//! `Settings` under the "Middleware" section. They wrap the app in a fixed order (request id
//! → IP filter → rate limit → static files → compression → mount → app), as the WSGI objects
//! of `ferrogate.middleware` would (python/ferrogate/_pipeline.py builds them).

use clap::Args;

use super::IpRanges;

#[derive(Debug, Clone, Args)]
pub struct MiddlewareSettings {
    /// Mount another app at a path prefix: PREFIX=APP (`/api=pkg.api:app`; repeat for
    /// several). The longest prefix ending on a segment boundary wins; the positional APP
    /// answers the rest
    #[arg(long = "mount", value_name = "PREFIX=APP", value_parser = parse_mount, help_heading = "Middleware")]
    pub mount: Vec<String>,

    /// Serve the files under a directory at a path prefix: PREFIX=DIR (`/static=./public`;
    /// repeat for several). A missing file falls through to the app
    #[arg(id = "static", long = "static", value_name = "PREFIX=DIR", value_parser = parse_mount, help_heading = "Middleware")]
    pub static_files: Vec<String>,

    /// Cache-Control max-age in seconds for --static files (names with a content hash get a
    /// year and `immutable`)
    #[arg(long, value_name = "SECONDS", help_heading = "Middleware")]
    pub static_max_age: Option<u32>,

    /// Clients allowed (IP addresses, CIDR ranges, `unix`; comma-separated); everyone else
    /// gets 403. Empty: everyone not denied
    #[arg(
        long,
        value_name = "LIST",
        default_value = "",
        help_heading = "Middleware"
    )]
    pub allow: IpRanges,

    /// Clients refused with 403 (IP addresses, CIDR ranges, `unix`); wins over --allow
    #[arg(
        long,
        value_name = "LIST",
        default_value = "",
        help_heading = "Middleware"
    )]
    pub deny: IpRanges,

    /// More --allow entries from a file, one a line (`#` comments); read again by the new
    /// workers of a SIGHUP reload
    #[arg(long, value_name = "FILE", help_heading = "Middleware")]
    pub allow_file: Option<std::path::PathBuf>,

    /// More --deny entries from a file, one a line (`#` comments); read again by the new
    /// workers of a SIGHUP reload
    #[arg(long, value_name = "FILE", help_heading = "Middleware")]
    pub deny_file: Option<std::path::PathBuf>,

    /// Limit each client's request rate: RATE[,burst=N][,key=client_ip|header:NAME]
    /// [,store=redis://HOST:PORT/DB[,fail=open|closed][,redis_timeout=SECONDS]], RATE like
    /// 100/s, 1000/min, 10/h. Over it: 429 with Retry-After. Counted across every worker of
    /// the host, or with a Redis store across every host (Redis down or slower than
    /// redis_timeout, default 0.05: requests pass, or get 503 with fail=closed)
    #[arg(long, value_name = "SPEC", help_heading = "Middleware")]
    pub rate_limit: Option<String>,

    /// Give every request an id (X-Request-ID from a peer in --forwarded-allow-ips, else a new
    /// UUIDv7): HTTP_X_REQUEST_ID in the environ, X-Request-ID in the response
    #[arg(long, help_heading = "Middleware")]
    pub request_id: bool,

    /// Compress responses (brotli, zstd or gzip, by the client's Accept-Encoding) that are
    /// of a compressible type and at least 512 bytes
    #[arg(long, help_heading = "Middleware")]
    pub compress: bool,

    /// Debugging: run the app's ferrogate.middleware layers (and the middleware settings) as
    /// plain WSGI middleware on the Python threads instead of lifting them into the native
    /// pipeline. Same answers, slower
    #[arg(long, help_heading = "Middleware")]
    pub no_native_middleware: bool,
}

impl MiddlewareSettings {
    /// Whether any layer is declared by the settings.
    pub fn declares_layers(&self) -> bool {
        !self.mount.is_empty()
            || !self.static_files.is_empty()
            || !self.allow.is_empty()
            || !self.deny.is_empty()
            || self.allow_file.is_some()
            || self.deny_file.is_some()
            || self.rate_limit.is_some()
            || self.request_id
            || self.compress
    }
}

/// `--mount` / `--static`: `/prefix=target`.
fn parse_mount(text: &str) -> Result<String, String> {
    match text.split_once('=') {
        Some((prefix, target)) if prefix.starts_with('/') && !target.is_empty() => {
            Ok(text.to_string())
        }
        _ => Err(format!(
            "{text:?} is not PREFIX=TARGET with a prefix starting with '/'"
        )),
    }
}
