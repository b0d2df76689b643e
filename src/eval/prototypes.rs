//! Class prototypes: the mean vector of each label's training products, used as a query and
//! as a classifier, so lookbook's vectors can be set beside published figures on the same
//! photos (issue 23). Both are supervised (the prototypes come from labelled products), which
//! the report says wherever it is compared with zero-shot text retrieval.
//!
//! - **Label to product** (the protocol of Marqo's KAGL leaderboard, with a prototype where
//!   they use the label's text): each label's prototype, built from the non-held-out products,
//!   ranks the held-out products; relevant are those of the label. P@1, P@10 and MRR, averaged
//!   over labels (macro).
//! - **Nearest-prototype classification** on the even/odd year split of
//!   uditarora/fashion-product-classification: prototypes from products of even years classify
//!   the held-out products of odd years (the backbone trained on the rest). Top-1 accuracy on
//!   the 20 commonest labels and on the rest.

use serde::Serialize;
use std::collections::HashMap;

use super::{Level, is_held_out};
use crate::catalog::Product;
use crate::recommend::{FlatIndex, VectorIndex, dot, normalize, top_k};

/// Labels counted as "common" for the classifier figure, as in the published split.
const COMMON_LABELS: usize = 20;

/// Label-to-product retrieval with prototypes as queries.
#[derive(Debug, Clone, Serialize)]
pub struct PrototypeRetrieval {
    /// Labels with a prototype and at least one held-out product.
    pub labels: usize,
    /// Macro precision@1.
    pub p_at_1: f64,
    /// Macro precision@10.
    pub p_at_10: f64,
    /// Macro mean reciprocal rank of the first relevant product.
    pub mrr: f64,
}

/// Nearest-prototype top-1 on the even/odd year split.
#[derive(Debug, Clone, Serialize)]
pub struct PrototypeClassifier {
    /// Test products (odd years) of the common labels, and the share classified right.
    pub common_tested: usize,
    /// Top-1 accuracy on the common labels.
    pub common_top1: f64,
    /// Test products of the other labels.
    pub rare_tested: usize,
    /// Top-1 accuracy on the other labels.
    pub rare_top1: f64,
}

/// Both prototype figures.
#[derive(Debug, Clone, Serialize)]
pub struct PrototypeReport {
    /// Label to product.
    pub retrieval: PrototypeRetrieval,
    /// Classifier, when the catalogue has years on both sides of the split.
    pub classifier: Option<PrototypeClassifier>,
}

/// Unit mean vectors of each label over the rows `take` accepts.
fn prototypes<'a>(
    index: &FlatIndex,
    by_id: &HashMap<i64, &'a Product>,
    level: Level,
    take: impl Fn(&Product) -> bool,
) -> Vec<(&'a str, Vec<f32>)> {
    let mut sums: HashMap<&str, Vec<f32>> = HashMap::new();
    for r in 0..index.len() {
        let Some(p) = by_id.get(&index.id(r)) else { continue };
        if !take(p) {
            continue;
        }
        let s = sums.entry(level.label(p)).or_insert_with(|| vec![0.0; index.dim()]);
        s.iter_mut().zip(index.vector(r)).for_each(|(a, b)| *a += b);
    }
    let mut out: Vec<(&str, Vec<f32>)> = sums
        .into_iter()
        .filter_map(|(l, mut v)| normalize(&mut v).then_some((l, v)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

/// The prototype figures of one method's vectors.
pub fn evaluate(index: &FlatIndex, by_id: &HashMap<i64, &Product>, level: Level) -> PrototypeReport {
    PrototypeReport {
        retrieval: retrieval(index, by_id, level),
        classifier: classifier(index, by_id, level, |p| is_held_out(p.id)),
    }
}

fn retrieval(index: &FlatIndex, by_id: &HashMap<i64, &Product>, level: Level) -> PrototypeRetrieval {
    let protos = prototypes(index, by_id, level, |p| !is_held_out(p.id));
    let held: Vec<usize> = (0..index.len()).filter(|&r| is_held_out(index.id(r))).collect();
    let label_of = |r: usize| by_id.get(&index.id(r)).map(|p| level.label(p));
    let (mut p1, mut p10, mut mrr, mut n) = (0.0, 0.0, 0.0, 0usize);
    for (label, proto) in &protos {
        if !held.iter().any(|&r| label_of(r) == Some(*label)) {
            continue;
        }
        let scores: Vec<f32> = held.iter().map(|&r| dot(proto, index.vector(r))).collect();
        let ranked = top_k(&scores, scores.len(), |_| true);
        let rel: Vec<bool> = ranked.iter().map(|&(i, _)| label_of(held[i]) == Some(*label)).collect();
        p1 += f64::from(u8::from(rel.first().copied().unwrap_or(false)));
        p10 += rel.iter().take(10).filter(|&&x| x).count() as f64 / 10.0;
        mrr += rel.iter().position(|&x| x).map_or(0.0, |i| 1.0 / (i + 1) as f64);
        n += 1;
    }
    let d = n.max(1) as f64;
    PrototypeRetrieval {
        labels: n,
        p_at_1: p1 / d,
        p_at_10: p10 / d,
        mrr: mrr / d,
    }
}

/// Nearest-prototype top-1 of the odd-year products `test` accepts.
fn classifier(
    index: &FlatIndex,
    by_id: &HashMap<i64, &Product>,
    level: Level,
    test: impl Fn(&Product) -> bool,
) -> Option<PrototypeClassifier> {
    let even = |p: &Product| p.year.is_some_and(|y| y % 2 == 0);
    let odd = |p: &Product| p.year.is_some_and(|y| y % 2 != 0);
    let protos = prototypes(index, by_id, level, even);
    if protos.is_empty() {
        return None;
    }
    // The commonest labels by training (even-year) products.
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for p in by_id.values().filter(|p| even(p)) {
        *counts.entry(level.label(p)).or_default() += 1;
    }
    let mut order: Vec<(&str, usize)> = counts.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let common: std::collections::HashSet<&str> = order.iter().take(COMMON_LABELS).map(|x| x.0).collect();
    let (mut c_ok, mut c_n, mut r_ok, mut r_n) = (0usize, 0usize, 0usize, 0usize);
    for r in 0..index.len() {
        let Some(p) = by_id.get(&index.id(r)) else { continue };
        if !odd(p) || !test(p) {
            continue;
        }
        let v = index.vector(r);
        let best = protos
            .iter()
            .map(|(l, proto)| (*l, dot(proto, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|x| x.0);
        let right = best == Some(level.label(p));
        if common.contains(level.label(p)) {
            c_n += 1;
            c_ok += usize::from(right);
        } else {
            r_n += 1;
            r_ok += usize::from(right);
        }
    }
    (c_n + r_n > 0).then(|| PrototypeClassifier {
        common_tested: c_n,
        common_top1: c_ok as f64 / c_n.max(1) as f64,
        rare_tested: r_n,
        rare_top1: r_ok as f64 / r_n.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EmbeddingMatrix;

    /// Products of two labels whose vectors point two ways, years alternating.
    fn fixture(flip_one: bool) -> (Vec<Product>, FlatIndex) {
        let mut products = Vec::new();
        let mut m = EmbeddingMatrix {
            dim: 2,
            ..Default::default()
        };
        for id in 1..=60i64 {
            let a = id % 2 == 0;
            products.push(Product {
                id,
                article_type: if a { "A".into() } else { "B".into() },
                year: Some(2010 + (id / 2) as i32),
                ..Default::default()
            });
            m.ids.push(id);
            let wrong = flip_one && id == 3;
            m.data
                .extend_from_slice(if a || wrong { &[1.0, 0.1] } else { &[0.1, 1.0] });
        }
        (products, FlatIndex::new(m))
    }

    #[test]
    fn prototypes_find_and_classify_separated_labels_and_count_a_stray() {
        let (products, index) = fixture(false);
        let by_id: HashMap<i64, &Product> = products.iter().map(|p| (p.id, p)).collect();
        let r = evaluate(&index, &by_id, Level::ArticleType);
        assert_eq!(r.retrieval.p_at_1, 1.0);
        assert_eq!(r.retrieval.mrr, 1.0);
        let c = classifier(&index, &by_id, Level::ArticleType, |_| true).unwrap();
        assert_eq!(c.common_top1, 1.0);
        assert_eq!(c.common_tested, 30, "odd years only");
        let (products, index) = fixture(true);
        let by_id: HashMap<i64, &Product> = products.iter().map(|p| (p.id, p)).collect();
        let c = classifier(&index, &by_id, Level::ArticleType, |_| true).unwrap();
        // Product 3 (label B, year 2011) points like an A.
        assert!((c.common_top1 - 29.0 / 30.0).abs() < 1e-9, "{c:?}");
    }
}
