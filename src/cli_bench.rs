//! `lookbook bench`: prints a table of measured latencies, throughput and memory.

use anyhow::Result;
use rayon::prelude::*;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::cli::table::render;
use lookbook::bench::{peak_rss_mib, synthetic_feedback, synthetic_matrix, synthetic_products, time};
use lookbook::catalog::{Catalog, ProductFilter};
use lookbook::recommend::{Engine, FlatIndex, IvfIndex, Profile, ProfileSettings, Request, VectorIndex, normalize};
use lookbook::sample::Rng;
use std::collections::HashSet;

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
        // IVF's recall on real vectors, whatever the catalogue's size (the engine uses it only
        // from IVF_MIN_ROWS rows on): synthetic clusters flatter any index.
        let real_ivf = match cat.active_model()? {
            Some(model) => {
                let m = cat.load_embeddings(model.id)?;
                (m.len() >= 100)
                    .then(|| Ok::<_, lookbook::Error>((FlatIndex::new(m.clone()), IvfIndex::auto(m)?)))
                    .transpose()?
            }
            None => None,
        };
        drop(cat);
        if let Some((flat, ivf)) = real_ivf {
            let queries = blended_queries(&flat, 200, 13);
            let recall = ivf_recall(&ivf, &flat, &queries);
            let mut i = 0;
            let t = time(200, || {
                i += 1;
                std::hint::black_box(ivf.search(&queries[i % queries.len()], 10, &|_| true));
            });
            rows.push(vec![
                format!(
                    "similar on this catalogue: IVF top-10 ({}/{} lists, recall {recall:.3})",
                    ivf.nprobe(),
                    ivf.lists()
                ),
                n.to_string(),
                dim.to_string(),
                format!("{:.2}", t.p50_ms),
                format!("{:.2}", t.p95_ms),
            ]);
            out.push(
                json!({ "what": "ivf-catalogue", "db": db, "items": n, "dim": dim, "recall_at_10": recall,
                "lists": ivf.lists(), "nprobe": ivf.nprobe(), "p50_ms": t.p50_ms, "p95_ms": t.p95_ms }),
            );
        }
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
    // One table row and one JSON record; `extra` adds fields to the record.
    let mut record = |what: String, n: usize, dim: usize, t: lookbook::bench::Timing, extra: serde_json::Value| {
        rows.push(vec![
            what.clone(),
            n.to_string(),
            dim.to_string(),
            format!("{:.2}", t.p50_ms),
            format!("{:.2}", t.p95_ms),
        ]);
        let mut rec =
            json!({ "what": what, "items": n, "dim": dim, "p50_ms": t.p50_ms, "p95_ms": t.p95_ms, "runs": t.runs });
        if let (Some(r), serde_json::Value::Object(e)) = (rec.as_object_mut(), extra) {
            r.extend(e);
        }
        out.push(rec);
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
        let flat = FlatIndex::new(m.clone());
        // Queries like the app's: a product blended with a taste (the mean of three others).
        let queries = blended_queries(&flat, 64, 11);
        let runs = if n >= 1_000_000 { 20 } else { 60 };
        let mut i = 0;
        record(
            "similar: exact top-10".into(),
            n,
            dim,
            time(runs, || {
                i += 1;
                std::hint::black_box(flat.search(&queries[i % queries.len()], 10, &|_| true));
            }),
            json!({}),
        );
        // The index the engine builds at this size (int8 residuals from QUANTIZE_MIN_BYTES).
        let built = Instant::now();
        let ivf = IvfIndex::auto(m)?;
        let build_s = built.elapsed().as_secs_f64();
        let recall = ivf_recall(&ivf, &flat, &queries);
        drop(flat);
        let what = format!(
            "similar: IVF{} top-10 ({}/{} lists, recall {recall:.3}, {} MiB, built in {build_s:.1} s)",
            if ivf.is_int8() { " int8" } else { "" },
            ivf.nprobe(),
            ivf.lists(),
            ivf.row_bytes() >> 20
        );
        let t = time(runs, || {
            i += 1;
            std::hint::black_box(ivf.search(&queries[i % queries.len()], 10, &|_| true));
        });
        record(
            what,
            n,
            dim,
            t,
            json!({ "recall_at_10": recall, "lists": ivf.lists(), "nprobe": ivf.nprobe(), "build_s": build_s,
                "int8": ivf.is_int8(), "row_bytes": ivf.row_bytes() }),
        );
    }
    for dim in [256usize, 2048] {
        let n = if quick { 10_000 } else { 50_000 };
        // The index `Engine::load` would pick at this size.
        let engine = Engine::with_vectors(synthetic_products(n), synthetic_matrix(n, dim, 2))?;
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
            json!({}),
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
            json!({}),
        );
    }
    let mut embed_rows = Vec::new();
    if embed {
        let cat = Catalog::open_existing(db)?;
        let path = lookbook::vision::weights::locate(None, &cat.dir())?;
        let e = lookbook::vision::Embedder::load_with(
            &path,
            lookbook::vision::Pooling::Avg,
            lookbook::embedding::catalogue_precision(&cat)?,
        )?;
        let root = cat.image_root()?;
        let photos: Vec<std::path::PathBuf> = cat
            .products()?
            .iter()
            .take(if quick { 48 } else { 192 })
            .map(|p| root.join(&p.image_path))
            .collect();
        let own = (e.preprocess.height, e.preprocess.width);
        // A photo query as `similar --image` and the app's `o` run it with the model loaded:
        // read, decode, preprocess, one forward pass at batch 1, then the search.
        let engine = Engine::load(&cat)?;
        let mut next = 0;
        let mut failed = None;
        let q = time(photos.len().min(24), || {
            let photo = &photos[next % photos.len()];
            next += 1;
            let ranked = e
                .embed_file(photo)
                .map_err(anyhow::Error::from)
                .and_then(|v| Ok(engine.similar_to_vector(&v, &ProductFilter::default(), 10)?));
            if let Err(err) = ranked {
                failed = Some(err);
            }
        });
        if let Some(err) = failed {
            // A catalogue whose active model has a trained head needs the head's projection.
            embed_rows.push(vec![format!("photo query: {err}"), String::new(), String::new()]);
        } else {
            embed_rows.push(vec![
                format!("photo query {}x{} (p50 / p95 ms)", own.0, own.1),
                "1".into(),
                format!("{:.1} / {:.1}", q.p50_ms, q.p95_ms),
            ]);
            out.push(json!({ "what": "photo query", "input": [own.0, own.1], "p50_ms": q.p50_ms, "p95_ms": q.p95_ms }));
        }
        // The model's own input and ImageNet's 224 x 224 (the network takes any size). Each
        // figure is the whole path a photo takes in `lookbook embed`: read, decode, crop and
        // resize (in parallel), then the forward pass, batch after batch, as the baselines time it.
        for precision in [lookbook::vision::Precision::Bf16, lookbook::vision::Precision::F32] {
            let mut e = lookbook::vision::Embedder::load_with(&path, lookbook::vision::Pooling::Avg, precision)?;
            let arith = if precision == lookbook::vision::Precision::F32 {
                "f32"
            } else {
                "bf16"
            };
            for (h, w) in [own, (224, 224)] {
                e.preprocess.height = h;
                e.preprocess.width = w;
                for batch in [1usize, 8, 16] {
                    let take = if batch == 1 { photos.len().min(32) } else { photos.len() };
                    let t = Instant::now();
                    for chunk in photos[..take].chunks(batch) {
                        let inputs: Vec<Vec<f32>> = chunk
                            .par_iter()
                            .filter_map(|p| lookbook::vision::load(p).ok())
                            .map(|img| e.preprocess.apply(&img))
                            .collect();
                        e.embed_inputs(&inputs)?;
                    }
                    let rate = take as f64 / t.elapsed().as_secs_f64();
                    embed_rows.push(vec![
                        format!("decode + embed {arith} {h}x{w}"),
                        batch.to_string(),
                        format!("{rate:.1}"),
                    ]);
                    out.push(json!({ "what": "embed", "precision": arith, "batch": batch, "images_per_s": rate, "input": [h, w], "includes": "read, decode, preprocess, forward" }));
                }
            }
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

/// Unit queries that mix one row with the mean of three others, as a blended feed does.
fn blended_queries(index: &FlatIndex, count: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut q = index.vector(rng.below(index.len())).to_vec();
            for _ in 0..3 {
                let r = rng.below(index.len());
                q.iter_mut().zip(index.vector(r)).for_each(|(a, b)| *a += b / 3.0);
            }
            normalize(&mut q);
            q
        })
        .collect()
}

/// Mean recall@10 of IVF against the exact f32 scan on `queries` (by product id: IVF keeps its
/// rows list by list).
fn ivf_recall(ivf: &IvfIndex, flat: &FlatIndex, queries: &[Vec<f32>]) -> f64 {
    queries
        .iter()
        .map(|q| {
            let exact: HashSet<i64> = flat.search(q, 10, &|_| true).iter().map(|x| flat.id(x.0)).collect();
            ivf.search(q, 10, &|_| true)
                .iter()
                .filter(|x| exact.contains(&ivf.id(x.0)))
                .count() as f64
                / 10.0
        })
        .sum::<f64>()
        / queries.len().max(1) as f64
}

/// `lookbook bench --postgres URL`: the catalogue copied into PostgreSQL (unless the database
/// already holds one, which is then measured as it is), then products as queries (500, or 100
/// past 50,000): does an exact search in the database give the in-memory exact top 10, what
/// recall@10 pgvector's HNSW reaches at several `ef_search`, and how long each takes.
pub fn postgres(db: &Path, url: &str, synthetic: Option<(usize, usize)>, json_out: bool) -> Result<ExitCode> {
    use lookbook::catalog::postgres as pg;
    let mut copy_s = None;
    if pg::state(&mut pg::connect(url)?)? == pg::State::Empty {
        // A synthetic catalogue is written to a temporary SQLite file first, then copied in.
        let tmp = std::env::temp_dir().join(format!("lookbook-pg-bench-{}", std::process::id()));
        let src = match synthetic {
            Some((n, dim)) => {
                std::fs::create_dir_all(&tmp)?;
                let path = tmp.join("synthetic.db");
                lookbook::bench::write_synthetic_catalog(&path, n, dim, 1)?;
                path
            }
            None => db.to_path_buf(),
        };
        let copy = Instant::now();
        let copied = Catalog::open_existing(&src).and_then(|c| lookbook::migrate::sqlite_to_postgres(&c, url));
        let _ = std::fs::remove_dir_all(&tmp);
        copied?;
        copy_s = Some(copy.elapsed().as_secs_f64());
    }
    let cat = Catalog::open_existing(url)?;
    let model = cat
        .active_model()?
        .ok_or_else(|| anyhow::anyhow!("{}: no active model; run `lookbook embed`", pg::redact(url)))?;
    let flat = FlatIndex::new(cat.load_embeddings(model.id)?);
    drop(cat);
    let mut client = pg::connect(url)?;
    let dim = model.spec.dim as i64;
    // An exact search in PostgreSQL reads every vector: fewer queries on large catalogues.
    let wanted = if flat.len() > 50_000 { 100 } else { 500 };
    let queries: Vec<usize> = (0..flat.len()).step_by((flat.len() / wanted).max(1)).collect();
    let efs = [40usize, 100, 200, 400];
    let mut same = 0usize;
    let mut hits = vec![0usize; efs.len()];
    let (mut t_flat, mut t_exact) = (Vec::new(), Vec::new());
    let mut t_hnsw: Vec<Vec<f64>> = vec![Vec::new(); efs.len()];
    for &row in &queries {
        let q = flat.vector(row).to_vec();
        let id = flat.id(row);
        let search = |method| pg::Search {
            model_id: model.id,
            dim,
            k: 10,
            exclude: std::slice::from_ref(&id),
            filter: None,
            method,
        };
        let t = Instant::now();
        let want: Vec<i64> = flat
            .search(&q, 10, &|r| r != row)
            .iter()
            .map(|&(r, _)| flat.id(r))
            .collect();
        t_flat.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let exact: Vec<i64> = pg::search(&mut client, &q, &search(pg::Method::Exact))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        t_exact.push(t.elapsed().as_secs_f64() * 1000.0);
        same += usize::from(exact == want);
        for (i, &ef_search) in efs.iter().enumerate() {
            let t = Instant::now();
            let approx = pg::search(&mut client, &q, &search(pg::Method::Hnsw { ef_search }))?;
            t_hnsw[i].push(t.elapsed().as_secs_f64() * 1000.0);
            hits[i] += approx.iter().filter(|x| want.contains(&x.0)).count();
        }
    }
    let pct = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let n = queries.len();
    let hnsw: Vec<serde_json::Value> = efs
        .iter()
        .zip(&hits)
        .zip(t_hnsw.iter_mut())
        .map(|((ef, h), t)| {
            json!({ "ef_search": ef, "recall_at_10": *h as f64 / (10 * n).max(1) as f64,
                "p50_ms": pct(t, 0.5), "p95_ms": pct(t, 0.95) })
        })
        .collect();
    let report = json!({
        "products": flat.len(), "dim": dim, "queries": n, "copy_s": copy_s,
        "exact_equal_top10": same,
        "flat_p50_ms": pct(&mut t_flat, 0.5), "flat_p95_ms": pct(&mut t_flat, 0.95),
        "pg_exact_p50_ms": pct(&mut t_exact, 0.5), "pg_exact_p95_ms": pct(&mut t_exact, 0.95),
        "hnsw": hnsw,
    });
    if json_out {
        crate::cli::out::outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    match copy_s {
        Some(s) => crate::cli::out::outln!("{} products x {dim} copied to PostgreSQL in {s:.1} s", flat.len()),
        None => crate::cli::out::outln!("{} products x {dim} already in PostgreSQL", flat.len()),
    }
    crate::cli::out::outln!("{n} queries (products' look-alikes)");
    let mut rows = vec![
        vec![
            "in memory, exact scan".into(),
            "1".into(),
            format!("{:.2}", f("flat_p50_ms")),
            format!("{:.2}", f("flat_p95_ms")),
        ],
        vec![
            "PostgreSQL, exact".into(),
            format!("top 10 equal for {same} of {n}"),
            format!("{:.2}", f("pg_exact_p50_ms")),
            format!("{:.2}", f("pg_exact_p95_ms")),
        ],
    ];
    for h in report["hnsw"].as_array().into_iter().flatten() {
        rows.push(vec![
            format!("PostgreSQL, HNSW ef_search {}", h["ef_search"]),
            format!("{:.3}", h["recall_at_10"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", h["p50_ms"].as_f64().unwrap_or(f64::NAN)),
            format!("{:.2}", h["p95_ms"].as_f64().unwrap_or(f64::NAN)),
        ]);
    }
    crate::cli::out::out!("{}", render(&["search", "recall@10", "p50 ms", "p95 ms"], &rows));
    Ok(ExitCode::SUCCESS)
}
