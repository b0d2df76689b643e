//! Look-alike quality on held-out products, for every method side by side.

use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

use super::metrics::{Accumulator, Metrics, intra_list_diversity};
use super::{Level, baselines, is_held_out};
use crate::catalog::{Catalog, EmbeddingMatrix, Product};
use crate::recommend::{FlatIndex, VectorIndex, top_k};
use crate::{Error, Progress, Result};

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Cut-off for the table.
    pub k: usize,
    /// Relevance label.
    pub level: Level,
    /// Query ids; `None` means the held-out split.
    pub queries: Option<Vec<i64>>,
    /// Also compute the colour-histogram and raw-pixel baselines (they read every photo).
    pub baselines: bool,
    /// Largest k of the precision curve (for the plot).
    pub curve_k: usize,
}

/// One method's scores.
#[derive(Debug, Clone, Serialize)]
pub struct MethodResult {
    /// Short name (`model`, `backbone`, `colour-histogram`, `raw-pixels`).
    pub method: String,
    /// What it is.
    pub description: String,
    /// Metrics at `k`.
    pub metrics: Metrics,
    /// Precision at 1..=curve_k.
    pub precision_curve: Vec<f64>,
    /// Precision at k averaged per label first, then over labels: every type counts once,
    /// however many products it has.
    pub macro_precision: f64,
    /// Precision at k over the queries of rare labels (see [`Report::rare_under`]).
    pub rare_precision: f64,
    /// The same over the other labels.
    pub common_precision: f64,
    /// Class prototypes as queries and as a classifier (supervised; see [`super::prototypes`]).
    pub prototypes: super::prototypes::PrototypeReport,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Relevance label.
    pub level: Level,
    /// Cut-off.
    pub k: usize,
    /// Number of queries.
    pub queries: usize,
    /// Gallery size (products every method has a vector for).
    pub gallery: usize,
    /// A label is rare when fewer than this many of the catalogue's products that are not
    /// held out (its training side) have it.
    pub rare_under: usize,
    /// Queries of rare labels.
    pub rare_queries: usize,
    /// Methods, best model first.
    pub methods: Vec<MethodResult>,
}

/// Rare labels have fewer training-side products than this, by default: the issue's "under
/// 100 training photos".
pub const RARE_UNDER: usize = 100;

/// Keeps only rows whose id is in `keep`, preserving order.
fn restrict(m: EmbeddingMatrix, keep: &HashSet<i64>) -> EmbeddingMatrix {
    let mut out = EmbeddingMatrix {
        model_id: m.model_id,
        dim: m.dim,
        ..Default::default()
    };
    for (i, id) in m.ids.iter().enumerate() {
        if keep.contains(id) {
            out.ids.push(*id);
            out.data.extend_from_slice(m.row(i));
        }
    }
    out
}

/// Scores every method on the same queries and gallery.
pub fn evaluate(catalog: &Catalog, opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let model = catalog
        .active_model()?
        .ok_or_else(|| Error::NoEmbeddings { model: None })?;
    let products = catalog.products()?;
    let by_id: HashMap<i64, &Product> = products.iter().map(|p| (p.id, p)).collect();

    let mut methods: Vec<(String, String, EmbeddingMatrix)> = Vec::new();
    let main = catalog.load_embeddings(model.id)?;
    if main.is_empty() {
        return Err(Error::NoEmbeddings {
            model: Some(model.spec.name),
        });
    }
    if let Some(head_id) = model.spec.head_id {
        let head = catalog.head(head_id)?;
        methods.push((
            "model".into(),
            format!("{} + head {} ({}-d)", model.spec.name, head_id, model.spec.dim),
            main,
        ));
        let backbone = catalog.model(head.backbone_model_id)?;
        methods.push((
            "backbone".into(),
            format!("{} without head ({}-d)", backbone.spec.name, backbone.spec.dim),
            catalog.load_embeddings(backbone.id)?,
        ));
    } else {
        methods.push((
            "model".into(),
            format!(
                "{} ({}-d, {} pooling)",
                model.spec.name, model.spec.dim, model.spec.pooling
            ),
            main,
        ));
    }
    let mut gallery: HashSet<i64> = methods[0].2.ids.iter().copied().collect();
    for (_, _, m) in &methods[1..] {
        let ids: HashSet<i64> = m.ids.iter().copied().collect();
        gallery.retain(|id| ids.contains(id));
    }
    if opts.baselines {
        let ps: Vec<&Product> = products.iter().filter(|p| gallery.contains(&p.id)).collect();
        let hist = baselines::compute(catalog, &ps, baselines::colour_histogram, progress)?;
        let raw = baselines::compute(catalog, &ps, baselines::raw_pixels, progress)?;
        methods.push((
            "colour-histogram".into(),
            "8x8x8 RGB histogram of non-white pixels".into(),
            hist,
        ));
        methods.push(("raw-pixels".into(), "32x32 RGB thumbnail, mean-centred".into(), raw));
        for (_, _, m) in &methods[2..] {
            let ids: HashSet<i64> = m.ids.iter().copied().collect();
            gallery.retain(|id| ids.contains(id));
        }
    }
    let indexes: Vec<(String, String, FlatIndex)> = methods
        .into_iter()
        .map(|(n, d, m)| (n, d, FlatIndex::new(restrict(m, &gallery))))
        .collect();
    let reference = &indexes[0].2;

    let queries: Vec<i64> = match &opts.queries {
        Some(q) => {
            for id in q {
                if !gallery.contains(id) {
                    return Err(Error::NotFound(format!(
                        "query {id} is not in the catalogue or has no vector"
                    )));
                }
            }
            q.clone()
        }
        None => {
            let mut q: Vec<i64> = gallery.iter().copied().filter(|id| is_held_out(*id)).collect();
            q.sort_unstable();
            q
        }
    };
    if queries.is_empty() {
        return Err(Error::Invalid(
            "no queries: the held-out split of this catalogue is empty".into(),
        ));
    }
    let mut label_count: HashMap<&str, usize> = HashMap::new();
    let mut training_count: HashMap<&str, usize> = HashMap::new();
    for id in &gallery {
        *label_count.entry(opts.level.label(by_id[id])).or_default() += 1;
        if !is_held_out(*id) {
            *training_count.entry(opts.level.label(by_id[id])).or_default() += 1;
        }
    }
    let rare = |q: i64| training_count.get(opts.level.label(by_id[&q])).copied().unwrap_or(0) < RARE_UNDER;
    let rare_queries = queries.iter().filter(|&&q| rare(q)).count();
    let mut members: HashMap<&str, Vec<i64>> = HashMap::new();
    for id in &gallery {
        if let Some(g) = by_id[id].group.as_deref() {
            members.entry(g).or_default().push(*id);
        }
    }
    let depth = opts.k.max(opts.curve_k).max(1);
    let mut results = Vec::new();
    for (name, description, index) in &indexes {
        progress.start(&format!("ranking ({name})"), queries.len());
        let lists: Vec<(Vec<bool>, usize, Vec<usize>, f64)> = queries
            .par_iter()
            .map(|&q| {
                let row = index.row(q).unwrap_or(0);
                let scores = index.scores(index.vector(row));
                // Look-alikes never show the query's own colourways, so neither does the eval.
                let group = by_id[&q].group.as_deref();
                let own = |r: usize| group.is_some() && by_id[&index.id(r)].group.as_deref() == group;
                let top = top_k(&scores, depth, |r| r != row && !own(r));
                let label = opts.level.label(by_id[&q]);
                let same_group = group
                    .and_then(|g| members.get(g))
                    .map(|ids| {
                        ids.iter()
                            .filter(|id| **id != q && opts.level.label(by_id[*id]) == label)
                            .count()
                    })
                    .unwrap_or(0);
                let rel: Vec<bool> = top
                    .iter()
                    .map(|(r, _)| opts.level.label(by_id[&index.id(*r)]) == label)
                    .collect();
                let total = label_count
                    .get(label)
                    .copied()
                    .unwrap_or(1)
                    .saturating_sub(1 + same_group);
                let rows: Vec<usize> = top.iter().map(|(r, _)| *r).collect();
                let vecs: Vec<&[f32]> = top
                    .iter()
                    .take(opts.k)
                    .filter_map(|(r, _)| reference.row(index.id(*r)).map(|rr| reference.vector(rr)))
                    .collect();
                progress.advance(1);
                (rel, total, rows, intra_list_diversity(&vecs))
            })
            .collect();
        progress.finish();
        let mut acc = Accumulator::new(opts.k);
        let mut curve = vec![0.0; opts.curve_k];
        for (rel, total, rows, div) in &lists {
            acc.add(rel, *total, rows, *div);
            let mut hits = 0;
            for (i, c) in curve.iter_mut().enumerate() {
                if rel.get(i).copied().unwrap_or(false) {
                    hits += 1;
                }
                *c += hits as f64 / (i + 1) as f64;
            }
        }
        curve.iter_mut().for_each(|c| *c /= lists.len() as f64);
        // Per-query precision at k, gathered by label and by rarity.
        let mut per_label: HashMap<&str, (f64, usize)> = HashMap::new();
        let (mut rare_sum, mut common_sum) = (0.0, 0.0);
        for (q, (rel, ..)) in queries.iter().zip(&lists) {
            let p = rel.iter().take(opts.k).filter(|&&x| x).count() as f64 / opts.k.max(1) as f64;
            let e = per_label.entry(opts.level.label(by_id[q])).or_default();
            e.0 += p;
            e.1 += 1;
            if rare(*q) {
                rare_sum += p;
            } else {
                common_sum += p;
            }
        }
        let macro_precision =
            per_label.values().map(|(s, n)| s / *n as f64).sum::<f64>() / per_label.len().max(1) as f64;
        let common_queries = queries.len() - rare_queries;
        results.push(MethodResult {
            method: name.clone(),
            description: description.clone(),
            metrics: acc.finish(gallery.len()),
            precision_curve: curve,
            macro_precision,
            rare_precision: rare_sum / rare_queries.max(1) as f64,
            common_precision: common_sum / common_queries.max(1) as f64,
            prototypes: super::prototypes::evaluate(index, &by_id, opts.level),
        });
    }
    Ok(Report {
        level: opts.level,
        k: opts.k,
        queries: queries.len(),
        gallery: gallery.len(),
        rare_under: RARE_UNDER,
        rare_queries,
        methods: results,
    })
}
