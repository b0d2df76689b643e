//! Winograd's F(2x2, 3x3) and F(4x4, 3x3) for the 3x3 stride-1 convolutions whose weights are
//! f32: the f32 network, and bf16 emulated on CPUs without bf16 products (AVX2, AVX-512 without
//! AVX512_BF16); and F(2x2, 3x3) on `vdpbf16ps` for the bf16 ones [`super::tune`] measured
//! faster so, their transformed weights and input rounded to bf16 (F4's transforms scale by up
//! to 8, too much for bf16's 8-bit mantissa).
//!
//! Each `m x m` block of output pixels (a tile, m = 2 or 4) comes from the `(m+2) x (m+2)` block
//! of input around it: the input block and the 3x3 kernel are each transformed to that size,
//! multiplied element by element, and the product transformed back (Lavin and Gray, "Fast
//! Algorithms for Convolutional Neural Networks", 2015). Summed over input channels, the
//! element-wise products are `(m+2)^2` GEMMs of `tiles x cin` by `cin x cout`, so a 3x3
//! convolution costs 4 (F2) or 2.25 (F4) multiplications per output value and input channel
//! instead of im2col's 9, on the same kernels (`kernel::gemm`). The result is the convolution's
//! up to f32 rounding (tested against a direct convolution); F4's transforms scale by up to 8,
//! so its rounding is a few times F2's, still far inside the bound the kernel levels share.
//!
//! The transformed weights are 16/9 (F2) or 4 (F4) times the size of the kernel's, so the f32
//! ones are built from the packed panels on the first batch that uses them, not stored in the
//! kept network. The bf16 ones of Winograd on dot products (F2 only, at half the bytes: at most
//! 29 MB for ResNet50) are kept beside the panels and mapped: building them in fresh pages was
//! most of a short `embed`'s fixed cost on a Zen 4 (8 photos: 0.12 s -> 0.075 s wall). F4 reads
//! 36 weight matrices per layer against F2's 16, for fewer tiles, so it runs on the large maps
//! only ([`Tiling::for_map`]).

use rayon::prelude::*;
use std::cell::RefCell;

use super::bf16::PackedBf16;
use super::cpu::Kernels;
use super::kernel::{self, Epilogue, NR, Packed};
use super::maps::{Act, Maps, OutPtr};

/// Values of the largest transformed tile (F4's 6x6): each is one GEMM.
const MAX_XI: usize = 36;
/// Output pixels of the largest tile (F4's 4x4).
const MAX_PIXELS: usize = 16;
/// Channels transformed together (a fixed width the compiler turns into vector registers).
const L: usize = 8;
/// Floats of transformed input and products per block of tiles (1 MB): a block stays in L2
/// between its transform, its 16 GEMMs and the transform back.
const BLOCK_FLOATS: usize = 1 << 18;
/// Blocks per worker from which the fused schedule runs. With fewer, the phased one reads each
/// transformed weight matrix once instead of once per block. (Per layer on AVX2, 2 beat 1 and 8
/// on the last stages and tied elsewhere.)
const FUSED_FROM: usize = 2;

type Lanes = [f32; L];

/// The tile size: F(2x2, 3x3) or F(4x4, 3x3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tiling {
    /// 2x2 output pixels from 4x4 input: 16 GEMMs, 4 multiplications per output value.
    F2,
    /// 4x4 output pixels from 6x6 input: 36 GEMMs, 2.25 multiplications per output value.
    F4,
}

impl Tiling {
    /// Output pixels per side of a tile.
    const fn out(self) -> usize {
        match self {
            Tiling::F2 => 2,
            Tiling::F4 => 4,
        }
    }

    /// Input pixels per side of a tile.
    const fn side(self) -> usize {
        self.out() + 2
    }

    /// Positions of a transformed tile, one GEMM each.
    pub(super) const fn xi(self) -> usize {
        self.side() * self.side()
    }

    /// The tiling for an `h x w` map: F4 from 8 pixels a side (ResNet50's first three stages
    /// at 224x224, the first two at 112x84). On smaller maps F4's tiles are mostly padding and
    /// its 36 weight matrices are read for too few tiles to earn them back.
    pub(super) fn for_map(h: usize, w: usize) -> Self {
        if h.min(w) >= 8 { Tiling::F4 } else { Tiling::F2 }
    }
}

/// `G g G^T` at each of the tiling's positions, a `cin x cout` matrix each.
enum Transformed {
    /// f32 panels for the f32 kernel.
    F32(Vec<Packed>),
    /// bf16 panels for `vdpbf16ps`, which the transformed input, rounded to bf16, meets.
    #[cfg(target_arch = "x86_64")]
    Bf16(Vec<PackedBf16>),
}

/// A 3x3 convolution's weights, transformed.
pub(super) struct Winograd {
    u: Transformed,
    tiling: Tiling,
    cin: usize,
    cout: usize,
}

thread_local! {
    /// Each worker's transformed input, products and one tile's sums for a block of tiles,
    /// kept between calls.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
    /// The calling thread's transformed input and products for the phased schedule.
    static PHASED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// The transformed input rounded to bf16, for dot products (either schedule).
    static ROUNDED: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// `v` at least `len` long, its old values kept (the callers overwrite what they use).
fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

impl Winograd {
    /// From a 3x3 convolution's packed im2col weights (`9 * cin` rows in (ky, kx, ci) order,
    /// `cout` columns), the values it holds (exact f32, or bf16-rounded ones) transformed in f32
    /// for `tiling`; `None` when `w` is not shaped so.
    pub(super) fn from_panels(w: &Packed, cin: usize, cout: usize, tiling: Tiling) -> Option<Self> {
        if (w.k, w.n) != (9 * cin, cout) {
            return None;
        }
        let (xis, side) = (tiling.xi(), tiling.side());
        let mut u: Vec<Vec<f32>> = (0..xis).map(|_| vec![0.0f32; w.panels() * cin * NR]).collect();
        by_panel(&mut u, cin * NR)
            .into_par_iter()
            .enumerate()
            .for_each(|(j, mut out)| {
                for ci in 0..cin {
                    let tap = |ky: usize, kx: usize| w.panel_row(j, (ky * 3 + kx) * cin + ci);
                    for c in 0..NR.min(cout - j * NR) {
                        let g: [[f32; 3]; 3] = std::array::from_fn(|ky| std::array::from_fn(|kx| tap(ky, kx)[c]));
                        let t = kernel_transform(tiling, g);
                        for (xi, m) in out.iter_mut().enumerate() {
                            m[ci * NR + c] = t[xi / side][xi % side];
                        }
                    }
                }
            });
        let u = u
            .into_iter()
            .map(|m| Packed::from_slab(super::slab::Slab::Owned(m), cin, cout))
            .collect::<Option<Vec<_>>>()?;
        Some(Winograd {
            u: Transformed::F32(u),
            tiling,
            cin,
            cout,
        })
    }

    /// The 16 transformed bf16 matrices of Winograd on dot products (what a kept network
    /// stores beside the 3x3 panels), or `None` for f32 ones.
    pub(super) fn bf16_matrices(&self) -> Option<&[PackedBf16]> {
        match &self.u {
            #[cfg(target_arch = "x86_64")]
            Transformed::Bf16(u) => Some(u),
            Transformed::F32(_) => None,
        }
    }

    /// Winograd on dot products from the matrices [`Winograd::bf16_matrices`] gave, as a kept
    /// network maps them; `None` unless they are F2's 16, each `cin x cout` with `cin` a
    /// multiple of 32.
    pub(super) fn from_bf16_matrices(u: Vec<PackedBf16>, cin: usize, cout: usize) -> Option<Self> {
        let fits = u.len() == Tiling::F2.xi() && cin.is_multiple_of(32) && u.iter().all(|m| (m.kp, m.n) == (cin, cout));
        #[cfg(target_arch = "x86_64")]
        if fits {
            return Some(Winograd {
                u: Transformed::Bf16(u),
                tiling: Tiling::F2,
                cin,
                cout,
            });
        }
        let _ = fits;
        None
    }

    /// Whether the transformed weights are read from a mapped file.
    #[cfg(test)]
    pub(super) fn is_mapped(&self) -> bool {
        self.bf16_matrices()
            .is_some_and(|u| u.iter().all(PackedBf16::is_mapped))
    }

    /// The same from bf16 panels, for `vdpbf16ps`: transformed in f32, then rounded to bf16;
    /// `None` when `w` is not shaped so or `cin` is not a multiple of 32 (each position's
    /// product reads its rows in whole pairs of 16).
    #[cfg(target_arch = "x86_64")]
    pub(super) fn from_bf16_panels(w: &PackedBf16, cin: usize, cout: usize, tiling: Tiling) -> Option<Self> {
        if (w.kp, w.n) != ((9 * cin).next_multiple_of(32), cout) || !cin.is_multiple_of(32) {
            return None;
        }
        use super::bf16::{NR as BR, bf16};
        let (xis, side) = (tiling.xi(), tiling.side());
        let mut u: Vec<Vec<u16>> = (0..xis).map(|_| vec![0u16; w.panels() * cin * BR]).collect();
        // Panel to panel: row k of a bf16 panel holds pair-row k / 2's values at 2 c + k % 2,
        // for its 32 columns c (padding columns hold zeros, which transform to zeros).
        by_panel(&mut u, cin * BR)
            .into_par_iter()
            .enumerate()
            .for_each(|(j, mut out)| {
                let panel = w.panel(j);
                let row = |k: usize| -> [f32; BR] {
                    let pairs = &panel[k / 2 * 2 * BR..][..2 * BR];
                    std::array::from_fn(|c| f32::from_bits(u32::from(pairs[2 * c + k % 2]) << 16))
                };
                for ci in 0..cin {
                    let taps: [[f32; BR]; 9] = std::array::from_fn(|t| row(t * cin + ci));
                    let at = ci / 2 * 2 * BR + ci % 2;
                    for c in 0..BR {
                        let g: [[f32; 3]; 3] = std::array::from_fn(|ky| std::array::from_fn(|kx| taps[ky * 3 + kx][c]));
                        let t = kernel_transform(tiling, g);
                        for (xi, m) in out.iter_mut().enumerate() {
                            m[at + 2 * c] = bf16(t[xi / side][xi % side]);
                        }
                    }
                }
            });
        let u = u
            .into_iter()
            .map(|m| PackedBf16::from_slab(super::slab::Slab::Owned(m), cin, cout))
            .collect::<Option<Vec<_>>>()?;
        Some(Winograd {
            u: Transformed::Bf16(u),
            tiling,
            cin,
            cout,
        })
    }

    /// The convolution of `x` (stride 1, padding 1) into `out` (`n x h x w x cout`): for each
    /// output pixel, `finish(pixel, sums, dst)` gets its sums over the input channels (no bias)
    /// and its `cout` values of `out` to write.
    pub(super) fn run<I: Act, O: Send + Sync>(
        &self,
        kernels: Kernels,
        x: &Maps<I>,
        out: &mut [O],
        finish: impl Fn(usize, &mut [f32], &mut [O]) + Sync,
    ) {
        let block = self.block();
        let threads = rayon::current_num_threads().max(1);
        let fused = Grid::of(x, self.tiling).tiles() >= FUSED_FROM * threads * block;
        self.run_scheduled(kernels, x, out, finish, fused);
    }

    /// Tiles per block in the fused schedule: a block's transformed input and products fill
    /// [`BLOCK_FLOATS`].
    fn block(&self) -> usize {
        (BLOCK_FLOATS / (self.tiling.xi() * (self.cin + self.cout))).max(6)
    }

    /// The tiling these weights were transformed for (the tests check the choice).
    #[cfg(test)]
    pub(super) fn tiling(&self) -> Tiling {
        self.tiling
    }

    /// [`Self::run`] in the fused schedule (blocks of tiles through all three steps) or the
    /// phased one (each step over all tiles).
    pub(super) fn run_scheduled<I: Act, O: Send + Sync>(
        &self,
        kernels: Kernels,
        x: &Maps<I>,
        out: &mut [O],
        finish: impl Fn(usize, &mut [f32], &mut [O]) + Sync,
        fused: bool,
    ) {
        debug_assert_eq!(x.c, self.cin);
        debug_assert_eq!(out.len(), x.n * x.h * x.w * self.cout);
        let (cin, cout, xis) = (self.cin, self.cout, self.tiling.xi());
        let pixels = self.tiling.out() * self.tiling.out();
        let grid = Grid::of(x, self.tiling);
        let tiles = grid.tiles();
        let block = self.block();
        let dst = OutPtr(out.as_mut_ptr());
        // Transformed input and products lie tile after tile (`xis x cin` and `xis x cout`
        // values each), so position xi's GEMM reads rows of stride `xis x cin` from `xi x cin`.
        if fused {
            // Many tiles: each worker takes blocks of them through all three steps.
            (0..tiles.div_ceil(block)).into_par_iter().for_each(|b| {
                let t0 = b * block;
                let count = block.min(tiles - t0);
                SCRATCH.with(|s| {
                    let (v, m, sums) = &mut *s.borrow_mut();
                    v.resize(count * xis * cin, 0.0);
                    m.resize(count * xis * cout, 0.0);
                    for (t, v) in v.chunks_exact_mut(xis * cin).enumerate() {
                        transform_input(kernels, x, &grid, t0 + t, v);
                    }
                    ROUNDED.with(|r| {
                        let mut rounded = r.borrow_mut();
                        let input = self.input(v, &mut rounded, count);
                        for xi in 0..xis {
                            // SAFETY: the input and m hold `count` tiles (the rounded input
                            // padded as `input` says); position xi's rows are inside.
                            unsafe { self.product(kernels, xi, count, input, m.as_mut_ptr()) };
                        }
                    });
                    sums.resize(pixels * cout, 0.0);
                    for (t, m) in m.chunks_exact(xis * cout).enumerate() {
                        // SAFETY: tile t0 + t's pixels are written by this call alone.
                        unsafe { transform_output(kernels, &grid, t0 + t, m, sums, dst, &finish) };
                    }
                });
            });
        } else {
            // Few tiles (the last stages, small inputs): each step over all of them, the GEMMs
            // shared out by position, so each transformed weight matrix is read once.
            // Kept between calls: fresh ones cost page faults and zeroing on every layer. Taken
            // out for the call, so a nested call on this thread (a worker that steals another
            // forward pass's task while it waits) gets fresh ones instead of a borrowed cell.
            let (mut v_all, mut m_all) = PHASED.with(|s| std::mem::take(&mut *s.borrow_mut()));
            grow(&mut v_all, tiles * xis * cin);
            grow(&mut m_all, tiles * xis * cout);
            // Every value of both is written before it is read: each tile's transform writes
            // all its positions, each position's GEMM all of its products.
            let v = &mut v_all[..tiles * xis * cin];
            let m = &mut m_all[..tiles * xis * cout];
            v.par_chunks_exact_mut(xis * cin)
                .enumerate()
                .for_each(|(t, v)| transform_input(kernels, x, &grid, t, v));
            let mut rounded = ROUNDED.with(|r| std::mem::take(&mut *r.borrow_mut()));
            let input = self.input(v, &mut rounded, tiles);
            let mp = OutPtr(m.as_mut_ptr());
            (0..xis).into_par_iter().for_each(|xi| {
                // SAFETY: position xi's values of every tile are written by this task alone.
                unsafe { self.product(kernels, xi, tiles, input, mp.get()) };
            });
            ROUNDED.with(|r| *r.borrow_mut() = rounded);
            m.par_chunks_exact(xis * cout).enumerate().for_each_init(
                || vec![0.0f32; pixels * cout],
                |sums, (t, m)| {
                    // SAFETY: tile t's pixels are written by this task alone.
                    unsafe { transform_output(kernels, &grid, t, m, sums, dst, &finish) };
                },
            );
            PHASED.with(|s| *s.borrow_mut() = (v_all, m_all));
        }
    }

    /// The transformed input `v` of `count` tiles as the products read it: itself for f32
    /// weights; for bf16 ones, rounded into `rounded`, with rows up to a multiple of 32 tiles
    /// (the dot kernel reads its rows in blocks of 8; the padding's products are never stored).
    fn input(&self, v: &[f32], rounded: &mut Vec<u16>, count: usize) -> Input {
        match &self.u {
            Transformed::F32(_) => Input::F32(OutPtr(v.as_ptr().cast_mut())),
            #[cfg(target_arch = "x86_64")]
            Transformed::Bf16(_) => {
                let len = count.next_multiple_of(32) * self.tiling.xi() * self.cin;
                if rounded.len() < len {
                    rounded.resize(len, 0);
                }
                super::bf16::convert(v, rounded);
                Input::Bf16(OutPtr(rounded.as_mut_ptr()))
            }
        }
    }

    /// Position `xi`'s GEMM for `count` tiles.
    ///
    /// # Safety
    /// `v` holds `count x xis x cin` values (as [`Self::input`] gives them), `m`
    /// `count x xis x cout` (xis: the tiling's positions), and position xi's values of `m` are
    /// written by no other thread meanwhile.
    unsafe fn product(&self, kernels: Kernels, xi: usize, count: usize, v: Input, m: *mut f32) {
        let (cin, cout, xis) = (self.cin, self.cout, self.tiling.xi());
        let c = m.wrapping_add(xi * cout);
        // SAFETY (both): rows of stride xis x cin from xi x cin hold cin values each (and
        // likewise for m); no bias or residual.
        match (&self.u, v) {
            (Transformed::F32(u), Input::F32(v)) => unsafe {
                let u = &u[xi];
                let a = v.get().add(xi * cin);
                kernel::gemm(
                    kernels,
                    count,
                    a,
                    xis * cin,
                    u,
                    0,
                    u.panels(),
                    c,
                    xis * cout,
                    Epilogue::default(),
                );
            },
            // The level has AVX512_BF16 (bf16 panels are made only there).
            #[cfg(target_arch = "x86_64")]
            (Transformed::Bf16(u), Input::Bf16(v)) => unsafe {
                let u = &u[xi];
                let a = v.get().add(xi * cin);
                super::bf16dot::gemm_f32(count, a, xis * cin, u, 0, u.panels(), c, xis * cout);
            },
            #[cfg(target_arch = "x86_64")]
            _ => debug_assert!(false, "`input` makes the input its weights read"),
        }
    }
}

/// The transformed input a position's product reads.
#[derive(Clone, Copy)]
enum Input {
    F32(OutPtr<f32>),
    #[cfg(target_arch = "x86_64")]
    Bf16(OutPtr<u16>),
}

/// Each matrix of `u` cut into its panels (`part` values each), gathered per panel: what one
/// panel's transform writes, so panels transform in parallel.
fn by_panel<T>(u: &mut [Vec<T>], part: usize) -> Vec<Vec<&mut [T]>> {
    let panels = u.first().map_or(0, |m| m.len() / part);
    let mut per_panel: Vec<Vec<&mut [T]>> = (0..panels).map(|_| Vec::with_capacity(u.len())).collect();
    for m in u {
        for (j, slice) in m.chunks_mut(part).enumerate() {
            per_panel[j].push(slice);
        }
    }
    per_panel
}

/// Tile `tile`'s products (`m`, `xis x cout`) back to its pixels, each finished into the
/// output.
///
/// # Safety
/// `dst` is the output, `n x h x w x cout`, and this tile's pixels are this call's to write.
unsafe fn transform_output<O>(
    kernels: Kernels,
    grid: &Grid,
    tile: usize,
    m: &[f32],
    sums: &mut [f32],
    dst: OutPtr<O>,
    finish: &(impl Fn(usize, &mut [f32], &mut [O]) + Sync),
) {
    let cout = m.len() / grid.tiling.xi();
    output_tile(kernels, grid.tiling, m, sums);
    for (q, pixel) in grid.pixels(tile).into_iter().enumerate() {
        if let Some(p) = pixel {
            // SAFETY: pixel p of the output is this tile's, `cout` values from p * cout.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add(p * cout), cout) };
            finish(p, &mut sums[q * cout..(q + 1) * cout], out);
        }
    }
}

/// The tiles of a batch: `th x tw` per image, tile `(ty, tx)` covering output rows
/// `m ty .. m ty + m` and the same columns (those that exist), from input rows
/// `m ty - 1 .. m ty + m + 1` (m: the tiling's output side).
struct Grid {
    tiling: Tiling,
    n: usize,
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
}

impl Grid {
    fn of<I>(x: &Maps<I>, tiling: Tiling) -> Self {
        Grid {
            tiling,
            n: x.n,
            h: x.h,
            w: x.w,
            th: x.h.div_ceil(tiling.out()),
            tw: x.w.div_ceil(tiling.out()),
        }
    }

    fn tiles(&self) -> usize {
        self.n * self.th * self.tw
    }

    /// The image and the top-left pixel of tile `t`.
    fn corner(&self, t: usize) -> (usize, usize, usize) {
        let (b, r) = (t / (self.th * self.tw), t % (self.th * self.tw));
        let m = self.tiling.out();
        (b, m * (r / self.tw), m * (r % self.tw))
    }

    /// The input pixels of tile `t` (row-major over its block; the first `xis`), `None` for
    /// padding.
    fn inputs(&self, t: usize) -> [Option<usize>; MAX_XI] {
        let (b, y0, x0) = self.corner(t);
        let side = self.tiling.side();
        std::array::from_fn(|q| {
            if q >= side * side {
                return None;
            }
            let (iy, ix) = ((y0 + q / side).checked_sub(1)?, (x0 + q % side).checked_sub(1)?);
            (iy < self.h && ix < self.w).then(|| (b * self.h + iy) * self.w + ix)
        })
    }

    /// The output pixels of tile `t` (row-major over its block), `None` past the edge or the
    /// tile.
    fn pixels(&self, t: usize) -> [Option<usize>; MAX_PIXELS] {
        let (b, y0, x0) = self.corner(t);
        let m = self.tiling.out();
        std::array::from_fn(|q| {
            let (oy, ox) = (y0 + q / m, x0 + q % m);
            (q < m * m && oy < self.h && ox < self.w).then(|| (b * self.h + oy) * self.w + ox)
        })
    }
}

/// `G g G^T` for one 3x3 kernel, in the top-left `side x side` of the result. F2's
/// `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]`; F4's rows are `[1/4 0 0]`,
/// `-1/6 [1 1 1]`, `-1/6 [1 -1 1]`, `[1/24 1/12 1/6]`, `[1/24 -1/12 1/6]` and `[0 0 1]`.
fn kernel_transform(tiling: Tiling, g: [[f32; 3]; 3]) -> [[f32; 6]; 6] {
    let g_col = |c: [f32; 3]| -> [f32; 6] {
        match tiling {
            Tiling::F2 => [
                c[0],
                0.5 * (c[0] + c[1] + c[2]),
                0.5 * (c[0] - c[1] + c[2]),
                c[2],
                0.0,
                0.0,
            ],
            Tiling::F4 => [
                c[0] / 4.0,
                -(c[0] + c[1] + c[2]) / 6.0,
                -(c[0] - c[1] + c[2]) / 6.0,
                c[0] / 24.0 + c[1] / 12.0 + c[2] / 6.0,
                c[0] / 24.0 - c[1] / 12.0 + c[2] / 6.0,
                c[2],
            ],
        }
    };
    // G g: each column of g through G; then (G g) G^T: each row of that through G.
    let cols = [0, 1, 2].map(|j| g_col([g[0][j], g[1][j], g[2][j]]));
    std::array::from_fn(|r| g_col([cols[0][r], cols[1][r], cols[2][r]]))
}

/// Tile `tile`'s input, `B^T d B`, into `v` (`xis x cin`, position after position).
fn transform_input<I: Act>(kernels: Kernels, x: &Maps<I>, grid: &Grid, tile: usize, v: &mut [f32]) {
    let c = x.c;
    let src: [Option<&[I]>; MAX_XI] = grid.inputs(tile).map(|p| p.map(|p| &x.data[p * c..(p + 1) * c]));
    #[cfg(target_arch = "x86_64")]
    if kernels >= Kernels::Avx2 {
        // SAFETY: the kernels are at most the CPU's, and every level from AVX2 has AVX2.
        return unsafe { input_tile_avx2(grid.tiling, &src, c, v) };
    }
    let _ = kernels;
    input_tile(grid.tiling, &src, c, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_tile_avx2<I: Act>(tiling: Tiling, src: &[Option<&[I]>; MAX_XI], c: usize, v: &mut [f32]) {
    input_tile(tiling, src, c, v);
}

#[inline(always)]
fn input_tile<I: Act>(tiling: Tiling, src: &[Option<&[I]>; MAX_XI], c: usize, v: &mut [f32]) {
    match tiling {
        Tiling::F2 => input_tile_f2(src, c, v),
        Tiling::F4 => input_tile_f4(src, c, v),
    }
}

/// F2's input transform, `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`.
#[inline(always)]
fn input_tile_f2<I: Act>(src: &[Option<&[I]>; MAX_XI], c: usize, v: &mut [f32]) {
    let mut c0 = 0;
    while c0 < c {
        let width = L.min(c - c0);
        let d: [Lanes; 16] = gather(src, c0, width);
        // B^T d, then (B^T d) B, on plain fixed-width loops the compiler vectorises.
        let mut r = [[0.0f32; L]; 16];
        for j in 0..4 {
            for l in 0..L {
                let (d0, d1, d2, d3) = (d[j][l], d[4 + j][l], d[8 + j][l], d[12 + j][l]);
                r[j][l] = d0 - d2;
                r[4 + j][l] = d1 + d2;
                r[8 + j][l] = d2 - d1;
                r[12 + j][l] = d1 - d3;
            }
        }
        for i in 0..4 {
            let mut row = [[0.0f32; L]; 4];
            for l in 0..L {
                let (r0, r1, r2, r3) = (r[4 * i][l], r[4 * i + 1][l], r[4 * i + 2][l], r[4 * i + 3][l]);
                row[0][l] = r0 - r2;
                row[1][l] = r1 + r2;
                row[2][l] = r2 - r1;
                row[3][l] = r1 - r3;
            }
            for (j, val) in row.iter().enumerate() {
                store(val, &mut v[(i * 4 + j) * c + c0..][..width]);
            }
        }
        c0 += width;
    }
}

/// F4's input transform along one line of six values, `B^T d` with rows `[4 0 -5 0 1 0]`,
/// `[0 -4 -4 1 1 0]`, `[0 4 -4 -1 1 0]`, `[0 -2 -1 2 1 0]`, `[0 2 -1 -2 1 0]` and
/// `[0 4 0 -5 0 1]`, grouped so shared differences are taken once.
#[inline(always)]
fn bt6(d: [f32; 6]) -> [f32; 6] {
    let (d42, d31) = (d[4] - d[2], d[3] - d[1]);
    [
        4.0 * (d[0] - d[2]) + d42,
        (d[3] + d[4]) - 4.0 * (d[1] + d[2]),
        4.0 * (d[1] - d[2]) + (d[4] - d[3]),
        2.0 * d31 + d42,
        d42 - 2.0 * d31,
        (d[5] - d[3]) - 4.0 * d31,
    ]
}

/// F4's input transform, [`bt6`] down the columns and then along the rows.
#[inline(always)]
fn input_tile_f4<I: Act>(src: &[Option<&[I]>; MAX_XI], c: usize, v: &mut [f32]) {
    let mut c0 = 0;
    while c0 < c {
        let width = L.min(c - c0);
        let d: [Lanes; 36] = gather(src, c0, width);
        two_passes(&d, bt6, |q, val| store(val, &mut v[q * c + c0..][..width]));
        c0 += width;
    }
}

/// F4's two passes over a 6x6 block of lanes: `line` down each column (rows `0..O` of the
/// result), then along each of those rows; `put(q, lanes)` gets value `q` of the `O x O` result
/// (row-major).
#[inline(always)]
fn two_passes<const O: usize>(
    d: &[Lanes; 36],
    line: impl Fn([f32; 6]) -> [f32; O],
    mut put: impl FnMut(usize, &Lanes),
) {
    let mut s = [[0.0f32; L]; 36];
    for j in 0..6 {
        for l in 0..L {
            let t = line(std::array::from_fn(|i| d[6 * i + j][l]));
            for (i, t) in t.into_iter().enumerate() {
                s[6 * i + j][l] = t;
            }
        }
    }
    for i in 0..O {
        let mut row = [[0.0f32; L]; O];
        for l in 0..L {
            let t = line(std::array::from_fn(|j| s[6 * i + j][l]));
            for (j, t) in t.into_iter().enumerate() {
                row[j][l] = t;
            }
        }
        for (j, val) in row.iter().enumerate() {
            put(i * O + j, val);
        }
    }
}

/// Channels `c0 .. c0 + width` of a tile's first `N` input pixels as f32 lanes, zeros for
/// padding.
#[inline(always)]
fn gather<I: Act, const N: usize>(src: &[Option<&[I]>; MAX_XI], c0: usize, width: usize) -> [Lanes; N] {
    let mut d = [[0.0f32; L]; N];
    for (dq, s) in d.iter_mut().zip(src) {
        if let Some(s) = s {
            load(&s[c0..c0 + width], dq);
        }
    }
    d
}

/// Channels `c0 .. c0 + width` of a tile's `N` products (`N x cout`) as lanes.
#[inline(always)]
fn gather_products<const N: usize>(m: &[f32], cout: usize, c0: usize, width: usize) -> [Lanes; N] {
    let mut d = [[0.0f32; L]; N];
    for (q, dq) in d.iter_mut().enumerate() {
        load(&m[q * cout + c0..q * cout + c0 + width], dq);
    }
    d
}

/// `src` (at most `L` values) as f32 into the start of `lanes`.
#[inline(always)]
fn load<I: Act>(src: &[I], lanes: &mut Lanes) {
    if let Ok(full) = <&[I; L]>::try_from(src) {
        for (o, s) in lanes.iter_mut().zip(full) {
            *o = s.to_f32();
        }
    } else {
        for (o, s) in lanes.iter_mut().zip(src) {
            *o = s.to_f32();
        }
    }
}

/// The first `dst.len()` (at most `L`) lanes into `dst`.
#[inline(always)]
fn store(lanes: &Lanes, dst: &mut [f32]) {
    if let Ok(full) = <&mut [f32; L]>::try_from(&mut *dst) {
        *full = *lanes;
    } else {
        let n = dst.len();
        dst.copy_from_slice(&lanes[..n]);
    }
}

/// A tile's products (`xis x cout`) back to its pixels, `A^T m A`, into `sums` (pixel `q` of
/// the tile's block, row-major, at `sums[q * cout..]`).
fn output_tile(kernels: Kernels, tiling: Tiling, m: &[f32], sums: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernels >= Kernels::Avx2 {
        // SAFETY: as in `transform_input`.
        return unsafe { output_tile_avx2(tiling, m, sums) };
    }
    let _ = kernels;
    output_tile_plain(tiling, m, sums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_tile_avx2(tiling: Tiling, m: &[f32], sums: &mut [f32]) {
    output_tile_plain(tiling, m, sums);
}

#[inline(always)]
fn output_tile_plain(tiling: Tiling, m: &[f32], sums: &mut [f32]) {
    match tiling {
        Tiling::F2 => output_tile_f2(m, sums),
        Tiling::F4 => output_tile_f4(m, sums),
    }
}

/// F2's output transform, `A^T = [1 1 1 0; 0 1 -1 -1]`.
#[inline(always)]
fn output_tile_f2(m: &[f32], sums: &mut [f32]) {
    let cout = m.len() / 16;
    let mut c0 = 0;
    while c0 < cout {
        let width = L.min(cout - c0);
        let d: [Lanes; 16] = gather_products(m, cout, c0, width);
        // A^T m (two rows of four), then (A^T m) A.
        let mut s = [[0.0f32; L]; 8];
        for j in 0..4 {
            for l in 0..L {
                let (m0, m1, m2, m3) = (d[j][l], d[4 + j][l], d[8 + j][l], d[12 + j][l]);
                s[j][l] = m0 + m1 + m2;
                s[4 + j][l] = m1 - m2 - m3;
            }
        }
        for i in 0..2 {
            let mut y = [[0.0f32; L]; 2];
            for l in 0..L {
                let (s0, s1, s2, s3) = (s[4 * i][l], s[4 * i + 1][l], s[4 * i + 2][l], s[4 * i + 3][l]);
                y[0][l] = s0 + s1 + s2;
                y[1][l] = s1 - s2 - s3;
            }
            for (j, val) in y.iter().enumerate() {
                store(val, &mut sums[(i * 2 + j) * cout + c0..][..width]);
            }
        }
        c0 += width;
    }
}

/// F4's output transform along one line of six values, `A^T m` with rows `[1 1 1 1 1 0]`,
/// `[0 1 -1 2 -2 0]`, `[0 1 1 4 4 0]` and `[0 1 -1 8 -8 1]`.
#[inline(always)]
fn at6(m: [f32; 6]) -> [f32; 4] {
    let (p12, d12, p34, d34) = (m[1] + m[2], m[1] - m[2], m[3] + m[4], m[3] - m[4]);
    [
        m[0] + p12 + p34,
        d12 + 2.0 * d34,
        p12 + 4.0 * p34,
        d12 + 8.0 * d34 + m[5],
    ]
}

/// F4's output transform, [`at6`] down the columns and then along the rows.
#[inline(always)]
fn output_tile_f4(m: &[f32], sums: &mut [f32]) {
    let cout = m.len() / 36;
    let mut c0 = 0;
    while c0 < cout {
        let width = L.min(cout - c0);
        let d: [Lanes; 36] = gather_products(m, cout, c0, width);
        two_passes(&d, at6, |q, val| store(val, &mut sums[q * cout + c0..][..width]));
        c0 += width;
    }
}
