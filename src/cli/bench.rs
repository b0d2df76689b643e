//! `lookbook bench`: the default run (query and feed latency, app start-up, memory) and its
//! modes as subcommands, each printed as a table or JSON.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::out::{out, outln};
use super::table::render;
use crate::benchmarks::{self, postgres, serve};

/// Flags of `bench`; without a mode it runs the default benchmarks on --db.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A mode instead of the default run.
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Smaller sizes, for a quick look.
    #[arg(long, global = true)]
    pub quick: bool,
    /// Also time embedding on this catalogue's photos (needs weights).
    #[arg(long)]
    pub embed: bool,
    /// JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The benchmarks other than the default run.
#[derive(clap::Subcommand, Debug)]
pub enum Mode {
    /// `similar` and `recommend` as one-shot processes on catalogues of 5 x 10^4 x 2048 and
    /// 10^6 x 256 that it writes (with --quick, 10^4 x 2048), then `similar ID` and `similar
    /// --image PHOTO` on --db if it is embedded.
    OneShot,
    /// The feed from a shop's history at 10^6 purchases, 10^5 shoppers and 5 x 10^4 products
    /// (with --quick, a tenth): import, `train --feed` (time, peak memory), one-shot
    /// `recommend` and a like's re-rank, each beside the one-vector feed of before.
    Feed,
    /// Load `lookbook serve` with SSH clients (memory, key-to-frame latency, likes), on a copy
    /// of --db, or on --products synthetic products.
    Serve {
        /// Connections at once.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Serve this many synthetic products instead of a copy of --db.
        #[arg(long)]
        products: Option<usize>,
        /// Seconds of key presses.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Load `lookbook http` with the load generator wrk on loopback (5 x 10^4 products x
    /// 2048, a synthetic history): p50/p99 and requests a second for similar, feed and events,
    /// events stored a second, memory over a longer mixed run.
    Http {
        /// Connections at once.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Seconds of load per route.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Copy --db (or --products synthetic products of --dim) into this empty PostgreSQL
    /// database (`postgres://...`) and compare search there (exact, and pgvector's HNSW) with
    /// the in-memory exact scan.
    Postgres {
        /// The database, `postgres://...`.
        url: String,
        /// Copy this many synthetic products instead of --db.
        #[arg(long)]
        products: Option<usize>,
        /// Vector length of the synthetic products.
        #[arg(long, default_value_t = 256)]
        dim: usize,
    },
    /// Internal: measure the app on --db in this process and print JSON (the parent `bench`
    /// runs it in a fresh process so memory figures are the app's own).
    #[command(hide = true)]
    AppChild,
    /// Internal: write a synthetic catalogue of `PRODUCTS,DIM` at --db (the benchmarks write
    /// their catalogues in a child, so their own memory stays small).
    #[command(hide = true)]
    WriteSynthetic {
        /// `PRODUCTS,DIM`.
        size: String,
        /// Store the vectors under this catalogue's active model, so a photo query on it loads
        /// real weights.
        #[arg(long)]
        synthetic_model_of: Option<PathBuf>,
    },
}

/// Runs `bench` or one of its modes on `db`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let Args {
        mode,
        embed,
        quick,
        json,
    } = a;
    match mode {
        None => print(&benchmarks::run(db, quick, embed)?, json),
        Some(Mode::OneShot) => print_one_shot(&benchmarks::oneshot::run(quick, db)?, json),
        Some(Mode::Feed) => print_feed(&benchmarks::feed::run(quick)?, json),
        Some(Mode::Serve {
            connections,
            products,
            seconds,
        }) => print_serve(&benchmarks::serve::run(db, products, connections, seconds)?, json),
        Some(Mode::Http { connections, seconds }) => {
            print_http(&benchmarks::http::run(quick, seconds, connections)?, json)
        }
        Some(Mode::Postgres { url, products, dim }) => {
            print_postgres(&benchmarks::postgres::run(db, &url, products.map(|n| (n, dim)))?, json)
        }
        Some(Mode::AppChild) => {
            benchmarks::app::app_child(db)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Mode::WriteSynthetic {
            size,
            synthetic_model_of,
        }) => {
            benchmarks::oneshot::write_child(db, &size, synthetic_model_of.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn ms(x: f64) -> String {
    format!("{x:.2}")
}

/// Prints a `lookbook bench` report.
fn print(r: &benchmarks::Report, json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for a in &r.app {
        let on = if a.catalogue == "synthetic" {
            "app".to_string()
        } else {
            format!("app on {}", a.catalogue)
        };
        let (n, d) = (a.items.to_string(), a.dim.to_string());
        rows.push(vec![
            format!("{on}: open db to first frame"),
            n.clone(),
            d.clone(),
            ms(a.figures.first_frame_ms),
            String::new(),
        ]);
        rows.push(vec![
            format!("{on}: open db to first frame with look-alikes"),
            n.clone(),
            d.clone(),
            ms(a.figures.look_alikes_ms),
            String::new(),
        ]);
        rows.push(vec![
            format!("{on}: like/alpha -> re-ranked frame"),
            n.clone(),
            d.clone(),
            ms(a.figures.rerank_frame_ms),
            String::new(),
        ]);
        if a.catalogue == "synthetic" {
            rows.push(vec![
                format!("{on}: resident memory after load (MiB)"),
                n,
                d,
                format!("{:.0}", a.figures.rss_mib),
                String::new(),
            ]);
        }
    }
    for l in &r.results {
        let what = match &l.index {
            Some(i) => format!(
                "{} ({}/{} lists, recall {:.3}, {} MiB{})",
                l.what,
                i.nprobe,
                i.lists,
                i.recall_at_10,
                i.row_bytes >> 20,
                i.build_s.map(|s| format!(", built in {s:.1} s")).unwrap_or_default()
            ),
            None => l.what.clone(),
        };
        rows.push(vec![
            what,
            l.items.to_string(),
            l.dim.to_string(),
            ms(l.timing.p50_ms),
            ms(l.timing.p95_ms),
        ]);
    }
    out!("{}", render(&["benchmark", "items", "dim", "p50 ms", "p95 ms"], &rows));
    let mut embed: Vec<Vec<String>> = Vec::new();
    if let Some(q) = &r.photo_query {
        embed.push(match (&q.timing, &q.error) {
            (Some(t), _) => vec![
                format!("photo query {}x{} (p50 / p95 ms)", q.input[0], q.input[1]),
                "1".into(),
                format!("{:.1} / {:.1}", t.p50_ms, t.p95_ms),
            ],
            (None, e) => vec![
                format!("photo query: {}", e.as_deref().unwrap_or("failed")),
                String::new(),
                String::new(),
            ],
        });
    }
    for t in &r.embedding {
        embed.push(vec![
            format!(
                "decode + embed {} {}x{} ({})",
                t.precision, t.input[0], t.input[1], t.kernels
            ),
            t.batch.to_string(),
            format!("{:.1}", t.images_per_s),
        ]);
    }
    if !embed.is_empty() {
        outln!();
        out!("{}", render(&["embedding", "batch", "images/s"], &embed));
    }
    outln!("\npeak resident memory of this run: {:.0} MiB", r.peak_rss_mib);
    Ok(ExitCode::SUCCESS)
}

/// Prints a `lookbook bench serve` report.
fn print_serve(r: &serve::Report, json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(r)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "lookbook serve, {} products, {} connections on loopback",
        r.products,
        r.connections
    );
    outln!(
        "resident memory: {:.0} MiB with 1 connection, {:.0} MiB with {} ({:.2}x)",
        r.rss_one_mib,
        r.rss_all_mib,
        r.connections,
        r.rss_all_mib / r.rss_one_mib
    );
    outln!(
        "key press to frame, every connection pressing j each 200 ms: p50 {:.1} ms, p95 {:.1} ms ({} presses)",
        r.key_to_frame_p50_ms,
        r.key_to_frame_p95_ms,
        r.presses
    );
    outln!(
        "likes: {} sent, {} stored under their own users",
        r.likes_sent,
        r.likes_stored
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a `lookbook bench postgres` report.
fn print_postgres(r: &postgres::Report, json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(r)?;
        return Ok(ExitCode::SUCCESS);
    }
    match r.copy_s {
        Some(s) => outln!("{} products x {} copied to PostgreSQL in {s:.1} s", r.products, r.dim),
        None => outln!("{} products x {} already in PostgreSQL", r.products, r.dim),
    }
    outln!("{} queries (products' look-alikes)", r.queries);
    let mut rows = vec![
        vec![
            "in memory, exact scan".into(),
            "1".into(),
            ms(r.flat.p50_ms),
            ms(r.flat.p95_ms),
        ],
        vec![
            "PostgreSQL, exact".into(),
            format!("top 10 equal for {} of {}", r.exact_equal_top10, r.queries),
            ms(r.pg_exact.p50_ms),
            ms(r.pg_exact.p95_ms),
        ],
    ];
    for h in &r.approx {
        rows.push(vec![
            format!("PostgreSQL, {} {}", r.index, h.setting),
            format!("{:.3}", h.recall_at_10),
            ms(h.timing.p50_ms),
            ms(h.timing.p95_ms),
        ]);
    }
    out!("{}", render(&["search", "recall@10", "p50 ms", "p95 ms"], &rows));
    Ok(ExitCode::SUCCESS)
}

/// Prints a `lookbook bench one-shot` report.
fn print_one_shot(r: &[benchmarks::oneshot::OneShot], json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = r
        .iter()
        .map(|o| {
            vec![
                format!("lookbook {}", o.command),
                o.items.to_string(),
                o.dim.to_string(),
                ms(o.first_ms),
                ms(o.later.p50_ms),
                ms(o.later.p95_ms),
                format!("{:.0}", o.peak_rss_mib),
            ]
        })
        .collect();
    outln!(
        "one-shot processes, spawn to exit ({} later runs each)",
        r.first().map_or(0, |o| o.later.runs)
    );
    out!(
        "{}",
        render(
            &["command", "items", "dim", "first ms", "p50 ms", "p95 ms", "peak MiB"],
            &rows
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `bench feed`.
fn print_feed(r: &benchmarks::feed::FeedBench, json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "the feed on a synthetic shop: {} purchases by {} shoppers of {} products (256-d)",
        r.events,
        r.shoppers,
        r.products
    );
    let ratio = |a: f64, b: f64| if b > 0.0 { format!("{:.2}x", a / b) } else { "-".into() };
    let rows = vec![
        vec![
            "import --interactions".to_string(),
            format!("{:.1} s", r.import_s),
            String::new(),
            String::new(),
        ],
        vec![
            "train --feed".to_string(),
            format!("{:.1} s", r.train_s),
            format!("{:.0} MiB peak", r.train_peak_mib),
            String::new(),
        ],
        vec![
            "recommend --user (one-shot, p50)".to_string(),
            ms(r.recommend.p50_ms),
            format!("{:.0} MiB peak", r.recommend_peak_mib),
            format!(
                "{} of the one-vector feed's {}",
                ratio(r.recommend.p50_ms, r.recommend_before.p50_ms),
                ms(r.recommend_before.p50_ms)
            ),
        ],
        vec![
            "a like's re-rank in the app (p50)".to_string(),
            ms(r.like_rerank.p50_ms),
            format!("p95 {}", ms(r.like_rerank.p95_ms)),
            format!(
                "{} of the one-vector re-rank's {}",
                ratio(r.like_rerank.p50_ms, r.like_rerank_before.p50_ms),
                ms(r.like_rerank_before.p50_ms)
            ),
        ],
    ];
    out!("{}", render(&["step", "time", "", "against before"], &rows));
    Ok(ExitCode::SUCCESS)
}

fn print_http(r: &benchmarks::http::HttpBench, json: bool) -> Result<ExitCode> {
    if json {
        super::print_json(&r)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "lookbook http on {} synthetic products x 2048 ({} purchases), wrk with {} connections, {} cores shared by both",
        r.products,
        r.events,
        r.connections,
        r.cores
    );
    let rows: Vec<Vec<String>> = r
        .routes
        .iter()
        .map(|l| {
            vec![
                l.route.clone(),
                format!("{} s", l.seconds),
                format!("{:.0}", l.requests_per_s),
                ms(l.p50_ms),
                ms(l.p99_ms),
                l.errors.to_string(),
            ]
        })
        .collect();
    out!(
        "{}",
        render(&["route", "load", "requests/s", "p50", "p99", "errors"], &rows)
    );
    outln!("events stored: {:.0} a second (10 a request)", r.events_per_s);
    outln!(
        "memory over the mixed run: {:.0} MiB at the start, {:.0} at the end, {:.0} at most",
        r.memory_mib.start,
        r.memory_mib.end,
        r.memory_mib.max
    );
    Ok(ExitCode::SUCCESS)
}
