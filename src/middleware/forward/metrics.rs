//! The upstreams' metrics for the master's `/metrics`: the master imports no app, so it finds
//! its workers' Forward tables by name in /dev/shm (`<owner>-forward-*`, named in
//! python/middleware/forward.rs) and reads the labels and counts each holds (health_table.rs).
//! Runs on the metrics thread at each scrape: no log line (the master forks while it runs),
//! a few syscalls and allocations per table (malloc's locks are fork-safe in glibc).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::health_table::HealthTable;
use crate::middleware::rate_limit::owned_tables;

/// A family: name, type, help, and the row's value.
type Family = (&'static str, &'static str, &'static str, fn(&Row) -> u64);

/// One upstream's row.
struct Row {
    forward: String,
    upstream: String,
    up: bool,
    requests: u64,
    failures: u64,
}

/// Appends `ferrogate_upstream_up`, `_requests_total` and `_failures_total` for the tables
/// of master `owner` to `out` (nothing when it has none).
pub fn render_upstreams(owner: u32, out: &mut String) {
    let rows = rows(owner);
    if rows.is_empty() {
        return;
    }
    let families: [Family; 3] = [
        (
            "ferrogate_upstream_up",
            "gauge",
            "Whether a Forward upstream is in rotation (1) or out after failures (0).",
            |row| u64::from(row.up),
        ),
        (
            "ferrogate_upstream_requests_total",
            "counter",
            "Requests sent to a Forward upstream (a retry counts at each upstream tried).",
            |row| row.requests,
        ),
        (
            "ferrogate_upstream_failures_total",
            "counter",
            "Requests to a Forward upstream that got no response head (refused, reset, TLS \
             refused, timed out).",
            |row| row.failures,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for row in &rows {
            let _ = writeln!(
                out,
                "{name}{{forward=\"{}\",upstream=\"{}\"}} {}",
                row.forward,
                row.upstream,
                value(row)
            );
        }
    }
}

fn rows(owner: u32) -> Vec<Row> {
    let Ok(mut tables) = owned_tables(&owner.to_string()) else {
        return Vec::new();
    };
    tables.retain(|(rest, _)| rest.starts_with("-forward-"));
    // By the layer's number, as the app made them: a stable order between scrapes.
    tables.sort_by_key(|(rest, _)| {
        let number = rest["-forward-".len()..]
            .split('-')
            .next()
            .unwrap_or_default();
        (number.parse::<u32>().unwrap_or(u32::MAX), rest.clone())
    });
    let mut rows = Vec::new();
    for (_, path) in tables {
        let Ok(table) = HealthTable::open_existing(&path) else {
            continue;
        };
        // Opened only by workers that are gone: a reload changed this layer's upstreams, and
        // its rows would stay as they last were for ever (an alert on `up == 0` with them).
        let openers = table.openers();
        if !openers.is_empty() && !openers.iter().any(|&pid| is_child_of(pid, owner)) {
            continue;
        }
        let labels = table.labels();
        let mut lines = labels.split('\n');
        let forward = match lines.next() {
            Some("") | None => "/",
            Some(prefix) => prefix,
        };
        let upstreams: Vec<&str> = lines.collect();
        // A table not labelled yet, or read while a worker rewrote its labels.
        if upstreams.len() != table.count() {
            continue;
        }
        for (index, upstream) in upstreams.iter().enumerate() {
            let state = table.state(index);
            rows.push(Row {
                forward: label_value(forward),
                upstream: label_value(upstream),
                up: state.is_up(),
                requests: state.requests.load(Ordering::Relaxed),
                failures: state.failures.load(Ordering::Relaxed),
            });
        }
    }
    rows
}

/// Whether `pid` is a live process whose parent is `owner` (a pid reused by another program
/// is not): the ppid in /proc/<pid>/stat, after the command name's closing parenthesis.
fn is_child_of(pid: u32, owner: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    // " S 1234 ...": the state, then the ppid; a zombie is gone, only not reaped yet.
    let mut fields = after_name.split_whitespace();
    let (state, ppid) = (fields.next(), fields.next());
    state != Some("Z") && ppid == Some(owner.to_string().as_str())
}

/// Prometheus' label value escapes: backslash, double quote and new line.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::{Forward, ForwardOptions};
    use super::*;
    use crate::middleware::rate_limit::TableName;

    #[test]
    fn a_process_is_the_child_of_its_parent_only() {
        let me = std::process::id();
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        assert!(is_child_of(me, parent));
        assert!(!is_child_of(me, me));
        assert!(!is_child_of(u32::MAX, parent), "no such process");
    }

    #[test]
    fn renders_the_tables_of_the_owner_with_their_labels() {
        // An owner no master has: pids stay below 2^22.
        let owner = 4_000_000_000 + std::process::id() % 1000;
        let name = TableName::new(&format!("{owner}-forward-0-abc"));
        let upstreams = ["http://127.0.0.1:1".to_owned(), "http://b:2".to_owned()];
        let forward = Forward::new(&upstreams, ForwardOptions::default(), Some(&name)).unwrap();
        forward.mounted_at("/search");
        forward.health.count_request(0);
        forward.health.count_request(0);
        forward.health.count_failure(0);
        for _ in 0..3 {
            forward.health.failed(1);
        }
        let mut out = String::new();
        render_upstreams(owner, &mut out);
        let _ = std::fs::remove_file(name.path());
        for line in [
            "ferrogate_upstream_up{forward=\"/search\",upstream=\"http://127.0.0.1:1\"} 1\n",
            "ferrogate_upstream_up{forward=\"/search\",upstream=\"http://b:2\"} 0\n",
            "ferrogate_upstream_requests_total{forward=\"/search\",upstream=\"http://127.0.0.1:1\"} 2\n",
            "ferrogate_upstream_failures_total{forward=\"/search\",upstream=\"http://127.0.0.1:1\"} 1\n",
            "# TYPE ferrogate_upstream_up gauge\n",
        ] {
            assert!(out.contains(line), "{line} in\n{out}");
        }
    }

    #[test]
    fn an_owner_without_tables_renders_nothing() {
        let mut out = String::new();
        render_upstreams(4_100_000_000, &mut out);
        assert_eq!(out, "");
    }
}
