//! The matrix product behind every convolution: `C = A x B` with `B` (the weights) packed once at
//! load into panels of 64 output channels, so no call repacks it.
//!
//! On CPUs with AVX-512 a hand-written micro-kernel keeps a 6 x 64 block of `C` in 24 vector
//! registers and streams `A` and one panel of `B` through them, a few hundred values of the
//! shared dimension at a time so the panel stays in L1. With AVX2 and FMA the same loop runs a
//! 6 x 16 block in 12 registers, a quarter of a panel at a time. Elsewhere (ARM) each panel goes
//! through the `gemm` crate. All are checked against a plain triple loop in the tests.
//!
//! Why not the `gemm` crate on x86 too: it packs both operands on every call, and a call can
//! take only one panel, so a 1x1 convolution's activations were packed again for each 64
//! output channels; on AVX2 the expanding 1x1 convolutions ran at 26-32 GMAC/s through it
//! against 85 on lookbook's kernel with AVX-512 on the same machine.

use super::cpu::Kernels;

/// Output channels per packed panel (four AVX-512 registers of f32).
pub const NR: usize = 64;
/// Rows of `C` per micro-kernel call: 6 x 4 accumulators plus four of `B` fill 28 of 32 vector
/// registers, and the six row pointers of `A` fit the general registers (more rows spill them).
const MR: usize = 6;
/// Values of the shared dimension per pass: one panel slice is `KC x NR` floats, 32 KB, in L1.
const KC: usize = 128;

/// Weights `k x n` packed as `ceil(n / NR)` panels, each `k x NR` row-major, zero-padded.
pub struct Packed {
    data: super::slab::Slab<f32>,
    /// Rows (the shared dimension).
    pub k: usize,
    /// Columns (output channels).
    pub n: usize,
}

impl Packed {
    /// Packs a row-major `k x n` matrix.
    #[cfg(test)]
    pub fn new(w: &[f32], k: usize, n: usize) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for (j, panel) in data.chunks_exact_mut(k * NR).enumerate() {
            let c0 = j * NR;
            let width = NR.min(n - c0);
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                row[..width].copy_from_slice(&w[p * n + c0..p * n + c0 + width]);
            }
        }
        Packed {
            data: super::slab::Slab::Owned(data),
            k,
            n,
        }
    }

    /// Packs `n` columns of length `k`, each written by `column(j, out)`, panels in parallel.
    pub fn from_columns(k: usize, n: usize, column: impl Fn(usize, &mut [f32]) + Sync) -> Self {
        use rayon::prelude::*;
        let mut data = vec![0.0f32; n.div_ceil(NR) * k * NR];
        data.par_chunks_mut(k * NR).enumerate().for_each(|(j, panel)| {
            let mut col = vec![0.0f32; k];
            for c in 0..NR.min(n - j * NR) {
                column(j * NR + c, &mut col);
                for (p, v) in col.iter().enumerate() {
                    panel[p * NR + c] = *v;
                }
            }
        });
        Packed {
            data: super::slab::Slab::Owned(data),
            k,
            n,
        }
    }

    /// Already packed values (a kept network's), or `None` unless they are `panels x k x NR`.
    pub fn from_slab(data: super::slab::Slab<f32>, k: usize, n: usize) -> Option<Self> {
        (data.len() == n.div_ceil(NR) * k * NR).then_some(Packed { data, k, n })
    }

    /// Every packed value, panel after panel (what a kept network stores).
    pub fn values(&self) -> &[f32] {
        &self.data
    }

    /// Whether the values are read from a mapped file.
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        matches!(self.data, super::slab::Slab::Mapped { .. })
    }

    /// Number of panels.
    pub fn panels(&self) -> usize {
        self.n.div_ceil(NR)
    }

    /// Applies `f` to every element (padding stays zero for any `f` with `f(0) = 0`).
    pub fn map(&mut self, f: impl Fn(f32) -> f32 + Sync) {
        use rayon::prelude::*;
        self.data.make_mut().par_iter_mut().for_each(|v| *v = f(*v));
    }

    fn panel(&self, j: usize) -> &[f32] {
        &self.data[j * self.k * NR..(j + 1) * self.k * NR]
    }

    /// Row `k` of panel `j`: the `NR` columns from `j * NR`, zero past `n`.
    pub fn panel_row(&self, j: usize, k: usize) -> &[f32] {
        &self.panel(j)[k * NR..(k + 1) * NR]
    }
}

/// The tail of a convolution, applied to each block of `C` as its last slice of the shared
/// dimension is added, so `C` is written once: plus `bias` (one per column), plus `skip` (a
/// residual laid out like `C`: row stride `ldc`, from `C`'s first row; f32, or bf16 bits for
/// the bf16 kernels), then a ReLU.
pub struct Epilogue<'a, S = f32> {
    /// One value per column of `C`.
    pub bias: Option<&'a [f32]>,
    /// A residual shaped like `C`.
    pub skip: Option<&'a [S]>,
    /// Clamp at zero last.
    pub relu: bool,
}

// By hand: derived, they would ask `S` to be `Copy` and `Default` too.
impl<S> Clone for Epilogue<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Epilogue<'_, S> {}
impl<S> Default for Epilogue<'_, S> {
    fn default() -> Self {
        Epilogue {
            bias: None,
            skip: None,
            relu: false,
        }
    }
}

impl Epilogue<'_> {
    /// The scalar form, for one value of row `r`, column `col`.
    pub fn apply(&self, v: f32, r: usize, col: usize, ldc: usize) -> f32 {
        let v = v + self.bias.map_or(0.0, |b| b[col]) + self.skip.map_or(0.0, |s| s[r * ldc + col]);
        if self.relu { v.max(0.0) } else { v }
    }

    /// [`Self::apply`] on the values of row `r` from column `col0`, in place, in the same order
    /// of additions, a pass per term so each is a plain vector loop.
    pub fn apply_row(&self, row: &mut [f32], r: usize, col0: usize, ldc: usize) {
        let cols = col0..col0 + row.len();
        if let Some(b) = self.bias {
            row.iter_mut().zip(&b[cols.clone()]).for_each(|(v, b)| *v += b);
        }
        if let Some(s) = self.skip {
            let from = r * ldc;
            row.iter_mut()
                .zip(&s[from + cols.start..from + cols.end])
                .for_each(|(v, s)| *v += s);
        }
        if self.relu {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }

    /// [`Self::apply`] on `sums` (row `r` from column `col0`) into `dst`, in one pass (the
    /// same additions in the same order as [`Self::apply_row`]).
    pub fn apply_row_into(&self, sums: &[f32], dst: &mut [f32], r: usize, col0: usize, ldc: usize) {
        let cols = col0..col0 + sums.len();
        let relu = |v: f32| if self.relu { v.max(0.0) } else { v };
        let pairs = dst.iter_mut().zip(sums);
        match (self.bias.map(|b| &b[cols.clone()]), self.skip) {
            (Some(b), Some(s)) => {
                let s = &s[r * ldc + cols.start..r * ldc + cols.end];
                pairs
                    .zip(b.iter().zip(s))
                    .for_each(|((d, v), (b, s))| *d = relu(v + b + s));
            }
            (Some(b), None) => pairs.zip(b).for_each(|((d, v), b)| *d = relu(v + b)),
            (None, Some(s)) => {
                let s = &s[r * ldc + cols.start..r * ldc + cols.end];
                pairs.zip(s).for_each(|((d, v), s)| *d = relu(v + s));
            }
            (None, None) => pairs.for_each(|(d, v)| *d = relu(*v)),
        }
    }
}

/// `C[rows, panels j0..j1] = A[rows] x B[.., panels j0..j1]`, then `epi`, for `m` rows of `A` (row stride
/// `lda`, `b.k` values used per row) into `C` (row stride `ldc`, columns beyond `b.n` untouched).
///
/// # Safety
/// `a` must hold `m` rows of stride `lda >= b.k`; `c` must be valid for `m` rows of stride `ldc`
/// covering columns `j0 * NR .. min(j1 * NR, b.n)`, written by no other thread meanwhile;
/// `epi.bias` holds `b.n` values and `epi.skip` `m` rows of stride `ldc`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm(
    kernels: Kernels,
    m: usize,
    a: *const f32,
    lda: usize,
    b: &Packed,
    j0: usize,
    j1: usize,
    c: *mut f32,
    ldc: usize,
    epi: Epilogue,
) {
    #[cfg(target_arch = "x86_64")]
    if kernels.avx512() && std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; the extents are the caller's promise.
        unsafe { avx512::gemm(m, a, lda, b, j0, j1, c, ldc, epi) };
        return;
    }
    if kernels == Kernels::Portable {
        // SAFETY: as above.
        unsafe { plain(m, a, lda, b, j0, j1, c, ldc, epi) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA; the extents are the caller's promise.
        unsafe { avx2::gemm(m, a, lda, b, j0, j1, c, ldc, epi) };
        return;
    }
    // SAFETY: as above.
    unsafe { with_gemm_crate(m, a, lda, b, j0, j1, c, ldc, epi) };
}

/// Plain Rust, one row of `C` and one panel at a time (what `LOOKBOOK_CPU=portable` runs: only
/// the SIMD the compiler finds in the target's baseline).
#[allow(clippy::too_many_arguments)]
unsafe fn plain(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &Packed,
    j0: usize,
    j1: usize,
    c: *mut f32,
    ldc: usize,
    epi: Epilogue,
) {
    let mut acc = [0.0f32; NR];
    for j in j0..j1 {
        let panel = b.panel(j);
        let width = NR.min(b.n - j * NR);
        for r in 0..m {
            acc.fill(0.0);
            // SAFETY: row r of `a` holds b.k values.
            let row = unsafe { std::slice::from_raw_parts(a.add(r * lda), b.k) };
            for (x, prow) in row.iter().zip(panel.chunks_exact(NR)) {
                acc.iter_mut().zip(prow).for_each(|(s, w)| *s += x * w);
            }
            for (q, v) in acc[..width].iter().enumerate() {
                // SAFETY: row r, column j*NR + q of C is the caller's to write.
                unsafe { *c.add(r * ldc + j * NR + q) = epi.apply(*v, r, j * NR + q, ldc) };
            }
        }
    }
}

/// Rows of `C` per call of the `gemm` crate: a call's block of one panel (`CRATE_ROWS x NR`
/// floats, 48 KB) is still in L1 or L2 when the epilogue reads it back. (Calls over all of a
/// block's rows left up to 800 KB between the product and its epilogue, which then took 9% of
/// an AVX2 forward pass at 224x224.)
const CRATE_ROWS: usize = 192;

/// Each panel through the `gemm` crate (whatever SIMD it finds: NEON on ARM), straight into `C`, then the
/// epilogue row by row while the block is in cache. (Through a scratch block with a scalar
/// epilogue, copying and the epilogue took 15% of an AVX2 forward pass at 224x224.)
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
unsafe fn with_gemm_crate(
    m: usize,
    a: *const f32,
    lda: usize,
    b: &Packed,
    j0: usize,
    j1: usize,
    c: *mut f32,
    ldc: usize,
    epi: Epilogue,
) {
    for r0 in (0..m).step_by(CRATE_ROWS) {
        let rows = CRATE_ROWS.min(m - r0);
        for j in j0..j1 {
            let (col0, width) = (j * NR, NR.min(b.n - j * NR));
            // SAFETY: rows r0.. of `a` are `rows x b.k` with stride lda; the panel is b.k x NR,
            // of which the first `width` columns are read; C's rows r0.. from column col0,
            // `width` wide, are the caller's.
            unsafe {
                gemm::gemm(
                    rows,
                    width,
                    b.k,
                    c.add(r0 * ldc + col0),
                    1,
                    ldc as isize,
                    false,
                    a.add(r0 * lda),
                    1,
                    lda as isize,
                    b.panel(j).as_ptr(),
                    1,
                    NR as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for r in r0..r0 + rows {
                // SAFETY: as above: row r, columns col0 .. col0 + width of C.
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * ldc + col0), width) };
                epi.apply_row(row, r, col0, ldc);
            }
        }
    }
}

/// The panel slice the blocked loops read after panel `j`'s slice from `k0` (the next panel's,
/// or the first panel's next slice), shared out over the `blocks` micro-kernel calls of this
/// one so each brings a few of its lines into L2. (A conv's weights come from memory: they
/// do not stay in cache between layers. With few rows per panel, as in the last stages at
/// small inputs, waiting for their first reads cost the AVX2 kernel about a quarter of its
/// speed in a benchmark whose weights were cold.)
#[cfg(target_arch = "x86_64")]
struct NextSlice<'a> {
    values: &'a [f32],
    /// Lines per call.
    per: usize,
}

#[cfg(target_arch = "x86_64")]
impl<'a> NextSlice<'a> {
    /// Floats per cache line.
    const LINE: usize = 16;

    fn after(b: &'a Packed, j: usize, j0: usize, j1: usize, k0: usize, kc: usize, blocks: usize) -> Self {
        let values: &[f32] = if j + 1 < j1 {
            &b.panel(j + 1)[k0 * NR..(k0 + kc) * NR]
        } else if k0 + kc < b.k {
            let k1 = k0 + kc;
            &b.panel(j0)[k1 * NR..(k1 + KC.min(b.k - k1)) * NR]
        } else {
            &[]
        };
        let per = (values.len() / Self::LINE).div_ceil(blocks.max(1));
        NextSlice { values, per }
    }

    /// Call `g`'s share of the lines.
    #[inline(always)]
    fn prefetch(&self, g: usize) {
        let lines = self.values.len() / Self::LINE;
        for l in g * self.per..((g + 1) * self.per).min(lines) {
            // SAFETY: l < lines, so the line lies inside the slice; prefetching cannot fault.
            unsafe {
                use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
                _mm_prefetch::<_MM_HINT_T1>(self.values.as_ptr().add(l * Self::LINE).cast());
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Epilogue, KC, MR, NR, NextSlice, Packed};
    use std::arch::x86_64::*;

    /// The blocked loop: for each slice of the shared dimension and each panel, every group of
    /// `MR` rows, so the panel slice is read from L1 by all of them.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn gemm(
        m: usize,
        a: *const f32,
        lda: usize,
        b: &Packed,
        j0: usize,
        j1: usize,
        c: *mut f32,
        ldc: usize,
        epi: Epilogue,
    ) {
        let mut k0 = 0;
        while k0 < b.k {
            let kc = KC.min(b.k - k0);
            for j in j0..j1 {
                let width = NR.min(b.n - j * NR);
                let panel = &b.panel(j)[k0 * NR..(k0 + kc) * NR];
                let next = NextSlice::after(b, j, j0, j1, k0, kc, m.div_ceil(MR));
                let mut r0 = 0;
                while r0 < m {
                    let mr = MR.min(m - r0);
                    next.prefetch(r0 / MR);
                    // SAFETY: rows r0..r0+mr of A (values k0..k0+kc) and of C (this panel's
                    // columns) lie inside the extents the caller promised.
                    unsafe {
                        let a = a.add(r0 * lda + k0);
                        let c = c.add(r0 * ldc + j * NR);
                        let last = (k0 + kc == b.k).then_some((&epi, r0, j * NR));
                        dispatch(mr, kc, a, lda, panel.as_ptr(), c, ldc, k0 > 0, width, last);
                    }
                    r0 += mr;
                }
            }
            k0 += kc;
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn dispatch(
        mr: usize,
        kc: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        add: bool,
        width: usize,
        last: Option<(&Epilogue, usize, usize)>,
    ) {
        // A last panel narrower than NR columns writes only its own.
        let mut masks = [0u16; 4];
        for (q, m) in masks.iter_mut().enumerate() {
            let w = width.saturating_sub(16 * q).min(16);
            *m = if w == 16 { 0xFFFF } else { ((1u32 << w) - 1) as u16 };
        }
        // SAFETY (every arm): forwarded from the caller.
        unsafe {
            let mut acc = [0.0f32; MR * NR];
            let out = acc.as_mut_ptr();
            match mr {
                1 => tile!(kc, a, lda, b, out; 0),
                2 => tile!(kc, a, lda, b, out; 0 1),
                3 => tile!(kc, a, lda, b, out; 0 1 2),
                4 => tile!(kc, a, lda, b, out; 0 1 2 3),
                5 => tile!(kc, a, lda, b, out; 0 1 2 3 4),
                _ => full(kc, a, lda, b, out),
            }
            write_back(&acc[..mr * NR], c, ldc, add, masks, last);
        }
    }

    /// Adds a block's sums to `C` (or writes them, on the first slice), with the epilogue on
    /// the last slice: `last` is the epilogue and the block's first row and column in `C`.
    #[target_feature(enable = "avx512f")]
    unsafe fn write_back(
        acc: &[f32],
        c: *mut f32,
        ldc: usize,
        add: bool,
        masks: [u16; 4],
        last: Option<(&Epilogue, usize, usize)>,
    ) {
        for (r, sums) in acc.chunks_exact(NR).enumerate() {
            // SAFETY: row r of the block, masked to the columns C has; bias and skip are read
            // at the same columns (the caller's promise covers them).
            unsafe {
                let row = c.wrapping_add(r * ldc);
                for (q, &m) in masks.iter().enumerate() {
                    let at = 16 * q;
                    let mut v = _mm512_loadu_ps(sums.as_ptr().add(at));
                    if add {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, row.wrapping_add(at)));
                    }
                    if let Some((epi, row0, col0)) = last {
                        if let Some(bias) = epi.bias {
                            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias.as_ptr().wrapping_add(col0 + at)));
                        }
                        if let Some(skip) = epi.skip {
                            let s = skip.as_ptr().wrapping_add((row0 + r) * ldc + col0 + at);
                            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, s));
                        }
                        if epi.relu {
                            v = _mm512_max_ps(v, _mm512_setzero_ps());
                        }
                    }
                    _mm512_mask_storeu_ps(row.wrapping_add(at), m, v);
                }
            }
        }
    }

    /// The full `6 x 64` block in assembly: 24 accumulators, four registers of the panel, and one
    /// broadcast of `A` per row and step, which the compiler would not keep out of memory.
    /// Writes the block's sums (no addition to `C`) to `out`, 6 x 64 floats.
    ///
    /// # Safety
    /// `kc >= 1`; six rows of `A` of stride `lda` hold `kc` values each; `b` holds `kc x 64`.
    #[target_feature(enable = "avx512f")]
    unsafe fn full(kc: usize, a: *const f32, lda: usize, b: *const f32, out: *mut f32) {
        let r = |i: usize| a.wrapping_add(i * lda);
        // SAFETY: reads stay inside the rows and the panel slice; writes are the 384 floats of out.
        unsafe {
            std::arch::asm!(
                "vxorps zmm0, zmm0, zmm0", "vxorps zmm1, zmm1, zmm1", "vxorps zmm2, zmm2, zmm2",
                "vxorps zmm3, zmm3, zmm3", "vxorps zmm4, zmm4, zmm4", "vxorps zmm5, zmm5, zmm5",
                "vxorps zmm6, zmm6, zmm6", "vxorps zmm7, zmm7, zmm7", "vxorps zmm8, zmm8, zmm8",
                "vxorps zmm9, zmm9, zmm9", "vxorps zmm10, zmm10, zmm10", "vxorps zmm11, zmm11, zmm11",
                "vxorps zmm12, zmm12, zmm12", "vxorps zmm13, zmm13, zmm13", "vxorps zmm14, zmm14, zmm14",
                "vxorps zmm15, zmm15, zmm15", "vxorps zmm16, zmm16, zmm16", "vxorps zmm17, zmm17, zmm17",
                "vxorps zmm18, zmm18, zmm18", "vxorps zmm19, zmm19, zmm19", "vxorps zmm20, zmm20, zmm20",
                "vxorps zmm21, zmm21, zmm21", "vxorps zmm22, zmm22, zmm22", "vxorps zmm23, zmm23, zmm23",
                "xor {p}, {p}",
                "2:",
                "vmovups zmm24, [{b}]",
                "vmovups zmm25, [{b} + 64]",
                "vmovups zmm26, [{b} + 128]",
                "vmovups zmm27, [{b} + 192]",
                "vbroadcastss zmm28, dword ptr [{a0} + {p} * 4]",
                "vbroadcastss zmm29, dword ptr [{a1} + {p} * 4]",
                "vfmadd231ps zmm0, zmm24, zmm28", "vfmadd231ps zmm1, zmm25, zmm28",
                "vfmadd231ps zmm2, zmm26, zmm28", "vfmadd231ps zmm3, zmm27, zmm28",
                "vbroadcastss zmm30, dword ptr [{a2} + {p} * 4]",
                "vfmadd231ps zmm4, zmm24, zmm29", "vfmadd231ps zmm5, zmm25, zmm29",
                "vfmadd231ps zmm6, zmm26, zmm29", "vfmadd231ps zmm7, zmm27, zmm29",
                "vbroadcastss zmm31, dword ptr [{a3} + {p} * 4]",
                "vfmadd231ps zmm8, zmm24, zmm30", "vfmadd231ps zmm9, zmm25, zmm30",
                "vfmadd231ps zmm10, zmm26, zmm30", "vfmadd231ps zmm11, zmm27, zmm30",
                "vbroadcastss zmm28, dword ptr [{a4} + {p} * 4]",
                "vfmadd231ps zmm12, zmm24, zmm31", "vfmadd231ps zmm13, zmm25, zmm31",
                "vfmadd231ps zmm14, zmm26, zmm31", "vfmadd231ps zmm15, zmm27, zmm31",
                "vbroadcastss zmm29, dword ptr [{a5} + {p} * 4]",
                "vfmadd231ps zmm16, zmm24, zmm28", "vfmadd231ps zmm17, zmm25, zmm28",
                "vfmadd231ps zmm18, zmm26, zmm28", "vfmadd231ps zmm19, zmm27, zmm28",
                "vfmadd231ps zmm20, zmm24, zmm29", "vfmadd231ps zmm21, zmm25, zmm29",
                "vfmadd231ps zmm22, zmm26, zmm29", "vfmadd231ps zmm23, zmm27, zmm29",
                "add {b}, 256",
                "inc {p}",
                "cmp {p}, {kc}",
                "jb 2b",
                "vmovups [{out}], zmm0", "vmovups [{out} + 64], zmm1",
                "vmovups [{out} + 128], zmm2", "vmovups [{out} + 192], zmm3",
                "vmovups [{out} + 256], zmm4", "vmovups [{out} + 320], zmm5",
                "vmovups [{out} + 384], zmm6", "vmovups [{out} + 448], zmm7",
                "vmovups [{out} + 512], zmm8", "vmovups [{out} + 576], zmm9",
                "vmovups [{out} + 640], zmm10", "vmovups [{out} + 704], zmm11",
                "vmovups [{out} + 768], zmm12", "vmovups [{out} + 832], zmm13",
                "vmovups [{out} + 896], zmm14", "vmovups [{out} + 960], zmm15",
                "vmovups [{out} + 1024], zmm16", "vmovups [{out} + 1088], zmm17",
                "vmovups [{out} + 1152], zmm18", "vmovups [{out} + 1216], zmm19",
                "vmovups [{out} + 1280], zmm20", "vmovups [{out} + 1344], zmm21",
                "vmovups [{out} + 1408], zmm22", "vmovups [{out} + 1472], zmm23",
                a0 = in(reg) r(0),
                a1 = in(reg) r(1),
                a2 = in(reg) r(2),
                a3 = in(reg) r(3),
                a4 = in(reg) r(4),
                a5 = in(reg) r(5),
                b = inout(reg) b => _,
                p = out(reg) _,
                kc = in(reg) kc,
                out = in(reg) out,
                out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
                out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
                out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
                out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _,
                out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
                out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _,
                out("zmm28") _, out("zmm29") _, out("zmm30") _, out("zmm31") _,
                options(nostack),
            );
        }
    }

    /// The sums of an `R x 64` block (into `out`, row stride 64) from `R` rows of `A` and a
    /// panel, one row per listed index. Written out per row, not as a loop, so that the 4R accumulators
    /// are registers; the pointers step with `wrapping_add` and values are read unaligned, so
    /// debug builds put no checks inside the loop.
    macro_rules! tile {
        ($kc:expr, $a:expr, $lda:expr, $b:expr, $out:expr; $($r:literal)+) => {{
            const R: usize = [$($r),+].len();
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            let rows: [*const f32; R] = [$($a.wrapping_add($r * $lda)),+];
            let mut bp = $b;
            for p in 0..$kc {
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_loadu_ps(bp.wrapping_add(16));
                let b2 = _mm512_loadu_ps(bp.wrapping_add(32));
                let b3 = _mm512_loadu_ps(bp.wrapping_add(48));
                $(
                    let av = _mm512_set1_ps(rows[$r].wrapping_add(p).read_unaligned());
                    acc[$r][0] = _mm512_fmadd_ps(av, b0, acc[$r][0]);
                    acc[$r][1] = _mm512_fmadd_ps(av, b1, acc[$r][1]);
                    acc[$r][2] = _mm512_fmadd_ps(av, b2, acc[$r][2]);
                    acc[$r][3] = _mm512_fmadd_ps(av, b3, acc[$r][3]);
                )+
                bp = bp.wrapping_add(NR);
            }
            $(
                for q in 0..4 {
                    _mm512_storeu_ps($out.wrapping_add($r * NR + 16 * q), acc[$r][q]);
                }
            )+
        }};
    }
    use tile;
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Epilogue, KC, MR, NR, NextSlice, Packed};
    use std::arch::x86_64::*;

    /// Columns of `C` per micro-kernel call: two AVX registers, a quarter of a panel.
    const NQ: usize = 16;
    /// Rows of `A` per chunk: the rows' slice of `A` (`MC x KC` floats, 96 KB) stays in L2
    /// while all quarters of all panels read it.
    const MC: usize = 192;

    /// The blocked loop: for each slice of the shared dimension, each chunk of rows, each
    /// panel and each quarter of it, every group of `MR` rows. (Chunks outside the slices,
    /// so that a chunk's rows of `C` stay in L2 between them, measured no faster.)
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn gemm(
        m: usize,
        a: *const f32,
        lda: usize,
        b: &Packed,
        j0: usize,
        j1: usize,
        c: *mut f32,
        ldc: usize,
        epi: Epilogue,
    ) {
        let mut k0 = 0;
        while k0 < b.k {
            let kc = KC.min(b.k - k0);
            for m0 in (0..m).step_by(MC) {
                let m1 = (m0 + MC).min(m);
                let groups = (m1 - m0).div_ceil(MR);
                for j in j0..j1 {
                    let width = NR.min(b.n - j * NR);
                    let panel = &b.panel(j)[k0 * NR..(k0 + kc) * NR];
                    let quarters = width.div_ceil(NQ);
                    let next = NextSlice::after(b, j, j0, j1, k0, kc, quarters * groups);
                    for q in 0..quarters {
                        let (col, wq) = (j * NR + q * NQ, NQ.min(width - q * NQ));
                        let last = k0 + kc == b.k;
                        let mut r0 = m0;
                        while r0 < m1 {
                            let mr = MR.min(m1 - r0);
                            next.prefetch(q * groups + (r0 - m0) / MR);
                            // The next block's rows of C (and of the residual, on the last
                            // slice) are 64 bytes each, a row of C apart, which the hardware
                            // prefetchers do not see coming: ask for them while this block
                            // computes.
                            for r in r0 + mr..(r0 + 2 * mr).min(m1) {
                                let at = r * ldc + col;
                                prefetch(c.wrapping_add(at));
                                prefetch(c.wrapping_add(at + NQ - 1));
                                if let (true, Some(skip)) = (last, epi.skip) {
                                    prefetch(skip.as_ptr().wrapping_add(at));
                                    prefetch(skip.as_ptr().wrapping_add(at + NQ - 1));
                                }
                            }
                            // SAFETY: rows r0..r0+mr of A (values k0..k0+kc) and of C (columns
                            // col..col+wq) lie inside the extents the caller promised; the
                            // quarter's slice of the panel holds kc rows of stride NR.
                            unsafe {
                                let a = a.add(r0 * lda + k0);
                                let c = c.add(r0 * ldc + col);
                                let mut acc = [0.0f32; MR * NQ];
                                block(mr, kc, a, lda, panel.as_ptr().add(q * NQ), acc.as_mut_ptr());
                                let last = last.then_some((&epi, r0, col));
                                write_back(&acc[..mr * NQ], c, ldc, k0 > 0, wq, last);
                            }
                            r0 += mr;
                        }
                    }
                }
            }
            k0 += kc;
        }
    }

    /// A hint to bring the line holding `p` into cache (never faults, whatever `p` is).
    #[inline(always)]
    fn prefetch(p: *const f32) {
        // SAFETY: prefetching reads nothing and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }

    /// The sums of an `mr x 16` block into `out` (row stride 16).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block(mr: usize, kc: usize, a: *const f32, lda: usize, b: *const f32, out: *mut f32) {
        // SAFETY (every arm): forwarded from the caller.
        unsafe {
            match mr {
                1 => tile!(kc, a, lda, b, out; 0),
                2 => tile!(kc, a, lda, b, out; 0 1),
                3 => tile!(kc, a, lda, b, out; 0 1 2),
                4 => tile!(kc, a, lda, b, out; 0 1 2 3),
                5 => tile!(kc, a, lda, b, out; 0 1 2 3 4),
                _ => full(kc, a, lda, b, out),
            }
        }
    }

    /// Adds a block's sums to `C` (or writes them, on the first slice), with the epilogue on
    /// the last slice (`last`: the epilogue and the block's first row and column in `C`);
    /// `wq` of the 16 columns exist.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn write_back(
        acc: &[f32],
        c: *mut f32,
        ldc: usize,
        add: bool,
        wq: usize,
        last: Option<(&Epilogue, usize, usize)>,
    ) {
        for (r, sums) in acc.chunks_exact(NQ).enumerate() {
            let row = c.wrapping_add(r * ldc);
            if wq < NQ {
                // A last panel narrower than a multiple of 16 columns: value by value.
                for (q, s) in sums[..wq].iter().enumerate() {
                    // SAFETY: column q < wq of this row is the caller's.
                    unsafe {
                        let at = row.add(q);
                        let v = if add { s + *at } else { *s };
                        *at = match last {
                            Some((epi, row0, col0)) => epi.apply(v, row0 + r, col0 + q, ldc),
                            None => v,
                        };
                    }
                }
                continue;
            }
            for h in [0, 8] {
                // SAFETY: the 16 columns of this row exist (wq == 16), and bias and skip are
                // read at the same columns (the caller's promise covers them).
                unsafe {
                    let mut v = _mm256_loadu_ps(sums.as_ptr().add(h));
                    if add {
                        v = _mm256_add_ps(v, _mm256_loadu_ps(row.add(h)));
                    }
                    if let Some((epi, row0, col0)) = last {
                        if let Some(bias) = epi.bias {
                            v = _mm256_add_ps(v, _mm256_loadu_ps(bias.as_ptr().add(col0 + h)));
                        }
                        if let Some(skip) = epi.skip {
                            v = _mm256_add_ps(v, _mm256_loadu_ps(skip.as_ptr().add((row0 + r) * ldc + col0 + h)));
                        }
                        if epi.relu {
                            v = _mm256_max_ps(v, _mm256_setzero_ps());
                        }
                    }
                    _mm256_storeu_ps(row.add(h), v);
                }
            }
        }
    }

    /// The full `6 x 16` block in assembly: 12 accumulators, two registers of the panel and two
    /// broadcasts of `A`, 16 of 16 registers, which the compiler does not keep from spilling.
    /// Writes the block's sums to `out`, 6 x 16 floats.
    ///
    /// # Safety
    /// `kc >= 1`; six rows of `A` of stride `lda` hold `kc` values each; `b` holds `kc` rows of
    /// 16 values, `NR` apart.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn full(kc: usize, a: *const f32, lda: usize, b: *const f32, out: *mut f32) {
        let r = |i: usize| a.wrapping_add(i * lda);
        // SAFETY: reads stay inside the rows and the panel slice; writes are the 96 floats of out.
        unsafe {
            std::arch::asm!(
                "vxorps ymm0, ymm0, ymm0", "vxorps ymm1, ymm1, ymm1", "vxorps ymm2, ymm2, ymm2",
                "vxorps ymm3, ymm3, ymm3", "vxorps ymm4, ymm4, ymm4", "vxorps ymm5, ymm5, ymm5",
                "vxorps ymm6, ymm6, ymm6", "vxorps ymm7, ymm7, ymm7", "vxorps ymm8, ymm8, ymm8",
                "vxorps ymm9, ymm9, ymm9", "vxorps ymm10, ymm10, ymm10", "vxorps ymm11, ymm11, ymm11",
                "xor {p}, {p}",
                "2:",
                "vmovups ymm12, [{b}]",
                "vmovups ymm13, [{b} + 32]",
                "vbroadcastss ymm14, dword ptr [{a0} + {p} * 4]",
                "vbroadcastss ymm15, dword ptr [{a1} + {p} * 4]",
                "vfmadd231ps ymm0, ymm12, ymm14", "vfmadd231ps ymm1, ymm13, ymm14",
                "vbroadcastss ymm14, dword ptr [{a2} + {p} * 4]",
                "vfmadd231ps ymm2, ymm12, ymm15", "vfmadd231ps ymm3, ymm13, ymm15",
                "vbroadcastss ymm15, dword ptr [{a3} + {p} * 4]",
                "vfmadd231ps ymm4, ymm12, ymm14", "vfmadd231ps ymm5, ymm13, ymm14",
                "vbroadcastss ymm14, dword ptr [{a4} + {p} * 4]",
                "vfmadd231ps ymm6, ymm12, ymm15", "vfmadd231ps ymm7, ymm13, ymm15",
                "vbroadcastss ymm15, dword ptr [{a5} + {p} * 4]",
                "vfmadd231ps ymm8, ymm12, ymm14", "vfmadd231ps ymm9, ymm13, ymm14",
                "vfmadd231ps ymm10, ymm12, ymm15", "vfmadd231ps ymm11, ymm13, ymm15",
                "add {b}, 256",
                "inc {p}",
                "cmp {p}, {kc}",
                "jb 2b",
                "vmovups [{out}], ymm0", "vmovups [{out} + 32], ymm1",
                "vmovups [{out} + 64], ymm2", "vmovups [{out} + 96], ymm3",
                "vmovups [{out} + 128], ymm4", "vmovups [{out} + 160], ymm5",
                "vmovups [{out} + 192], ymm6", "vmovups [{out} + 224], ymm7",
                "vmovups [{out} + 256], ymm8", "vmovups [{out} + 288], ymm9",
                "vmovups [{out} + 320], ymm10", "vmovups [{out} + 352], ymm11",
                a0 = in(reg) r(0),
                a1 = in(reg) r(1),
                a2 = in(reg) r(2),
                a3 = in(reg) r(3),
                a4 = in(reg) r(4),
                a5 = in(reg) r(5),
                b = inout(reg) b => _,
                p = out(reg) _,
                kc = in(reg) kc,
                out = in(reg) out,
                out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
                options(nostack),
            );
        }
    }

    /// The sums of an `R x 16` block (into `out`, row stride 16) from `R` rows of `A` and a
    /// quarter of a panel (rows `NR` apart), one row per listed index, written out so the 2R
    /// accumulators are registers.
    macro_rules! tile {
        ($kc:expr, $a:expr, $lda:expr, $b:expr, $out:expr; $($r:literal)+) => {{
            const R: usize = [$($r),+].len();
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let rows: [*const f32; R] = [$($a.wrapping_add($r * $lda)),+];
            let mut bp = $b;
            for p in 0..$kc {
                let b0 = _mm256_loadu_ps(bp);
                let b1 = _mm256_loadu_ps(bp.wrapping_add(8));
                $(
                    let av = _mm256_set1_ps(rows[$r].wrapping_add(p).read_unaligned());
                    acc[$r][0] = _mm256_fmadd_ps(av, b0, acc[$r][0]);
                    acc[$r][1] = _mm256_fmadd_ps(av, b1, acc[$r][1]);
                )+
                bp = bp.wrapping_add(NR);
            }
            $(
                _mm256_storeu_ps($out.wrapping_add($r * NQ), acc[$r][0]);
                _mm256_storeu_ps($out.wrapping_add($r * NQ + 8), acc[$r][1]);
            )+
        }};
    }
    use tile;
}

/// Seeded values in -0.5..0.5, for the vision kernels' tests.
#[cfg(test)]
pub(crate) fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut r = crate::sample::Rng::new(seed);
    (0..n).map(|_| r.unit() - 0.5).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(m: usize, k: usize, n: usize, lda: usize, ldc: usize, kernels: Kernels) {
        // SAFETY: `check_by` hands over a as m x lda, c and skip as m x ldc, ldc >= n, and a
        // bias of n values.
        check_by(m, k, n, lda, ldc, &format!("{kernels:?}"), |a, b, c, epi| unsafe {
            gemm(kernels, m, a.as_ptr(), lda, b, 0, b.panels(), c.as_mut_ptr(), ldc, epi)
        });
    }

    /// `run(a, b, c, epi)` must leave `C = A x B` plus bias, residual and ReLU in `c`.
    fn check_by(
        m: usize,
        k: usize,
        n: usize,
        lda: usize,
        ldc: usize,
        label: &str,
        run: impl Fn(&[f32], &Packed, &mut [f32], Epilogue),
    ) {
        let a = noise(m * lda, 1);
        let w = noise(k * n, 2);
        let b = Packed::new(&w, k, n);
        let mut c = vec![7.0f32; m * ldc];
        let bias = noise(n, 3);
        let skip = noise(m * ldc, 4);
        let epi = Epilogue {
            bias: Some(&bias),
            skip: Some(&skip),
            relu: true,
        };
        run(&a, &b, &mut c, epi);
        for r in 0..m {
            for j in 0..ldc {
                let want = if j < n {
                    let sum = (0..k).map(|p| a[r * lda + p] * w[p * n + j]).sum::<f32>();
                    (sum + bias[j] + skip[r * ldc + j]).max(0.0)
                } else {
                    7.0
                };
                let got = c[r * ldc + j];
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{label} {m}x{k}x{n} [{r},{j}]: {got} vs {want}"
                );
            }
        }
    }

    /// Remainder rows, a narrow last panel and a narrow last quarter of one, several KC
    /// slices, more rows than one AVX2 chunk, strides wider than the data.
    const ODD_SHAPES: [(usize, usize, usize, usize, usize); 6] = [
        (1, 3, 5, 3, 5),
        (15, 147, 64, 147, 64),
        (29, 600, 70, 610, 75),
        (14, 256, 32, 256, 32),
        (3, 513, 40, 513, 41),
        (200, 300, 130, 300, 140),
    ];

    #[test]
    fn products_match_a_triple_loop_on_odd_shapes() {
        for &(m, k, n, lda, ldc) in &ODD_SHAPES {
            // Every f32 path this CPU has (portable, AVX2 and FMA, AVX-512).
            for kernels in [Kernels::Portable, Kernels::Avx2, Kernels::Avx512] {
                if kernels.here_or_skip("products_match_a_triple_loop_on_odd_shapes") {
                    check(m, k, n, lda, ldc, kernels);
                }
            }
        }
    }

    /// The `gemm` crate's path (what ARM runs), tested on every machine.
    #[test]
    fn the_gemm_crate_path_matches_a_triple_loop_on_odd_shapes() {
        for &(m, k, n, lda, ldc) in &ODD_SHAPES {
            // SAFETY: as in `check`.
            check_by(m, k, n, lda, ldc, "gemm crate", |a, b, c, epi| unsafe {
                with_gemm_crate(m, a.as_ptr(), lda, b, 0, b.panels(), c.as_mut_ptr(), ldc, epi)
            });
        }
    }

    /// The one-pass epilogue (Winograd's) gives the in-place one's values bit for bit.
    #[test]
    fn the_epilogue_into_another_row_equals_the_one_in_place() {
        let (ldc, r, col0, len) = (40, 2, 5, 29);
        let (bias, skip, sums) = (noise(ldc, 1), noise(4 * ldc, 2), noise(len, 3));
        for (with_bias, with_skip, relu) in (0..8).map(|i| (i & 1 == 1, i & 2 == 2, i & 4 == 4)) {
            let epi = Epilogue {
                bias: with_bias.then_some(&bias[..]),
                skip: with_skip.then_some(&skip[..]),
                relu,
            };
            let mut in_place = sums.clone();
            epi.apply_row(&mut in_place, r, col0, ldc);
            let mut into = vec![f32::NAN; len];
            epi.apply_row_into(&sums, &mut into, r, col0, ldc);
            assert_eq!(into, in_place, "bias {with_bias}, skip {with_skip}, relu {relu}");
            let scalar: Vec<f32> = (0..len).map(|q| epi.apply(sums[q], r, col0 + q, ldc)).collect();
            assert_eq!(into, scalar, "bias {with_bias}, skip {with_skip}, relu {relu}");
        }
    }
}
