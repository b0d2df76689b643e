//! `lookbook bench`: measurements, returned as reports. This part calls the library (and, for
//! the app and the server, their front ends as a user would meet them); the CLI calls it and
//! prints what it returns (`cli::bench`), as a table or as the same data in JSON. Nothing here
//! prints, and nothing in the library or the front ends calls it.
//!
//! | module | measures |
//! | --- | --- |
//! | this one | search (exact, IVF) and the feed on synthetic vectors, IVF on the catalogue's own, embedding and photo queries |
//! | [`app`] | the app's first frame, re-rank frame and memory, in a fresh process |
//! | [`oneshot`] | `similar` and `recommend` as separate processes: latency and peak memory |
//! | [`serve`] | `lookbook serve` under load from real SSH clients |
//! | [`http`] | `lookbook http` under load from wrk: latency, throughput, events stored, memory |
//! | [`postgres`] | search in PostgreSQL (exact, HNSW or IVFFlat) against the in-memory scan |

pub mod app;
pub mod feed;
pub mod http;
pub mod oneshot;
pub mod postgres;
pub mod serve;

use anyhow::Result;
use rayon::prelude::*;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use lookbook::catalog::{Catalog, ProductFilter};
use lookbook::recommend::{Engine, FlatIndex, IvfIndex, Profile, ProfileSettings, Request, VectorIndex};
use lookbook::synthetic::{
    Timing, blended_queries, recall, synthetic_feedback, synthetic_matrix, synthetic_products, time,
};

/// Everything one `lookbook bench` run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The app on a synthetic catalogue and, when there is one, on `--db`.
    pub app: Vec<AppFigures>,
    /// Latencies of searches and feeds.
    pub results: Vec<Latency>,
    /// A photo as the query (with `--embed`).
    pub photo_query: Option<PhotoQuery>,
    /// Embedding throughput (with `--embed`).
    pub embedding: Vec<Throughput>,
    /// Peak resident memory of the whole run, MiB.
    pub peak_rss_mib: f64,
}

/// The app on one catalogue.
#[derive(Debug, Serialize)]
pub struct AppFigures {
    /// `synthetic` or the catalogue's file name.
    pub catalogue: String,
    /// Products.
    pub items: usize,
    /// Vector length.
    pub dim: usize,
    /// The figures.
    #[serde(flatten)]
    pub figures: app::StartupBench,
}

/// One operation's latency.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// What was timed.
    pub what: String,
    /// Products searched.
    pub items: usize,
    /// Vector length.
    pub dim: usize,
    /// The times.
    #[serde(flatten)]
    pub timing: Timing,
    /// For an IVF search: how the index was built and how well it finds the exact top 10.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexFacts>,
}

/// An IVF index as measured.
#[derive(Debug, Serialize)]
pub struct IndexFacts {
    /// Mean recall@10 against the exact scan on the benchmark's queries.
    pub recall_at_10: f64,
    /// Lists, and lists probed per query.
    pub lists: usize,
    /// Lists probed.
    pub nprobe: usize,
    /// Rows as int8 residuals (else f32).
    pub int8: bool,
    /// Bytes of row storage.
    pub row_bytes: usize,
    /// Seconds to build, when built here.
    pub build_s: Option<f64>,
}

/// A photo query as `similar --image` and the app's `o` run it, model loaded.
#[derive(Debug, Serialize)]
pub struct PhotoQuery {
    /// The model's input, height and width.
    pub input: [usize; 2],
    /// Read, decode, preprocess, forward pass, search; none when it could not run.
    pub timing: Option<Timing>,
    /// Why it could not run (a model with a trained head needs its projection).
    pub error: Option<String>,
}

/// Embedding throughput at one precision, input and batch.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// `bf16` or `f32`.
    pub precision: &'static str,
    /// The kernel level (`LOOKBOOK_CPU`) it ran on; at `avx512bf16`, with how many of the
    /// convolutions measured faster on its dot products (`vision::tune`).
    pub kernels: String,
    /// Input height and width.
    pub input: [usize; 2],
    /// Photos per forward pass.
    pub batch: usize,
    /// Photos a second: read, decode, preprocess and forward.
    pub images_per_s: f64,
}

/// Runs the benchmarks: `quick` at smaller sizes, `embed` adds embedding and photo queries
/// (on `db`'s photos and model).
pub fn run(db: &Path, quick: bool, embed: bool) -> Result<Report> {
    let mut report = Report {
        app: Vec::new(),
        results: Vec::new(),
        photo_query: None,
        embedding: Vec::new(),
        peak_rss_mib: 0.0,
    };
    // The app first, in a fresh process, so its resident memory is its own.
    let n_app = if quick { 10_000 } else { 50_000 };
    report.app.push(AppFigures {
        catalogue: "synthetic".into(),
        items: n_app,
        dim: 2048,
        figures: app::bench_startup(n_app)?,
    });
    if db.exists() {
        measure_catalogue(db, &mut report)?;
    }
    measure_search(quick, &mut report)?;
    measure_feed(quick, &mut report)?;
    if embed {
        measure_embedding(db, quick, &mut report)?;
    }
    report.peak_rss_mib = lookbook::memory::peak_rss_mib().unwrap_or(0.0);
    Ok(report)
}

/// Mean recall@10 of IVF against the exact f32 scan on `queries`, by product id (IVF keeps its
/// rows list by list).
fn ivf_recall(ivf: &IvfIndex, flat: &FlatIndex, queries: &[Vec<f32>]) -> f64 {
    let each = queries.iter().map(|q| {
        let exact: Vec<i64> = flat.search(q, 10, &|_| true).iter().map(|x| flat.id(x.0)).collect();
        let got: Vec<i64> = ivf.search(q, 10, &|_| true).iter().map(|x| ivf.id(x.0)).collect();
        recall(&exact, &got)
    });
    each.sum::<f64>() / queries.len().max(1) as f64
}

fn facts(ivf: &IvfIndex, recall_at_10: f64, build_s: Option<f64>) -> IndexFacts {
    IndexFacts {
        recall_at_10,
        lists: ivf.lists(),
        nprobe: ivf.nprobe(),
        int8: ivf.is_int8(),
        row_bytes: ivf.row_bytes(),
        build_s,
    }
}

/// IVF on the catalogue's own vectors (synthetic clusters flatter any index), and the app on a
/// copy of it.
fn measure_catalogue(db: &Path, report: &mut Report) -> Result<()> {
    let cat = Catalog::open_existing(db)?;
    let (n, dim) = (
        cat.product_count()?,
        cat.active_model()?.map(|m| m.spec.dim).unwrap_or(0),
    );
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
        let r = ivf_recall(&ivf, &flat, &queries);
        let mut i = 0;
        let timing = time(200, || {
            i += 1;
            std::hint::black_box(ivf.search(&queries[i % queries.len()], 10, &|_| true));
        });
        report.results.push(Latency {
            what: "similar on this catalogue: IVF top-10".into(),
            items: n,
            dim,
            timing,
            index: Some(facts(&ivf, r, None)),
        });
    }
    report.app.push(AppFigures {
        catalogue: db
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        items: n,
        dim,
        figures: app::bench_catalogue(db)?,
    });
    Ok(())
}

/// Exact and IVF search on synthetic vectors, from 10^4 to 10^6 rows.
fn measure_search(quick: bool, report: &mut Report) -> Result<()> {
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
        let timing = time(runs, || {
            i += 1;
            std::hint::black_box(flat.search(&queries[i % queries.len()], 10, &|_| true));
        });
        report.results.push(Latency {
            what: "similar: exact top-10".into(),
            items: n,
            dim,
            timing,
            index: None,
        });
        // The index the engine builds at this size (int8 residuals from QUANTIZE_MIN_BYTES).
        let built = Instant::now();
        let ivf = IvfIndex::auto(m)?;
        let build_s = built.elapsed().as_secs_f64();
        let r = ivf_recall(&ivf, &flat, &queries);
        drop(flat);
        let timing = time(runs, || {
            i += 1;
            std::hint::black_box(ivf.search(&queries[i % queries.len()], 10, &|_| true));
        });
        report.results.push(Latency {
            what: format!("similar: IVF{} top-10", if ivf.is_int8() { " int8" } else { "" }),
            items: n,
            dim,
            timing,
            index: Some(facts(&ivf, r, Some(build_s))),
        });
    }
    Ok(())
}

/// The personal feed and a blended, diversified look-alike list.
fn measure_feed(quick: bool, report: &mut Report) -> Result<()> {
    for dim in [256usize, 2048] {
        let n = if quick { 10_000 } else { 50_000 };
        // The index `Engine::load` would pick at this size.
        let engine = Engine::with_vectors(synthetic_products(n), synthetic_matrix(n, dim, 2))?;
        let fb = synthetic_feedback(n, 100, 3);
        let feed = Request {
            k: 10,
            ..Default::default()
        };
        let blended = Request {
            item: Some(7),
            k: 10,
            alpha: lookbook::recommend::DEFAULT_ALPHA,
            diversity: 0.3,
            filter: ProductFilter::default(),
            vector: None,
        };
        for (what, req) in [
            ("recommend: 100 likes, profile + rank + explain", &feed),
            ("recommend: blended + MMR 0.3", &blended),
        ] {
            let timing = time(30, || {
                let p = Profile::build(&fb, engine.index(), ProfileSettings::default());
                std::hint::black_box(engine.recommend(&p, req).ok());
            });
            report.results.push(Latency {
                what: what.into(),
                items: n,
                dim,
                timing,
                index: None,
            });
        }
    }
    Ok(())
}

/// Embedding throughput on the catalogue's photos, at the model's input and at 224 x 224, both
/// precisions, batch 1, 8 and 16; and a photo query.
fn measure_embedding(db: &Path, quick: bool, report: &mut Report) -> Result<()> {
    use lookbook::vision::{Embedder, Pooling, Precision};
    let cat = Catalog::open_existing(db)?;
    let path = lookbook::vision::weights::locate(None, &cat.dir())?;
    let e = Embedder::load_with(&path, Pooling::Avg, lookbook::embedding::catalogue_precision(&cat)?)?;
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
    let timing = time(photos.len().min(24), || {
        let photo = &photos[next % photos.len().max(1)];
        next += 1;
        let ranked = e
            .embed_file(photo)
            .map_err(anyhow::Error::from)
            .and_then(|v| Ok(engine.similar_to_vector(&v, &ProductFilter::default(), 10)?));
        if let Err(err) = ranked {
            failed = Some(err.to_string());
        }
    });
    report.photo_query = Some(PhotoQuery {
        input: [own.0, own.1],
        timing: failed.is_none().then_some(timing),
        error: failed,
    });
    // Each figure is the whole path a photo takes in `lookbook embed`: read, decode, crop and
    // resize (in parallel), then the forward pass, batch after batch, as the baselines time it.
    // One row set per kernel level the CPU has (capped by LOOKBOOK_CPU), each precision on
    // the levels where it runs differently: bf16 from AVX-512 (emulated) up, f32 below it.
    use lookbook::vision::cpu::Kernels;
    let top = Kernels::capped()?;
    let mut runs = Vec::new();
    for kernels in Kernels::here().into_iter().filter(|k| *k <= top) {
        if kernels >= Kernels::Avx512 || top < Kernels::Avx512 {
            runs.push((Precision::Bf16, kernels));
        }
        if kernels <= Kernels::Avx512 {
            runs.push((Precision::F32, kernels));
        }
    }
    for (precision, kernels) in runs {
        let mut e = Embedder::load_on(&path, Pooling::Avg, precision, kernels)?;
        let name = if precision == Precision::F32 { "f32" } else { "bf16" };
        let level = match (precision, kernels.min(Kernels::detected())) {
            (Precision::Bf16, Kernels::Avx512Bf16) => {
                let (dot, all) = e.bf16_products();
                format!("{}, {dot} of {all} convolutions on its dot products", kernels.name())
            }
            _ => kernels.name().to_string(),
        };
        for (h, w) in [own, (224, 224)] {
            e.preprocess.height = h;
            e.preprocess.width = w;
            for batch in [1usize, 8, 16] {
                if kernels == Kernels::Portable && batch != 8 {
                    continue; // plain Rust is slow; one batch size tells its speed
                }
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
                report.embedding.push(Throughput {
                    precision: name,
                    kernels: level.clone(),
                    input: [h, w],
                    batch,
                    images_per_s: take as f64 / t.elapsed().as_secs_f64(),
                });
            }
        }
    }
    Ok(())
}

/// A fresh temporary folder for one benchmark's files.
fn temp_dir(what: &str) -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("lookbook-bench-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
