//! The middleware settings: the native layers declared without code, flattened into
//! `Settings` under the "Middleware" section. They wrap the app in a fixed order (request id
//! → IP filter → rate limit → static files → compression → mount (with the forwards) → app),
//! as the WSGI objects of `ferrogate.middleware` would (python/ferrogate/_pipeline.py builds
//! them), or in the order `--pipeline` gives (pipeline_layers.rs).

use clap::Args;

use super::IpRanges;

#[derive(Debug, Clone, Args)]
pub struct MiddlewareSettings {
    /// Mount another app at a path prefix: PREFIX=APP[,request_timeout=SECONDS]
    /// (`/api=pkg.api:app`; repeat for several). The longest prefix ending on a segment
    /// boundary wins; the positional APP answers the rest. `request_timeout` replaces
    /// --request-timeout for the mounted app's requests (0: none for them)
    #[arg(long = "mount", value_name = "PREFIX=APP", value_parser = parse_mounted_app, help_heading = "Middleware")]
    pub mount: Vec<String>,

    /// Forward requests under a path prefix to upstream HTTP servers (a reverse proxy):
    /// PREFIX=URL[,URL...][,OPTION=VALUE...] (`/search=http://10.0.0.5:8080,unix:/run/s.sock`,
    /// then options like `strategy=least_conn`; repeat for several). URLs are
    /// http[s]://host:port[/base] or unix:/path, each with an optional `;weight=N`; the
    /// options are the keywords of ferrogate.middleware.Forward (`ca_certs=PATH` for https
    /// upstreams signed by a private CA). In a config file, a `[[forward]]`
    /// table with `prefix`, `upstreams` and the options as keys
    #[arg(long = "forward", value_name = "PREFIX=URL,...", value_parser = parse_forward, help_heading = "Middleware")]
    pub forward: Vec<String>,

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

    /// The wrapping layers in an order of your own, outermost first, instead of the fixed
    /// order of the settings above (repeat; a kind may appear more than once): `request_id`,
    /// `ip_filter:allow=CIDR,deny=CIDR`, `rate_limit:rate=100/s,burst=N,key=...`,
    /// `static:/prefix=DIR,max_age=N`, `compress:level=N`. --mount and --forward stay the
    /// innermost layer. In a config file, `[[pipeline]]` tables with `layer = "KIND"` and the
    /// options as keys. Not together with --static, --allow, --deny, --rate-limit,
    /// --request-id or --compress
    #[arg(
        long = "pipeline",
        value_name = "LAYER",
        value_parser = super::pipeline_layers::parse_layer,
        conflicts_with_all = [
            "static", "static_max_age", "allow", "deny", "allow_file", "deny_file",
            "rate_limit", "request_id", "compress",
        ],
        help_heading = "Middleware"
    )]
    pub pipeline: Vec<String>,

    /// Debugging: run the app's ferrogate.middleware layers (and the middleware settings) as
    /// plain WSGI middleware on the Python threads instead of lifting them into the native
    /// pipeline. Same answers, slower
    #[arg(long, help_heading = "Middleware")]
    pub no_native_middleware: bool,
}

impl MiddlewareSettings {
    /// Whether a `--mount` sets its own request timeout: then `time.sleep` is sliced as for
    /// `--request-timeout`, before the apps are imported.
    pub fn mounts_set_request_timeouts(&self) -> bool {
        self.mount
            .iter()
            .any(|mount| mount.contains(",request_timeout="))
    }

    /// Whether any layer is declared by the settings.
    pub fn declares_layers(&self) -> bool {
        !self.mount.is_empty()
            || !self.forward.is_empty()
            || !self.static_files.is_empty()
            || !self.allow.is_empty()
            || !self.deny.is_empty()
            || self.allow_file.is_some()
            || self.deny_file.is_some()
            || self.rate_limit.is_some()
            || self.request_id
            || self.compress
            || !self.pipeline.is_empty()
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

/// The options `--mount` takes after its app spec, as `,NAME=VALUE`: the keywords a mounted
/// app has in `ferrogate.middleware.Mount` (`request_timeout`: seconds, 0 for none).
pub const MOUNT_OPTIONS: [&str; 1] = ["request_timeout"];

/// `--mount`: `/prefix=APP` with its options checked. Why they are taken from the end: an app
/// spec may call a factory whose arguments hold commas (`pkg:make(a=1, b=2)`), and no
/// option name is one of a factory's keywords followed by nothing but options.
fn parse_mounted_app(text: &str) -> Result<String, String> {
    let checked = parse_mount(text)?;
    let (_, mut target) = text
        .split_once('=')
        .expect("invariant: parse_mount checked it");
    while let Some((rest, option)) = target.rsplit_once(',') {
        let Some((name, value)) = option.split_once('=') else {
            break;
        };
        if !MOUNT_OPTIONS.contains(&name.trim()) {
            break;
        }
        super::settings::parse_seconds(value)
            .map_err(|error| format!("{text:?}: {}: {error}", name.trim()))?;
        target = rest;
    }
    if target.trim().is_empty() {
        return Err(format!("{text:?} names no app before its options"));
    }
    Ok(checked)
}

/// The options `--forward` takes after its URLs: the keywords of `ferrogate.middleware.Forward`.
pub const FORWARD_OPTIONS: [&str; 20] = [
    "strategy",
    "hash_key",
    "strip_prefix",
    "timeout",
    "connect_timeout",
    "retries",
    "retry_non_idempotent",
    "preserve_host",
    "via",
    "max_fails",
    "fail_timeout",
    "health",
    "health_interval",
    "health_passes",
    "max_idle",
    "idle_timeout",
    "max_connections",
    "verify",
    "ca_certs",
    "buffered_response_bytes",
];

/// `--forward /prefix=URL,URL,option=value`: the prefix, at least one upstream (`scheme://`
/// or `unix:`), and options by name. Values are checked when the layer is built.
fn parse_forward(text: &str) -> Result<String, String> {
    let (prefix, rest) = text
        .split_once('=')
        .filter(|(prefix, _)| prefix.starts_with('/'))
        .ok_or_else(|| {
            format!("{text:?} is not PREFIX=URL[,URL...] with a prefix starting with '/'")
        })?;
    let mut upstreams = 0;
    for item in rest.split(',').map(str::trim) {
        if item.contains("://") || item.starts_with("unix:") {
            upstreams += 1;
        } else {
            match item.split_once('=') {
                Some((name, _)) if FORWARD_OPTIONS.contains(&name) => {}
                _ => {
                    return Err(format!(
                        "{item:?} is neither an upstream URL (http://host:port, unix:/path) \
                         nor one of the options {}",
                        FORWARD_OPTIONS.join(", ")
                    ))
                }
            }
        }
    }
    if upstreams == 0 {
        return Err(format!("{prefix}: no upstream URL"));
    }
    Ok(text.to_string())
}

/// A `[[forward]]` table of a config file as a `--forward` value: `prefix`, `upstreams` (a
/// list, or one URL) and the options by name.
pub fn forward_from_table(table: &toml::Table) -> Result<String, String> {
    let text = |value: &toml::Value| match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(format!("{other} is not a string, number or boolean")),
    };
    let prefix = table
        .get("prefix")
        .ok_or("a [[forward]] table needs a prefix")?;
    let mut spec = format!("{}=", text(prefix)?);
    let upstreams: Vec<String> = match table.get("upstreams") {
        Some(toml::Value::Array(items)) => items.iter().map(text).collect::<Result<_, _>>()?,
        Some(single) => vec![text(single)?],
        None => return Err("a [[forward]] table needs upstreams".into()),
    };
    spec.push_str(&upstreams.join(","));
    for (key, value) in table {
        if key != "prefix" && key != "upstreams" {
            spec.push_str(&format!(",{key}={}", text(value)?));
        }
    }
    parse_forward(&spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_request_timeout_is_seconds_at_below_and_above_the_range() {
        for good in [
            "/api=pkg:app",
            "/api=pkg:app,request_timeout=0",
            "/api=pkg:app,request_timeout=2.5",
            "/api=pkg:make(a=1, b=2),request_timeout=5",
            "/api=pkg:make(a=1, b=2)",
        ] {
            assert_eq!(parse_mounted_app(good).as_deref(), Ok(good));
        }
        for (bad, says) in [
            ("/api=pkg:app,request_timeout=-1", "outside 0 to"),
            ("/api=pkg:app,request_timeout=soon", "not a number"),
            ("/api=pkg:app,request_timeout=1e12", "outside 0 to"),
            ("/api=,request_timeout=1", "names no app"),
        ] {
            let error = parse_mounted_app(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
            assert!(
                error.contains("request_timeout") || says == "names no app",
                "{error}"
            );
        }
    }

    #[test]
    fn forward_needs_a_prefix_an_upstream_and_known_options() {
        assert!(parse_forward("/s=http://a:1,unix:/x.sock,strategy=hash").is_ok());
        assert!(parse_forward("s=http://a:1").is_err());
        assert!(parse_forward("/s=strategy=hash").is_err());
        let error = parse_forward("/s=http://a:1,bogus=1").unwrap_err();
        assert!(error.contains("\"bogus=1\" is neither"), "{error}");
    }

    #[test]
    fn a_forward_table_becomes_the_flag_value() {
        let table: toml::Table = toml::from_str(
            "prefix = \"/s\"\nupstreams = [\"http://a:1\", \"unix:/x\"]\ntimeout = 5\nstrip_prefix = true\n",
        )
        .unwrap();
        assert_eq!(
            forward_from_table(&table).unwrap(),
            "/s=http://a:1,unix:/x,strip_prefix=true,timeout=5"
        );
    }
}
