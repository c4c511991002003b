//! The Prometheus text exposition (format 0.0.4) of the summed worker counters and the
//! master's own counts: names `ferrogate_<noun>_<unit>`, each with HELP and TYPE lines.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::table::{
    ConnectionRefusal, Counters, HandshakeFailure, Histogram, MetricsTable, BUCKETS_SECONDS,
    MAX_LISTENERS, METHODS, STATUS_CLASSES,
};

/// Why the master started a worker in place of another.
#[derive(Debug, Clone, Copy)]
pub enum RestartCause {
    /// It exited or was killed without being asked.
    Died,
    /// `--timeout`: it was aborted.
    Timeout,
    MaxRequests,
    Memory,
    /// SIGHUP (or --reload) replaced it.
    Reload,
    /// It stopped gracefully (exit 0) on a signal the master did not send: `ferrogate ctl
    /// kill PID`, or `kill -TERM` by hand. Not a crash, so not "died".
    Stopped,
    /// It could not load the app while other workers served; it is tried again.
    BootFailed,
}

const CAUSES: [&str; 7] = [
    "died",
    "timeout",
    "max_requests",
    "memory",
    "reload",
    "stopped",
    "boot_failed",
];

/// Counted in the master's memory: only the master replaces workers, and only it renders.
static RESTARTS: [AtomicU64; CAUSES.len()] = [const { AtomicU64::new(0) }; CAUSES.len()];

/// The master counts a worker replaced, by cause.
pub fn count_restart(cause: RestartCause) {
    RESTARTS[cause as usize].fetch_add(1, Ordering::Relaxed);
}

/// More families a scrape appends, from the layers this module must not know (Forward's
/// upstreams): each writes whole families (HELP, TYPE, samples) into the buffer.
pub type MoreFamilies = Box<dyn Fn(&mut String) + Send>;

/// What a scrape shows besides the counters: the listeners' names, in `--bind` order.
pub struct Labels {
    pub listeners: Vec<String>,
    pub more: Vec<MoreFamilies>,
    /// One flag per listener: whether it serves TLS. The TLS families are shown only when one
    /// does.
    pub tls: Vec<bool>,
}

/// Writes the whole exposition into `out` (cleared first; reused between scrapes).
pub fn render(table: &MetricsTable, labels: &Labels, out: &mut String) {
    out.clear();
    let slots: Vec<&Counters> = (0..table.capacity())
        .filter_map(|index| table.slot(index))
        .filter(|counters| counters.pid.load(Ordering::Acquire) != 0)
        .collect();
    let live: Vec<&Counters> = slots.iter().copied().filter(|c| is_alive(c)).collect();
    let sum = |field: fn(&Counters) -> &AtomicU64| -> u64 {
        slots.iter().map(|c| field(c).load(Ordering::Relaxed)).sum()
    };

    header(
        out,
        "ferrogate_requests_total",
        "counter",
        "Responses, by status class, method and listener.",
    );
    for class in 0..STATUS_CLASSES {
        for (method_index, method) in METHODS.iter().enumerate() {
            for listener in 0..MAX_LISTENERS {
                let count: u64 = slots
                    .iter()
                    .map(|c| c.requests[class][method_index][listener].load(Ordering::Relaxed))
                    .sum();
                if count > 0 {
                    let name = listener_name(labels, listener);
                    let _ = writeln!(
                        out,
                        "ferrogate_requests_total{{status=\"{}xx\",method=\"{method}\",listener=\"{name}\"}} {count}",
                        class + 1
                    );
                }
            }
        }
    }
    histogram(
        out,
        &slots,
        "ferrogate_request_duration_seconds",
        "Time from a request's head being read to its response's last byte.",
        |c| &c.duration,
    );
    histogram(
        out,
        &slots,
        "ferrogate_queue_time_seconds",
        "Time a request waited for a Python thread (with a trusted proxy's X-Request-Start).",
        |c| &c.queue_time,
    );
    let gauge_sum = |field: fn(&Counters) -> i64| -> i64 { live.iter().map(|c| field(c)).sum() };
    header(
        out,
        "ferrogate_requests_in_flight",
        "gauge",
        "Requests being answered.",
    );
    let _ = writeln!(
        out,
        "ferrogate_requests_in_flight {}",
        gauge_sum(|c| c.in_flight.load(Ordering::Relaxed)).max(0)
    );
    header(
        out,
        "ferrogate_requests_queued",
        "gauge",
        "Requests waiting for a Python thread (sampled 10 times a second).",
    );
    let _ = writeln!(
        out,
        "ferrogate_requests_queued {}",
        gauge_sum(|c| c.queued.load(Ordering::Relaxed) as i64)
    );
    header(
        out,
        "ferrogate_requests_shed_total",
        "counter",
        "Requests answered 503 by --max-queue or --max-queue-time.",
    );
    let _ = writeln!(out, "ferrogate_requests_shed_total {}", sum(|c| &c.shed));
    header(
        out,
        "ferrogate_python_threads",
        "gauge",
        "Python threads started, per worker.",
    );
    for counters in &live {
        let pid = counters.pid.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "ferrogate_python_threads{{worker=\"{pid}\"}} {}",
            counters.threads_started.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "ferrogate_python_threads_busy",
        "gauge",
        "Python threads running a request, per worker.",
    );
    for counters in &live {
        let pid = counters.pid.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "ferrogate_python_threads_busy{{worker=\"{pid}\"}} {}",
            counters.threads_busy.load(Ordering::Relaxed)
        );
    }
    header(
        out,
        "ferrogate_received_bytes_total",
        "counter",
        "Request body bytes, as Content-Length declared them.",
    );
    let _ = writeln!(
        out,
        "ferrogate_received_bytes_total {}",
        sum(|c| &c.bytes_in)
    );
    header(
        out,
        "ferrogate_sent_bytes_total",
        "counter",
        "Response body bytes sent.",
    );
    let _ = writeln!(out, "ferrogate_sent_bytes_total {}", sum(|c| &c.bytes_out));
    header(
        out,
        "ferrogate_connections_open",
        "gauge",
        "Client connections open.",
    );
    let _ = writeln!(
        out,
        "ferrogate_connections_open {}",
        gauge_sum(|c| c.connections_open.load(Ordering::Relaxed)).max(0)
    );
    header(
        out,
        "ferrogate_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(
        out,
        "ferrogate_connections_accepted_total {}",
        sum(|c| &c.connections_accepted)
    );
    header(
        out,
        "ferrogate_connections_refused_total",
        "counter",
        "Client connections ended before being served, by reason and listener: closed at \
         --max-connections to make room (max_connections), a failed TLS handshake \
         (tls_handshake), a bad PROXY preamble (proxy_preamble), a refused request head \
         (request).",
    );
    let every_listener = shown_listeners(labels, false);
    for (reason, label) in ConnectionRefusal::LABELS.iter().enumerate() {
        per_listener(
            out,
            &slots,
            &every_listener,
            |c| &c.connections_refused[reason],
            |out, listener| {
                let _ = write!(
                out,
                "ferrogate_connections_refused_total{{reason=\"{label}\",listener=\"{listener}\"}}"
            );
            },
        );
    }
    if labels.tls.iter().any(|tls| *tls) {
        render_tls(out, &slots, labels);
    }
    header(out, "ferrogate_workers", "gauge", "Worker processes alive.");
    let _ = writeln!(out, "ferrogate_workers {}", live.len());
    header(
        out,
        "ferrogate_worker_restarts_total",
        "counter",
        "Workers replaced, by cause.",
    );
    for (index, cause) in CAUSES.iter().enumerate() {
        let _ = writeln!(
            out,
            "ferrogate_worker_restarts_total{{cause=\"{cause}\"}} {}",
            RESTARTS[index].load(Ordering::Relaxed)
        );
    }
    for more in &labels.more {
        more(out);
    }
}

/// The handshake counters, by listener (TLS listeners only).
fn render_tls(out: &mut String, slots: &[&Counters], labels: &Labels) {
    header(
        out,
        "ferrogate_tls_handshakes_total",
        "counter",
        "TLS handshakes completed, by listener.",
    );
    let tls_listeners = shown_listeners(labels, true);
    per_listener(
        out,
        slots,
        &tls_listeners,
        |c| &c.tls_handshakes,
        |out, listener| {
            let _ = write!(
                out,
                "ferrogate_tls_handshakes_total{{listener=\"{listener}\"}}"
            );
        },
    );
    header(
        out,
        "ferrogate_tls_handshake_failures_total",
        "counter",
        "TLS handshakes failed, by reason (timeout, closed before a byte, not TLS, refused by \
         the TLS library) and listener.",
    );
    for (reason, label) in HandshakeFailure::LABELS.iter().enumerate() {
        per_listener(
            out,
            slots,
            &tls_listeners,
            |c| &c.tls_handshake_failures[reason],
            |out, listener| {
                let _ = write!(
                out,
                "ferrogate_tls_handshake_failures_total{{reason=\"{label}\",listener=\"{listener}\"}}"
            );
            },
        );
    }
}

/// The listeners a per-listener counter shows a sample for, with their names: every one (or
/// every TLS one), so that a counter still at 0 is shown and a rate over it is defined from
/// the first scrape.
fn shown_listeners(labels: &Labels, tls_only: bool) -> Vec<(usize, String)> {
    (0..labels.listeners.len().clamp(1, MAX_LISTENERS))
        .filter(|index| !tls_only || labels.tls.get(*index).copied().unwrap_or(true))
        .map(|index| (index, listener_name(labels, index)))
        .collect()
}

/// One sample per listener in `shown`; `name` writes the sample's name and labels.
fn per_listener(
    out: &mut String,
    slots: &[&Counters],
    shown: &[(usize, String)],
    field: impl Fn(&Counters) -> &[AtomicU64; MAX_LISTENERS],
    name: impl Fn(&mut String, &str),
) {
    for (index, listener) in shown {
        let count: u64 = slots
            .iter()
            .map(|c| field(c)[*index].load(Ordering::Relaxed))
            .sum();
        name(out, listener);
        let _ = writeln!(out, " {count}");
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    slots: &[&Counters],
    name: &str,
    help: &str,
    field: fn(&Counters) -> &Histogram,
) {
    header(out, name, "histogram", help);
    let mut cumulative = 0u64;
    for (index, bound) in BUCKETS_SECONDS.iter().enumerate() {
        cumulative += slots
            .iter()
            .map(|c| field(c).buckets[index].load(Ordering::Relaxed))
            .sum::<u64>();
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    cumulative += slots
        .iter()
        .map(|c| field(c).buckets[BUCKETS_SECONDS.len()].load(Ordering::Relaxed))
        .sum::<u64>();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let micros: u64 = slots
        .iter()
        .map(|c| field(c).sum_micros.load(Ordering::Relaxed))
        .sum();
    let _ = writeln!(out, "{name}_sum {}", micros as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {cumulative}");
}

fn listener_name(labels: &Labels, index: usize) -> String {
    match labels.listeners.get(index) {
        Some(name) if index < MAX_LISTENERS - 1 || labels.listeners.len() == MAX_LISTENERS => {
            name.replace(['"', '\\', '\n'], "_")
        }
        _ => "other".to_string(),
    }
}

/// Whether the slot's worker still runs (a dead worker's gauges mean nothing).
fn is_alive(counters: &Counters) -> bool {
    let pid = counters.pid.load(Ordering::Relaxed) as libc::pid_t;
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

#[cfg(test)]
mod tests {
    use super::super::table::ResponseFacts;
    use super::*;
    use std::time::Duration;

    #[test]
    fn renders_every_family_with_help_and_type() {
        let table = MetricsTable::new(2).unwrap();
        let worker = table.worker(0).unwrap();
        worker.response(&ResponseFacts {
            method: "GET",
            status: 200,
            listener: 0,
            body_bytes: 5,
            duration: Duration::from_millis(2),
            queue_time: None,
        });
        let labels = Labels {
            listeners: vec!["127.0.0.1:8000".into()],
            more: vec![Box::new(|out: &mut String| {
                out.push_str("extra_family 1\n")
            })],
            tls: vec![false],
        };
        let mut out = String::new();
        render(&table, &labels, &mut out);
        assert!(out.contains(
            "ferrogate_requests_total{status=\"2xx\",method=\"GET\",listener=\"127.0.0.1:8000\"} 1\n"
        ), "{out}");
        assert!(out.contains("ferrogate_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(out.contains("ferrogate_request_duration_seconds_count 1\n"));
        assert!(out.contains("ferrogate_queue_time_seconds_count 0\n"));
        assert!(out.contains("ferrogate_workers 1\n"));
        assert!(out.ends_with("extra_family 1\n"), "{out}");
        for line in out.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(out.contains(&format!("# HELP {name} ")), "{name}");
        }
    }
}
