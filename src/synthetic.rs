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
            availability: "unknown".into(),
            listed: true,
            ..Default::default()
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

impl Timing {
    /// The summary of measured times in milliseconds (NaN figures when there are none).
    pub fn of(mut ms: Vec<f64>) -> Timing {
        ms.sort_by(f64::total_cmp);
        Timing {
            runs: ms.len(),
            p50_ms: percentile(&ms, 0.5),
            p95_ms: percentile(&ms, 0.95),
            min_ms: ms.first().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The `q` quantile (0 to 1) of sorted values, nearest rank; NaN for none. The one percentile
/// every benchmark reports.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize]
}

/// Runs `f` once to warm up, then `runs` times, and summarises.
pub fn time<F: FnMut()>(runs: usize, mut f: F) -> Timing {
    f();
    Timing::of(
        (0..runs.max(1))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

/// The share of `exact`'s ids that `got` found (recall@k with k = `exact.len()`); 1 for an empty
/// `exact`. The one recall every benchmark and index report uses.
pub fn recall(exact: &[i64], got: &[i64]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    got.iter().filter(|id| exact.contains(id)).count() as f64 / exact.len() as f64
}

/// Unit queries that mix one row with the mean of three others, as a blended feed does.
pub fn blended_queries(index: &crate::recommend::FlatIndex, count: usize, seed: u64) -> Vec<Vec<f32>> {
    use crate::recommend::VectorIndex;
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let mut q = index.vector(rng.below(index.len())).to_vec();
            for _ in 0..3 {
                let r = rng.below(index.len());
                q.iter_mut()
                    .zip(index.vector(r).iter())
                    .for_each(|(a, b)| *a += b / 3.0);
            }
            normalize(&mut q);
            q
        })
        .collect()
}

/// Writes a catalogue of `n` synthetic products with `dim`-d vectors (an active model included)
/// for start-up benchmarks. The photos do not exist.
pub fn write_synthetic_catalog(path: &std::path::Path, n: usize, dim: usize, seed: u64) -> crate::Result<()> {
    write_synthetic_catalog_as(path, n, dim, seed, None)
}

/// [`write_synthetic_catalog`] with the vectors stored under `spec` (of length `dim`) instead of
/// a model of no weights, so a photo query loads a real model and searches `n` vectors.
pub fn write_synthetic_catalog_as(
    path: &std::path::Path,
    n: usize,
    dim: usize,
    seed: u64,
    spec: Option<&crate::catalog::ModelSpec>,
) -> crate::Result<()> {
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
                ..Default::default()
            };
            crate::catalog::products_upsert(&mut tx, &u, 0)?;
        }
        tx.commit()?;
    }
    cat.set_setting("image_root", ".")?;
    let synthetic = ModelSpec {
        name: "synthetic".into(),
        architecture: "none".into(),
        weights_sha256: "synthetic".into(),
        preprocessing: "none".into(),
        pooling: "avg".into(),
        dim,
        head_id: None,
    };
    let spec = match spec {
        Some(s) if s.dim == dim => s,
        Some(s) => {
            return Err(crate::Error::Invalid(format!(
                "model {} has {}-d vectors, not {dim}",
                s.name, s.dim
            )));
        }
        None => &synthetic,
    };
    let model = cat.register_model(spec)?;
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

/// Writes a shop's history as H&M's `transactions_train.csv` for the synthetic products
/// `1..=products`: `shoppers` shoppers, about `events` purchases over a year from 2019-01-07.
/// Each shopper has two favourite article types (of [`synthetic_products`]' eight) and buys
/// mostly those, from a popular head; one purchase in ten is a basic bought again. Returns the
/// rows written. For benchmarks: its shape, not its quality, is what matters.
pub fn write_synthetic_history(
    path: &std::path::Path,
    products: usize,
    shoppers: usize,
    events: usize,
    seed: u64,
) -> crate::Result<usize> {
    use std::io::Write;
    let mut rng = Rng::new(seed);
    let file = std::fs::File::create(path).map_err(|e| crate::Error::io(path, e))?;
    let mut w = std::io::BufWriter::new(file);
    let io = |e| crate::Error::io(path, e);
    writeln!(w, "t_dat,customer_id,article_id,price,sales_channel_id").map_err(io)?;
    // Day by day, so the file is sorted by date as H&M's is.
    let per_day = events.div_ceil(365).max(1);
    let types = 8;
    let per_type = (products / types).max(1);
    let mut last: Vec<Option<usize>> = vec![None; shoppers.max(1)];
    let mut written = 0;
    for day in 0..365 {
        let (y, m, d) = crate::dates::civil(17_903 + day as i64); // 2019-01-07
        for _ in 0..per_day.min(events - written.min(events)) {
            let s = rng.below(shoppers.max(1));
            let favourite = (s * 7 + rng.below(2) * 3) % types;
            let product = match last[s] {
                Some(p) if rng.below(10) == 0 => p,
                _ => {
                    // A popular head: the square of a uniform number leans to low ranks.
                    let u = rng.unit();
                    let rank = ((u * u) * per_type as f32) as usize;
                    1 + (rank * types + favourite) % products.max(1)
                }
            };
            last[s] = Some(product);
            writeln!(w, "{y:04}-{m:02}-{d:02},shopper{s},{product},0.02,2").map_err(io)?;
            written += 1;
        }
    }
    w.flush().map_err(io)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_recall_are_what_they_say() {
        let t = Timing::of(vec![5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((t.runs, t.p50_ms, t.p95_ms, t.min_ms), (5, 3.0, 5.0, 1.0));
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(recall(&[1, 2, 3, 4], &[4, 9, 1]), 0.5);
        assert_eq!(recall(&[], &[1]), 1.0);
    }
}
