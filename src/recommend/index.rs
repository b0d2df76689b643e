//! The vector index contract (top-k search) and its exact implementation, a scan of an
//! in-memory matrix. [`super::ivf::IvfIndex`] is the fast one for large catalogues; an external
//! engine (pgvector) fits the same contract.

use rayon::prelude::*;

use std::borrow::Cow;
use std::collections::HashSet;

use crate::catalog::{EmbeddingMatrix, ProductFilter};

/// Rows per parallel task: large enough that scheduling is noise, small enough to split 50k rows.
const CHUNK: usize = 2048;

/// A searchable set of unit vectors addressed by row.
pub trait VectorIndex: Send + Sync {
    /// Vector length.
    fn dim(&self) -> usize;
    /// Number of rows.
    fn len(&self) -> usize;
    /// True when empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Product id of a row.
    fn id(&self, row: usize) -> i64;
    /// Row of a product id.
    fn row(&self, id: i64) -> Option<usize>;
    /// The stored vector of a row: borrowed where rows are kept as f32, rebuilt where an index
    /// keeps them compressed (an int8 IVF).
    fn vector(&self, row: usize) -> Cow<'_, [f32]>;
    /// The `k` rows with the highest cosine with `query` among rows where `allow` holds, best
    /// first, as (row, cosine). `allow` is the metadata filter and the user's feedback resolved
    /// to rows by the caller, which knows the products; rows are unit length, `query` need not be.
    fn search(&self, query: &[f32], k: usize, allow: &(dyn Fn(usize) -> bool + Sync)) -> Vec<(usize, f32)>;
    /// The same search with the filter and the excluded products also given as data, for an
    /// index in an external engine that filters in its own query language (pgvector's SQL). An
    /// in-memory index needs only `allow`, which the engine resolves from the two.
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        exclude: &HashSet<i64>,
        allow: &(dyn Fn(usize) -> bool + Sync),
    ) -> crate::Result<Vec<(usize, f32)>> {
        let _ = (filter, exclude);
        Ok(self.search(query, k, allow))
    }
    /// One line on what kind of index this is (for `bench` and logs).
    fn describe(&self) -> String;
}

/// Brute-force index over one contiguous matrix: exact, and fast enough to 10^6 rows.
pub struct FlatIndex {
    matrix: EmbeddingMatrix,
    /// (id, row) sorted by id, when the rows are not in id order (IVF stores them list by list).
    by_id: Option<Vec<(i64, u32)>>,
}

impl FlatIndex {
    /// Wraps a loaded matrix, its rows in any order.
    pub fn new(matrix: EmbeddingMatrix) -> Self {
        let sorted = matrix.ids.windows(2).all(|w| w[0] < w[1]);
        let by_id = (!sorted).then(|| {
            let mut v: Vec<(i64, u32)> = matrix.ids.iter().enumerate().map(|(r, &id)| (id, r as u32)).collect();
            v.sort_unstable();
            v
        });
        FlatIndex { matrix, by_id }
    }

    /// Wraps a matrix with its (id, row) lookup already sorted by id (from an index file,
    /// which checked it), skipping the sort.
    pub(super) fn with_lookup(matrix: EmbeddingMatrix, by_id: Vec<(i64, u32)>) -> Self {
        FlatIndex {
            matrix,
            by_id: Some(by_id),
        }
    }

    /// (id, row) for every row, sorted by id.
    pub(super) fn lookup(&self) -> Vec<(i64, u32)> {
        match &self.by_id {
            Some(v) => v.clone(),
            None => self
                .matrix
                .ids
                .iter()
                .enumerate()
                .map(|(r, &id)| (id, r as u32))
                .collect(),
        }
    }
}

impl VectorIndex for FlatIndex {
    fn dim(&self) -> usize {
        self.matrix.dim
    }
    fn len(&self) -> usize {
        self.matrix.len()
    }
    fn id(&self, row: usize) -> i64 {
        self.matrix.ids[row]
    }
    fn row(&self, id: i64) -> Option<usize> {
        match &self.by_id {
            None => self.matrix.position(id),
            Some(v) => v.binary_search_by_key(&id, |x| x.0).ok().map(|i| v[i].1 as usize),
        }
    }
    fn vector(&self, row: usize) -> Cow<'_, [f32]> {
        Cow::Borrowed(self.matrix.row(row))
    }
    fn search(&self, query: &[f32], k: usize, allow: &(dyn Fn(usize) -> bool + Sync)) -> Vec<(usize, f32)> {
        top_k(&self.scores(query), k, allow)
    }
    fn describe(&self) -> String {
        "exact scan".into()
    }
}

impl FlatIndex {
    /// The rows and their ids.
    pub fn matrix(&self) -> &EmbeddingMatrix {
        &self.matrix
    }

    /// Gives the matrix back (rows in this index's order).
    pub fn into_matrix(self) -> EmbeddingMatrix {
        self.matrix
    }

    /// A row's vector, borrowed (what the trait's `vector` gives, without the `Cow`).
    pub fn vector(&self, row: usize) -> &[f32] {
        self.matrix.row(row)
    }

    /// Cosine of `query` with every row (rows are unit length; `query` need not be).
    pub fn scores(&self, query: &[f32]) -> Vec<f32> {
        let dim = self.matrix.dim;
        let mut out = vec![0.0f32; self.matrix.len()];
        if dim == 0 {
            return out;
        }
        out.par_chunks_mut(CHUNK)
            .zip(self.matrix.data.par_chunks(CHUNK * dim))
            .for_each(|(o, rows)| {
                for (s, r) in o.iter_mut().zip(rows.chunks_exact(dim)) {
                    *s = dot(query, r);
                }
            });
        out
    }
}

/// Dot product with eight independent accumulators so the compiler vectorises it.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Scales `v` to unit length in place; returns false (and leaves zeros) for a zero vector.
pub fn normalize(v: &mut [f32]) -> bool {
    let n = dot(v, v).sqrt();
    if !n.is_finite() || n <= 1e-12 {
        v.iter_mut().for_each(|x| *x = 0.0);
        return false;
    }
    v.iter_mut().for_each(|x| *x /= n);
    true
}

/// The `k` best (row, score) pairs among rows where `allow` holds, best first, ties by row.
pub fn top_k(scores: &[f32], k: usize, allow: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
    let mut cand: Vec<(usize, f32)> = scores
        .iter()
        .enumerate()
        .filter(|(i, s)| s.is_finite() && allow(*i))
        .map(|(i, s)| (i, *s))
        .collect();
    let by = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    if cand.len() > k {
        cand.select_nth_unstable_by(k - 1, by);
        cand.truncate(k);
    }
    cand.sort_by(by);
    cand
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(rows: &[[f32; 2]]) -> FlatIndex {
        FlatIndex::new(EmbeddingMatrix {
            model_id: 1,
            dim: 2,
            ids: (0..rows.len() as i64).map(|i| i * 10).collect(),
            data: rows.iter().flatten().copied().collect(),
        })
    }

    #[test]
    fn dot_matches_naive_on_odd_lengths() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.1).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn top_k_orders_filters_and_breaks_ties_by_row() {
        let idx = index(&[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.6, 0.8]]);
        let s = idx.scores(&[1.0, 0.0]);
        assert_eq!(
            top_k(&s, 3, |_| true).iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
        assert_eq!(
            top_k(&s, 2, |r| r != 0).iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(top_k(&s, 0, |_| true).is_empty());
        assert_eq!(idx.row(20), Some(2));
    }

    #[test]
    fn normalize_handles_zero() {
        let mut z = vec![0.0, 0.0];
        assert!(!normalize(&mut z));
        let mut v = vec![3.0, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6);
    }
}
