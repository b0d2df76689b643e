//! `lookbook bench postgres URL`: the catalogue copied into PostgreSQL (unless the database
//! already holds one, which is then measured as it is), then products as queries (500, or 100
//! past 50,000): does an exact search in the database give the in-memory exact top 10, what
//! recall@10 the model's pgvector index (HNSW at several `ef_search`, or IVFFlat at several
//! `probes`) reaches, and how long each takes.

use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use lookbook::catalog::Catalog;
use lookbook::catalog::postgres as pg;
use lookbook::recommend::{FlatIndex, VectorIndex};
use lookbook::synthetic::{Timing, recall};

/// What the PostgreSQL run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Products in the database.
    pub products: usize,
    /// Vector length.
    pub dim: i64,
    /// Products used as queries.
    pub queries: usize,
    /// Seconds the copy into PostgreSQL took, when this run made it.
    pub copy_s: Option<f64>,
    /// Queries whose exact top 10 in PostgreSQL equals the in-memory one.
    pub exact_equal_top10: usize,
    /// The in-memory exact scan.
    pub flat: Timing,
    /// PostgreSQL's exact scan.
    pub pg_exact: Timing,
    /// The model's index: `hnsw`, `ivfflat (N lists)` or `none`.
    pub index: String,
    /// The index at each setting.
    pub approx: Vec<Approx>,
}

/// The index at one setting.
#[derive(Debug, Serialize)]
pub struct Approx {
    /// `ef_search N` or `probes N`.
    pub setting: String,
    /// Mean recall@10 against the in-memory exact top 10.
    pub recall_at_10: f64,
    /// The times.
    #[serde(flatten)]
    pub timing: Timing,
}

/// Runs it; `synthetic` (products, dimension) makes a synthetic catalogue to copy in.
pub fn run(db: &Path, url: &str, synthetic: Option<(usize, usize)>) -> Result<Report> {
    let mut copy_s = None;
    if pg::state(&mut pg::connect(url)?)? == pg::State::Empty {
        // A synthetic catalogue is written to a temporary SQLite file first, then copied in.
        let tmp = super::temp_dir("postgres")?;
        let src = match synthetic {
            Some((n, dim)) => {
                let path = tmp.join("synthetic.db");
                lookbook::synthetic::write_synthetic_catalog(&path, n, dim, 1)?;
                path
            }
            None => db.to_path_buf(),
        };
        let copy = Instant::now();
        let copied = Catalog::open_existing(&src)
            .and_then(|c| lookbook::migrate::sqlite_to_postgres(&c, url, pg::IndexChoice::Auto));
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
    let index = pg::model_index(&mut client, model.id)?;
    let methods: Vec<pg::Method> = match index {
        Some(pg::ModelIndex::Hnsw) => [40, 100, 200, 400]
            .map(|ef_search| pg::Method::Hnsw { ef_search })
            .to_vec(),
        Some(pg::ModelIndex::IvfFlat { lists }) => {
            // The default (the square root of the lists) with the steps around it.
            let probes = pg::default_probes(lists);
            let mut p: Vec<usize> = [1, probes / 3, probes, probes * 3]
                .into_iter()
                .map(|p| p.clamp(1, lists as usize))
                .collect();
            p.dedup();
            p.into_iter().map(|probes| pg::Method::IvfFlat { probes }).collect()
        }
        None => Vec::new(),
    };
    let mut same = 0usize;
    let mut recalls = vec![0.0f64; methods.len()];
    let (mut t_flat, mut t_exact) = (Vec::new(), Vec::new());
    let mut t_approx: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
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
        t_flat.push(ms(t));
        let t = Instant::now();
        let exact: Vec<i64> = pg::search(&mut client, &q, &search(pg::Method::Exact))?
            .into_iter()
            .map(|x| x.0)
            .collect();
        t_exact.push(ms(t));
        same += usize::from(exact == want);
        for (i, &method) in methods.iter().enumerate() {
            let t = Instant::now();
            let approx: Vec<i64> = pg::search(&mut client, &q, &search(method))?
                .into_iter()
                .map(|x| x.0)
                .collect();
            t_approx[i].push(ms(t));
            recalls[i] += recall(&want, &approx);
        }
    }
    let n = queries.len();
    Ok(Report {
        products: flat.len(),
        dim,
        queries: n,
        copy_s,
        exact_equal_top10: same,
        flat: Timing::of(t_flat),
        pg_exact: Timing::of(t_exact),
        index: match index {
            Some(pg::ModelIndex::Hnsw) => "hnsw".into(),
            Some(pg::ModelIndex::IvfFlat { lists }) => format!("ivfflat ({lists} lists)"),
            None => "none".into(),
        },
        approx: methods
            .iter()
            .zip(recalls)
            .zip(t_approx)
            .map(|((method, r), t)| Approx {
                setting: match *method {
                    pg::Method::Hnsw { ef_search } => format!("ef_search {ef_search}"),
                    pg::Method::IvfFlat { probes } => format!("probes {probes}"),
                    pg::Method::Exact => "exact".into(),
                },
                recall_at_10: r / n.max(1) as f64,
                timing: Timing::of(t),
            })
            .collect(),
    })
}
