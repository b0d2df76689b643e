//! `lookbook bench`: prints a table of measured latencies, throughput and memory.

use anyhow::Result;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::table::render;
use lookbook::bench::{peak_rss_mib, synthetic_feedback, synthetic_matrix, synthetic_products, time};
use lookbook::catalog::{Catalog, ProductFilter};
use lookbook::recommend::{Engine, FlatIndex, Profile, ProfileSettings, Request, VectorIndex, top_k};

/// Runs the benchmarks and prints them.
pub fn run(db: &Path, quick: bool, embed: bool, json_out: bool) -> Result<ExitCode> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut out = Vec::new();
    // The app first, in a fresh process, so its resident memory is its own.
    let n_app = if quick { 10_000 } else { 50_000 };
    let startup = crate::tui::bench::bench_startup(n_app)?;
    rows.push(vec![
        "app: open db to first frame".into(),
        n_app.to_string(),
        "2048".into(),
        format!("{:.2}", startup.first_frame_ms),
        "".into(),
    ]);
    rows.push(vec![
        "app: like/alpha -> re-ranked frame".into(),
        n_app.to_string(),
        "2048".into(),
        format!("{:.2}", startup.rerank_frame_ms),
        "".into(),
    ]);
    rows.push(vec![
        "app: resident memory after load (MiB)".into(),
        n_app.to_string(),
        "2048".into(),
        format!("{:.0}", startup.rss_mib),
        "".into(),
    ]);
    out.push(
        json!({ "what": "app", "items": n_app, "first_frame_ms": startup.first_frame_ms,
        "rerank_frame_ms": startup.rerank_frame_ms, "rss_mib": startup.rss_mib }),
    );
    if db.exists() {
        let cat = Catalog::open_existing(db)?;
        let (n, dim) = (
            cat.product_count()?,
            cat.active_model()?.map(|m| m.spec.dim).unwrap_or(0),
        );
        drop(cat);
        let real = crate::tui::bench::bench_catalogue(db)?;
        let label = db
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        rows.push(vec![
            format!("app on {label}: first frame"),
            n.to_string(),
            dim.to_string(),
            format!("{:.2}", real.first_frame_ms),
            "".into(),
        ]);
        rows.push(vec![
            format!("app on {label}: like/alpha -> frame"),
            n.to_string(),
            dim.to_string(),
            format!("{:.2}", real.rerank_frame_ms),
            "".into(),
        ]);
        out.push(
            json!({ "what": "app-catalogue", "db": db, "items": n, "dim": dim, "first_frame_ms": real.first_frame_ms,
            "rerank_frame_ms": real.rerank_frame_ms }),
        );
    }
    let mut record = |what: String, n: usize, dim: usize, t: lookbook::bench::Timing| {
        rows.push(vec![
            what.clone(),
            n.to_string(),
            dim.to_string(),
            format!("{:.2}", t.p50_ms),
            format!("{:.2}", t.p95_ms),
        ]);
        out.push(
            json!({ "what": what, "items": n, "dim": dim, "p50_ms": t.p50_ms, "p95_ms": t.p95_ms, "runs": t.runs }),
        );
    };
    let sizes: &[(usize, usize)] = if quick {
        &[(10_000, 256), (10_000, 2048)]
    } else {
        &[
            (10_000, 256),
            (100_000, 256),
            (1_000_000, 256),
            (10_000, 2048),
            (50_000, 2048),
            (100_000, 2048),
        ]
    };
    for &(n, dim) in sizes {
        let m = synthetic_matrix(n, dim, 1);
        let index = FlatIndex::new(m);
        let q = index.vector(n / 2).to_vec();
        let runs = if n >= 1_000_000 { 10 } else { 30 };
        record(
            "similar: exact top-10".into(),
            n,
            dim,
            time(runs, || {
                let s = index.scores(&q);
                std::hint::black_box(top_k(&s, 10, |r| r != n / 2));
            }),
        );
    }
    for dim in [256usize, 2048] {
        let n = if quick { 10_000 } else { 50_000 };
        let engine = Engine::new(synthetic_products(n), FlatIndex::new(synthetic_matrix(n, dim, 2)));
        let fb = synthetic_feedback(n, 100, 3);
        let req = Request {
            k: 10,
            ..Default::default()
        };
        record(
            "recommend: 100 likes, profile + rank + explain".into(),
            n,
            dim,
            time(30, || {
                let p = Profile::build(&fb, engine.index(), ProfileSettings::default());
                std::hint::black_box(engine.recommend(&p, &req).ok());
            }),
        );
        let req = Request {
            item: Some(7),
            k: 10,
            alpha: lookbook::recommend::DEFAULT_ALPHA,
            diversity: 0.3,
            filter: ProductFilter::default(),
            vector: None,
        };
        record(
            "recommend: blended + MMR 0.3".into(),
            n,
            dim,
            time(30, || {
                let p = Profile::build(&fb, engine.index(), ProfileSettings::default());
                std::hint::black_box(engine.recommend(&p, &req).ok());
            }),
        );
    }
    let mut embed_rows = Vec::new();
    if embed {
        let cat = Catalog::open_existing(db)?;
        let path = lookbook::vision::weights::locate(None, &cat.dir())?;
        let e = lookbook::vision::Embedder::load(&path, lookbook::vision::Pooling::Avg)?;
        let products = cat.products()?;
        let root = cat.image_root()?;
        let take = products.len().min(64);
        let images: Vec<image::RgbImage> = products[..take]
            .iter()
            .filter_map(|p| lookbook::vision::load(&root.join(&p.image_path)).ok())
            .collect();
        for batch in [1usize, 8, 16, 32] {
            let t = Instant::now();
            for chunk in images.chunks(batch) {
                e.embed_images(chunk)?;
            }
            let rate = images.len() as f64 / t.elapsed().as_secs_f64();
            embed_rows.push(vec![
                format!("embed {}x{}", e.preprocess.height, e.preprocess.width),
                batch.to_string(),
                format!("{rate:.1}"),
            ]);
            out.push(json!({ "what": "embed", "batch": batch, "images_per_s": rate, "input": [e.preprocess.height, e.preprocess.width] }));
        }
    }
    let peak = peak_rss_mib().unwrap_or(0.0);
    if json_out {
        crate::cli::out::outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "results": out, "peak_rss_mib": peak }))?
        );
    } else {
        crate::cli::out::out!("{}", render(&["benchmark", "items", "dim", "p50 ms", "p95 ms"], &rows));
        if !embed_rows.is_empty() {
            crate::cli::out::outln!();
            crate::cli::out::out!("{}", render(&["embedding", "batch", "images/s"], &embed_rows));
        }
        crate::cli::out::outln!("\npeak resident memory of this run: {peak:.0} MiB");
    }
    Ok(ExitCode::SUCCESS)
}
