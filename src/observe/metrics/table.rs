//! The workers' counters: one block of atomics per worker slot, in an anonymous shared
//! mapping the master makes before it forks anything (as the heartbeat slots), indexed by
//! the worker's heartbeat slot. A worker adds to its own block on each response with relaxed
//! atomic adds (no syscall, no lock); the master's `/metrics` endpoint sums the blocks.
//!
//! A slot's counters are never reset, so a replacement worker keeps adding to what the one
//! before it counted and the sums only grow, as Prometheus counters must. Its gauges (open
//! connections, requests in flight, threads) are reset by each worker as it starts and read
//! only for slots whose worker is alive.

use std::io;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::shared_slots::{SharedSlots, ZeroedAtomics};

/// Methods counted by name; any other is "other".
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// Status classes: 1xx to 5xx.
pub const STATUS_CLASSES: usize = 5;

/// Listeners counted apart (in `--bind` order); the rest share the last.
pub const MAX_LISTENERS: usize = 8;

/// Upper bounds of the duration histograms' buckets, in seconds (Prometheus' defaults); the
/// last bucket (+Inf) is implicit.
pub const BUCKETS_SECONDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why the server ended a connection before serving it, as `ferrogate_connections_refused_total`
/// labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// Closed at `--max-connections` (no request running) to make room for a new client.
    MaxConnections,
    /// Its TLS handshake failed, timed out, or was plain HTTP on a TLS port.
    TlsHandshake,
    /// Its PROXY protocol preamble was missing, wrong, or from an untrusted peer.
    ProxyPreamble,
    /// The HTTP layer refused a request head (400, 408, 413, 414, 431) and closed it.
    Request,
}

impl ConnectionRefusal {
    pub const LABELS: [&'static str; 4] = [
        "max_connections",
        "tls_handshake",
        "proxy_preamble",
        "request",
    ];
}

/// Why a TLS handshake failed, as `ferrogate_tls_handshake_failures_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not done within `--header-timeout`.
    Timeout,
    /// The client closed before sending a byte (a port check, a TCP health probe).
    Closed,
    /// The client spoke plain HTTP (answered 400) or something that is not TLS.
    NotTls,
    /// rustls refused it: no shared version or cipher suite, a bad client certificate...
    Protocol,
}

impl HandshakeFailure {
    pub const LABELS: [&'static str; 4] = ["timeout", "closed", "not_tls", "protocol"];
}

/// A histogram of durations: counts per bucket (not cumulative; +Inf last), sum in µs.
#[repr(C)]
pub struct Histogram {
    pub buckets: [AtomicU64; BUCKETS_SECONDS.len() + 1],
    pub sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let bucket = BUCKETS_SECONDS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS_SECONDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// One worker slot's counters and gauges. `repr(C)`, atomics only: zeroed memory is valid.
#[repr(C, align(64))]
pub struct Counters {
    /// The pid of the worker now in the slot (0: never used).
    pub pid: AtomicU32,
    /// Responses by status class, method and listener.
    pub requests: [[[AtomicU64; MAX_LISTENERS]; METHODS.len()]; STATUS_CLASSES],
    pub duration: Histogram,
    /// The wait for a Python thread, of the requests a Python thread took.
    pub queue_time: Histogram,
    /// Requests answered 503 by `--max-queue`/`--max-queue-time`.
    pub shed: AtomicU64,
    /// Request body bytes as read off the connection (decoded: without chunked framing),
    /// and response body bytes sent.
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Connections ended before being served, by `ConnectionRefusal` and listener.
    pub connections_refused: [[AtomicU64; MAX_LISTENERS]; ConnectionRefusal::LABELS.len()],
    /// TLS handshakes completed, by listener.
    pub tls_handshakes: [AtomicU64; MAX_LISTENERS],
    /// TLS handshakes failed, by `HandshakeFailure` and listener.
    pub tls_handshake_failures: [[AtomicU64; MAX_LISTENERS]; HandshakeFailure::LABELS.len()],
    // Gauges, reset when a worker takes the slot.
    pub connections_open: AtomicI64,
    pub in_flight: AtomicI64,
    /// Sampled 10×/s by the worker's report task: requests waiting for a Python thread, and
    /// the Python threads started and busy.
    pub queued: AtomicU64,
    pub threads_started: AtomicU64,
    pub threads_busy: AtomicU64,
}

// SAFETY: `repr(C)`, atomics only: zeroed bytes are a slot with nothing counted.
unsafe impl ZeroedAtomics for Counters {}

/// Every worker slot's counters: made by the master before it forks, shared by the workers.
#[derive(Clone)]
pub struct MetricsTable {
    mapping: Arc<SharedSlots<Counters>>,
}

impl MetricsTable {
    /// Maps `capacity` slots (the heartbeat's capacity: a worker's slot index is its block).
    pub fn new(capacity: usize) -> io::Result<MetricsTable> {
        Ok(MetricsTable {
            mapping: Arc::new(SharedSlots::new(capacity)?),
        })
    }

    pub fn capacity(&self) -> usize {
        self.mapping.capacity()
    }

    /// The counters of slot `index`; `None` beyond the table.
    pub fn slot(&self, index: usize) -> Option<&Counters> {
        self.mapping.get(index)
    }

    /// Requests answered and Python threads busy of the worker `pid`, if it has a slot.
    pub fn counts_of(&self, pid: u32) -> Option<(u64, u64)> {
        let counters = (0..self.capacity())
            .filter_map(|index| self.slot(index))
            .find(|counters| counters.pid.load(Ordering::Acquire) == pid)?;
        let requests = counters
            .requests
            .iter()
            .flatten()
            .flatten()
            .map(|count| count.load(Ordering::Relaxed))
            .sum();
        Some((requests, counters.threads_busy.load(Ordering::Relaxed)))
    }

    /// The handle a worker in slot `index` counts through; resets the slot's gauges.
    pub fn worker(&self, index: usize) -> Option<WorkerMetrics> {
        let counters = self.slot(index)?;
        for gauge in [&counters.connections_open, &counters.in_flight] {
            gauge.store(0, Ordering::Relaxed);
        }
        for gauge in [
            &counters.queued,
            &counters.threads_started,
            &counters.threads_busy,
        ] {
            gauge.store(0, Ordering::Relaxed);
        }
        counters.pid.store(std::process::id(), Ordering::Release);
        Some(WorkerMetrics {
            table: self.clone(),
            index,
            shed_before: counters.shed.load(Ordering::Relaxed),
        })
    }
}

/// One response, as the counters take it.
pub struct ResponseFacts<'a> {
    pub method: &'a str,
    pub status: u16,
    /// The index of the listener it arrived on.
    pub listener: usize,
    pub body_bytes: u64,
    pub duration: Duration,
    /// `None` when no Python thread answered it.
    pub queue_time: Option<Duration>,
}

/// A worker's own counters.
#[derive(Clone)]
pub struct WorkerMetrics {
    table: MetricsTable,
    index: usize,
    /// What the workers before this one in the slot shed: the pool counts from 0.
    shed_before: u64,
}

impl WorkerMetrics {
    fn counters(&self) -> &Counters {
        self.table
            .slot(self.index)
            .expect("invariant: a worker's slot is within the table")
    }

    pub fn response(&self, facts: &ResponseFacts<'_>) {
        let counters = self.counters();
        let class = usize::from(facts.status / 100).clamp(1, STATUS_CLASSES) - 1;
        let method = METHODS
            .iter()
            .position(|m| *m == facts.method)
            .unwrap_or(METHODS.len() - 1);
        let listener = facts.listener.min(MAX_LISTENERS - 1);
        counters.requests[class][method][listener].fetch_add(1, Ordering::Relaxed);
        counters.duration.observe(facts.duration);
        if let Some(queued) = facts.queue_time {
            counters.queue_time.observe(queued);
        }
        counters
            .bytes_out
            .fetch_add(facts.body_bytes, Ordering::Relaxed);
    }

    /// A request the HTTP layer refused (400, 408, 413, 431...) before any handler saw it:
    /// counted by status and listener, its method as "other".
    pub fn refused(&self, status: u16, listener: usize) {
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1;
        let listener = listener.min(MAX_LISTENERS - 1);
        self.counters().requests[class][METHODS.len() - 1][listener]
            .fetch_add(1, Ordering::Relaxed);
    }

    /// A request is in flight until the guard drops.
    pub fn request(&self) -> InFlightRequest<'_> {
        self.counters().in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightRequest(self)
    }

    /// `bytes` of a request body were read off the connection. Counted as they arrive (not
    /// as Content-Length declares them): a chunked upload counts, an aborted one counts only
    /// what came.
    pub fn body_received(&self, bytes: u64) {
        self.counters().bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A connection on `listener` was ended before being served, for `why`.
    pub fn connection_refused(&self, why: ConnectionRefusal, listener: usize) {
        let listener = listener.min(MAX_LISTENERS - 1);
        self.counters().connections_refused[why as usize][listener].fetch_add(1, Ordering::Relaxed);
    }

    /// A TLS handshake on `listener` completed (`Ok`) or failed.
    pub fn tls_handshake(&self, outcome: Result<(), HandshakeFailure>, listener: usize) {
        let listener = listener.min(MAX_LISTENERS - 1);
        let counters = self.counters();
        match outcome {
            Ok(()) => counters.tls_handshakes[listener].fetch_add(1, Ordering::Relaxed),
            Err(why) => counters.tls_handshake_failures[why as usize][listener]
                .fetch_add(1, Ordering::Relaxed),
        };
    }

    pub fn connection_opened(&self) {
        let counters = self.counters();
        counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        counters.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.counters()
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// The Python threads' state, as the report task samples it.
    pub fn threads(&self, sample: &ThreadsSample) {
        let counters = self.counters();
        counters.queued.store(sample.queued, Ordering::Relaxed);
        counters
            .threads_started
            .store(sample.started, Ordering::Relaxed);
        counters.threads_busy.store(sample.busy, Ordering::Relaxed);
        counters
            .shed
            .store(self.shed_before + sample.shed, Ordering::Relaxed);
    }
}

/// Counts a request in flight until dropped, however the request ends.
pub struct InFlightRequest<'a>(&'a WorkerMetrics);

impl Drop for InFlightRequest<'_> {
    fn drop(&mut self) {
        self.0.counters().in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the pool says of its threads, sampled.
pub struct ThreadsSample {
    pub queued: u64,
    pub started: u64,
    pub busy: u64,
    /// Requests shed so far by this worker.
    pub shed: u64,
}

impl std::fmt::Debug for WorkerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WorkerMetrics({})", self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_lands_in_its_class_method_listener_and_buckets() {
        let table = MetricsTable::new(2).unwrap();
        let worker = table.worker(1).unwrap();
        worker.response(&ResponseFacts {
            method: "BREW",
            status: 503,
            listener: 20,
            body_bytes: 7,
            duration: Duration::from_millis(30),
            queue_time: Some(Duration::from_micros(100)),
        });
        let counters = table.slot(1).unwrap();
        let other = METHODS.len() - 1;
        assert_eq!(
            counters.requests[4][other][MAX_LISTENERS - 1].load(Ordering::Relaxed),
            1
        );
        // 0.03 s: the 0.05 bucket; 100 µs: the first.
        assert_eq!(counters.duration.buckets[3].load(Ordering::Relaxed), 1);
        assert_eq!(counters.queue_time.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(counters.duration.sum_micros.load(Ordering::Relaxed), 30_000);
        assert_eq!(counters.bytes_out.load(Ordering::Relaxed), 7);
        assert_eq!(counters.pid.load(Ordering::Relaxed), std::process::id());
        assert!(table.slot(2).is_none() && table.worker(2).is_none());
    }

    #[test]
    fn a_new_worker_resets_the_gauges_but_not_the_counters() {
        let table = MetricsTable::new(1).unwrap();
        let first = table.worker(0).unwrap();
        first.connection_opened();
        std::mem::forget(first.request());
        first.body_received(10);
        let second = table.worker(0).unwrap();
        second.connection_opened();
        let counters = table.slot(0).unwrap();
        assert_eq!(counters.connections_open.load(Ordering::Relaxed), 1);
        assert_eq!(counters.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(counters.connections_accepted.load(Ordering::Relaxed), 2);
        assert_eq!(counters.bytes_in.load(Ordering::Relaxed), 10);
    }
}
