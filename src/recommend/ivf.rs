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

/// k-means rounds on the training sample. Calibration keeps recall whatever the lists, but
/// poor lists cost probes: at 10^6 x 256, 6 rounds on 32 points per list needed 133 probes of
/// 2,000 where 8 rounds on 40 need 18.
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
    /// List `c` is rows `starts[c]..starts[c + 1]`: the matrix is stored list by list, so a
    /// probe reads one contiguous run of memory instead of rows scattered over all of it.
    starts: Vec<usize>,
    nprobe: usize,
    /// Calibrated mean recall@10 at `nprobe`.
    recall: f32,
}

impl IvfIndex {
    /// Builds lists with about `2 sqrt(rows)` centroids, seeded so a catalogue always gets the
    /// same index, and calibrates `nprobe`. Twice the textbook `sqrt(rows)`: at 10^6 x 256 with
    /// `sqrt` lists each held five small clusters and centroid ranking needed 128 of 1,000 lists
    /// for recall 0.995; with 2,000 it needs 18.
    pub fn build(matrix: EmbeddingMatrix) -> Result<Self> {
        let nlist = ((2.0 * (matrix.len() as f64).sqrt()).round() as usize).clamp(1, 8192);
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
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&r| (assign[r], r));
        let mut starts = vec![0usize; nlist + 1];
        for &c in &assign {
            starts[c + 1] += 1;
        }
        for c in 0..nlist {
            starts[c + 1] += starts[c];
        }
        let mut matrix = matrix;
        permute_rows(&mut matrix, &order);
        let mut index = IvfIndex {
            flat: FlatIndex::new(matrix),
            centroids,
            starts,
            nprobe: nlist,
            recall: 1.0,
        };
        index.calibrate(&mut rng)?;
        Ok(index)
    }

    /// Number of lists.
    pub fn lists(&self) -> usize {
        self.starts.len() - 1
    }

    /// The rows of list `c`.
    fn list(&self, c: usize) -> std::ops::Range<usize> {
        self.starts[c]..self.starts[c + 1]
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
        for c in 0..self.lists() {
            self.list(c).for_each(|r| list_of[r] = c);
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
            let mut pos = vec![0usize; self.lists()];
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
        self.nprobe = nprobe.clamp(1, self.lists());
        self.recall = ranks.iter().filter(|&&p| p < self.nprobe).count() as f32 / ranks.len() as f32;
        Ok(())
    }
}

/// Reorders the rows (and their ids) in place so that row `i` becomes what was row `order[i]`,
/// following each cycle with one spare row: no second copy of a large matrix.
fn permute_rows(m: &mut EmbeddingMatrix, order: &[usize]) {
    let dim = m.dim;
    let mut done = vec![false; order.len()];
    let mut spare = vec![0.0f32; dim];
    for start in 0..order.len() {
        if done[start] || order[start] == start {
            done[start] = true;
            continue;
        }
        spare.copy_from_slice(&m.data[start * dim..(start + 1) * dim]);
        let spare_id = m.ids[start];
        let mut i = start;
        loop {
            done[i] = true;
            let from = order[i];
            if from == start {
                m.data[i * dim..(i + 1) * dim].copy_from_slice(&spare);
                m.ids[i] = spare_id;
                break;
            }
            m.data.copy_within(from * dim..(from + 1) * dim, i * dim);
            m.ids[i] = m.ids[from];
            i = from;
        }
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
            for r in self.list(c) {
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
            self.lists(),
            self.nprobe,
            self.recall
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::synthetic_matrix;

    /// Share of `want`'s products that `got` found; rows differ between the indexes (IVF stores
    /// them list by list), so results are compared by product id.
    fn recall(ivf: &IvfIndex, got: &[(usize, f32)], flat: &FlatIndex, want: &[(usize, f32)]) -> f32 {
        let want: std::collections::HashSet<i64> = want.iter().map(|x| flat.id(x.0)).collect();
        got.iter().filter(|x| want.contains(&ivf.id(x.0))).count() as f32 / want.len().max(1) as f32
    }

    #[test]
    fn probes_few_lists_and_matches_exact_search() {
        let m = synthetic_matrix(6000, 48, 3);
        let flat = FlatIndex::new(m.clone());
        let ivf = IvfIndex::build(m).unwrap();
        assert_eq!(ivf.lists(), 155);
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
            total += recall(
                &ivf,
                &ivf.search(&q, 10, &|_| true),
                &flat,
                &flat.search(&q, 10, &|_| true),
            );
        }
        assert!(total / 100.0 >= 0.98, "recall {}", total / 100.0);
        let q = flat.vector(7).to_vec();
        let top = ivf.search(&q, 10, &|_| true);
        assert_eq!(ivf.id(top[0].0), flat.id(7));
        assert_eq!(
            ivf.row(flat.id(7)),
            Some(top[0].0),
            "ids find their rows after the reordering"
        );
        assert!(top.windows(2).all(|w| w[0].1 >= w[1].1));
    }

    #[test]
    fn narrow_filters_and_long_lists_are_never_short() {
        let m = synthetic_matrix(5000, 24, 4);
        let flat = FlatIndex::new(m.clone());
        let ivf = IvfIndex::build(m).unwrap();
        let q = flat.vector(11).to_vec();
        let ids = |index: &dyn VectorIndex, res: Vec<(usize, f32)>| -> Vec<i64> {
            res.into_iter().map(|(r, _)| index.id(r)).collect()
        };
        let every = |step: i64| move |index: &dyn VectorIndex, r: usize| index.id(r) % step == 0;
        let half = every(2);
        let got = ivf.search(&q, 10, &|r| half(&ivf, r));
        let want = flat.search(&q, 10, &|r| half(&flat, r));
        assert!(recall(&ivf, &got, &flat, &want) >= 0.9);
        for step in [3, 97] {
            let keep = every(step);
            assert_eq!(
                ids(&ivf, ivf.search(&q, 10, &|r| keep(&ivf, r))),
                ids(&flat, flat.search(&q, 10, &|r| keep(&flat, r))),
                "1 row in {step}"
            );
        }
        assert_eq!(ivf.search(&q, 600, &|_| true).len(), 600);
        let long = ivf.search(&q, 200, &|_| true);
        assert!(recall(&ivf, &long, &flat, &flat.search(&q, 200, &|_| true)) >= 0.95);
        let me = ivf.row(flat.id(11)).unwrap();
        assert!(ivf.search(&q, 10, &|r| r != me).iter().all(|x| x.0 != me));
    }

    #[test]
    fn building_is_deterministic() {
        let a = IvfIndex::build(synthetic_matrix(3000, 16, 8)).unwrap();
        let b = IvfIndex::build(synthetic_matrix(3000, 16, 8)).unwrap();
        assert_eq!(a.starts, b.starts);
        assert_eq!(
            (0..a.len()).map(|r| a.id(r)).collect::<Vec<_>>(),
            (0..b.len()).map(|r| b.id(r)).collect::<Vec<_>>()
        );
        assert_eq!(a.nprobe, b.nprobe);
    }
}
