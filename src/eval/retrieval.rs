//! Look-alike quality on held-out products, for every method side by side.

use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::metrics::{Accumulator, Metrics, intra_list_diversity};
use super::{Level, baselines, is_held_out};
use crate::catalog::{Catalog, EmbeddingMatrix, Product};
use crate::recommend::rerank::{Neighbours, QUERY_EXPANSION, augment, expand};
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
    /// Also score the model's vectors with these neighbourhood re-rankings (see [`Lever`]).
    pub levers: Vec<Lever>,
}

/// One re-ranking of the model's vectors: database-side augmentation, query expansion, or
/// both (see [`crate::recommend::rerank`]), written `dba3`, `qe5`, `dba1+qe3`, with `@A` for a
/// weighting power other than 3 (`qe5@1`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lever {
    /// As written.
    pub name: String,
    /// Augmentation of the catalogue's rows.
    pub dba: Option<Neighbours>,
    /// Expansion of each query.
    pub qe: Option<Neighbours>,
}

impl std::str::FromStr for Lever {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "lever {s:?}: expected dbaN, qeN or dbaN+qeM, each with an optional @ALPHA (qe3@1)"
            ))
        };
        let mut lever = Lever {
            name: s.to_string(),
            dba: None,
            qe: None,
        };
        for part in s.split('+') {
            let (what, alpha) = match part.split_once('@') {
                Some((w, a)) => (w, a.parse::<f32>().map_err(|_| bad())?),
                None => (part, 3.0),
            };
            let (slot, n) = if let Some(n) = what.strip_prefix("dba") {
                (&mut lever.dba, n)
            } else if let Some(n) = what.strip_prefix("qe") {
                (&mut lever.qe, n)
            } else {
                return Err(bad());
            };
            let n: usize = n.parse().map_err(|_| bad())?;
            if slot.is_some() || n == 0 || n > 100 || !(0.0..=20.0).contains(&alpha) {
                return Err(bad());
            }
            *slot = Some(Neighbours { n, alpha });
        }
        Ok(lever)
    }
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
    // The learned vectors rank as `similar` ranks them, with query expansion; the baselines
    // plain. `model-plain` is the model without it, for the lever's share. Methods that rank
    // the same vectors another way share one index rather than a copy each.
    let mut indexes: Vec<(String, String, Arc<FlatIndex>, Option<Neighbours>)> = methods
        .into_iter()
        .map(|(n, d, m)| {
            let learned = n == "model" || n == "backbone";
            let (d, qe) = if learned {
                (
                    format!("{d}, queries expanded as look-alikes are"),
                    Some(QUERY_EXPANSION),
                )
            } else {
                (d, None)
            };
            (n, d, Arc::new(FlatIndex::new(restrict(m, &gallery))), qe)
        })
        .collect();
    let plain = (
        "model-plain".to_string(),
        "the same model, queries not expanded".to_string(),
        Arc::clone(&indexes[0].2),
        None,
    );
    indexes.insert(1, plain);
    if !opts.levers.is_empty() {
        let base = Arc::clone(&indexes[0].2);
        // A product's own colourways are never its neighbours, as they are never its look-alikes.
        let group = |r: usize| by_id[&base.id(r)].group.as_deref();
        let pair = |a: usize, b: usize| group(a).is_none() || group(a) != group(b);
        let mut extra = Vec::new();
        for Lever { name, dba, qe } in &opts.levers {
            let (dba, qe) = (*dba, *qe);
            progress.start(&format!("re-ranking ({name})"), 1);
            let index = match dba {
                Some(how) => Arc::new(FlatIndex::new(augment(&base, how, &pair))),
                None => Arc::clone(&base),
            };
            progress.finish();
            let what = format!(
                "the model's vectors{}{}",
                dba.map_or(String::new(), |h| format!(
                    ", each mixed with its {} nearest (alpha {})",
                    h.n, h.alpha
                )),
                qe.map_or(String::new(), |h| format!(
                    ", queries with their {} best (alpha {})",
                    h.n, h.alpha
                ))
            );
            extra.push((name.to_string(), what, index, qe));
        }
        indexes.extend(extra);
    }
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
    for (name, description, index, qe) in &indexes {
        progress.start(&format!("ranking ({name})"), queries.len());
        let lists: Vec<(Vec<bool>, usize, Vec<usize>, f64)> = queries
            .par_iter()
            .map(|&q| {
                let row = index.row(q).unwrap_or(0);
                // Look-alikes never show the query's own colourways, so neither does the eval; they
                // do count in the query's expansion, as in `Engine::recommend`.
                let group = by_id[&q].group.as_deref();
                let own = |r: usize| group.is_some() && by_id[&index.id(r)].group.as_deref() == group;
                let scores = match qe {
                    Some(how) => index.scores(&expand(index, index.vector(row), *how, |r| r != row)),
                    None => index.scores(index.vector(row)),
                };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levers_are_written_as_their_neighbour_counts() {
        let l: Lever = "dba1+qe5@1".parse().unwrap();
        assert_eq!(l.dba, Some(Neighbours { n: 1, alpha: 3.0 }));
        assert_eq!(l.qe, Some(Neighbours { n: 5, alpha: 1.0 }));
        assert_eq!("qe3".parse::<Lever>().unwrap().dba, None);
        for bad in ["qe", "qe0", "dba1+dba2", "pca", "qe3@x", "qe1000", ""] {
            assert!(bad.parse::<Lever>().is_err(), "{bad}");
        }
    }
}
