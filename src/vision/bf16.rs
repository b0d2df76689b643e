//! bf16 for the matrix products that run in it (the AMX tiles, `vdpbf16ps`): rounding, the
//! pair-packed weight panels both read, activations converted in bulk, and the epilogue that
//! writes a block of f32 sums back as bf16. Shared by the per-CPU kernels, which import it and
//! never each other.

use super::kernel::{Epilogue, Packed};

/// Output channels per packed panel (two 16-column tiles).
pub const NR: usize = 32;

/// f32 to bf16, rounding to nearest even (NaN stays NaN).
pub fn bf16(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7FC0;
    }
    let b = x.to_bits();
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// `x` rounded to the nearest bf16, as an f32.
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16(x)) << 16)
}

/// bf16 weights for the tile multiply: panels of 32 columns; the shared dimension padded to a
/// multiple of 32 and stored in pairs (row `k2` of a panel holds, for each column, the values of
/// rows `2 k2` and `2 k2 + 1`: the layout the tile multiply reads).
pub struct PackedBf16 {
    pub(super) data: super::slab::Slab<u16>,
    /// Shared dimension padded to a multiple of 32.
    pub kp: usize,
    /// Columns.
    pub n: usize,
}

impl PackedBf16 {
    /// From f32 packed weights (panels in parallel: this is most of a model load).
    pub fn from_packed(b: &Packed) -> Self {
        use rayon::prelude::*;
        let kp = b.k.next_multiple_of(32);
        let panels = b.n.div_ceil(NR);
        let mut data = vec![0u16; panels * kp * NR];
        // Row by row of the source panel (NR = 32 columns here, half an f32 panel), so both
        // sides are read and written in order.
        let per = super::kernel::NR / NR;
        data.par_chunks_mut(kp * NR).enumerate().for_each(|(jb, panel)| {
            let width = NR.min(b.n - jb * NR);
            let at = (jb % per) * NR;
            for k in 0..b.k {
                let src = &b.panel_row(jb / per, k)[at..at + width];
                let dst = &mut panel[(k / 2) * NR * 2..(k / 2 + 1) * NR * 2];
                for (c, v) in src.iter().enumerate() {
                    dst[2 * c + k % 2] = bf16(*v);
                }
            }
        });
        PackedBf16 {
            data: super::slab::Slab::Owned(data),
            kp,
            n: b.n,
        }
    }

    /// Already packed values (a kept network's), or `None` unless they are `panels x kp x NR`
    /// with `kp` a multiple of 32.
    pub fn from_slab(data: super::slab::Slab<u16>, kp: usize, n: usize) -> Option<Self> {
        (kp.is_multiple_of(32) && data.len() == n.div_ceil(NR) * kp * NR).then_some(PackedBf16 { data, kp, n })
    }

    /// Every packed value, panel after panel (what a kept network stores).
    pub fn values(&self) -> &[u16] {
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

    /// Panel `j`: `kp / 2` pair-rows of `NR` columns.
    pub fn panel(&self, j: usize) -> &[u16] {
        &self.data[j * self.kp * NR..(j + 1) * self.kp * NR]
    }
}

/// `rows` rows of `kp` bf16 values, plus zero rows up to a multiple of 32, each row filled by
/// `fill(r, row)` (which writes its first values; the rest of the row is zeroed): the layout
/// [`super::amx::gemm`] reads. The buffer only grows, so a batch allocates it once.
pub fn bf16_tile(rows: usize, kp: usize, out: &mut Vec<u16>, mut fill: impl FnMut(usize, &mut [u16]) -> usize) {
    let need = rows.next_multiple_of(32) * kp;
    if out.len() < need {
        out.resize(need, 0);
    }
    for (r, row) in out[..need].chunks_exact_mut(kp).enumerate() {
        let written = if r < rows { fill(r, row) } else { 0 };
        row[written..].fill(0);
    }
}

/// Converts `src` to bf16 into the start of `dst` (AVX-512 where the CPU has it).
pub fn convert(src: &[f32], dst: &mut [u16]) {
    let n = src.len().min(dst.len());
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F; both slices hold n values.
        done = unsafe { convert_avx512(&src[..n], &mut dst[..n]) };
    }
    for (d, s) in dst[done..n].iter_mut().zip(&src[done..n]) {
        *d = bf16(*s);
    }
}

/// Sixteen values at a time, the rounding of [`bf16`] (NaN aside); returns how many it did.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn convert_avx512(src: &[f32], dst: &mut [u16]) -> usize {
    use std::arch::x86_64::*;
    let full = src.len() / 16 * 16;
    let (one, half) = (_mm512_set1_epi32(1), _mm512_set1_epi32(0x7FFF));
    for i in (0..full).step_by(16) {
        // SAFETY: i + 16 <= full <= both lengths.
        unsafe {
            let v = _mm512_castps_si512(_mm512_loadu_ps(src.as_ptr().add(i)));
            let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(v), one);
            let r = _mm512_srli_epi32::<16>(_mm512_add_epi32(_mm512_add_epi32(v, half), lsb));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi16(r));
        }
    }
    full
}

/// `out = bf16(relu?(sums + skip))`, element by element: the bf16 epilogue of the f32 kernel
/// (emulated bf16), rounding as [`store`] does. Vectorised for the CPU's widest level.
pub fn finish_bf16(sums: &[f32], skip: Option<&[u16]>, relu: bool, out: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { finish_avx512(sums, skip, relu, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2.
            return unsafe { finish_avx2(sums, skip, relu, out) };
        }
    }
    finish_plain(sums, skip, relu, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn finish_avx512(sums: &[f32], skip: Option<&[u16]>, relu: bool, out: &mut [u16]) {
    finish_plain(sums, skip, relu, out);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn finish_avx2(sums: &[f32], skip: Option<&[u16]>, relu: bool, out: &mut [u16]) {
    finish_plain(sums, skip, relu, out);
}

/// The loop itself, branch-free per element so the compiler vectorises it for whichever
/// level it is inlined into.
#[inline(always)]
fn finish_plain(sums: &[f32], skip: Option<&[u16]>, relu: bool, out: &mut [u16]) {
    let round = |v: f32| {
        let v = if relu { v.max(0.0) } else { v };
        let b = v.to_bits();
        (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
    };
    match skip {
        Some(skip) => {
            for ((o, &v), &s) in out.iter_mut().zip(sums).zip(skip) {
                *o = round(v + f32::from_bits(u32::from(s) << 16));
            }
        }
        None => {
            for (o, &v) in out.iter_mut().zip(sums) {
                *o = round(v);
            }
        }
    }
}

/// Writes `rows` rows of a 32 x 32 block of sums to bf16 `C` at row `row0`, column `col0`,
/// through the epilogue (its residual in bf16), `width` columns of it: the sum, plus bias,
/// plus residual, ReLU, then rounded to the nearest bf16 as [`bf16`] rounds (by
/// `vcvtne2ps2bf16`, which rounds the same way but flushes subnormals to zero).
///
/// # Safety
/// As [`super::amx::gemm`]'s contract, for those rows and columns; the CPU has AVX512F, BW, VL
/// and AVX512_BF16 (every CPU with AMX does too: `cpu::has_amx` checks).
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn store(
    block: &[f32; 32 * NR],
    rows: usize,
    c: *mut u16,
    ldc: usize,
    width: usize,
    epi: &Epilogue<u16>,
    row0: usize,
    col0: usize,
) {
    use std::arch::x86_64::*;
    let mask = |q: usize| {
        let w = width.saturating_sub(16 * q).min(16);
        if w == 16 { 0xFFFF } else { ((1u32 << w) - 1) as u16 }
    };
    let masks = [mask(0), mask(1)];
    let both = u32::from(masks[0]) | (u32::from(masks[1]) << 16);
    // The bias is the same for every row: loaded once, not per row. (No closures here: they
    // would not inherit this function's target features, and their intrinsics would become
    // calls.)
    let zero = _mm512_setzero_ps();
    let (bias0, bias1) = match epi.bias {
        // SAFETY: masked to the block's columns of the bias.
        Some(b) => unsafe {
            (
                _mm512_maskz_loadu_ps(masks[0], b.as_ptr().wrapping_add(col0)),
                _mm512_maskz_loadu_ps(masks[1], b.as_ptr().wrapping_add(col0 + 16)),
            )
        },
        None => (zero, zero),
    };
    for (r, sums) in block.chunks_exact(NR).take(rows).enumerate() {
        let at = (row0 + r) * ldc + col0;
        // SAFETY: masked to the block's columns of C and skip.
        unsafe {
            let mut v0 = _mm512_add_ps(_mm512_loadu_ps(sums.as_ptr()), bias0);
            let mut v1 = _mm512_add_ps(_mm512_loadu_ps(sums.as_ptr().add(16)), bias1);
            if let Some(skip) = epi.skip {
                let s = skip.as_ptr().wrapping_add(at);
                let s0 = _mm256_maskz_loadu_epi16(masks[0], s.cast());
                let s1 = _mm256_maskz_loadu_epi16(masks[1], s.wrapping_add(16).cast());
                v0 = _mm512_add_ps(
                    v0,
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(s0))),
                );
                v1 = _mm512_add_ps(
                    v1,
                    _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(s1))),
                );
            }
            if epi.relu {
                v0 = _mm512_max_ps(v0, zero);
                v1 = _mm512_max_ps(v1, zero);
            }
            // One instruction rounds both halves to bf16, the first sixteen columns low.
            let packed: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(v1, v0));
            _mm512_mask_storeu_epi16(c.wrapping_add(at).cast(), both, packed);
        }
    }
}
