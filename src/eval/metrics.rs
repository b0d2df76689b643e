//! Ranking metrics over binary relevance, each checked against hand-computed values.

use serde::Serialize;

/// Mean metrics over a set of queries at one cut-off.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Cut-off.
    pub k: usize,
    /// Queries averaged over.
    pub queries: usize,
    /// Share of the top k that is relevant.
    pub precision: f64,
    /// Share of all relevant items found in the top k.
    pub recall: f64,
    /// Mean average precision at k (normalised by min(relevant, k)).
    pub map: f64,
    /// Normalised discounted cumulative gain at k.
    pub ndcg: f64,
    /// Share of queries with at least one relevant item in the top k.
    pub hit_rate: f64,
    /// Mean pairwise cosine distance within a result list, in the reference space.
    pub diversity: f64,
    /// Share of the gallery that appears in at least one result list.
    pub coverage: f64,
}

/// Per-query metrics: `rel[i]` says whether result i is relevant; `total` relevant items exist.
pub fn query_metrics(rel: &[bool], total: usize, k: usize) -> (f64, f64, f64, f64, f64) {
    let rel = &rel[..rel.len().min(k)];
    let hits = rel.iter().filter(|r| **r).count();
    let precision = if k == 0 { 0.0 } else { hits as f64 / k as f64 };
    let recall = if total == 0 { 0.0 } else { hits as f64 / total as f64 };
    let mut ap = 0.0;
    let mut seen = 0;
    for (i, &r) in rel.iter().enumerate() {
        if r {
            seen += 1;
            ap += seen as f64 / (i + 1) as f64;
        }
    }
    let denom = total.min(k);
    let map = if denom == 0 { 0.0 } else { ap / denom as f64 };
    let dcg: f64 = rel
        .iter()
        .enumerate()
        .filter(|(_, r)| **r)
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..total.min(k)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    let ndcg = if idcg == 0.0 { 0.0 } else { dcg / idcg };
    let hit = if hits > 0 { 1.0 } else { 0.0 };
    (precision, recall, map, ndcg, hit)
}

/// Accumulates per-query metrics into means.
#[derive(Debug, Default)]
pub struct Accumulator {
    k: usize,
    n: usize,
    sums: [f64; 6],
    seen: std::collections::HashSet<usize>,
}

impl Accumulator {
    /// Starts an accumulator for cut-off `k`.
    pub fn new(k: usize) -> Self {
        Accumulator {
            k,
            ..Default::default()
        }
    }

    /// Adds one query: relevance of its results, total relevant, their gallery rows and the
    /// list's diversity.
    pub fn add(&mut self, rel: &[bool], total: usize, rows: &[usize], diversity: f64) {
        let (p, r, m, n, h) = query_metrics(rel, total, self.k);
        for (s, v) in self.sums.iter_mut().zip([p, r, m, n, h, diversity]) {
            *s += v;
        }
        self.seen.extend(rows.iter().take(self.k));
        self.n += 1;
    }

    /// Means over the queries added; coverage against a gallery of `gallery` items.
    pub fn finish(&self, gallery: usize) -> Metrics {
        let d = self.n.max(1) as f64;
        Metrics {
            k: self.k,
            queries: self.n,
            precision: self.sums[0] / d,
            recall: self.sums[1] / d,
            map: self.sums[2] / d,
            ndcg: self.sums[3] / d,
            hit_rate: self.sums[4] / d,
            diversity: self.sums[5] / d,
            coverage: if gallery == 0 {
                0.0
            } else {
                self.seen.len() as f64 / gallery as f64
            },
        }
    }
}

/// Mean pairwise cosine distance (1 - cos) among unit vectors.
pub fn intra_list_diversity(vectors: &[&[f32]]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0;
    for i in 0..vectors.len() {
        for j in i + 1..vectors.len() {
            sum += 1.0 - crate::recommend::dot(vectors[i], vectors[j]) as f64;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn hand_computed_example() {
        // results: R N R N N, 3 relevant items exist, k = 5
        let (p, r, m, n, h) = query_metrics(&[true, false, true, false, false], 3, 5);
        assert!(close(p, 0.4));
        assert!(close(r, 2.0 / 3.0));
        // AP = (1/1 + 2/3) / 3
        assert!(close(m, (1.0 + 2.0 / 3.0) / 3.0));
        // DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4)
        let idcg = 1.0 + 1.0 / 3f64.log2() + 0.5;
        assert!(close(n, 1.5 / idcg));
        assert!(close(h, 1.0));
    }

    #[test]
    fn no_hits_and_no_relevant() {
        assert_eq!(query_metrics(&[false, false], 4, 2), (0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(query_metrics(&[false], 0, 1), (0.0, 0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn perfect_list_scores_one() {
        let (p, r, m, n, h) = query_metrics(&[true, true], 2, 2);
        assert!([p, r, m, n, h].iter().all(|v| close(*v, 1.0)));
    }

    #[test]
    fn accumulator_means_and_coverage() {
        let mut a = Accumulator::new(2);
        a.add(&[true, false], 1, &[0, 1], 0.5);
        a.add(&[false, false], 1, &[1, 2], 0.1);
        let m = a.finish(4);
        assert!(
            close(m.precision, 0.25) && close(m.hit_rate, 0.5) && close(m.coverage, 0.75) && close(m.diversity, 0.3)
        );
    }

    #[test]
    fn diversity_of_identical_and_orthogonal() {
        let a = [1.0f32, 0.0];
        let b = [0.0f32, 1.0];
        assert!(close(intra_list_diversity(&[&a, &a]), 0.0));
        assert!(close(intra_list_diversity(&[&a, &b]), 1.0));
    }
}
