//! An inverted-file index (IVF-flat) for catalogues too large to scan per key press.
//!
//! Spherical k-means splits the rows into `nlist` lists around unit centroids. A search scores
//! the centroids, scans the rows of the `nprobe` nearest lists exactly (f32, the same cosine as
//! [`FlatIndex`]) and keeps the best `k`. A row is missed only when its list is not probed, so
//! recall is list coverage: at build time the index measures it on queries drawn from its own
//! rows (single products and means of three, like a taste profile) and picks the smallest
//! `nprobe` that reaches [`TARGET_RECALL`] at k = 10. Nothing is approximated inside a list.
//! A search whose filter drops more than half of the scanned rows falls back to the exact scan:
//! a narrow filter's best rows lie far from the query, where the centroids say little.

use candle_core::{Device, Tensor};

use super::index::{FlatIndex, VectorIndex, dot, normalize, top_k};
use crate::catalog::EmbeddingMatrix;
use crate::sample::Rng;
use crate::{Error, Result};

/// From this many rows on the engine searches with IVF. At 5,038 real 2048-d vectors an exact
/// scan takes about 4 ms and IVF 0.4 ms with recall@10 1.000 (`lookbook bench --db`), which
/// matters when a server answers fifty people's key presses on two cores; below it (the demo's
/// 2,115) the scan is quick enough and building lists would only delay the first frame.
pub const IVF_MIN_ROWS: usize = 4096;

/// Mean recall@10 against exact search that `nprobe` is chosen to reach on the calibration
/// queries (issue 13 asks for at least 0.98; the margin covers queries unlike the calibration's).
pub const TARGET_RECALL: f32 = 0.995;

/// k-means rounds on the training sample: the lists change little after about six, and
/// calibration makes up for what is left by probing more.
const ROUNDS: usize = 8;

/// Training sample per list: enough points that every centroid is a mean of dozens.
const SAMPLE_PER_LIST: usize = 40;

/// Calibration queries (half single rows, half means of three rows).
const CALIBRATION_QUERIES: usize = 96;

/// Rows per matrix product when assigning: bounds the score block to a few tens of MB.
const ASSIGN_CHUNK: usize = 4096;

/// An IVF-flat index over the rows of a [`FlatIndex`], which it owns and delegates to.
pub struct IvfIndex {
    flat: FlatIndex,
    /// `nlist * dim` unit centroids, row-major.
    centroids: Vec<f32>,
    /// Rows of each list.
    lists: Vec<Vec<u32>>,
    nprobe: usize,
    /// Calibrated mean recall@10 at `nprobe`.
    recall: f32,
}

impl IvfIndex {
    /// Builds lists with about `sqrt(rows)` centroids, seeded so a catalogue always gets the same
    /// index, and calibrates `nprobe`.
    pub fn build(matrix: EmbeddingMatrix) -> Result<Self> {
        let nlist = ((matrix.len() as f64).sqrt().round() as usize).clamp(1, 4096);
        Self::with_lists(matrix, nlist)
    }

    /// Same with a chosen number of lists.
    pub fn with_lists(matrix: EmbeddingMatrix, nlist: usize) -> Result<Self> {
        let n = matrix.len();
        let dim = matrix.dim;
        if n == 0 || dim == 0 {
            return Err(Error::Invalid("an IVF index needs at least one vector".into()));
        }
        let nlist = nlist.clamp(1, n);
        let mut rng = Rng::new(0x1f_1ab5);
        let sample: Vec<usize> = if n <= nlist * SAMPLE_PER_LIST {
            (0..n).collect()
        } else {
            let mut all: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut all);
            all.truncate(nlist * SAMPLE_PER_LIST);
            all
        };
        let mut centroids: Vec<f32> = Vec::with_capacity(nlist * dim);
        for &r in sample.iter().take(nlist) {
            centroids.extend_from_slice(matrix.row(r));
        }
        for _ in 0..ROUNDS {
            let assign = nearest(&matrix, &sample, &centroids, dim)?;
            let mut sums = vec![0.0f32; nlist * dim];
            let mut counts = vec![0usize; nlist];
            for (&r, &c) in sample.iter().zip(&assign) {
                counts[c] += 1;
                sums[c * dim..(c + 1) * dim]
                    .iter_mut()
                    .zip(matrix.row(r))
                    .for_each(|(s, x)| *s += x);
            }
            for c in 0..nlist {
                let centre = &mut sums[c * dim..(c + 1) * dim];
                // An empty list takes a random point, so no centroid is wasted.
                if counts[c] == 0 || !normalize(centre) {
                    centre.copy_from_slice(matrix.row(sample[rng.below(sample.len())]));
                }
            }
            centroids = sums;
        }
        let all: Vec<usize> = (0..n).collect();
        let assign = nearest(&matrix, &all, &centroids, dim)?;
        let mut lists = vec![Vec::new(); nlist];
        for (r, &c) in assign.iter().enumerate() {
            lists[c].push(r as u32);
        }
        let mut index = IvfIndex {
            flat: FlatIndex::new(matrix),
            centroids,
            lists,
            nprobe: nlist,
            recall: 1.0,
        };
        index.calibrate(&mut rng)?;
        Ok(index)
    }

    /// Number of lists.
    pub fn lists(&self) -> usize {
        self.lists.len()
    }

    /// Lists scanned per search.
    pub fn nprobe(&self) -> usize {
        self.nprobe
    }

    /// Mean recall@10 against exact search measured at build time.
    pub fn calibrated_recall(&self) -> f32 {
        self.recall
    }

    /// The exact index underneath.
    pub fn flat(&self) -> &FlatIndex {
        &self.flat
    }

    /// Lists ordered by their centroid's cosine with `query`, best first.
    fn ranked_lists(&self, query: &[f32]) -> Vec<usize> {
        let dim = self.flat.dim();
        let scores: Vec<f32> = self.centroids.chunks_exact(dim).map(|c| dot(query, c)).collect();
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order
    }

    /// Picks the smallest `nprobe` whose list coverage of the exact top 10 reaches the target.
    fn calibrate(&mut self, rng: &mut Rng) -> Result<()> {
        let n = self.flat.len();
        let dim = self.flat.dim();
        let mut list_of = vec![0usize; n];
        for (c, rows) in self.lists.iter().enumerate() {
            rows.iter().for_each(|&r| list_of[r as usize] = c);
        }
        // rank of each exact top-10 row's list, per query
        let mut ranks: Vec<usize> = Vec::new();
        for q in 0..CALIBRATION_QUERIES {
            let mut query = vec![0.0f32; dim];
            let parts = if q % 2 == 0 { 1 } else { 3 };
            for _ in 0..parts {
                let r = rng.below(n);
                query.iter_mut().zip(self.flat.vector(r)).for_each(|(a, b)| *a += b);
            }
            if !normalize(&mut query) {
                continue;
            }
            let mut pos = vec![0usize; self.lists.len()];
            for (i, c) in self.ranked_lists(&query).into_iter().enumerate() {
                pos[c] = i;
            }
            let exact = self.flat.search(&query, 10, &|_| true);
            ranks.extend(exact.iter().map(|&(r, _)| pos[list_of[r]]));
        }
        if ranks.is_empty() {
            return Ok(());
        }
        ranks.sort_unstable();
        let need = ((ranks.len() as f32) * TARGET_RECALL).ceil() as usize;
        let nprobe = ranks[need.clamp(1, ranks.len()) - 1] + 1;
        self.nprobe = nprobe.clamp(1, self.lists.len());
        self.recall = ranks.iter().filter(|&&p| p < self.nprobe).count() as f32 / ranks.len() as f32;
        Ok(())
    }
}

/// The nearest centroid of each listed row, by matrix products in chunks.
fn nearest(matrix: &EmbeddingMatrix, rows: &[usize], centroids: &[f32], dim: usize) -> Result<Vec<usize>> {
    let nlist = centroids.len() / dim;
    let cpu = Device::Cpu;
    let c = Tensor::from_slice(centroids, (nlist, dim), &cpu)
        .and_then(|t| t.t())
        .map_err(|e| Error::Invalid(format!("IVF centroids: {e}")))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut block = Vec::with_capacity(ASSIGN_CHUNK * dim);
    for chunk in rows.chunks(ASSIGN_CHUNK) {
        block.clear();
        chunk.iter().for_each(|&r| block.extend_from_slice(matrix.row(r)));
        let best = Tensor::from_slice(&block, (chunk.len(), dim), &cpu)
            .and_then(|x| x.matmul(&c))
            .and_then(|s| s.argmax(1))
            .and_then(|a| a.to_vec1::<u32>())
            .map_err(|e| Error::Invalid(format!("IVF assignment: {e}")))?;
        out.extend(best.into_iter().map(|b| b as usize));
    }
    Ok(out)
}

impl VectorIndex for IvfIndex {
    fn dim(&self) -> usize {
        self.flat.dim()
    }
    fn len(&self) -> usize {
        self.flat.len()
    }
    fn id(&self, row: usize) -> i64 {
        self.flat.id(row)
    }
    fn row(&self, id: i64) -> Option<usize> {
        self.flat.row(id)
    }
    fn vector(&self, row: usize) -> &[f32] {
        self.flat.vector(row)
    }
    fn search(&self, query: &[f32], k: usize, allow: &(dyn Fn(usize) -> bool + Sync)) -> Vec<(usize, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let order = self.ranked_lists(query);
        // Lists the calibration asked for, and more for long lists: the calibration is for a top
        // 10, and a 200-long feed reaches further out.
        let want_lists = (self.nprobe as f64 * (k as f64 / 10.0).sqrt().max(1.0)).ceil() as usize;
        let mut cand: Vec<(usize, f32)> = Vec::new();
        let mut scanned = 0usize;
        for (probed, &c) in order.iter().enumerate() {
            if probed >= want_lists && cand.len() >= k.saturating_mul(2) {
                break;
            }
            if probed == self.nprobe && cand.len() * 2 < scanned {
                // A filter that drops more than half of the rows: its best rows lie beyond the
                // calibrated lists, where centroids say little. The exact scan never misses.
                return self.flat.search(query, k, allow);
            }
            for &r in &self.lists[c] {
                let r = r as usize;
                scanned += 1;
                if allow(r) {
                    cand.push((r, dot(query, self.flat.vector(r))));
                }
            }
        }
        let scores: Vec<f32> = cand.iter().map(|c| c.1).collect();
        top_k(&scores, k, |_| true)
            .into_iter()
            .map(|(i, s)| (cand[i].0, s))
            .collect()
    }
    fn describe(&self) -> String {
        format!(
            "IVF-flat, {} lists, {} probed (recall@10 {:.3} at build)",
            self.lists.len(),
            self.nprobe,
            self.recall
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::synthetic_matrix;

    fn recall(a: &[(usize, f32)], b: &[(usize, f32)]) -> f32 {
        let want: std::collections::HashSet<usize> = b.iter().map(|x| x.0).collect();
        a.iter().filter(|x| want.contains(&x.0)).count() as f32 / b.len().max(1) as f32
    }

    #[test]
    fn probes_few_lists_and_matches_exact_search() {
        let m = synthetic_matrix(6000, 48, 3);
        let flat = FlatIndex::new(m.clone());
        let ivf = IvfIndex::build(m).unwrap();
        assert_eq!(ivf.lists(), 77);
        assert!(
            ivf.nprobe() < ivf.lists() / 2,
            "probes {} of {}",
            ivf.nprobe(),
            ivf.lists()
        );
        let mut total = 0.0;
        let mut rng = Rng::new(5);
        for _ in 0..100 {
            // a blend of two rows, like a query plus a taste
            let (a, b) = (rng.below(6000), rng.below(6000));
            let mut q: Vec<f32> = flat.vector(a).iter().zip(flat.vector(b)).map(|(x, y)| x + y).collect();
            normalize(&mut q);
            total += recall(&ivf.search(&q, 10, &|_| true), &flat.search(&q, 10, &|_| true));
        }
        assert!(total / 100.0 >= 0.98, "recall {}", total / 100.0);
        let q = flat.vector(7).to_vec();
        let top = ivf.search(&q, 10, &|_| true);
        assert_eq!(top[0].0, 7);
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn narrow_filters_and_long_lists_are_never_short() {
        let m = synthetic_matrix(5000, 24, 4);
        let flat = FlatIndex::new(m.clone());
        let ivf = IvfIndex::build(m).unwrap();
        let q = flat.vector(11).to_vec();
        let half = |r: usize| r.is_multiple_of(2);
        assert!(recall(&ivf.search(&q, 10, &half), &flat.search(&q, 10, &half)) >= 0.9);
        for step in [3, 97] {
            let narrow = |r: usize| r.is_multiple_of(step);
            assert_eq!(
                ivf.search(&q, 10, &narrow),
                flat.search(&q, 10, &narrow),
                "1 row in {step}"
            );
        }
        assert_eq!(ivf.search(&q, 600, &|_| true).len(), 600);
        let long = ivf.search(&q, 200, &|_| true);
        assert!(recall(&long, &flat.search(&q, 200, &|_| true)) >= 0.95);
        assert!(ivf.search(&q, 10, &|r| r != 11).iter().all(|x| x.0 != 11));
    }

    #[test]
    fn building_is_deterministic() {
        let a = IvfIndex::build(synthetic_matrix(3000, 16, 8)).unwrap();
        let b = IvfIndex::build(synthetic_matrix(3000, 16, 8)).unwrap();
        assert_eq!(a.lists, b.lists);
        assert_eq!(a.nprobe, b.nprobe);
    }
}
