//! A shopper's several tastes: their products clustered by look (average-link agglomerative
//! clustering on cosine similarity, as Pinterest's PinnerSage does), each cluster an interest
//! with a weight (the recency of its products, summed: a taste is not dropped because another
//! was newer), a medoid to search from and a name (its most common article type).

use super::super::index::{VectorIndex, dot, normalize};

/// One interest.
#[derive(Debug, Clone)]
pub struct Interest {
    /// Index rows of its products.
    pub rows: Vec<usize>,
    /// Summed recency weights of its products.
    pub weight: f32,
    /// The product most like the rest (the row searched from).
    pub medoid: usize,
    /// Unit mean of its products' vectors.
    pub centroid: Vec<f32>,
}

/// Products clustered per shopper at most (the most weighted ones): the clustering is cubic.
const MAX_ITEMS: usize = 60;

/// Clusters `items` (index row, weight) into at most `max` interests, heaviest first; two
/// clusters merge while their average cosine is at least `threshold`.
pub fn interests(index: &dyn VectorIndex, items: &[(usize, f32)], max: usize, threshold: f32) -> Vec<Interest> {
    let mut items: Vec<(usize, f32)> = {
        // One entry per row, weights summed.
        let mut m: std::collections::HashMap<usize, f32> = std::collections::HashMap::new();
        for &(r, w) in items {
            *m.entry(r).or_default() += w;
        }
        m.into_iter().collect()
    };
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    items.truncate(MAX_ITEMS);
    let n = items.len();
    if n == 0 || max == 0 {
        return Vec::new();
    }
    let vectors: Vec<_> = items.iter().map(|&(r, _)| index.vector(r)).collect();
    let mut sim = vec![0.0f32; n * n];
    for i in 0..n {
        for j in i..n {
            let s = dot(&vectors[i], &vectors[j]);
            sim[i * n + j] = s;
            sim[j * n + i] = s;
        }
    }
    // Clusters as lists of item positions; merge the closest pair by average link.
    let mut clusters: Vec<Vec<usize>> = (0..n).map(|i| vec![i]).collect();
    let sim = &sim;
    let link = |a: &[usize], b: &[usize]| -> f32 {
        let total: f32 = a.iter().flat_map(|&i| b.iter().map(move |&j| sim[i * n + j])).sum();
        total / (a.len() * b.len()) as f32
    };
    loop {
        let mut best: Option<(usize, usize, f32)> = None;
        for a in 0..clusters.len() {
            for b in a + 1..clusters.len() {
                let s = link(&clusters[a], &clusters[b]);
                if best.is_none_or(|(_, _, t)| s > t) {
                    best = Some((a, b, s));
                }
            }
        }
        match best {
            Some((a, b, s)) if s >= threshold => {
                let moved = clusters.swap_remove(b);
                clusters[a].extend(moved);
            }
            _ => break,
        }
    }
    let mut out: Vec<Interest> = clusters
        .into_iter()
        .map(|c| {
            let weight = c.iter().map(|&i| items[i].1).sum();
            let medoid = c
                .iter()
                .copied()
                .max_by(|&x, &y| {
                    let sx: f32 = c.iter().map(|&j| sim[x * n + j]).sum();
                    let sy: f32 = c.iter().map(|&j| sim[y * n + j]).sum();
                    sx.total_cmp(&sy).then(items[y].0.cmp(&items[x].0))
                })
                .unwrap_or(c[0]);
            let mut centroid = vec![0.0f32; index.dim()];
            for &i in &c {
                centroid.iter_mut().zip(vectors[i].iter()).for_each(|(a, b)| *a += b);
            }
            normalize(&mut centroid);
            Interest {
                rows: c.iter().map(|&i| items[i].0).collect(),
                weight,
                medoid: items[medoid].0,
                centroid,
            }
        })
        .collect();
    out.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.medoid.cmp(&b.medoid)));
    out.truncate(max);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EmbeddingMatrix;
    use crate::recommend::FlatIndex;

    #[test]
    fn two_looks_make_two_interests_and_recency_does_not_erase_the_older_one() {
        // Rows 0-2 point one way, 3-4 another; the newest (heaviest) item is row 3.
        let idx = FlatIndex::new(EmbeddingMatrix {
            model_id: 1,
            dim: 2,
            ids: vec![1, 2, 3, 4, 5],
            data: vec![1.0, 0.0, 0.99, 0.14, 0.98, -0.2, 0.0, 1.0, 0.1, 0.99],
        });
        let got = interests(&idx, &[(0, 0.3), (1, 0.3), (2, 0.3), (3, 0.6), (4, 0.1)], 4, 0.8);
        assert_eq!(got.len(), 2);
        let mut a = got[0].rows.clone();
        a.sort();
        assert_eq!(a, vec![0, 1, 2], "three older ones outweigh one new one");
        assert_eq!(got[0].medoid, 0, "the one most like the rest");
        let mut b = got[1].rows.clone();
        b.sort();
        assert_eq!(b, vec![3, 4]);
        assert_eq!(interests(&idx, &[(0, 1.0), (3, 1.0)], 1, 0.8).len(), 1, "at most max");
    }
}
