//! The bf16 matrix product on Intel AMX (Sapphire Rapids and later): `C = A x B` with `A` and `B`
//! in bf16 and `C` accumulated in f32, 32 x 32 blocks of `C` in four tile registers.
//!
//! One tile multiply does 16 x 16 x 32 multiply-adds, sixteen times an AVX-512 FMA's work, which
//! is why PyTorch's bf16 runs three times its f32 on this machine. Used by the NHWC path when the
//! embedder runs in bf16 and the CPU has AMX; elsewhere the same rounding goes through the f32
//! kernel, so vectors do not depend on the machine beyond summation order.

use std::cell::Cell;
use std::sync::OnceLock;

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

/// True when the CPU has AMX with bf16 and the kernel lets this process use its tile state
/// (Linux asks each process to request it once).
pub fn available() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        {
            // CPUID leaf 7: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
            let id = std::arch::x86_64::__cpuid_count(7, 0);
            if (id.edx >> 22) & 1 == 0 || (id.edx >> 24) & 1 == 0 {
                return false;
            }
            // The epilogue writes bf16 with AVX-512 BW and VL (every AMX CPU has them).
            if !std::arch::is_x86_feature_detected!("avx512bw") || !std::arch::is_x86_feature_detected!("avx512vl") {
                return false;
            }
            const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
            const XFEATURE_XTILEDATA: libc::c_long = 18;
            // SAFETY: arch_prctl with these arguments only asks for permission; it touches no memory.
            unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 }
        }
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        false
    })
}

/// bf16 weights for the tile multiply: panels of 32 columns; the shared dimension padded to a
/// multiple of 32 and stored in pairs (row `k2` of a panel holds, for each column, the values of
/// rows `2 k2` and `2 k2 + 1`: the layout the tile multiply reads).
pub struct PackedBf16 {
    data: super::slab::Slab<u16>,
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
/// [`gemm`] reads. The buffer only grows, so a batch allocates it once.
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

thread_local! {
    /// Tile configuration is per thread: loaded once on each.
    static CONFIGURED: Cell<bool> = const { Cell::new(false) };
}

/// All eight tiles as 16 rows of 64 bytes: C tiles hold 16 x 16 f32, A tiles 16 x 32 bf16, B
/// tiles 16 pair-rows x 16 columns of bf16 pairs.
fn configure() {
    CONFIGURED.with(|done| {
        if done.get() {
            return;
        }
        let mut cfg = [0u8; 64];
        cfg[0] = 1; // palette 1
        for t in 0..8 {
            cfg[16 + 2 * t] = 64; // bytes per row
            cfg[48 + t] = 16; // rows
        }
        // SAFETY: a valid palette-1 configuration; `available()` was checked by the caller.
        unsafe { std::arch::asm!("ldtilecfg [{0}]", in(reg) cfg.as_ptr(), options(nostack, readonly)) };
        done.set(true);
    });
}

/// `C[m rows, panels j0..j1] = A x B`, then `epi`, rounded into bf16 `C`. `a` is bf16,
/// `m.next_multiple_of(32)` rows of stride `lda >= b.kp` (see [`bf16_tile`]).
///
/// # Safety
/// [`available`] is true; `a` holds the padded rows; `c` is valid for `m` rows of stride `ldc`
/// over the panels' columns (below `b.n`), written by no other thread meanwhile; `epi`'s bias
/// holds `b.n` values and its skip `m` rows of stride `ldc`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
pub unsafe fn gemm(
    m: usize,
    a: *const u16,
    lda: usize,
    b: &PackedBf16,
    j0: usize,
    j1: usize,
    c: *mut u16,
    ldc: usize,
    epi: Epilogue<u16>,
) {
    configure();
    let mut block = [0.0f32; 32 * NR];
    for j in j0..j1 {
        let panel = &b.data[j * b.kp * NR..(j + 1) * b.kp * NR];
        let width = NR.min(b.n - j * NR);
        let mut r0 = 0;
        while r0 < m {
            // SAFETY: 32 padded rows of A from r0, the whole panel, a 32 x 32 block; then the
            // block's rows below m and columns below n, which are this call's.
            unsafe {
                block32(b.kp, a.add(r0 * lda), lda, panel.as_ptr(), block.as_mut_ptr());
                store(&block, 32.min(m - r0), c, ldc, width, &epi, r0, j * NR);
            }
            r0 += 32;
        }
    }
}

/// Writes `rows` rows of a 32 x 32 block of sums to bf16 `C` at row `row0`, column `col0`,
/// through the epilogue (its residual in bf16), `width` columns of it: the sum, plus bias,
/// plus residual, ReLU, then rounded to the nearest bf16 as [`bf16`] rounds.
///
/// # Safety
/// As [`gemm`]'s contract, for those rows and columns; the CPU has AVX512F, BW and VL (every
/// CPU with AVX512_BF16 or AMX does).
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
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
    let (one, half) = (_mm512_set1_epi32(1), _mm512_set1_epi32(0x7FFF));
    for (r, sums) in block.chunks_exact(NR).take(rows).enumerate() {
        let at = (row0 + r) * ldc + col0;
        for (q, &m) in masks.iter().enumerate() {
            // SAFETY: masked to the block's columns of C, bias and skip.
            unsafe {
                let mut v = _mm512_loadu_ps(sums.as_ptr().add(16 * q));
                if let Some(bias) = epi.bias {
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias.as_ptr().wrapping_add(col0 + 16 * q)));
                }
                if let Some(skip) = epi.skip {
                    let s = _mm256_maskz_loadu_epi16(m, skip.as_ptr().wrapping_add(at + 16 * q).cast());
                    let s = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(s)));
                    v = _mm512_add_ps(v, s);
                }
                if epi.relu {
                    v = _mm512_max_ps(v, _mm512_setzero_ps());
                }
                let bits = _mm512_castps_si512(v);
                let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), one);
                let rounded = _mm512_srli_epi32::<16>(_mm512_add_epi32(_mm512_add_epi32(bits, half), lsb));
                _mm256_mask_storeu_epi16(c.wrapping_add(at + 16 * q).cast(), m, _mm512_cvtepi32_epi16(rounded));
            }
        }
    }
}

/// One 32 x 32 block: four C tiles, two A tiles and two B tiles per 32 values of the shared
/// dimension, stored row-major (stride 32 floats) into `out`.
///
/// # Safety
/// `kp` is a positive multiple of 32; 32 rows of `a` (stride `lda` bf16) hold `kp` values; `b`
/// holds a `kp x 32` pair-packed panel; `out` holds 32 x 32 floats; tiles are configured.
#[cfg(target_arch = "x86_64")]
unsafe fn block32(kp: usize, a: *const u16, lda: usize, b: *const u16, out: *mut f32) {
    let lda_bytes = lda * 2;
    // SAFETY: as the function's contract; every load and store stays in those extents.
    unsafe {
        std::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a} + {lda}*1]",
            "tileloadd tmm5, [{a16} + {lda}*1]",
            "tileloadd tmm6, [{b} + {bs}*1]",
            "lea {t}, [{b} + 64]",
            "tileloadd tmm7, [{t} + {bs}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 64",
            "add {a16}, 64",
            "add {b}, 2048",
            "sub {n}, 1",
            "jnz 2b",
            "tilestored [{out} + {bs}*1], tmm0",
            "lea {t}, [{out} + 64]",
            "tilestored [{t} + {bs}*1], tmm1",
            "lea {t}, [{out} + 2048]",
            "tilestored [{t} + {bs}*1], tmm2",
            "lea {t}, [{out} + 2112]",
            "tilestored [{t} + {bs}*1], tmm3",
            a = inout(reg) a => _,
            a16 = inout(reg) a.add(16 * lda) => _,
            b = inout(reg) b => _,
            lda = in(reg) lda_bytes,
            bs = in(reg) 128usize,
            n = inout(reg) kp / 32 => _,
            out = in(reg) out,
            t = out(reg) _,
            options(nostack),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::vision::kernel::noise;

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(bf16(1.0), 0x3F80);
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0, "a tie goes to the even neighbour");
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert!(round_bf16(f32::NAN).is_nan());
    }

    /// The tile product equals the triple loop on bf16-rounded operands (f32 sums), with odd
    /// sizes: remainder rows, a narrow last panel, a shared dimension that needs padding.
    #[test]
    fn the_tile_and_dot_products_match_a_triple_loop_on_rounded_values() {
        use crate::vision::cpu::Kernels;
        for kernels in [Kernels::Avx512Bf16, Kernels::Amx] {
            if kernels.here_or_skip("the_tile_and_dot_products_match_a_triple_loop_on_rounded_values") {
                bf16_products_match(kernels);
            }
        }
    }

    fn bf16_products_match(kernels: crate::vision::cpu::Kernels) {
        for &(m, k, n) in &[(1, 3, 5), (33, 147, 64), (45, 600, 70), (32, 64, 32), (9, 40, 96)] {
            let a = noise(m * k, 1);
            let w = noise(k * n, 2);
            let bias = noise(n, 3);
            let b = PackedBf16::from_packed(&Packed::new(&w, k, n));
            let mut rows = Vec::new();
            bf16_tile(m, b.kp, &mut rows, |r, row| {
                convert(&a[r * k..(r + 1) * k], row);
                k
            });
            let ldc = n + 3;
            let untouched = bf16(7.0);
            let mut c = vec![untouched; m * ldc];
            let skip: Vec<u16> = noise(m * ldc, 4).iter().map(|&v| bf16(v)).collect();
            let epi = Epilogue {
                bias: Some(&bias),
                skip: Some(&skip),
                relu: true,
            };
            // SAFETY: the kernels are here; rows are padded as both kernels need; c is m x ldc.
            unsafe {
                if kernels == crate::vision::cpu::Kernels::Amx {
                    gemm(m, rows.as_ptr(), b.kp, &b, 0, b.panels(), c.as_mut_ptr(), ldc, epi)
                } else {
                    crate::vision::bf16dot::gemm(m, rows.as_ptr(), b.kp, &b, 0, b.panels(), c.as_mut_ptr(), ldc, epi)
                }
            };
            let value = |b: u16| f32::from_bits(u32::from(b) << 16);
            for r in 0..m {
                for j in 0..ldc {
                    let got = c[r * ldc + j];
                    if j >= n {
                        assert_eq!(got, untouched, "{kernels:?} {m}x{k}x{n} [{r},{j}] was written");
                        continue;
                    }
                    let sum = bias[j]
                        + (0..k)
                            .map(|p| round_bf16(a[r * k + p]) * round_bf16(w[p * n + j]))
                            .sum::<f32>()
                        + value(skip[r * ldc + j]);
                    let want = sum.max(0.0);
                    // Rounded once to bf16: within half a bf16 step (1/256 relative), more
                    // only where summation order puts it on the other side of a tie.
                    assert!(
                        (value(got) - want).abs() <= want.abs() / 128.0 + 1e-6,
                        "{kernels:?} {m}x{k}x{n} [{r},{j}]: {} vs {want}",
                        value(got)
                    );
                }
            }
        }
    }
}
