//! Synthetic workloads for `lookbook bench` and the criterion benches: clustered unit vectors
//! shaped like real embeddings, and a timer that reports percentiles.

use std::time::Instant;

use crate::catalog::{EmbeddingMatrix, Feedback, Product};
use crate::recommend::normalize;
use crate::sample::Rng;

/// `n` unit vectors of length `dim` around `n / 200 + 1` cluster centres (like product types).
pub fn synthetic_matrix(n: usize, dim: usize, seed: u64) -> EmbeddingMatrix {
    let mut rng = Rng::new(seed);
    let clusters = n / 200 + 1;
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| (0..dim).map(|_| rng.unit() - 0.5).collect())
        .collect();
    let mut data = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = &centres[i % clusters];
        let mut v: Vec<f32> = c.iter().map(|x| x + (rng.unit() - 0.5) * 0.6).collect();
        normalize(&mut v);
        data.extend(v);
    }
    EmbeddingMatrix {
        model_id: 0,
        dim,
        ids: (1..=n as i64).collect(),
        data,
    }
}

/// Products to go with [`synthetic_matrix`] (ids 1..=n, a handful of types and colours).
pub fn synthetic_products(n: usize) -> Vec<Product> {
    let types = [
        "Tshirts",
        "Shirts",
        "Casual Shoes",
        "Watches",
        "Handbags",
        "Jeans",
        "Heels",
        "Sunglasses",
    ];
    let colours = ["Black", "White", "Blue", "Red", "Grey", "Brown"];
    (1..=n as i64)
        .map(|id| Product {
            id,
            name: format!("Synthetic product {id}"),
            master_category: "Apparel".into(),
            sub_category: "Topwear".into(),
            article_type: types[id as usize % types.len()].into(),
            gender: if id % 2 == 0 { "Men".into() } else { "Women".into() },
            colour: colours[id as usize % colours.len()].into(),
            season: "Fall".into(),
            year: Some(2012),
            usage: "Casual".into(),
            image_path: format!("{id}.jpg"),
            image_hash: String::new(),
        })
        .collect()
}

/// `likes` likes spread over the catalogue, one minute apart.
pub fn synthetic_feedback(n: usize, likes: usize, seed: u64) -> Vec<Feedback> {
    let mut rng = Rng::new(seed);
    (0..likes)
        .map(|i| Feedback {
            product_id: 1 + rng.below(n) as i64,
            weight: 1.0,
            at: i as i64 * 60_000,
        })
        .collect()
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Timing {
    /// Runs measured.
    pub runs: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Fastest.
    pub min_ms: f64,
}

/// Runs `f` once to warm up, then `runs` times, and summarises.
pub fn time<F: FnMut()>(runs: usize, mut f: F) -> Timing {
    f();
    let mut ms: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Timing {
        runs: ms.len(),
        p50_ms: pick(0.5),
        p95_ms: pick(0.95),
        min_ms: ms[0],
    }
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Current resident memory in MiB (Linux).
pub fn rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Writes a catalogue of `n` synthetic products with `dim`-d vectors (an active model included)
/// for start-up benchmarks. The photos do not exist.
pub fn write_synthetic_catalog(path: &std::path::Path, n: usize, dim: usize, seed: u64) -> crate::Result<()> {
    use crate::catalog::{Catalog, ModelSpec, ProductUpsert};
    let mut cat = Catalog::open(path)?;
    let products = synthetic_products(n);
    {
        let mut tx = cat.tx()?;
        for p in &products {
            let u = ProductUpsert {
                id: p.id,
                name: p.name.clone(),
                category: [
                    p.master_category.clone(),
                    p.sub_category.clone(),
                    p.article_type.clone(),
                ],
                gender: p.gender.clone(),
                colour: p.colour.clone(),
                season: p.season.clone(),
                year: p.year,
                usage: p.usage.clone(),
                image_path: p.image_path.clone(),
                image_hash: "synthetic".into(),
            };
            crate::catalog::products_upsert(&mut tx, &u, 0)?;
        }
        tx.commit()?;
    }
    cat.set_setting("image_root", ".")?;
    let spec = ModelSpec {
        name: "synthetic".into(),
        architecture: "none".into(),
        weights_sha256: "synthetic".into(),
        preprocessing: "none".into(),
        pooling: "avg".into(),
        dim,
        head_id: None,
    };
    let model = cat.register_model(&spec)?;
    let m = synthetic_matrix(n, dim, seed);
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let rows: Vec<(i64, String, Vec<f32>)> = chunk
            .iter()
            .map(|&i| (m.ids[i], "synthetic".to_string(), m.row(i).to_vec()))
            .collect();
        cat.put_embeddings(model.id, &rows)?;
    }
    cat.set_active_model(model.id)?;
    Ok(())
}
