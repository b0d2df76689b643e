//! The bf16 matrix product on AVX512_BF16 (`vdpbf16ps`; AMD Zen 4 and 5, Intel Cooper Lake
//! and later): for CPUs with bf16 dot products but no AMX tiles.
//!
//! It reads exactly what the AMX kernel reads (weights as [`PackedBf16`] panels of 32 columns
//! whose rows hold the shared dimension in pairs, the activation as bf16 rows padded to 32) and
//! writes through the same epilogue, so the NHWC network picks one or the other per CPU. One
//! `vdpbf16ps` does sixteen columns times one pair of the shared dimension: a broadcast pair of
//! `A` against one 64-byte row of a panel. Eight rows of `C` by 32 columns stay in sixteen
//! accumulators while a panel streams past.

use super::amx::{NR, PackedBf16};
use super::kernel::Epilogue;

/// Rows of `C` per pass over a panel: 8 x 2 accumulators, two panel registers and the
/// broadcast use 19 of the 32 vector registers.
const MR: usize = 8;

/// `C[m rows, panels j0..j1] = A x B`, then `epi`, as [`super::amx::gemm`] does.
///
/// # Safety
/// The CPU has AVX512F and AVX512_BF16; `a` holds `m.next_multiple_of(32)` rows of stride
/// `lda >= b.kp` bf16 values; `c` is valid for `m` rows of stride `ldc` over the panels'
/// columns (below `b.n`), written by no other thread meanwhile; `epi`'s bias holds `b.n`
/// values and its skip `m` rows of stride `ldc`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn gemm(
    m: usize,
    a: *const u16,
    lda: usize,
    b: &PackedBf16,
    j0: usize,
    j1: usize,
    c: *mut f32,
    ldc: usize,
    epi: Epilogue,
) {
    let mut block = [0.0f32; 32 * NR];
    for j in j0..j1 {
        let panel = b.panel(j);
        let width = NR.min(b.n - j * NR);
        let mut r0 = 0;
        while r0 < m {
            let rows = 32.min(m - r0);
            for g in (0..rows).step_by(MR) {
                // SAFETY: rows r0 + g .. r0 + g + MR lie inside the 32 padded rows from r0; the
                // panel holds kp / 2 pair-rows of 2 x 64 bytes; the block has 32 rows.
                unsafe {
                    eight_rows(
                        b.kp,
                        a.add((r0 + g) * lda),
                        lda,
                        panel.as_ptr(),
                        block.as_mut_ptr().add(g * NR),
                    );
                }
            }
            // SAFETY: the block's rows below m and columns below n are this call's.
            unsafe { super::amx::store(&block, rows, c, ldc, width, &epi, r0, j * NR) };
            r0 += 32;
        }
    }
}

/// Eight rows of `A` (stride `lda`) times one panel, into eight rows of `out` (stride 32).
///
/// # Safety
/// As [`gemm`]: eight rows of `kp` bf16 values from `a`, a `kp`-deep panel at `b`, eight rows
/// of 32 floats at `out`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn eight_rows(kp: usize, a: *const u16, lda: usize, b: *const u16, out: *mut f32) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for k2 in 0..kp / 2 {
        // SAFETY: pair-row k2 of the panel is 64 bf16 values from 64 * k2; each A row holds kp.
        unsafe {
            let row = b.add(k2 * 2 * NR);
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(row.cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(row.add(NR).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = a.add(r * lda + 2 * k2).cast::<i32>().read_unaligned();
                let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r of out holds 32 floats.
        unsafe {
            _mm512_storeu_ps(out.add(r * NR), acc[0]);
            _mm512_storeu_ps(out.add(r * NR + 16), acc[1]);
        }
    }
}

/// True when the CPU has AVX512_BF16 (and AVX-512F).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}
