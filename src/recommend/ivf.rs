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
//!
//! Large catalogues (from [`QUANTIZE_MIN_BYTES`] of f32 vectors) keep each row as int8 codes of
//! its residual from its list's centroid, with one scale per row, and no f32 copy: a quarter
//! of the memory (50,000 x 2048 is 100 MB instead of 400). A row's cosine is then the query's
//! cosine with the centroid (computed once per list) plus the scaled product with the codes;
//! residuals are much shorter than the vectors, so the rounding costs little ranking (measured
//! at build: recall@10 against exact f32 search, reported by `describe` and `lookbook bench`).

use candle_core::{Device, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;

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

/// From this many bytes of f32 vectors on, [`IvfIndex::auto`] keeps rows as int8 residuals:
/// 50,000 x 2048 (400 MB) is compressed, the shared 5,038 x 2048 (40 MB) stays exact f32.
pub const QUANTIZE_MIN_BYTES: usize = 128 << 20;

/// Narrower vectors stay f32 whatever their number: rounding each of few coordinates costs more
/// ranking (measured recall@10 against exact search with int8 residuals: 0.991 at 50,000 x 2048,
/// 0.975 at 10^6 x 256, under the 0.98 asked for).
pub const QUANTIZE_MIN_DIM: usize = 512;

/// Rows as int8 residuals from their list's centroid.
pub(super) struct Residuals {
    /// `rows * dim` codes, row-major, in the index's row order.
    pub(super) codes: Codes,
    /// Per row: residual = codes * scale.
    pub(super) scales: Vec<f32>,
    /// Per row: its list.
    pub(super) list_of: Vec<u32>,
}

/// The int8 codes: built in memory, or mapped from an index file (see `ivf_file`), where a
/// one-shot query touches only the pages of the lists it probes.
pub(super) enum Codes {
    /// Built by this process.
    Owned(Vec<i8>),
    /// A byte range of a mapped index file.
    Mapped {
        /// The mapping (never written: files are replaced whole, by rename).
        map: memmap2::Mmap,
        /// Where the codes start.
        offset: usize,
        /// How many.
        len: usize,
    },
}

impl std::ops::Deref for Codes {
    type Target = [i8];
    fn deref(&self) -> &[i8] {
        match self {
            Codes::Owned(v) => v,
            Codes::Mapped { map, offset, len } => bytemuck::cast_slice(&map[*offset..*offset + *len]),
        }
    }
}

/// f32 rows in a mapped index file (see `ivf_file`): a one-shot query reads only the pages
/// of the lists it probes, where reading them all took most of a second at 10^6 x 256.
pub(super) struct MappedRows {
    /// The mapping (never written: files are replaced whole, by rename).
    map: memmap2::Mmap,
    /// Where the rows start, a multiple of 4 from the page-aligned mapping.
    offset: usize,
    /// How many f32s.
    len: usize,
}

impl MappedRows {
    /// The f32s at `offset` of `map`, when they are in it and aligned as f32s.
    pub(super) fn new(map: memmap2::Mmap, offset: usize, len: usize) -> Option<Self> {
        let end = offset.checked_add(len.checked_mul(4)?)?;
        bytemuck::try_cast_slice::<u8, f32>(map.get(offset..end)?).ok()?;
        Some(MappedRows { map, offset, len })
    }

    /// The rows, row-major.
    pub(super) fn rows(&self) -> &[f32] {
        // `new` checked the range and the alignment.
        bytemuck::cast_slice(&self.map[self.offset..self.offset + self.len * 4])
    }
}

/// An IVF index over the rows of a [`FlatIndex`], which it owns and delegates ids to.
pub struct IvfIndex {
    /// Ids by row, and the f32 rows unless `residuals` replaced them (then its width is 0).
    pub(super) flat: FlatIndex,
    pub(super) dim: usize,
    pub(super) residuals: Option<Residuals>,
    /// The f32 rows when they are mapped from an index file (then `flat` holds only ids).
    pub(super) mapped: Option<MappedRows>,
    /// `nlist * dim` unit centroids, row-major.
    pub(super) centroids: Vec<f32>,
    /// List `c` is rows `starts[c]..starts[c + 1]`: the matrix is stored list by list, so a
    /// probe reads one contiguous run of memory instead of rows scattered over all of it.
    pub(super) starts: Vec<usize>,
    pub(super) nprobe: usize,
    /// Calibrated mean recall@10 at `nprobe`.
    pub(super) recall: f32,
}

impl IvfIndex {
    /// Builds lists with about `2 sqrt(rows)` centroids, seeded so a catalogue always gets the
    /// same index, and calibrates `nprobe`. Twice the textbook `sqrt(rows)`: at 10^6 x 256 with
    /// `sqrt` lists each held five small clusters and centroid ranking needed 128 of 1,000 lists
    /// for recall 0.995; with 2,000 it needs 18.
    pub fn build(matrix: EmbeddingMatrix) -> Result<Self> {
        let nlist = Self::default_lists(matrix.len());
        Self::with_lists(matrix, nlist, false)
    }

    /// Builds as [`IvfIndex::build`] does, keeping rows as int8 residuals (and no f32 copy)
    /// when the f32 matrix is at least `QUANTIZE_MIN_BYTES` of `QUANTIZE_MIN_DIM`-wide or wider
    /// rows: what the engine uses.
    pub fn auto(matrix: EmbeddingMatrix) -> Result<Self> {
        let compact =
            matrix.data.len() * std::mem::size_of::<f32>() >= QUANTIZE_MIN_BYTES && matrix.dim >= QUANTIZE_MIN_DIM;
        let nlist = Self::default_lists(matrix.len());
        Self::with_lists(matrix, nlist, compact)
    }

    fn default_lists(rows: usize) -> usize {
        ((2.0 * (rows as f64).sqrt()).round() as usize).clamp(1, 8192)
    }

    /// Same with a chosen number of lists, and int8 residual rows when `int8`.
    pub fn with_lists(matrix: EmbeddingMatrix, nlist: usize, int8: bool) -> Result<Self> {
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
            dim,
            residuals: None,
            mapped: None,
            centroids,
            starts,
            nprobe: nlist,
            recall: 1.0,
        };
        index.calibrate(&mut rng)?;
        if int8 {
            index.quantize(&mut rng);
        }
        Ok(index)
    }

    /// Replaces the f32 rows with int8 residuals, then measures recall@10 against the exact
    /// f32 search end to end (lists and rounding together) before the f32 rows are dropped.
    fn quantize(&mut self, rng: &mut Rng) {
        let dim = self.dim;
        let n = self.flat.len();
        let mut list_of = vec![0u32; n];
        for c in 0..self.lists() {
            self.list(c).for_each(|r| list_of[r] = c as u32);
        }
        let mut codes = vec![0i8; n * dim];
        let mut scales = vec![0.0f32; n];
        codes
            .par_chunks_mut(dim)
            .zip(scales.par_iter_mut())
            .enumerate()
            .for_each(|(r, (code, scale))| {
                let c = &self.centroids[list_of[r] as usize * dim..(list_of[r] as usize + 1) * dim];
                let x = self.flat.vector(r);
                let top = x.iter().zip(c).map(|(x, c)| (x - c).abs()).fold(0.0f32, f32::max);
                *scale = top / 127.0;
                if top > 0.0 {
                    for ((q, x), c) in code.iter_mut().zip(x).zip(c) {
                        *q = ((x - c) / *scale).round().clamp(-127.0, 127.0) as i8;
                    }
                }
            });
        self.residuals = Some(Residuals {
            codes: Codes::Owned(codes),
            scales,
            list_of,
        });
        let queries = calibration_queries(&self.flat, rng, CALIBRATION_QUERIES);
        let rows = |found: Vec<(usize, f32)>| found.iter().map(|x| x.0 as i64).collect::<Vec<_>>();
        let found: f64 = queries
            .iter()
            .map(|q| {
                let exact = rows(self.flat.search(q, 10, &|_| true));
                crate::synthetic::recall(&exact, &rows(self.search(q, 10, &|_| true)))
            })
            .sum();
        if !queries.is_empty() {
            self.recall = (found / queries.len() as f64) as f32;
        }
        let mut ids = std::mem::replace(&mut self.flat, FlatIndex::new(EmbeddingMatrix::default())).into_matrix();
        ids.data = Vec::new();
        ids.dim = 0;
        self.flat = FlatIndex::new(ids);
    }

    /// Row `r` of an index that keeps f32 rows, in memory or mapped.
    fn f32_row(&self, r: usize) -> &[f32] {
        match &self.mapped {
            Some(m) => &m.rows()[r * self.dim..(r + 1) * self.dim],
            None => self.flat.vector(r),
        }
    }

    /// The f32 rows, row-major (empty for int8 rows), for saving.
    pub(super) fn f32_rows(&self) -> &[f32] {
        match &self.mapped {
            Some(m) => m.rows(),
            None => &self.flat.matrix().data,
        }
    }

    /// True when rows are kept as int8 residuals.
    pub fn is_int8(&self) -> bool {
        self.residuals.is_some()
    }

    /// Bytes held by the rows (f32 or codes and scales), for `bench`.
    pub fn row_bytes(&self) -> usize {
        match &self.residuals {
            Some(r) => r.codes.len() + r.scales.len() * 4 + r.list_of.len() * 4,
            None => self.flat.len() * self.dim * 4,
        }
    }

    /// Cosine of `query` with row `r`, given the query's cosines with the centroids.
    fn score(&self, query: &[f32], centroid_scores: &[f32], r: usize) -> f32 {
        match &self.residuals {
            Some(res) => {
                let code = &res.codes[r * self.dim..(r + 1) * self.dim];
                centroid_scores[res.list_of[r] as usize] + res.scales[r] * dot_i8(query, code)
            }
            None => dot(query, self.f32_row(r)),
        }
    }

    /// Every row scored (the exact fallback); for int8 rows exact up to the rounding.
    fn scan_all(
        &self,
        query: &[f32],
        k: usize,
        allow: &(dyn Fn(usize) -> bool + Sync),
        cs: &[f32],
    ) -> Vec<(usize, f32)> {
        if self.residuals.is_none() && self.mapped.is_none() {
            return self.flat.search(query, k, allow);
        }
        let scores: Vec<f32> = (0..self.flat.len())
            .into_par_iter()
            .with_min_len(1024)
            .map(|r| if allow(r) { self.score(query, cs, r) } else { f32::NAN })
            .collect();
        top_k(&scores, k, |_| true)
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

    /// Lists ordered by their centroid's cosine with `query`, best first, and those cosines.
    fn ranked_lists(&self, query: &[f32]) -> (Vec<usize>, Vec<f32>) {
        let scores: Vec<f32> = self.centroids.chunks_exact(self.dim).map(|c| dot(query, c)).collect();
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        (order, scores)
    }

    /// Picks the smallest `nprobe` whose list coverage of the exact top 10 reaches the target.
    fn calibrate(&mut self, rng: &mut Rng) -> Result<()> {
        let n = self.flat.len();
        let mut list_of = vec![0usize; n];
        for c in 0..self.lists() {
            self.list(c).for_each(|r| list_of[r] = c);
        }
        // rank of each exact top-10 row's list, per query
        let mut ranks: Vec<usize> = Vec::new();
        for query in calibration_queries(&self.flat, rng, CALIBRATION_QUERIES) {
            let mut pos = vec![0usize; self.lists()];
            for (i, c) in self.ranked_lists(&query).0.into_iter().enumerate() {
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

/// Unit queries drawn from the rows: half single rows, half means of three (like a taste).
fn calibration_queries(flat: &FlatIndex, rng: &mut Rng, count: usize) -> Vec<Vec<f32>> {
    let n = flat.len();
    (0..count)
        .filter_map(|q| {
            let mut query = vec![0.0f32; flat.dim()];
            for _ in 0..if q % 2 == 0 { 1 } else { 3 } {
                query
                    .iter_mut()
                    .zip(flat.vector(rng.below(n)))
                    .for_each(|(a, b)| *a += b);
            }
            normalize(&mut query).then_some(query)
        })
        .collect()
}

/// Dot product of an f32 query with int8 codes, sixteen accumulators so it vectorises.
#[inline]
fn dot_i8(q: &[f32], c: &[i8]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (qa, ca) = (q.chunks_exact(16), c.chunks_exact(16));
    let tail: f32 = qa
        .remainder()
        .iter()
        .zip(ca.remainder())
        .map(|(x, &y)| x * y as f32)
        .sum();
    for (x, y) in qa.zip(ca) {
        for i in 0..16 {
            acc[i] += x[i] * y[i] as f32;
        }
    }
    acc.iter().sum::<f32>() + tail
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
        self.dim
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
    fn vector(&self, row: usize) -> Cow<'_, [f32]> {
        match &self.residuals {
            Some(res) => {
                let c = res.list_of[row] as usize;
                let centre = &self.centroids[c * self.dim..(c + 1) * self.dim];
                let code = &res.codes[row * self.dim..(row + 1) * self.dim];
                let s = res.scales[row];
                Cow::Owned(centre.iter().zip(code).map(|(c, &q)| c + s * q as f32).collect())
            }
            None => Cow::Borrowed(self.f32_row(row)),
        }
    }
    fn search(&self, query: &[f32], k: usize, allow: &(dyn Fn(usize) -> bool + Sync)) -> Vec<(usize, f32)> {
        if k == 0 {
            return Vec::new();
        }
        let (order, cs) = self.ranked_lists(query);
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
                return self.scan_all(query, k, allow, &cs);
            }
            for r in self.list(c) {
                scanned += 1;
                if allow(r) {
                    cand.push((r, self.score(query, &cs, r)));
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
            "IVF-{}, {} lists, {} probed (recall@10 {:.3} at build)",
            if self.is_int8() { "int8 residuals" } else { "flat" },
            self.lists(),
            self.nprobe,
            self.recall
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::synthetic_matrix;

    /// Share of `want`'s products that `got` found; rows differ between the indexes (IVF stores
    /// them list by list), so results are compared by product id.
    fn recall(ivf: &IvfIndex, got: &[(usize, f32)], flat: &FlatIndex, want: &[(usize, f32)]) -> f32 {
        let want: Vec<i64> = want.iter().map(|x| flat.id(x.0)).collect();
        let got: Vec<i64> = got.iter().map(|x| ivf.id(x.0)).collect();
        crate::synthetic::recall(&want, &got) as f32
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
    fn int8_rows_keep_the_ranking_in_a_quarter_of_the_memory() {
        let (n, dim) = (6000, 256);
        let m = synthetic_matrix(n, dim, 3);
        let flat = FlatIndex::new(m.clone());
        let ivf = IvfIndex::with_lists(m, 155, true).unwrap();
        assert!(ivf.is_int8() && ivf.describe().contains("int8"));
        assert!(ivf.row_bytes() * 3 < n * dim * 4, "{} bytes", ivf.row_bytes());
        assert!(ivf.calibrated_recall() >= 0.98, "{}", ivf.calibrated_recall());
        let mut rng = Rng::new(9);
        let mut total = 0.0;
        for _ in 0..100 {
            let (a, b) = (rng.below(n), rng.below(n));
            let mut q: Vec<f32> = flat.vector(a).iter().zip(flat.vector(b)).map(|(x, y)| x + y).collect();
            normalize(&mut q);
            let got = ivf.search(&q, 10, &|_| true);
            total += recall(&ivf, &got, &flat, &flat.search(&q, 10, &|_| true));
            // Scores are cosines up to the rounding.
            for (r, s) in got {
                let exact = dot(&q, flat.vector(flat.row(ivf.id(r)).unwrap()));
                assert!((s - exact).abs() < 5e-3, "{s} vs {exact}");
            }
        }
        assert!(total / 100.0 >= 0.98, "recall {}", total / 100.0);
        // A rebuilt vector is the stored one up to the rounding.
        for r in [0, 17, n - 1] {
            let v = ivf.vector(r);
            let want = flat.vector(flat.row(ivf.id(r)).unwrap());
            assert!(dot(&v, want) > 0.999, "row {r}: {}", dot(&v, want));
        }
        // The exact fallback of a narrow filter scans the codes.
        let q = flat.vector(11).to_vec();
        let keep = |index: &dyn VectorIndex, r: usize| index.id(r) % 97 == 0;
        let got = ivf.search(&q, 10, &|r| keep(&ivf, r));
        assert_eq!(got.len(), 10);
        assert!(got.iter().all(|x| ivf.id(x.0) % 97 == 0));
        assert!(recall(&ivf, &got, &flat, &flat.search(&q, 10, &|r| keep(&flat, r))) >= 0.9);
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
