//! ResNet50's forward pass in NHWC on plain GEMMs: the path `lookbook embed` runs.
//!
//! It is built at load from the folded network in `super::resnet`, so torchvision safetensors
//! stay the input format, and its output matches that candle reference within 1e-4 relative
//! (tested on the shipped weights and real photos). Why it is faster than candle's `conv2d`:
//! activations stay NHWC from the stem to the pooling, so a 1x1 convolution is one GEMM over the
//! activation as it lies in memory, and a 3x3 or 7x7 one is a GEMM over an im2col tile built for
//! one block of output pixels at a time; each block's bias, residual add and ReLU run right after
//! its GEMM while it is still in cache, and the blocks are shared out over all cores. With f32
//! weights (the f32 network, and bf16 emulated), the 3x3 stride-1 convolutions of a batch run
//! through Winograd instead (`super::winograd`): F(4x4, 3x3) on maps from 8 pixels a side (36
//! GEMMs with 1/4 of the multiplications), F(2x2, 3x3) on smaller ones (16 GEMMs, 4/9).
//!
//! In bf16 the activations are bf16 between layers (every convolution's output rounded once,
//! after its ReLU), on every kernel level: half the memory traffic of f32, which is what limits
//! the wide 1x1 convolutions at 224x224, and no conversion before each product. The f32 path
//! keeps f32 activations.

use rayon::prelude::*;
use std::cell::RefCell;

use super::amx;
use super::bf16::{self, PackedBf16};
use super::cpu::Kernels;
use super::kernel::{self, Epilogue, NR, Packed};
pub(super) use super::maps::OutPtr;
pub use super::maps::{Act, Maps};
use super::winograd::{Tiling, Winograd};
use crate::{Error, Result};

/// Activation buffers kept between layers and batches: taking one of the right size writes
/// nothing (every value is overwritten by the layer), where a fresh zeroed one costs a memset.
pub(crate) struct Buffers<T = f32>(std::sync::Mutex<Vec<Vec<T>>>);

impl<T> Default for Buffers<T> {
    fn default() -> Self {
        Buffers(std::sync::Mutex::new(Vec::new()))
    }
}

impl<T: Copy + Default> Buffers<T> {
    /// A buffer of `len` values, holding whatever it held before (callers overwrite it all).
    pub(super) fn take(&self, len: usize) -> Vec<T> {
        let mut free = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // One of exactly this length first (layers repeat their shapes every batch, and such
        // a buffer needs no write), then the smallest free one that is big enough (it writes
        // only where it grows), else the biggest (it grows once).
        let pick = free
            .iter()
            .position(|b| b.len() == len)
            .or_else(|| {
                free.iter()
                    .enumerate()
                    .filter(|(_, b)| b.capacity() >= len)
                    .min_by_key(|(_, b)| b.capacity())
                    .map(|(i, _)| i)
            })
            .or_else(|| {
                free.iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.capacity())
                    .map(|(i, _)| i)
            });
        let mut v = pick.map(|i| free.swap_remove(i)).unwrap_or_default();
        v.resize(len, T::default());
        v
    }

    /// Returns a buffer for later layers.
    pub(super) fn give(&self, v: Vec<T>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(v);
    }
}

/// A convolution with its batch norm folded in, weights laid out for `im2col x weights`.
pub struct Conv {
    /// `k*k*cin x cout`, rows in (ky, kx, ci) order to match an im2col row, packed once.
    pub(super) w: Weights,
    /// Operands rounded to bf16 (products and sums stay f32).
    pub(super) bf16: bool,
    /// The kernels it runs.
    pub(super) kernels: Kernels,
    pub(super) bias: Vec<f32>,
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) k: usize,
    pub(super) stride: usize,
    pub(super) pad: usize,
    /// The weights transformed for Winograd (F2 or F4, by the map), built on the first batch that
    /// runs it (see [`Conv::winograd`]), or, for Winograd on dot products, mapped from a kept
    /// network.
    pub(super) wino: std::sync::OnceLock<Option<Winograd>>,
    /// With bf16 weights and 3x3 stride-1: a batch runs through Winograd's F(2x2, 3x3) on
    /// `vdpbf16ps`, its transformed operands rounded to bf16 (chosen per convolution by
    /// [`super::tune`] where it measured fastest).
    pub(super) dot_winograd: bool,
}

/// A convolution's packed weights: f32 (exact, or holding bf16-rounded values), or bf16 for
/// the AMX and AVX512_BF16 kernels.
pub(super) enum Weights {
    F32(Packed),
    Bf16(PackedBf16),
}

impl Weights {
    fn panels(&self) -> usize {
        match self {
            Weights::F32(w) => w.panels(),
            Weights::Bf16(w) => w.panels(),
        }
    }
}

/// What runs after a convolution's GEMM, on each block while it is in cache.
#[derive(Clone, Copy)]
pub(super) enum Then<'a, T = f32> {
    /// Bias only.
    Bias,
    /// Bias then ReLU.
    Relu,
    /// Bias, add this residual (same shape as the output), then ReLU.
    AddRelu(&'a Maps<T>),
}

thread_local! {
    /// Each worker's im2col tile, kept between calls so a batch allocates it once.
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The same in bf16 for the AMX and AVX512_BF16 kernels.
    static TILE16: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
    /// The f32 sums of emulated bf16, before they are rounded into the output.
    static SUMS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Conv {
    /// From torch-layout weights (`cout x cin x k x k`, flattened) and a bias of `cout`.
    pub fn new(weight: &[f32], bias: Vec<f32>, cin: usize, k: usize, stride: usize) -> Result<Self> {
        let cout = bias.len();
        if weight.len() != cout * cin * k * k {
            return Err(Error::Invalid(format!(
                "convolution weights have {} values, expected {cout} x {cin} x {k} x {k}",
                weight.len()
            )));
        }
        // Column co of the GEMM is output channel co's kernel, reordered (ci, ky, kx) -> (ky, kx, ci).
        let w = Packed::from_columns(k * k * cin, cout, |co, col| {
            let src = &weight[co * cin * k * k..(co + 1) * cin * k * k];
            for ci in 0..cin {
                for kyx in 0..k * k {
                    col[kyx * cin + ci] = src[ci * k * k + kyx];
                }
            }
        });
        Ok(Conv {
            w: Weights::F32(w),
            bf16: false,
            kernels: Kernels::detected(),
            bias,
            cin,
            cout,
            k,
            stride,
            pad: k / 2,
            wino: Default::default(),
            dot_winograd: false,
        })
    }

    /// The same convolution on `kernels` (at most what the CPU has).
    pub fn on(self, kernels: Kernels) -> Self {
        Conv {
            kernels: kernels.min(Kernels::detected()),
            wino: Default::default(),
            ..self
        }
    }

    /// The same convolution with operands rounded to bf16 (sums in f32): on AMX tiles or
    /// AVX512_BF16 dot products where its kernels have them, else through the f32 kernel on
    /// rounded values.
    pub fn into_bf16(self) -> Self {
        let Weights::F32(w) = self.w else { return self };
        if self.kernels < Kernels::Avx512Bf16 {
            return Conv {
                w: Weights::F32(w),
                ..self
            }
            .into_bf16_emulated();
        }
        Conv {
            w: Weights::Bf16(PackedBf16::from_packed(&w)),
            bf16: true,
            wino: Default::default(),
            ..self
        }
    }

    /// The same convolution with operands rounded to bf16 but multiplied by the f32 kernel (and
    /// Winograd where it applies) even where the CPU has bf16 products: the other candidate
    /// [`super::tune`] times against them.
    pub(super) fn into_bf16_emulated(self) -> Self {
        let Weights::F32(mut w) = self.w else { return self };
        w.map(bf16::round_bf16);
        Conv {
            w: Weights::F32(w),
            bf16: true,
            wino: Default::default(),
            ..self
        }
    }

    /// The same bf16 convolution run through Winograd on dot products ([`Conv::dot_winograd`])
    /// where that applies: bf16 weight panels, a 3x3 stride-1 convolution, and input channels
    /// a multiple of 32 (each product reads whole rows of pairs); unchanged elsewhere.
    pub(super) fn into_dot_winograd(self) -> Self {
        let fits = matches!(self.w, Weights::Bf16(_))
            && (self.k, self.stride, self.pad) == (3, 1, 1)
            && self.cin.is_multiple_of(32);
        Conv {
            dot_winograd: fits,
            wino: Default::default(),
            ..self
        }
    }

    /// A copy of this convolution, its weights copied into memory: a candidate that differs
    /// only in how it runs costs a copy, not packing the weights again. `None` only if the
    /// copied weights did not fit their shape, which they always do.
    fn duplicate(&self) -> Option<Conv> {
        let w = match &self.w {
            Weights::F32(w) => Weights::F32(Packed::from_slab(
                super::slab::Slab::Owned(w.values().to_vec()),
                w.k,
                w.n,
            )?),
            Weights::Bf16(w) => Weights::Bf16(PackedBf16::from_slab(
                super::slab::Slab::Owned(w.values().to_vec()),
                w.kp,
                w.n,
            )?),
        };
        Some(Conv {
            w,
            bias: self.bias.clone(),
            wino: Default::default(),
            ..*self
        })
    }

    /// Whether the bf16 products run on bf16 weights (AMX tiles or AVX512_BF16 dot products),
    /// not through the f32 kernel.
    pub(super) fn bf16_products(&self) -> bool {
        matches!(self.w, Weights::Bf16(_))
    }

    /// The convolution plus bias alone, into a fresh buffer (benchmarks and tests); in bf16
    /// the output is rounded to bf16, as between the network's layers.
    pub fn apply(&self, x: &Maps) -> Maps {
        if self.bf16 {
            self.forward_bf16(x, Then::Bias, &Buffers::default(), &Buffers::default())
                .to_f32()
        } else {
            self.forward_f32(x, Then::Bias, &Buffers::default())
        }
    }

    fn out_size<A>(&self, x: &Maps<A>) -> (usize, usize) {
        (
            (x.h + 2 * self.pad - self.k) / self.stride + 1,
            (x.w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }

    /// One im2col row (output pixel `r`) into `row`: `seg(Some(at), dst)` copies `dst.len()`
    /// values of `x` from `at` into `dst`, `seg(None, dst)` zeroes `dst` (padding). The `k`
    /// taps of one kernel row are `k` neighbouring pixels, so they are one run of `k * cin`
    /// values in NHWC: the 7x7 stem copies 7 runs of 21 values, not 49 of 3.
    fn im2col_row<A, T>(&self, x: &Maps<A>, r: usize, mut seg: impl FnMut(Option<usize>, &mut [T]), row: &mut [T]) {
        let (ho, wo) = self.out_size(x);
        let (k, cin, s, p) = (self.k, self.cin, self.stride, self.pad);
        let (b, rem) = (r / (ho * wo), r % (ho * wo));
        let (oy, ox) = (rem / wo, rem % wo);
        let ix0 = (ox * s) as isize - p as isize;
        // The taps kx0..kx1 fall inside the image; the rest are padding.
        let kx0 = (-ix0).clamp(0, k as isize) as usize;
        let kx1 = (x.w as isize - ix0).clamp(0, k as isize) as usize;
        for (ky, line) in row[..k * k * cin].chunks_exact_mut(k * cin).enumerate() {
            let iy = (oy * s + ky) as isize - p as isize;
            if iy < 0 || iy >= x.h as isize || kx0 >= kx1 {
                seg(None, line);
                continue;
            }
            let (before, rest) = line.split_at_mut(kx0 * cin);
            let (inside, after) = rest.split_at_mut((kx1 - kx0) * cin);
            if !before.is_empty() {
                seg(None, before);
            }
            let at = ((b * x.h + iy as usize) * x.w + (ix0 + kx0 as isize) as usize) * cin;
            seg(Some(at), inside);
            if !after.is_empty() {
                seg(None, after);
            }
        }
    }

    /// Writes the im2col rows `r0..r0 + rows` (output pixels) of `x` into `tile`.
    fn im2col(&self, x: &Maps, r0: usize, rows: usize, tile: &mut [f32]) {
        let kk = self.k * self.k * self.cin;
        for (r, row) in (r0..r0 + rows).zip(tile.chunks_exact_mut(kk)) {
            self.im2col_row(
                x,
                r,
                |at, dst| match at {
                    Some(at) => dst.copy_from_slice(&x.data[at..at + dst.len()]),
                    None => dst.fill(0.0),
                },
                row,
            );
        }
    }

    /// The epilogue for `then`, with the residual's rows from `r0` on.
    fn epilogue<'a, T>(&'a self, then: Then<'a, T>, r0: usize) -> Epilogue<'a, T> {
        Epilogue {
            bias: Some(&self.bias),
            skip: match then {
                Then::AddRelu(skip) => Some(&skip.data[r0 * self.cout..]),
                _ => None,
            },
            relu: !matches!(then, Then::Bias),
        }
    }

    /// Runs `part(r0, rows, dst, j0, j1)` over the `m x cout` output `out` on every core:
    /// output rows `r0..r0 + rows` and panels `j0..j1` (clamped by the callee) into `dst`, the
    /// output's row `r0`.
    fn schedule<O: Send + Sync>(
        &self,
        m: usize,
        out: &mut [O],
        part: impl Fn(usize, usize, OutPtr<O>, usize, usize) + Sync,
    ) {
        let kk = self.k * self.k * self.cin;
        let n = self.cout;
        let threads = rayon::current_num_threads().max(1);
        // Blocks of output pixels when there are enough of them to keep every core busy with a
        // few blocks each; otherwise (the last stages at small inputs) blocks of output channels.
        // At most about 1 MB of im2col per block, so it stays in cache for its GEMM, and a
        // multiple of the core count of blocks of equal size, so no core waits for another's
        // last block.
        let cap = ((1 << 18) / kk.max(1)).max(32);
        let blocks = threads * m.div_ceil(threads * cap);
        let tile_rows = if matches!(self.w, Weights::Bf16(_)) { 32 } else { 6 };
        let rows = m.div_ceil(blocks).next_multiple_of(tile_rows);
        if m >= 2 * threads * 32 {
            out.par_chunks_mut(rows * n).enumerate().for_each(|(t, block)| {
                part(t * rows, block.len() / n, OutPtr(block.as_mut_ptr()), 0, usize::MAX);
            });
        } else {
            let panels = self.w.panels();
            let per = panels.div_ceil(2 * threads).max(1);
            let dst = OutPtr(out.as_mut_ptr());
            // Every output row, and the columns of panels t*per.. only, which no other task
            // writes. (Each task builds the few rows' im2col itself.)
            (0..panels.div_ceil(per))
                .into_par_iter()
                .for_each(|t| part(0, m, dst, t * per, (t + 1) * per));
        }
    }

    /// `data` as this convolution's output maps for input `x`.
    fn output<A, O>(&self, x: &Maps<A>, data: Vec<O>) -> Maps<O> {
        let (h, w) = self.out_size(x);
        Maps {
            data,
            n: x.n,
            h,
            w,
            c: self.cout,
        }
    }

    /// Winograd's transformed weights when this convolution runs that way on `x`: a 3x3
    /// stride-1 convolution with f32 weights (the f32 network, and bf16 emulated), or with bf16
    /// weights where [`Conv::dot_winograd`] says so, on a batch of more than one image. (A
    /// single photo, as `similar --image` embeds, would not earn back building the transformed
    /// weights, 16/9 or 4 times the size of the kernel's.)
    fn winograd<A>(&self, x: &Maps<A>) -> Option<&Winograd> {
        if self.k != 3 || self.stride != 1 || self.pad != 1 || x.n < 2 {
            return None;
        }
        match &self.w {
            Weights::F32(w) => self
                .wino
                .get_or_init(|| Winograd::from_panels(w, self.cin, self.cout, Tiling::for_map(x.h, x.w)))
                .as_ref(),
            // F(2x2, 3x3) only: F4's transforms scale by up to 8, which bf16's rounding of
            // the transformed operands would carry into the sums.
            Weights::Bf16(_) => self.dot_winograd_weights(),
        }
    }

    /// Winograd on dot products' transformed weights where [`Conv::dot_winograd`] says so:
    /// mapped from a kept network, else built now (the first batch, or the save that keeps
    /// them).
    pub(super) fn dot_winograd_weights(&self) -> Option<&Winograd> {
        #[cfg(target_arch = "x86_64")]
        if let (Weights::Bf16(w), true) = (&self.w, self.dot_winograd) {
            return self
                .wino
                .get_or_init(|| Winograd::from_bf16_panels(w, self.cin, self.cout, Tiling::F2))
                .as_ref();
        }
        None
    }

    /// This convolution on Winograd on dot products with its transformed weights given (mapped
    /// from a kept network), so no batch builds them.
    pub(super) fn with_dot_winograd_weights(self, wg: Winograd) -> Self {
        Conv {
            wino: std::sync::OnceLock::from(Some(wg)),
            ..self
        }
    }

    /// The f32 convolution (the reference precision).
    fn forward_f32(&self, x: &Maps, then: Then, pool: &Buffers) -> Maps {
        debug_assert_eq!(x.c, self.cin);
        let (ho, wo) = self.out_size(x);
        let m = x.n * ho * wo;
        let mut out = pool.take(m * self.cout);
        if let Some(wg) = self.winograd(x) {
            let epi = self.epilogue(then, 0);
            wg.run(self.kernels, x, &mut out, |p, sums, dst| {
                epi.apply_row_into(sums, dst, p, 0, self.cout);
            });
            return self.output(x, out);
        }
        self.schedule(m, &mut out, |r0, mt, dst, j0, j1| {
            // SAFETY: `schedule` hands each call its own rows or panels of the output.
            unsafe { self.product_f32(x, r0, mt, dst, j0, j1, self.epilogue(then, r0)) }
        });
        self.output(x, out)
    }

    /// The bf16 convolution: bf16 operands, f32 sums, the output rounded to bf16 after the
    /// epilogue. The input is bf16 (every layer after the stem) or f32 (the stem's photo).
    pub(super) fn forward_bf16<I: Act>(
        &self,
        x: &Maps<I>,
        then: Then<u16>,
        pool: &Buffers<u16>,
        scratch: &Buffers<u16>,
    ) -> Maps<u16> {
        debug_assert_eq!(x.c, self.cin);
        let (ho, wo) = self.out_size(x);
        let m = x.n * ho * wo;
        let mut out = pool.take(m * self.cout);
        // Through Winograd on bf16 activations: emulated bf16 (the same rounded operands), or
        // dot products where they were chosen.
        if let (Some(wg), Some(_)) = (self.winograd(x), I::as_bf16(&x.data)) {
            let epi = self.epilogue(then, 0);
            let n = self.cout;
            wg.run(self.kernels, x, &mut out, |p, sums, dst| {
                sums.iter_mut().zip(&self.bias).for_each(|(s, b)| *s += b);
                bf16::finish_bf16(sums, epi.skip.map(|s| &s[p * n..(p + 1) * n]), epi.relu, dst);
            });
            return self.output(x, out);
        }
        // For im2col from an f32 input, the input converted once (a 3x3 convolution reads
        // each value 9 times); a bf16 input is read as it is.
        let direct = self.k == 1 && self.stride == 1;
        let converted = match I::as_bf16(&x.data) {
            None if !direct && matches!(self.w, Weights::Bf16(_)) => {
                let mut xb = scratch.take(x.data.len());
                xb.par_chunks_mut(1 << 14)
                    .zip(x.data.par_chunks(1 << 14))
                    .for_each(|(d, s)| I::to_bf16(s, d));
                Some(xb)
            }
            _ => None,
        };
        let xb: &[u16] = converted.as_deref().or(I::as_bf16(&x.data)).unwrap_or(&[]);
        self.schedule(m, &mut out, |r0, mt, dst, j0, j1| {
            // SAFETY: `schedule` hands each call its own rows or panels of the output.
            unsafe { self.product_bf16(x, xb, r0, mt, dst, j0, j1, self.epilogue(then, r0)) }
        });
        if let Some(xb) = converted {
            scratch.give(xb);
        }
        self.output(x, out)
    }

    /// Output rows `r0..r0 + mt` (pixels), panels `j0..j1` (clamped), into `dst` (the block's
    /// first row, stride `cout`): im2col (or the activation itself for a 1x1 convolution),
    /// then the f32 kernel.
    ///
    /// # Safety
    /// `dst` is valid for `mt` rows of `cout` values, and those columns of them are this call's.
    #[allow(clippy::too_many_arguments)]
    unsafe fn product_f32(
        &self,
        x: &Maps,
        r0: usize,
        mt: usize,
        dst: OutPtr<f32>,
        j0: usize,
        j1: usize,
        epi: Epilogue,
    ) {
        let kk = self.k * self.k * self.cin;
        let Weights::F32(w) = &self.w else { return };
        TILE.with(|t| {
            let mut tile = t.borrow_mut();
            let lhs: &[f32] = if self.k == 1 && self.stride == 1 {
                &x.data[r0 * kk..(r0 + mt) * kk]
            } else {
                tile.resize(mt * kk, 0.0);
                self.im2col(x, r0, mt, &mut tile);
                &tile
            };
            let j1 = j1.min(w.panels());
            // SAFETY: lhs is mt x kk, row-major; dst as promised.
            unsafe { kernel::gemm(self.kernels, mt, lhs.as_ptr(), kk, w, j0, j1, dst.get(), self.cout, epi) };
        });
    }

    /// The same in bf16, into bf16 `dst`: on the AMX tile kernel or the AVX512_BF16 one with
    /// the operands in bf16 (`xb` is `x` in bf16 where im2col reads it), or, on CPUs without
    /// them, through the f32 kernel on the same rounded operands (the same arithmetic, so the
    /// same vectors), its sums rounded into `dst` by the same epilogue.
    ///
    /// # Safety
    /// As [`Conv::product_f32`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn product_bf16<I: Act>(
        &self,
        x: &Maps<I>,
        xb: &[u16],
        r0: usize,
        mt: usize,
        dst: OutPtr<u16>,
        j0: usize,
        j1: usize,
        epi: Epilogue<u16>,
    ) {
        let kk = self.k * self.k * self.cin;
        let n = self.cout;
        let direct = self.k == 1 && self.stride == 1;
        #[cfg(target_arch = "x86_64")]
        if let Weights::Bf16(wb) = &self.w {
            let j1 = j1.min(wb.panels());
            // SAFETY (both calls below): `a` holds `m` rows of stride kp, padded to a multiple
            // of 32 as the kernels read them; the kernels are at most the CPU's (so it has
            // AVX512_BF16, and AMX for that level); `dst` and `epi` start at the same row.
            let product = |m: usize, a: *const u16, dst: *mut u16, epi: Epilogue<u16>| unsafe {
                if self.kernels == Kernels::Amx {
                    amx::gemm(m, a, wb.kp, wb, j0, j1, dst, n, epi)
                } else {
                    super::bf16dot::gemm(m, a, wb.kp, wb, j0, j1, dst, n, epi)
                }
            };
            // A 1x1 convolution of bf16 maps whose channels need no padding reads its rows in
            // place, 32 at a time (copying them cost the AMX forward pass a few percent); only
            // the last rows, fewer than 32, are copied into a padded tile.
            let in_place = match I::as_bf16(&x.data) {
                Some(xs) if direct && kk == wb.kp => {
                    let rows = mt / 32 * 32;
                    if rows > 0 {
                        product(rows, xs[r0 * kk..].as_ptr(), dst.get(), epi);
                    }
                    rows
                }
                _ => 0,
            };
            if in_place == mt {
                return;
            }
            let (r0, mt) = (r0 + in_place, mt - in_place);
            let dst = dst.get().wrapping_add(in_place * n);
            let epi = Epilogue {
                skip: epi.skip.map(|s| &s[in_place * n..]),
                ..epi
            };
            // Straight to bf16: the activation's rows copied (or converted, from f32), or im2col
            // rows copied from `xb`.
            TILE16.with(|t16| {
                let mut a = t16.borrow_mut();
                if direct {
                    bf16::bf16_tile(mt, wb.kp, &mut a, |r, row| {
                        I::to_bf16(&x.data[(r0 + r) * kk..(r0 + r + 1) * kk], row);
                        kk
                    });
                } else {
                    bf16::bf16_tile(mt, wb.kp, &mut a, |r, row| {
                        self.im2col_row(
                            x,
                            r0 + r,
                            |at, seg| match at {
                                Some(at) => seg.copy_from_slice(&xb[at..at + seg.len()]),
                                None => seg.fill(0),
                            },
                            row,
                        );
                        kk
                    });
                }
                product(mt, a.as_ptr(), dst, epi);
            });
            return;
        }
        let Weights::F32(w) = &self.w else { return };
        TILE.with(|t| {
            let mut tile = t.borrow_mut();
            tile.resize(mt * kk, 0.0);
            if direct {
                let src = &x.data[r0 * kk..(r0 + mt) * kk];
                tile.iter_mut().zip(src).for_each(|(t, v)| *t = v.bf16_value());
            } else {
                for (r, row) in tile.chunks_exact_mut(kk).enumerate() {
                    self.im2col_row(
                        x,
                        r0 + r,
                        |at, seg| match at {
                            Some(at) => {
                                let len = seg.len();
                                seg.iter_mut()
                                    .zip(&x.data[at..at + len])
                                    .for_each(|(t, v)| *t = v.bf16_value());
                            }
                            None => seg.fill(0.0),
                        },
                        row,
                    );
                }
            }
            let j1 = j1.min(w.panels());
            let (c0, c1) = (j0 * NR, (j1 * NR).min(n));
            if c0 >= c1 {
                return;
            }
            SUMS.with(|s| {
                let mut sums = s.borrow_mut();
                sums.resize(mt * n, 0.0);
                let plain = Epilogue {
                    bias: epi.bias,
                    skip: None,
                    relu: false,
                };
                // SAFETY: the tile is mt x kk; sums is mt x n, this thread's own.
                unsafe {
                    kernel::gemm(
                        self.kernels,
                        mt,
                        tile.as_ptr(),
                        kk,
                        w,
                        j0,
                        j1,
                        sums.as_mut_ptr(),
                        n,
                        plain,
                    )
                };
                for r in 0..mt {
                    let row = r * n;
                    // SAFETY: row r, columns c0..c1 of the block are this call's to write.
                    let out = unsafe { std::slice::from_raw_parts_mut(dst.get().add(row + c0), c1 - c0) };
                    let skip = epi.skip.map(|s| &s[row + c0..row + c1]);
                    bf16::finish_bf16(&sums[row + c0..row + c1], skip, epi.relu, out);
                }
            });
        });
    }
}

/// torchvision's Bottleneck block.
pub(crate) struct Block {
    pub(crate) c1: Conv,
    pub(crate) c2: Conv,
    pub(crate) c3: Conv,
    pub(crate) down: Option<Conv>,
}

/// The whole network up to global pooling.
pub struct Net {
    pub(crate) stem: Conv,
    pub(crate) blocks: Vec<Block>,
    /// f32 activations (the f32 network).
    pub(crate) pool: Buffers,
    /// bf16 activations (the bf16 network).
    pub(crate) pool16: Buffers<u16>,
    /// The stem's photo in bf16, for its im2col.
    pub(crate) scratch16: Buffers<u16>,
}

impl Net {
    /// The network of these convolutions, with empty activation pools.
    pub(crate) fn new(stem: Conv, blocks: Vec<Block>) -> Self {
        Net {
            stem,
            blocks,
            pool: Default::default(),
            pool16: Default::default(),
            scratch16: Default::default(),
        }
    }

    /// A network of `convs` in [`Net::convs`]' order, blocks with a downsample where `downs`
    /// says; `None` when there are too few or too many.
    pub(crate) fn from_convs(convs: impl IntoIterator<Item = Conv>, downs: &[bool]) -> Option<Self> {
        let mut convs = convs.into_iter();
        let stem = convs.next()?;
        let mut blocks = Vec::with_capacity(downs.len());
        for &down in downs {
            blocks.push(Block {
                c1: convs.next()?,
                c2: convs.next()?,
                c3: convs.next()?,
                down: if down { Some(convs.next()?) } else { None },
            });
        }
        convs.next().is_none().then(|| Net::new(stem, blocks))
    }

    /// Every convolution: the stem, then each block's `c1`, `c2`, `c3` and its downsample.
    pub(crate) fn convs(&self) -> Vec<&Conv> {
        std::iter::once(&self.stem)
            .chain(
                self.blocks
                    .iter()
                    .flat_map(|b| [&b.c1, &b.c2, &b.c3].into_iter().chain(b.down.as_ref())),
            )
            .collect()
    }

    /// Per block, whether it has a downsample.
    pub(crate) fn downs(&self) -> Vec<bool> {
        self.blocks.iter().map(|b| b.down.is_some()).collect()
    }

    /// A copy of this network, weights copied rather than packed again.
    pub(crate) fn duplicate(&self) -> Result<Self> {
        let downs = self.downs();
        let convs = self
            .convs()
            .into_iter()
            .map(Conv::duplicate)
            .collect::<Option<Vec<_>>>();
        convs
            .and_then(|c| Net::from_convs(c, &downs))
            .ok_or_else(|| Error::Invalid("a copied network lost a convolution".into()))
    }

    /// The same network with every convolution that can run through Winograd on dot products
    /// doing so ([`Conv::into_dot_winograd`]).
    pub(crate) fn on_dot_winograd(self) -> Result<Self> {
        let (convs, downs) = self.into_convs();
        Net::from_convs(convs.into_iter().map(Conv::into_dot_winograd), &downs)
            .ok_or_else(|| Error::Invalid("a network lost a convolution".into()))
    }

    /// [`Net::convs`] by value, and per block whether it has a downsample.
    pub(crate) fn into_convs(self) -> (Vec<Conv>, Vec<bool>) {
        let downs = self.downs();
        let mut convs = vec![self.stem];
        for b in self.blocks {
            convs.extend([b.c1, b.c2, b.c3]);
            convs.extend(b.down);
        }
        (convs, downs)
    }

    /// The last stage's feature maps for a batch of normalised NHWC inputs, in f32.
    pub fn feature_map(&self, x: &Maps) -> Maps {
        if self.stem.bf16 {
            let (pool, scratch) = (&self.pool16, &self.scratch16);
            let stem = self.stem.forward_bf16(x, Then::Relu, pool, scratch);
            let map = self.blocks_from(stem, pool, |c, x, then| c.forward_bf16(x, then, pool, scratch));
            let out = map.to_f32_into(self.pool.take(map.data.len()));
            pool.give(map.data);
            out
        } else {
            let pool = &self.pool;
            let stem = self.stem.forward_f32(x, Then::Relu, pool);
            self.blocks_from(stem, pool, |c, x, then| c.forward_f32(x, then, pool))
        }
    }

    /// Max pooling, then every bottleneck block, on activations of one type.
    pub(super) fn blocks_from<T: Act + PartialOrd>(
        &self,
        stem: Maps<T>,
        pool: &Buffers<T>,
        conv: impl Fn(&Conv, &Maps<T>, Then<'_, T>) -> Maps<T>,
    ) -> Maps<T> {
        let mut x = max_pool_3x3_s2(&stem, pool);
        pool.give(stem.data);
        for b in &self.blocks {
            let y1 = conv(&b.c1, &x, Then::Relu);
            let y2 = conv(&b.c2, &y1, Then::Relu);
            pool.give(y1.data);
            let next = match &b.down {
                Some(d) => {
                    let skip = conv(d, &x, Then::Bias);
                    let out = conv(&b.c3, &y2, Then::AddRelu(&skip));
                    pool.give(skip.data);
                    out
                }
                None => conv(&b.c3, &y2, Then::AddRelu(&x)),
            };
            pool.give(y2.data);
            pool.give(std::mem::replace(&mut x, next).data);
        }
        x
    }
    /// Pooled, L2-normalised features, one vector per image.
    pub fn features(&self, x: &Maps, pooling: super::Pooling) -> Vec<Vec<f32>> {
        let map = self.feature_map(x);
        let hw = map.h * map.w;
        let out = map
            .data
            .chunks_exact(hw * map.c)
            .map(|img| {
                let mut v = match pooling {
                    super::Pooling::Avg => {
                        let mut s = vec![0.0f32; map.c];
                        for px in img.chunks_exact(map.c) {
                            s.iter_mut().zip(px).for_each(|(s, p)| *s += p);
                        }
                        s.iter_mut().for_each(|s| *s /= hw as f32);
                        s
                    }
                    super::Pooling::Max => {
                        let mut s = vec![f32::NEG_INFINITY; map.c];
                        for px in img.chunks_exact(map.c) {
                            s.iter_mut().zip(px).for_each(|(s, p)| *s = s.max(*p));
                        }
                        s
                    }
                    // Channel by channel: NHWC keeps a channel's pixels `c` apart.
                    g @ super::Pooling::Gem(_) => (0..map.c)
                        .map(|ch| g.pool(img.iter().skip(ch).step_by(map.c).copied()))
                        .collect(),
                };
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect();
        self.pool.give(map.data);
        out
    }

    /// [`Net::features`] of CHW photos (`3 x h x w` values each), the batch built in a buffer
    /// of the network's pool and handed back after, so a run of batches takes no fresh pages.
    pub fn photo_features(
        &self,
        photos: &[Vec<f32>],
        h: usize,
        w: usize,
        pooling: super::Pooling,
    ) -> crate::Result<Vec<Vec<f32>>> {
        let x = Maps::from_chw_into(photos, h, w, self.pool.take(photos.len() * h * w * 3))?;
        let out = self.features(&x, pooling);
        self.pool.give(x.data);
        Ok(out)
    }
}

/// 3x3 max pooling with stride 2 and padding 1. Padding never wins: inputs follow a ReLU, so
/// they are never below zero, and non-negative bf16 bits order as their values do.
fn max_pool_3x3_s2<T: Act + PartialOrd>(x: &Maps<T>, pool: &Buffers<T>) -> Maps<T> {
    let (ho, wo) = ((x.h - 1) / 2 + 1, (x.w - 1) / 2 + 1);
    let c = x.c;
    let mut out = pool.take(x.n * ho * wo * c);
    out.par_chunks_mut(wo * c).enumerate().for_each(|(r, row)| {
        let (b, oy) = (r / ho, r % ho);
        row.fill(T::default());
        for (ox, px) in row.chunks_exact_mut(c).enumerate() {
            for iy in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(x.h) {
                for ix in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(x.w) {
                    let at = ((b * x.h + iy) * x.w + ix) * c;
                    // A select, not a conditional store, so the loop becomes vector max
                    // instructions (the branch kept it scalar: 2.7% of a forward pass).
                    px.iter_mut()
                        .zip(&x.data[at..at + c])
                        .for_each(|(o, v)| *o = if *v > *o { *v } else { *o });
                }
            }
        }
    });
    Maps {
        data: out,
        n: x.n,
        h: ho,
        w: wo,
        c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct convolution, slow and obviously right, in NHWC.
    fn naive(conv: &Conv, weight: &[f32], x: &Maps) -> Vec<f32> {
        let (ho, wo) = conv.out_size(x);
        let mut out = vec![0.0f32; x.n * ho * wo * conv.cout];
        for b in 0..x.n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for co in 0..conv.cout {
                        let mut s = conv.bias[co];
                        for ky in 0..conv.k {
                            for kx in 0..conv.k {
                                let iy = (oy * conv.stride + ky) as isize - conv.pad as isize;
                                let ix = (ox * conv.stride + kx) as isize - conv.pad as isize;
                                if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize {
                                    continue;
                                }
                                for ci in 0..conv.cin {
                                    s += x.data[((b * x.h + iy as usize) * x.w + ix as usize) * x.c + ci]
                                        * weight[((co * conv.cin + ci) * conv.k + ky) * conv.k + kx];
                                }
                            }
                        }
                        out[((b * ho + oy) * wo + ox) * conv.cout + co] = s;
                    }
                }
            }
        }
        out
    }

    use crate::vision::kernel::noise;

    /// `wg` run on `x` in one schedule, plus `conv`'s bias, in f32.
    fn winograd_with_bias<I: Act>(wg: &Winograd, kernels: Kernels, x: &Maps<I>, conv: &Conv, fused: bool) -> Vec<f32> {
        let mut got = vec![f32::NAN; x.n * x.h * x.w * conv.cout];
        wg.run_scheduled(
            kernels,
            x,
            &mut got,
            |p, sums, dst| {
                conv.epilogue(Then::Bias, 0).apply_row(sums, p, 0, conv.cout);
                dst.copy_from_slice(sums);
            },
            fused,
        );
        got
    }

    /// A batch of `n` random `h x w x c` maps.
    fn noise_maps(n: usize, h: usize, w: usize, c: usize) -> Maps {
        Maps {
            data: noise(n * h * w * c, 3),
            n,
            h,
            w,
            c,
        }
    }

    /// bf16 on AMX tiles or AVX512_BF16 dot products and bf16 emulated in the f32 kernel (what
    /// a CPU without them runs) give the same outputs up to summation order, on both tiling
    /// paths and with padding, and both round them to bf16 the same way.
    #[test]
    fn bf16_on_tiles_and_dot_products_equals_bf16_emulated_in_f32() {
        for kernels in [Kernels::Avx512Bf16, Kernels::Amx] {
            if kernels.here_or_skip("bf16_on_tiles_and_dot_products_equals_bf16_emulated_in_f32") {
                bf16_equals_emulated(kernels);
            }
        }
    }

    fn bf16_equals_emulated(kernels: Kernels) {
        for &(n, h, w, cin, cout, k, stride) in &[
            (2, 9, 7, 5, 40, 3, 1),
            (3, 11, 10, 64, 96, 3, 2),
            (1, 13, 9, 3, 64, 7, 2),
            (2, 6, 5, 64, 70, 1, 1),
            (8, 3, 3, 128, 256, 1, 1),
        ] {
            let weight = noise(cout * cin * k * k, 1);
            let conv = Conv::new(&weight, noise(cout, 2), cin, k, stride).unwrap();
            let Weights::F32(mut rounded) = Conv::new(&weight, vec![0.0; cout], cin, k, stride).unwrap().w else {
                unreachable!()
            };
            rounded.map(bf16::round_bf16);
            let emulated = Conv {
                w: Weights::F32(rounded),
                wino: Default::default(),
                bf16: true,
                bias: conv.bias.clone(),
                ..Conv::new(&weight, vec![0.0; cout], cin, k, stride).unwrap()
            };
            let tiles = conv.on(kernels).into_bf16();
            assert!(matches!(tiles.w, Weights::Bf16(_)));
            let x = noise_maps(n, h, w, cin);
            let (a, b) = (tiles.apply(&x), emulated.apply(&x));
            let mut off = 0;
            for (p, q) in a.data.iter().zip(&b.data) {
                assert_eq!(*p, bf16::round_bf16(*p), "{kernels:?}: an output not rounded to bf16");
                assert_eq!(*q, bf16::round_bf16(*q), "emulated: an output not rounded to bf16");
                // Equal, or one bf16 step apart where summation order crossed a rounding tie.
                assert!(
                    (p - q).abs() <= q.abs() / 64.0 + 1e-6,
                    "{kernels:?}: {p} vs {q} for k {k} stride {stride}"
                );
                off += usize::from(p != q);
            }
            assert!(
                off * 50 <= a.data.len(),
                "{kernels:?}: {off} of {} outputs differ",
                a.data.len()
            );
        }
    }

    /// A 1x1 convolution of bf16 maps reads them in place 32 rows at a time and copies only
    /// the last rows: with the residual and ReLU, in both schedules (row blocks and panel
    /// blocks), with and without such a tail, it gives the direct convolution of the rounded
    /// operands.
    #[test]
    fn a_one_by_one_convolution_of_bf16_maps_reads_them_in_place_with_its_residual() {
        for kernels in [Kernels::Avx512Bf16, Kernels::Amx] {
            if !kernels.here_or_skip("a_one_by_one_convolution_of_bf16_maps_reads_them_in_place_with_its_residual") {
                continue;
            }
            for &(n, h, w, cin, cout) in &[
                (3, 7, 5, 64, 96),
                (4, 9, 9, 32, 64),
                (1, 8, 4, 32, 40),
                (1, 3, 5, 64, 32),
            ] {
                let weight: Vec<f32> = noise(cout * cin, 1).into_iter().map(bf16::round_bf16).collect();
                let conv = Conv::new(&weight, noise(cout, 2), cin, 1, 1).unwrap();
                let tiles = Conv::new(&weight, conv.bias.clone(), cin, 1, 1)
                    .unwrap()
                    .on(kernels)
                    .into_bf16();
                let to_bf16 = |m: Maps| Maps {
                    data: m.data.iter().map(|&v| bf16::bf16(v)).collect::<Vec<u16>>(),
                    n: m.n,
                    h: m.h,
                    w: m.w,
                    c: m.c,
                };
                let x = to_bf16(noise_maps(n, h, w, cin));
                let skip = to_bf16(Maps {
                    data: noise(n * h * w * cout, 9),
                    ..noise_maps(n, h, w, cout)
                });
                let got = tiles.forward_bf16(&x, Then::AddRelu(&skip), &Buffers::default(), &Buffers::default());
                let plain = naive(&conv, &weight, &x.to_f32());
                for (i, (g, p)) in got.data.iter().zip(&plain).enumerate() {
                    let want = (p + skip.data[i].to_f32()).max(0.0);
                    let g = g.to_f32();
                    assert!(
                        (g - want).abs() <= want.abs() / 64.0 + 1e-5,
                        "{kernels:?} {n}x{h}x{w}x{cin}->{cout} [{i}]: {g} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_convolution_shape_matches_a_direct_convolution() {
        // Odd sizes, both tiling paths (many and few output pixels), strides 1 and 2.
        for &(n, h, w, cin, cout, k, stride) in &[
            (2, 9, 7, 5, 19, 3, 1),
            (3, 11, 10, 8, 40, 3, 2),
            (1, 13, 9, 3, 16, 7, 2),
            (2, 6, 5, 24, 70, 1, 1),
            (2, 7, 7, 24, 33, 1, 2),
            (5, 16, 12, 6, 8, 3, 1),
        ] {
            let weight = noise(cout * cin * k * k, 1);
            let conv = Conv::new(&weight, noise(cout, 2), cin, k, stride).unwrap();
            let x = noise_maps(n, h, w, cin);
            let got = conv.forward_f32(&x, Then::Bias, &Buffers::default());
            let want = naive(&conv, &weight, &x);
            assert_eq!(got.data.len(), want.len());
            for (g, w) in got.data.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "{g} vs {w} for k {k} stride {stride}"
                );
            }
        }
    }

    /// Winograd's F(2x2, 3x3) and F(4x4, 3x3), on every f32 kernel level this CPU has and in
    /// both schedules: odd and even sizes (tiles cut by the edge on either side), a single
    /// pixel, channels that are not a multiple of the transform's width, and several panels of
    /// output channels.
    #[test]
    fn winograd_matches_a_direct_convolution_on_every_level_tiling_and_schedule() {
        for &(n, h, w, cin, cout) in &[
            (2, 9, 7, 5, 19),
            (3, 1, 1, 8, 8),
            (2, 6, 5, 24, 70),
            (2, 12, 11, 64, 130),
            (2, 10, 13, 256, 40),
        ] {
            let weight = noise(cout * cin * 9, 1);
            for kernels in [Kernels::Portable, Kernels::Avx2, Kernels::Avx512] {
                if !kernels.here_or_skip("winograd_matches_a_direct_convolution_on_every_level_tiling_and_schedule") {
                    continue;
                }
                let conv = Conv::new(&weight, noise(cout, 2), cin, 3, 1).unwrap().on(kernels);
                let x = noise_maps(n, h, w, cin);
                let want = naive(&conv, &weight, &x);
                // A sum's rounding grows with the sizes of its terms, not with the sum: the
                // bound is relative to the same convolution of the absolute values.
                let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
                let conv_abs = Conv::new(&abs(&weight), abs(&conv.bias), cin, 3, 1).unwrap();
                let x_abs = Maps {
                    data: abs(&x.data),
                    ..x.clone()
                };
                let scale = naive(&conv_abs, &abs(&weight), &x_abs);
                let chosen = conv.winograd(&x).map(Winograd::tiling);
                assert_eq!(
                    chosen,
                    Some(Tiling::for_map(h, w)),
                    "a 3x3 stride-1 f32 convolution on a batch"
                );
                let Weights::F32(packed) = &conv.w else {
                    unreachable!("f32 weights")
                };
                for (tiling, fused) in [Tiling::F2, Tiling::F4]
                    .into_iter()
                    .flat_map(|t| [(t, false), (t, true)])
                {
                    let wg = Winograd::from_panels(packed, cin, cout, tiling).expect("3x3 weights");
                    let got = winograd_with_bias(&wg, kernels, &x, &conv, fused);
                    for ((g, want), s) in got.iter().zip(&want).zip(&scale) {
                        assert!(
                            (g - want).abs() < 1e-5 * (1.0 + s),
                            "{kernels:?} {tiling:?} fused {fused} {n}x{h}x{w}x{cin}->{cout}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// Winograd on dot products (F(2x2, 3x3), both schedules) against a direct convolution of
    /// the same bf16 operands: apart only by the rounding of the transformed operands to bf16,
    /// on edges cut either way, one to several panels and 32 to 128 input channels; and
    /// chosen only where it applies.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn winograd_on_dot_products_matches_a_direct_convolution_within_bf16_rounding() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("winograd_on_dot_products_matches_a_direct_convolution_within_bf16_rounding") {
            return;
        }
        for &(n, h, w, cin, cout) in &[(2, 9, 7, 32, 19), (2, 12, 11, 64, 130), (3, 5, 6, 128, 64)] {
            let weight: Vec<f32> = noise(cout * cin * 9, 1).into_iter().map(bf16::round_bf16).collect();
            let exact = Conv::new(&weight, noise(cout, 2), cin, 3, 1).unwrap();
            let conv = Conv::new(&weight, noise(cout, 2), cin, 3, 1)
                .unwrap()
                .on(kernels)
                .into_bf16()
                .into_dot_winograd();
            assert!(conv.dot_winograd);
            let x = noise_maps(n, h, w, cin);
            let xb = Maps {
                data: x.data.iter().map(|v| bf16::bf16(*v)).collect::<Vec<u16>>(),
                n,
                h,
                w,
                c: cin,
            };
            let want = naive(&exact, &weight, &xb.to_f32());
            let abs = |v: &[f32]| v.iter().map(|v| v.abs()).collect::<Vec<_>>();
            let scale = naive(
                &Conv::new(&abs(&weight), abs(&exact.bias), cin, 3, 1).unwrap(),
                &abs(&weight),
                &Maps {
                    data: abs(&xb.to_f32().data),
                    ..x.clone()
                },
            );
            assert_eq!(conv.winograd(&xb).map(Winograd::tiling), Some(Tiling::F2));
            let Weights::Bf16(packed) = &conv.w else {
                unreachable!("bf16 weights")
            };
            for fused in [false, true] {
                let wg = Winograd::from_bf16_panels(packed, cin, cout, Tiling::F2).expect("3x3 weights");
                let got = winograd_with_bias(&wg, kernels, &xb, &exact, fused);
                let mut worst = 0.0f32;
                for ((g, want), s) in got.iter().zip(&want).zip(&scale) {
                    let err = (g - want).abs() / (1.0 + s);
                    assert!(err < 1e-2, "fused {fused} {n}x{h}x{w}x{cin}->{cout}: {g} vs {want}");
                    worst = worst.max(err);
                }
                // Rounding, not exact: the transformed operands were rounded to bf16.
                assert!(worst > 1e-6, "fused {fused}: {worst}");
            }
            // The whole convolution, through the network's own path, gives the same bf16 maps.
            let y = conv.forward_bf16(&xb, Then::Bias, &Buffers::default(), &Buffers::default());
            for ((g, want), s) in y.to_f32().data.iter().zip(&want).zip(&scale) {
                assert!(
                    (g - want).abs() < 1e-2 * (1.0 + s) + want.abs() / 128.0,
                    "{g} vs {want}"
                );
            }
        }
        // Not a 3x3 stride-1 convolution, or channels not a multiple of 32: left as it was.
        for (cin, k, stride) in [(64, 3, 2), (64, 1, 1), (40, 3, 1)] {
            let conv = Conv::new(&noise(64 * cin * k * k, 1), noise(64, 2), cin, k, stride).unwrap();
            assert!(!conv.on(kernels).into_bf16().into_dot_winograd().dot_winograd);
        }
        assert!(
            !Conv::new(&noise(64 * 64 * 9, 1), noise(64, 2), 64, 3, 1)
                .unwrap()
                .into_dot_winograd()
                .dot_winograd
        );
    }

    #[test]
    fn residual_and_relu_are_applied_after_the_bias() {
        let conv = Conv::new(&noise(4 * 4, 5), noise(4, 6), 4, 1, 1).unwrap();
        let x = Maps {
            data: noise(3 * 3 * 4, 7),
            n: 1,
            h: 3,
            w: 3,
            c: 4,
        };
        let skip = Maps {
            data: noise(3 * 3 * 4, 8),
            ..x.clone()
        };
        let pool = Buffers::default();
        let plain = conv.forward_f32(&x, Then::Bias, &pool);
        let fused = conv.forward_f32(&x, Then::AddRelu(&skip), &pool);
        for ((p, f), s) in plain.data.iter().zip(&fused.data).zip(&skip.data) {
            assert!((f - (p + s).max(0.0)).abs() < 1e-6);
        }
    }

    #[test]
    fn max_pool_takes_the_window_maximum() {
        let x = Maps {
            data: (0..5 * 4).map(|v| v as f32).collect(),
            n: 1,
            h: 5,
            w: 4,
            c: 1,
        };
        let p = max_pool_3x3_s2(&x, &Buffers::default());
        assert_eq!((p.h, p.w), (3, 2));
        // Row 0 sees input rows 0-1, columns 0-1 and 1-3: maxima 5 and 7.
        assert_eq!(p.data, vec![5.0, 7.0, 13.0, 15.0, 17.0, 19.0]);
    }

    #[test]
    fn max_pool_matches_a_window_scan_in_both_activation_types() {
        // Two photos, odd sizes and a channel count that is no vector width; values after a
        // ReLU (non-negative), with zeros and ties.
        let (n, h, w, c) = (2, 7, 6, 19);
        let values: Vec<f32> = (0..n * h * w * c)
            .map(|i| ((i * 7919 % 97) as f32 - 30.0).max(0.0) / 8.0)
            .collect();
        let (ho, wo) = (4, 3);
        let mut want = vec![0.0f32; n * ho * wo * c];
        for b in 0..n {
            for oy in 0..ho {
                for ox in 0..wo {
                    for ch in 0..c {
                        let mut m = f32::NEG_INFINITY;
                        for iy in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(h) {
                            for ix in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(w) {
                                m = m.max(values[((b * h + iy) * w + ix) * c + ch]);
                            }
                        }
                        want[((b * ho + oy) * wo + ox) * c + ch] = m;
                    }
                }
            }
        }
        let x = Maps {
            data: values.clone(),
            n,
            h,
            w,
            c,
        };
        assert_eq!(max_pool_3x3_s2(&x, &Buffers::default()).data, want);
        // The values are exact in bf16, so the bf16 pool gives the same maxima.
        let bits: Vec<u16> = values.iter().map(|v| (v.to_bits() >> 16) as u16).collect();
        let x16 = Maps { data: bits, n, h, w, c };
        let got: Vec<f32> = max_pool_3x3_s2(&x16, &Buffers::default())
            .data
            .iter()
            .map(|b| b.to_f32())
            .collect();
        assert_eq!(got, want);
    }
}
