//! The bf16 matrix product on AVX512_BF16 (`vdpbf16ps`; AMD Zen 4 and 5, Intel Cooper Lake
//! and later): for CPUs with bf16 dot products but no AMX tiles.
//!
//! It reads exactly what the AMX kernel reads (weights as [`PackedBf16`] panels of 32 columns
//! whose rows hold the shared dimension in pairs, the activation as bf16 rows padded to 32) and
//! writes through the same epilogue, so the NHWC network picks one or the other per CPU. One
//! `vdpbf16ps` does sixteen columns times one pair of the shared dimension: a broadcast pair of
//! `A` against one 64-byte row of a panel. Eight rows of `C` by 32 columns stay in sixteen
//! accumulators while a panel streams past.

use super::bf16::{NR, PackedBf16};
use super::kernel::Epilogue;

/// Rows of `C` per pass over a panel: 8 x 2 accumulators, two panel registers and the
/// broadcast use 19 of the 32 vector registers.
const MR: usize = 8;

/// `C[m rows, panels j0..j1] = A x B`, then `epi`, rounded into bf16 `C`, as
/// [`super::amx::gemm`] does.
///
/// # Safety
/// The CPU has AVX512F and AVX512_BF16; `a` holds `m.next_multiple_of(32)` rows of an even
/// stride `lda >= b.kp` bf16 values; `c` is valid for `m` rows of stride `ldc` over the panels'
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
    c: *mut u16,
    ldc: usize,
    epi: Epilogue<u16>,
) {
    // SAFETY: as this function's contract; each block is stored to its own rows and columns.
    unsafe {
        blocks(m, a, lda, b, j0, j1, None, |block, _, rows, r0, col0, width| {
            super::bf16::store(block, rows, c, ldc, width, &epi, r0, col0)
        })
    }
}

/// `C[m rows, panels j0..j1] = A x B` as f32 sums, nothing added (Winograd's products, which
/// its output transform finishes).
///
/// # Safety
/// As [`gemm`], with `c` f32.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
pub unsafe fn gemm_f32(
    m: usize,
    a: *const u16,
    lda: usize,
    b: &PackedBf16,
    j0: usize,
    j1: usize,
    c: *mut f32,
    ldc: usize,
) {
    // SAFETY: as this function's contract; each block is copied to its own rows and columns.
    unsafe {
        blocks(
            m,
            a,
            lda,
            b,
            j0,
            j1,
            Some((c, ldc)),
            |block, from, rows, r0, col0, width| {
                for (r, sums) in block.chunks_exact(NR).enumerate().take(rows).skip(from) {
                    std::ptr::copy_nonoverlapping(sums.as_ptr(), c.add((r0 + r) * ldc + col0), width);
                }
            },
        )
    }
}

/// The products of [`gemm`], each block of up to 32 rows by one panel handed to
/// `put(block, from, rows, first row, first column, columns)` (block rows are `NR` apart).
/// With `direct` (f32 `C` and its stride), whole groups of 8 rows by a whole panel are written
/// there straight from the registers instead, and `put` gets only rows `from..rows`: a
/// product with a short shared dimension (Winograd's, from 64 channels) otherwise spends a
/// sixth of its time copying.
///
/// # Safety
/// As [`gemm`] for `a` and `b`; `put` may write the block's rows and columns; `direct`, as
/// [`gemm_f32`]'s `c`.
#[allow(clippy::too_many_arguments)]
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn blocks(
    m: usize,
    a: *const u16,
    lda: usize,
    b: &PackedBf16,
    j0: usize,
    j1: usize,
    direct: Option<(*mut f32, usize)>,
    mut put: impl FnMut(&[f32; 32 * NR], usize, usize, usize, usize, usize),
) {
    debug_assert!(lda.is_multiple_of(2), "rows are read in pairs");
    let mut block = [0.0f32; 32 * NR];
    let pairs = b.kp / 2;
    let mut r0 = 0;
    while r0 < m {
        let rows = 32.min(m - r0);
        let groups = rows.div_ceil(MR);
        for j in j0..j1 {
            let panel = b.panel(j);
            let width = NR.min(b.n - j * NR);
            // The panel read after this one (the next, or the first again for the next rows),
            // brought into L2 a share per group while this one is multiplied: weights come
            // from memory, and the first group of each panel otherwise waits on them.
            let next: &[u16] = if j + 1 < j1 {
                b.panel(j + 1)
            } else if r0 + 32 < m {
                b.panel(j0)
            } else {
                &[]
            };
            let share = next.len() / groups;
            // Rows written straight to `C`: the whole groups, where the panel is whole.
            let from = match direct {
                Some(_) if width == NR => rows / MR * MR,
                _ => 0,
            };
            for g in 0..groups {
                let ahead = Ahead {
                    at: next[g * share..].as_ptr(),
                    step: if share == 0 { 0 } else { 2 * NR / groups },
                };
                let (out, ldo) = match direct {
                    Some((c, ldc)) if g * MR < from => (c.wrapping_add((r0 + g * MR) * ldc + j * NR), ldc),
                    _ => (block.as_mut_ptr().wrapping_add(g * MR * NR), NR),
                };
                // SAFETY: rows r0 + g * MR .. + MR lie in the 32 padded rows from r0, of
                // stride lda >= kp; the panel holds pairs pair-rows of 2 x 64 bytes; `out` is
                // eight rows of 32 floats: the block's, or C's below m and n; `ahead` stays
                // inside `next` (pairs steps of 64 / groups values from its share's start).
                unsafe {
                    eight_rows(
                        pairs,
                        a.add((r0 + g * MR) * lda).cast(),
                        lda / 2,
                        panel.as_ptr(),
                        out,
                        ldo,
                        ahead,
                    );
                }
            }
            put(&block, from, rows, r0, j * NR, width);
        }
        r0 += 32;
    }
}

/// Where [`eight_rows`] prefetches: `at + k2 * step` at step `k2` (a step of 0 stays put).
#[derive(Clone, Copy)]
struct Ahead {
    at: *const u16,
    step: usize,
}

/// Eight rows of `A` (bf16 pairs read as `u32`, rows `stride` pairs apart) times one panel,
/// into eight rows of 32 floats at `out`, `ldo` apart. Each accumulator is its own variable,
/// so all sixteen sums and both panel registers stay in registers; each row's pair is
/// broadcast straight from its row, so `A` needs no regrouping first (that copy cost a
/// quarter of the products' time where the output has 64 channels).
///
/// # Safety
/// As [`gemm`]: eight rows of `pairs` pairs at `a`, `stride` apart, a panel of `pairs`
/// pair-rows at `b`, eight rows of 32 floats at `out`, `ldo` apart; `ahead` stays inside one
/// allocation for `pairs` steps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn eight_rows(
    pairs: usize,
    a: *const u32,
    stride: usize,
    b: *const u16,
    out: *mut f32,
    ldo: usize,
    ahead: Ahead,
) {
    use std::arch::x86_64::*;
    macro_rules! rows {
        ($($r:literal: $lo:ident $hi:ident),+) => {{
            $(
                let mut $lo = _mm512_setzero_ps();
                let mut $hi = _mm512_setzero_ps();
            )+
            // Addresses advance by `wrapping_add` from row bases taken once, and values are read
            // as byte arrays: the same loads as `add` and `read_unaligned`, without the
            // precondition checks a dev build (`cargo run`) puts on each of those. They halved
            // this loop there (and only this product), so `tune` kept the f32 kernel for most
            // convolutions.
            let rows: [*const u32; MR] = std::array::from_fn(|r| a.wrapping_add(r * stride));
            let (mut bp, mut pf) = (b, ahead.at);
            for k2 in 0..pairs {
                // SAFETY: one step: pair k2 of each of the eight rows, a pair-row of 64 bf16
                // values at bp.
                unsafe {
                    _mm_prefetch::<_MM_HINT_T1>(pf.cast());
                    let b0: __m512bh = std::mem::transmute(*bp.cast::<[u8; 64]>());
                    let b1: __m512bh = std::mem::transmute(*bp.wrapping_add(NR).cast::<[u8; 64]>());
                    $(
                        let pair = i32::from_ne_bytes(*rows[$r].wrapping_add(k2).cast::<[u8; 4]>());
                        let x: __m512bh = std::mem::transmute(_mm512_set1_epi32(pair));
                        $lo = _mm512_dpbf16_ps($lo, x, b0);
                        $hi = _mm512_dpbf16_ps($hi, x, b1);
                    )+
                    bp = bp.wrapping_add(2 * NR);
                    pf = pf.wrapping_add(ahead.step);
                }
            }
            $(
                // SAFETY: row $r of out holds 32 floats.
                unsafe {
                    _mm512_storeu_ps(out.add($r * ldo), $lo);
                    _mm512_storeu_ps(out.add($r * ldo + 16), $hi);
                }
            )+
        }};
    }
    rows!(
        0: c0l c0h,
        1: c1l c1h,
        2: c2l c2h,
        3: c3l c3h,
        4: c4l c4h,
        5: c5l c5h,
        6: c6l c6h,
        7: c7l c7h
    );
}
