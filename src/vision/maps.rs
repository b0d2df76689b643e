//! Feature maps as the NHWC network passes them between layers ([`Maps`], of f32 or bf16
//! bits: [`Act`]), and the raw output pointer its workers share. Their own module so that
//! `nhwc` (the network) and `winograd` (its 3x3 convolutions) both build on them without
//! importing each other.

use rayon::prelude::*;

use super::bf16;
use crate::{Error, Result};

/// A batch of feature maps, `n x h x w x c`, row-major (channels innermost), of f32 or of bf16
/// bits (`u16`).
#[derive(Debug, Clone)]
pub struct Maps<T = f32> {
    /// The values, `n * h * w * c` of them.
    pub data: Vec<T>,
    /// Images in the batch.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

/// An activation value: f32, or bf16 bits.
pub trait Act: Copy + Default + Send + Sync + 'static {
    /// The value as f32 (exact for both).
    fn to_f32(self) -> f32;
    /// The value as the bf16 arithmetic sees it: rounded to bf16, as f32.
    fn bf16_value(self) -> f32;
    /// `src` as bf16 into the start of `dst`: rounded, or copied.
    fn to_bf16(src: &[Self], dst: &mut [u16]);
    /// `src` itself when it already is bf16.
    fn as_bf16(src: &[Self]) -> Option<&[u16]>;
}

impl Act for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn bf16_value(self) -> f32 {
        bf16::round_bf16(self)
    }
    fn to_bf16(src: &[f32], dst: &mut [u16]) {
        bf16::convert(src, dst);
    }
    fn as_bf16(_: &[f32]) -> Option<&[u16]> {
        None
    }
}

impl Act for u16 {
    fn to_f32(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
    fn bf16_value(self) -> f32 {
        self.to_f32()
    }
    fn to_bf16(src: &[u16], dst: &mut [u16]) {
        dst[..src.len()].copy_from_slice(src);
    }
    fn as_bf16(src: &[u16]) -> Option<&[u16]> {
        Some(src)
    }
}

impl Maps {
    /// Rearranges `n` CHW images (`3 x h x w` each, the network input) into one NHWC batch.
    pub fn from_chw(items: &[Vec<f32>], h: usize, w: usize) -> Result<Self> {
        Self::from_chw_into(items, h, w, Vec::new())
    }

    /// The same, written into `data` (resized; a buffer reused from an earlier batch costs no
    /// fresh pages), one image per task.
    pub fn from_chw_into(items: &[Vec<f32>], h: usize, w: usize, mut data: Vec<f32>) -> Result<Self> {
        let hw = h * w;
        if let Some(img) = items.iter().find(|img| img.len() != hw * 3) {
            return Err(Error::Invalid(format!(
                "network input has {} values, expected 3 x {h} x {w}",
                img.len()
            )));
        }
        data.resize(items.len() * hw * 3, 0.0);
        data.par_chunks_mut(hw * 3).zip(items).for_each(|(out, img)| {
            for (p, px) in out.chunks_exact_mut(3).enumerate() {
                px[0] = img[p];
                px[1] = img[hw + p];
                px[2] = img[2 * hw + p];
            }
        });
        Ok(Maps {
            data,
            n: items.len(),
            h,
            w,
            c: 3,
        })
    }
}

impl<T: Act> Maps<T> {
    /// The same maps in f32.
    pub fn to_f32(&self) -> Maps {
        self.to_f32_into(Vec::new())
    }

    /// The same maps in f32, written into `data` (resized).
    pub fn to_f32_into(&self, mut data: Vec<f32>) -> Maps {
        data.resize(self.data.len(), 0.0);
        data.par_chunks_mut(1 << 14)
            .zip(self.data.par_chunks(1 << 14))
            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d = s.to_f32()));
        Maps {
            data,
            n: self.n,
            h: self.h,
            w: self.w,
            c: self.c,
        }
    }
}

/// A raw output pointer handed to the workers that write disjoint blocks of it.
pub(crate) struct OutPtr<T>(pub(super) *mut T);
// By hand: derived, they would ask `T` to be `Copy`.
impl<T> Clone for OutPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for OutPtr<T> {}
// SAFETY: each worker writes only its own rows or columns of the output (see `Conv::schedule`).
unsafe impl<T> Send for OutPtr<T> {}
unsafe impl<T> Sync for OutPtr<T> {}

impl<T> OutPtr<T> {
    /// The pointer (a method, so closures capture the `Send` wrapper, not its raw field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}
