//! Winograd's F(2x2, 3x3) for the 3x3 stride-1 convolutions whose weights are f32: the f32
//! network, and bf16 emulated on CPUs without bf16 products (AVX2, AVX-512 without
//! AVX512_BF16).
//!
//! Each 2x2 block of output pixels (a tile) comes from the 4x4 block of input around it: the
//! input block and the 3x3 kernel are each transformed to 4x4, multiplied element by element,
//! and the product transformed back (Lavin and Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2015). Summed over input channels, the 16 element-wise products are 16 GEMMs of
//! `tiles x cin` by `cin x cout`, so a 3x3 convolution costs 4 multiplications per output value
//! and input channel instead of im2col's 9, on the same kernels (`kernel::gemm`). The
//! transforms only add, subtract and halve, so the result is the convolution's up to f32
//! rounding (tested against a direct convolution).
//!
//! The transformed weights are 16/9 the size of the kernel's, so they are built from the packed
//! panels on the first batch that uses them, not stored in the kept network.

use rayon::prelude::*;
use std::cell::RefCell;

use super::cpu::Kernels;
use super::kernel::{self, Epilogue, NR, Packed};
use super::nhwc::{Act, Maps, OutPtr};

/// Values of a transformed 4x4 tile: each is one GEMM.
const XI: usize = 16;
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

/// A 3x3 convolution's weights, transformed.
pub(super) struct Winograd {
    /// `G g G^T` at each of the 16 positions, a `cin x cout` matrix each.
    u: Vec<Packed>,
    cin: usize,
    cout: usize,
}

thread_local! {
    /// Each worker's transformed input, products and one tile's sums for a block of tiles,
    /// kept between calls.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
    /// The calling thread's transformed input and products for the phased schedule.
    static PHASED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `v` at least `len` long, its old values kept (the callers overwrite what they use).
fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

impl Winograd {
    /// From a 3x3 convolution's packed im2col weights (`9 * cin` rows in (ky, kx, ci) order,
    /// `cout` columns), the values it holds (exact f32, or bf16-rounded ones) transformed in f32;
    /// `None` when `w` is not shaped so.
    pub(super) fn from_panels(w: &Packed, cin: usize, cout: usize) -> Option<Self> {
        if (w.k, w.n) != (9 * cin, cout) {
            return None;
        }
        let panels = w.panels();
        let len = panels * cin * NR;
        let mut u: Vec<Vec<f32>> = (0..XI).map(|_| vec![0.0f32; len]).collect();
        // Each panel's slice of all 16 matrices, so panels transform in parallel.
        let mut per_panel: Vec<Vec<&mut [f32]>> = (0..panels).map(|_| Vec::with_capacity(XI)).collect();
        for m in &mut u {
            for (j, part) in m.chunks_mut(cin * NR).enumerate() {
                per_panel[j].push(part);
            }
        }
        per_panel.into_par_iter().enumerate().for_each(|(j, mut out)| {
            for ci in 0..cin {
                let tap = |ky: usize, kx: usize| w.panel_row(j, (ky * 3 + kx) * cin + ci);
                for c in 0..NR.min(cout - j * NR) {
                    let g: [[f32; 3]; 3] = std::array::from_fn(|ky| std::array::from_fn(|kx| tap(ky, kx)[c]));
                    let t = kernel_transform(g);
                    for (xi, m) in out.iter_mut().enumerate() {
                        m[ci * NR + c] = t[xi / 4][xi % 4];
                    }
                }
            }
        });
        let u = u
            .into_iter()
            .map(|m| Packed::from_slab(super::slab::Slab::Owned(m), cin, cout))
            .collect::<Option<Vec<_>>>()?;
        Some(Winograd { u, cin, cout })
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
        let fused = Grid::of(x).tiles() >= FUSED_FROM * threads * block;
        self.run_scheduled(kernels, x, out, finish, fused);
    }

    /// Tiles per block in the fused schedule: a block's transformed input and products fill
    /// [`BLOCK_FLOATS`].
    fn block(&self) -> usize {
        (BLOCK_FLOATS / (XI * (self.cin + self.cout))).max(6)
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
        let (cin, cout) = (self.cin, self.cout);
        let grid = Grid::of(x);
        let tiles = grid.tiles();
        let block = self.block();
        let dst = OutPtr(out.as_mut_ptr());
        // Transformed input and products lie tile after tile (`16 x cin` and `16 x cout` values
        // each), so position xi's GEMM reads rows of stride `16 x cin` from `xi x cin` on.
        if fused {
            // Many tiles: each worker takes blocks of them through all three steps.
            (0..tiles.div_ceil(block)).into_par_iter().for_each(|b| {
                let t0 = b * block;
                let count = block.min(tiles - t0);
                SCRATCH.with(|s| {
                    let (v, m, sums) = &mut *s.borrow_mut();
                    v.resize(count * XI * cin, 0.0);
                    m.resize(count * XI * cout, 0.0);
                    for (t, v) in v.chunks_exact_mut(XI * cin).enumerate() {
                        transform_input(kernels, x, &grid, t0 + t, v);
                    }
                    for xi in 0..XI {
                        // SAFETY: v and m hold `count` tiles; position xi's rows are inside.
                        unsafe { self.product(kernels, xi, count, v.as_ptr(), m.as_mut_ptr()) };
                    }
                    sums.resize(4 * cout, 0.0);
                    for (t, m) in m.chunks_exact(XI * cout).enumerate() {
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
            grow(&mut v_all, tiles * XI * cin);
            grow(&mut m_all, tiles * XI * cout);
            // Every value of both is written before it is read: each tile's transform writes
            // all 16 positions, each position's GEMM all of its products.
            let v = &mut v_all[..tiles * XI * cin];
            let m = &mut m_all[..tiles * XI * cout];
            v.par_chunks_exact_mut(XI * cin)
                .enumerate()
                .for_each(|(t, v)| transform_input(kernels, x, &grid, t, v));
            let (vp, mp) = (OutPtr(v.as_mut_ptr()), OutPtr(m.as_mut_ptr()));
            (0..XI).into_par_iter().for_each(|xi| {
                // SAFETY: position xi's values of every tile are written by this task alone.
                unsafe { self.product(kernels, xi, tiles, vp.get(), mp.get()) };
            });
            m.par_chunks_exact(XI * cout).enumerate().for_each_init(
                || vec![0.0f32; 4 * cout],
                |sums, (t, m)| {
                    // SAFETY: tile t's pixels are written by this task alone.
                    unsafe { transform_output(kernels, &grid, t, m, sums, dst, &finish) };
                },
            );
            PHASED.with(|s| *s.borrow_mut() = (v_all, m_all));
        }
    }

    /// Position `xi`'s GEMM for `count` tiles.
    ///
    /// # Safety
    /// `v` holds `count x 16 x cin` values, `m` `count x 16 x cout`, and position xi's values
    /// of `m` are written by no other thread meanwhile.
    unsafe fn product(&self, kernels: Kernels, xi: usize, count: usize, v: *const f32, m: *mut f32) {
        let (cin, cout) = (self.cin, self.cout);
        let u = &self.u[xi];
        // SAFETY: rows of stride 16 x cin from xi x cin hold cin values each (and likewise for
        // m); no bias or residual.
        unsafe {
            let (a, c) = (v.add(xi * cin), m.add(xi * cout));
            kernel::gemm(
                kernels,
                count,
                a,
                XI * cin,
                u,
                0,
                u.panels(),
                c,
                XI * cout,
                Epilogue::default(),
            );
        }
    }
}

/// Tile `tile`'s 16 products (`m`, `16 x cout`) back to its 2x2 pixels, each finished into
/// the output.
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
    let cout = m.len() / XI;
    output_tile(kernels, m, sums);
    for (q, pixel) in grid.pixels(tile).into_iter().enumerate() {
        if let Some(p) = pixel {
            // SAFETY: pixel p of the output is this tile's, `cout` values from p * cout.
            let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add(p * cout), cout) };
            finish(p, &mut sums[q * cout..(q + 1) * cout], out);
        }
    }
}

/// The tiles of a batch: `th x tw` per image, tile `(ty, tx)` covering output rows `2ty, 2ty+1`
/// and columns `2tx, 2tx+1` (those that exist), from input rows `2ty-1 .. 2ty+3`.
struct Grid {
    n: usize,
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
}

impl Grid {
    fn of<I>(x: &Maps<I>) -> Self {
        Grid {
            n: x.n,
            h: x.h,
            w: x.w,
            th: x.h.div_ceil(2),
            tw: x.w.div_ceil(2),
        }
    }

    fn tiles(&self) -> usize {
        self.n * self.th * self.tw
    }

    /// The image and the top-left pixel of tile `t`.
    fn corner(&self, t: usize) -> (usize, usize, usize) {
        let (b, r) = (t / (self.th * self.tw), t % (self.th * self.tw));
        (b, 2 * (r / self.tw), 2 * (r % self.tw))
    }

    /// The 16 input pixels of tile `t` (row-major over the 4x4 block), `None` for padding.
    fn inputs(&self, t: usize) -> [Option<usize>; XI] {
        let (b, y0, x0) = self.corner(t);
        std::array::from_fn(|q| {
            let (iy, ix) = ((y0 + q / 4).checked_sub(1)?, (x0 + q % 4).checked_sub(1)?);
            (iy < self.h && ix < self.w).then(|| (b * self.h + iy) * self.w + ix)
        })
    }

    /// The 4 output pixels of tile `t` (row-major over the 2x2 block), `None` past the edge.
    fn pixels(&self, t: usize) -> [Option<usize>; 4] {
        let (b, y0, x0) = self.corner(t);
        std::array::from_fn(|q| {
            let (oy, ox) = (y0 + q / 2, x0 + q % 2);
            (oy < self.h && ox < self.w).then(|| (b * self.h + oy) * self.w + ox)
        })
    }
}

/// `G g G^T` for one 3x3 kernel, with `G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]`.
fn kernel_transform(g: [[f32; 3]; 3]) -> [[f32; 4]; 4] {
    let gg: [[f32; 3]; 4] = [
        g[0],
        std::array::from_fn(|j| 0.5 * (g[0][j] + g[1][j] + g[2][j])),
        std::array::from_fn(|j| 0.5 * (g[0][j] - g[1][j] + g[2][j])),
        g[2],
    ];
    gg.map(|r| [r[0], 0.5 * (r[0] + r[1] + r[2]), 0.5 * (r[0] - r[1] + r[2]), r[2]])
}

/// Tile `tile`'s input, `B^T d B` with `B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]`, into
/// `v` (`16 x cin`, position after position).
fn transform_input<I: Act>(kernels: Kernels, x: &Maps<I>, grid: &Grid, tile: usize, v: &mut [f32]) {
    let c = x.c;
    let src: [Option<&[I]>; XI] = grid.inputs(tile).map(|p| p.map(|p| &x.data[p * c..(p + 1) * c]));
    #[cfg(target_arch = "x86_64")]
    if kernels >= Kernels::Avx2 {
        // SAFETY: the kernels are at most the CPU's, and every level from AVX2 has AVX2.
        return unsafe { input_tile_avx2(&src, c, v) };
    }
    let _ = kernels;
    input_tile(&src, c, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn input_tile_avx2<I: Act>(src: &[Option<&[I]>; XI], c: usize, v: &mut [f32]) {
    input_tile(src, c, v);
}

#[inline(always)]
fn input_tile<I: Act>(src: &[Option<&[I]>; XI], c: usize, v: &mut [f32]) {
    let mut c0 = 0;
    while c0 < c {
        let width = L.min(c - c0);
        let mut d = [[0.0f32; L]; XI];
        for (dq, s) in d.iter_mut().zip(src) {
            if let Some(s) = s {
                load(&s[c0..c0 + width], dq);
            }
        }
        // B^T d, then (B^T d) B, on plain fixed-width loops the compiler vectorises.
        let mut r = [[0.0f32; L]; XI];
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

/// A tile's 16 products (`16 x cout`) back to its 2x2 pixels, `A^T m A` with
/// `A^T = [1 1 1 0; 0 1 -1 -1]`, into `sums` (pixel `q` of the 2x2 block at `sums[q * cout..]`).
fn output_tile(kernels: Kernels, m: &[f32], sums: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if kernels >= Kernels::Avx2 {
        // SAFETY: as in `transform_input`.
        return unsafe { output_tile_avx2(m, sums) };
    }
    let _ = kernels;
    output_tile_plain(m, sums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn output_tile_avx2(m: &[f32], sums: &mut [f32]) {
    output_tile_plain(m, sums);
}

#[inline(always)]
fn output_tile_plain(m: &[f32], sums: &mut [f32]) {
    let cout = m.len() / XI;
    let mut c0 = 0;
    while c0 < cout {
        let width = L.min(cout - c0);
        let mut d = [[0.0f32; L]; XI];
        for (q, dq) in d.iter_mut().enumerate() {
            load(&m[q * cout + c0..q * cout + c0 + width], dq);
        }
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
