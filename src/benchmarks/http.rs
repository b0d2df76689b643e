//! `lookbook bench http`: `lookbook http` under a real load generator (`wrk`, Debian's) on
//! loopback, on a synthetic shop of 5 x 10^4 products x 2048 with 10^5 purchases: p50 and p99
//! latency and requests a second for look-alikes, feeds and events, events stored a second,
//! and the server's resident memory sampled every second over a longer mixed run.
//!
//! Load generator and server share the machine's cores, as they would on one box; the report
//! says how many there were.

use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::oneshot::spawn;
use lookbook::synthetic::write_synthetic_history;

/// What one run measured.
#[derive(Debug, Serialize)]
pub struct HttpBench {
    /// Products (synthetic, 2048-d).
    pub products: usize,
    /// Purchases in the history.
    pub events: usize,
    /// Connections the load generator held open (but in the one-connection rows).
    pub connections: usize,
    /// CPU cores of the machine (server and load generator share them).
    pub cores: usize,
    /// One row per route.
    pub routes: Vec<RouteLoad>,
    /// Events stored a second during the events run (from the server's own count).
    pub events_per_s: f64,
    /// Resident memory over the mixed run, MiB: at its start, its end and the most.
    pub memory_mib: MemoryTrace,
}

/// One route under load.
#[derive(Debug, Serialize)]
pub struct RouteLoad {
    /// `similar` (every product alike), `similar, 1,000 products`, `feed`, the same with one
    /// connection, `events` or `mixed`.
    pub route: String,
    /// Seconds of load.
    pub seconds: u64,
    /// Requests answered a second.
    pub requests_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Answers other than 2xx (wrk's count), and socket errors.
    pub errors: u64,
}

/// The server's memory over a run.
#[derive(Debug, Serialize)]
pub struct MemoryTrace {
    /// At the start of the run.
    pub start: f64,
    /// At its end.
    pub end: f64,
    /// The most seen.
    pub max: f64,
    /// Every sample, one a second.
    pub samples: Vec<f64>,
}

const READ_KEY: &str = "bench-read-key-0123456789";
const WRITE_KEY: &str = "bench-write-key-0123456789";

/// Runs the benchmark: `seconds` of load per route and four times that for the memory run
/// (`quick`: 10^4 products, 5 s).
pub fn run(quick: bool, seconds: u64, connections: usize) -> Result<HttpBench> {
    if Command::new("wrk").arg("--version").output().is_err() {
        bail!("`bench http` needs the load generator wrk on PATH (Debian: apt-get install wrk)");
    }
    let products = if quick { 10_000 } else { 50_000 };
    let seconds = if quick { seconds.min(5) } else { seconds };
    let dir = super::temp_dir("http")?;
    let r = measure(&dir, products, seconds, connections);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn measure(dir: &Path, products: usize, seconds: u64, connections: usize) -> Result<HttpBench> {
    let db = dir.join("catalog.db");
    let size = format!("{products},2048");
    spawn(&db, &["bench", "write-synthetic", size.as_str()])?;
    let shoppers = products;
    let csv = dir.join("transactions.csv");
    let events = write_synthetic_history(&csv, products, shoppers, products * 2, 11)?;
    let csv_arg = csv.to_string_lossy().into_owned();
    spawn(&db, &["import", "--interactions", csv_arg.as_str()])?;
    spawn(&db, &["train", "--feed"])?;
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("read {READ_KEY}\nwrite {WRITE_KEY}\n"))?;

    let mut server = Server::start(&db, &keys, connections)?;
    let base = format!("http://127.0.0.1:{}", server.port);
    let script = |name: &str, body: String| -> Result<std::path::PathBuf> {
        let p = dir.join(format!("{name}.lua"));
        std::fs::write(&p, body)?;
        Ok(p)
    };
    let get = |path: &str, n: usize, key: &str| {
        format!(
            "math.randomseed(7)\nrequest = function()\n  local i = math.random(1, {n})\n  return wrk.format(\"GET\", {path}, {{[\"Authorization\"] = \"Bearer {key}\"}})\nend\n"
        )
    };
    let similar = script(
        "similar",
        get("\"/v1/products/\" .. i .. \"/similar?k=10\"", products, READ_KEY),
    )?;
    // Product pages are not visited evenly: the thousand most visited, whose answers the
    // server keeps (--cache-entries), beside every product alike (mostly computed).
    let hot = script(
        "similar_hot",
        get("\"/v1/products/\" .. i .. \"/similar?k=10\"", 1000, READ_KEY),
    )?;
    let feed = script(
        "feed",
        get("\"/v1/users/shopper\" .. (i - 1) .. \"/feed?k=12\"", shoppers, READ_KEY),
    )?;
    // Ten events a request, as a site's batching sends them.
    let events_lua = script(
        "events",
        format!(
            "math.randomseed(9)\nrequest = function()\n  local t = {{}}\n  for j = 1, 10 do\n    t[j] = string.format('{{\"user\":\"web%d\",\"product\":\"%d\",\"kind\":\"view\"}}', math.random(1, 5000), math.random(1, {products}))\n  end\n  return wrk.format(\"POST\", \"/v1/events\", {{[\"Authorization\"] = \"Bearer {WRITE_KEY}\", [\"Content-Type\"] = \"application/json\"}}, \"[\" .. table.concat(t, \",\") .. \"]\")\nend\n"
        ),
    )?;
    let mixed = script(
        "mixed",
        format!(
            "math.randomseed(11)\nrequest = function()\n  local i = math.random(1, {products})\n  if math.random() < 0.5 then\n    return wrk.format(\"GET\", \"/v1/products/\" .. i .. \"/similar?k=10\", {{[\"Authorization\"] = \"Bearer {READ_KEY}\"}})\n  end\n  return wrk.format(\"GET\", \"/v1/users/shopper\" .. (i % {shoppers}) .. \"/feed?k=12\", {{[\"Authorization\"] = \"Bearer {READ_KEY}\"}})\nend\n"
        ),
    )?;

    // A short warm-up, so page cache and lazily built state are not measured.
    wrk(&base, &similar, 2, connections)?;
    let mut routes = vec![
        wrk(&base, &similar, seconds, connections)?.named("similar"),
        wrk(&base, &hot, seconds, connections)?.named("similar, 1,000 products"),
        wrk(&base, &feed, seconds, connections)?.named("feed"),
    ];
    // One connection: the time a request itself takes, without waiting behind others.
    routes.push(wrk(&base, &similar, seconds / 2 + 1, 1)?.named("similar, 1 connection"));
    routes.push(wrk(&base, &feed, seconds / 2 + 1, 1)?.named("feed, 1 connection"));
    let before = server.events_accepted(&base)?;
    let t = Instant::now();
    routes.push(wrk(&base, &events_lua, seconds, connections)?.named("events"));
    let events_per_s = (server.events_accepted(&base)? - before) as f64 / t.elapsed().as_secs_f64();

    // Memory over a longer mixed run, sampled once a second beside it.
    let pid = server.child.id();
    let long = seconds * 4;
    let sampler = std::thread::spawn(move || {
        let mut s = Vec::new();
        let end = Instant::now() + Duration::from_secs(long);
        while Instant::now() < end {
            if let Some(m) = lookbook::memory::status_mib(Some(pid), "VmRSS") {
                s.push(m);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        s
    });
    routes.push(wrk(&base, &mixed, long, connections)?.named("mixed"));
    let samples = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the memory sampler stopped"))?;
    server.stop();
    let memory_mib = MemoryTrace {
        start: samples.first().copied().unwrap_or(0.0),
        end: samples.last().copied().unwrap_or(0.0),
        max: samples.iter().copied().fold(0.0, f64::max),
        samples,
    };
    Ok(HttpBench {
        products,
        events,
        connections,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        routes,
        events_per_s,
        memory_mib,
    })
}

impl RouteLoad {
    fn named(mut self, route: &str) -> Self {
        self.route = route.to_string();
        self
    }
}

/// Runs wrk with a script and reads its summary.
fn wrk(base: &str, script: &Path, seconds: u64, connections: usize) -> Result<RouteLoad> {
    let threads = connections.clamp(1, 2).to_string();
    let out = Command::new("wrk")
        .args([
            "-t",
            threads.as_str(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(base)
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("wrk failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text, seconds).with_context(|| format!("reading wrk's report:\n{text}"))
}

/// The figures of wrk's `--latency` report.
fn parse_wrk(text: &str, seconds: u64) -> Result<RouteLoad> {
    let ms = |v: &str| -> Option<f64> {
        let (n, unit) = v.trim().split_at(v.trim().find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1e3,
            "ms" => n,
            "s" => n * 1e3,
            "m" => n * 60e3,
            _ => return None,
        })
    };
    let mut r = RouteLoad {
        route: String::new(),
        seconds,
        requests_per_s: 0.0,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
    };
    for line in text.lines().map(str::trim) {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["50%", v] => r.p50_ms = ms(v).context("p50")?,
            ["99%", v] => r.p99_ms = ms(v).context("p99")?,
            ["Requests/sec:", v] => r.requests_per_s = v.parse()?,
            ["Non-2xx", "or", "3xx", "responses:", n] => r.errors += n.parse::<u64>()?,
            ["Socket", "errors:", rest @ ..] => {
                r.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    if r.p50_ms.is_nan() || r.requests_per_s == 0.0 {
        bail!("no latency distribution or rate in it");
    }
    Ok(r)
}

/// `lookbook http` on the benchmark's catalogue.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(db: &Path, keys: &Path, connections: usize) -> Result<Self> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--db")
            .arg(db)
            .args([
                "http",
                "--listen",
                "127.0.0.1:0",
                "--rate",
                "0",
                "--retrain-minutes",
                "0",
            ])
            .args(["--max-connections", &(connections * 2).to_string()])
            .args(["--max-per-address", &(connections * 2).to_string()])
            .arg("--keys")
            .arg(keys)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting lookbook http")?;
        let stderr = child.stderr.take().context("the server's log")?;
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        break rest.trim().rsplit(':').next().unwrap_or("").parse::<u16>()?;
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("lookbook http did not start");
                }
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Server { child, port })
    }

    /// The server's count of events stored, from `/metrics`.
    fn events_accepted(&self, base: &str) -> Result<u64> {
        let body = ureq::get(&format!("{base}/metrics"))
            .header("Authorization", &format!("Bearer {READ_KEY}"))
            .call()?
            .body_mut()
            .read_to_string()?;
        body.lines()
            .find_map(|l| l.strip_prefix("lookbook_http_events_accepted_total "))
            .and_then(|v| v.trim().parse().ok())
            .context("no events count in /metrics")
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrks_report() {
        let text = "Running 2s test @ http://127.0.0.1:1\n  2 threads and 64 connections\n  Latency Distribution\n     50%    1.52ms\n     75%    2.01ms\n     90%    3.00ms\n     99%   12.40ms\n  4000 requests in 2.00s, 1.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\nRequests/sec:   1999.50\nTransfer/sec:    500.00KB\n";
        let r = parse_wrk(text, 2).unwrap();
        assert_eq!(r.p50_ms, 1.52);
        assert_eq!(r.p99_ms, 12.4);
        assert_eq!(r.requests_per_s, 1999.5);
        assert_eq!(r.errors, 8);
        assert!(parse_wrk("nothing", 2).is_err());
        let us = parse_wrk("50% 900.00us\n99% 1.20s\nRequests/sec: 10\n", 1).unwrap();
        assert_eq!(us.p50_ms, 0.9);
        assert_eq!(us.p99_ms, 1200.0);
    }
}
