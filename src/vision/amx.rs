//! The bf16 matrix product on Intel AMX (Sapphire Rapids and later): `C = A x B` with `A` and `B`
//! in bf16 and `C` accumulated in f32, 32 x 32 blocks of `C` in four tile registers.
//!
//! One tile multiply does 16 x 16 x 32 multiply-adds, sixteen times an AVX-512 FMA's work, which
//! is why PyTorch's bf16 runs three times its f32 on this machine. Used by the NHWC path when the
//! embedder runs in bf16 and the CPU has AMX; elsewhere the same rounding goes through the f32
//! kernel, so vectors do not depend on the machine beyond summation order.

use std::cell::Cell;

use super::bf16::{NR, PackedBf16, store};
use super::kernel::Epilogue;

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
/// [`super::cpu::has_amx`] is true; `a` holds the padded rows; `c` is valid for `m` rows of stride `ldc`
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
    use crate::vision::bf16::{bf16, bf16_tile, convert, round_bf16};
    use crate::vision::kernel::Packed;

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
