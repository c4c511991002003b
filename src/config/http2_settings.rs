//! The HTTP/2 limits (SETTINGS values and the header list bound), flattened into `Settings`
//! under the "HTTP/2" section, so the CLI flag, `FERROGATE_*` variable, config key and docs
//! derive from these declarations as for every other setting. Which versions are served
//! (`--http`) stays in settings.rs beside `--protocol`.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Http2Settings {
    /// Streams (requests) one HTTP/2 client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, value_name = "STREAMS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000), help_heading = "HTTP/2")]
    pub http2_max_concurrent_streams: u32,

    /// Largest HTTP/2 header list (names and values decoded, plus 32 bytes a field) a client
    /// may send; bigger is refused. Bounds HPACK bombs and CONTINUATION floods.
    #[arg(long, value_name = "BYTES", default_value_t = 65_536,
          value_parser = clap::value_parser!(u32).range(1024..=16_777_216), help_heading = "HTTP/2")]
    pub http2_max_header_list_size: u32,

    /// Request body bytes an HTTP/2 client may send on one stream ahead of the app reading
    /// them (SETTINGS_INITIAL_WINDOW_SIZE).
    #[arg(long, value_name = "BYTES", default_value_t = 262_144,
          value_parser = clap::value_parser!(u32).range(1024..=2_147_483_647), help_heading = "HTTP/2")]
    pub http2_initial_stream_window_size: u32,

    /// Request body bytes an HTTP/2 client may send on all its streams together ahead of the
    /// app reading them (the connection window).
    #[arg(long, value_name = "BYTES", default_value_t = 1_048_576,
          value_parser = clap::value_parser!(u32).range(65_535..=2_147_483_647), help_heading = "HTTP/2")]
    pub http2_initial_connection_window_size: u32,

    /// Largest HTTP/2 frame payload a client may send (SETTINGS_MAX_FRAME_SIZE, RFC 9113 §6.5.2).
    #[arg(long, value_name = "BYTES", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(16_384..=16_777_215), help_heading = "HTTP/2")]
    pub http2_max_frame_size: u32,
}
