//! Counters for `GET /metrics`, in Prometheus' text format: requests by route and status, their
//! latency as a histogram per route, connections, events and reloads.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Latency bucket bounds, seconds.
const BUCKETS: [f64; 11] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Latency {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    total: u64,
}

/// Everything counted since the server started.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Latency>>,
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections turned away (over `--max-connections` or `--max-per-address`).
    pub refused: AtomicU64,
    /// Events stored.
    pub events_accepted: AtomicU64,
    /// Events refused.
    pub events_rejected: AtomicU64,
    /// Times the engine was loaded again after the catalogue changed.
    pub reloads: AtomicU64,
    /// Times the feed was learned again.
    pub retrains: AtomicU64,
    /// Answers served from memory.
    pub cache_hits: AtomicU64,
    /// Answers computed (and kept).
    pub cache_misses: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &'static str, status: u16, took: Duration) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route, status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let l = l.entry(route).or_default();
            let s = took.as_secs_f64();
            for (i, b) in BUCKETS.iter().enumerate() {
                if s <= *b {
                    l.counts[i] += 1;
                }
            }
            l.sum += s;
            l.total += 1;
        }
    }

    /// The text Prometheus scrapes; `products` and `ready` describe the engine now.
    pub fn render(&self, products: usize, ready: bool) -> String {
        let mut o = String::new();
        let c = |o: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        c(
            &mut o,
            "lookbook_http_requests_total",
            "Requests answered, by route and status.",
            "counter",
        );
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(
                    o,
                    "lookbook_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        c(
            &mut o,
            "lookbook_http_request_seconds",
            "Time to answer, by route.",
            "histogram",
        );
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (b, n) in BUCKETS.iter().zip(h.counts) {
                    let _ = writeln!(
                        o,
                        "lookbook_http_request_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {n}"
                    );
                }
                let _ = writeln!(
                    o,
                    "lookbook_http_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.total
                );
                let _ = writeln!(o, "lookbook_http_request_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(
                    o,
                    "lookbook_http_request_seconds_count{{route=\"{route}\"}} {}",
                    h.total
                );
            }
        }
        let g = |o: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(
            &mut o,
            "lookbook_http_connections_open",
            "Connections open now.",
            "gauge",
            n(&self.open),
        );
        g(
            &mut o,
            "lookbook_http_connections_refused_total",
            "Connections turned away at the limits.",
            "counter",
            n(&self.refused),
        );
        g(
            &mut o,
            "lookbook_http_events_accepted_total",
            "Events stored.",
            "counter",
            n(&self.events_accepted),
        );
        g(
            &mut o,
            "lookbook_http_events_rejected_total",
            "Events refused.",
            "counter",
            n(&self.events_rejected),
        );
        g(
            &mut o,
            "lookbook_http_reloads_total",
            "Engine loads after the catalogue changed.",
            "counter",
            n(&self.reloads),
        );
        g(
            &mut o,
            "lookbook_http_retrains_total",
            "Times the feed was learned again.",
            "counter",
            n(&self.retrains),
        );
        g(
            &mut o,
            "lookbook_products",
            "Products the engine ranks.",
            "gauge",
            products as u64,
        );
        g(
            &mut o,
            "lookbook_engine_ready",
            "1 when the engine can rank (the catalogue is embedded).",
            "gauge",
            u64::from(ready),
        );
        if let Some(mib) = lookbook::memory::rss_mib() {
            let bytes = (mib * 1_048_576.0) as u64;
            g(
                &mut o,
                "lookbook_resident_bytes",
                "Resident memory of the process.",
                "gauge",
                bytes,
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.record("similar", 200, Duration::from_micros(700));
        m.record("similar", 200, Duration::from_millis(20));
        m.record("similar", 404, Duration::from_micros(100));
        let t = m.render(5, true);
        assert!(
            t.contains("lookbook_http_requests_total{route=\"similar\",status=\"200\"} 2"),
            "{t}"
        );
        assert!(t.contains("lookbook_http_requests_total{route=\"similar\",status=\"404\"} 1"));
        assert!(t.contains("lookbook_http_request_seconds_bucket{route=\"similar\",le=\"0.0005\"} 1"));
        assert!(t.contains("lookbook_http_request_seconds_bucket{route=\"similar\",le=\"0.001\"} 2"));
        assert!(t.contains("lookbook_http_request_seconds_bucket{route=\"similar\",le=\"0.025\"} 3"));
        assert!(t.contains("lookbook_http_request_seconds_count{route=\"similar\"} 3"));
        assert!(t.contains("lookbook_products 5"));
    }
}
