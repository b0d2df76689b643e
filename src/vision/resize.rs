//! The photo resize of [`super::Preprocess`]: the `image` crate's triangle (bilinear,
//! antialiased) filter, with the same arithmetic in the same order, so every output byte is
//! the one `imageops::resize(.., FilterType::Triangle)` gives and no stored vector goes stale.
//!
//! Why not call `imageops::resize`: it works out each output pixel's filter weights again for
//! every row or column and reads pixels through a generic, bounds-checked accessor into a
//! four-channel float image; that was 30% of `lookbook embed`'s whole time at 112x84, as much
//! as a third of the forward pass (issue 38). Here the weights are worked out once per output
//! row and column, the crop is read in place, and both passes run over plain slices.

use image::RgbImage;

/// Filter taps of one output row or column: the first source index and the weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The triangle filter's taps for resizing `from` samples to `to`, as `image` computes them
/// (`horizontal_sample` / `vertical_sample` with support 1).
fn taps(from: usize, to: usize) -> Vec<Taps> {
    let ratio = from as f32 / to as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio;
    (0..to)
        .map(|out| {
            let centre = (out as f32 + 0.5) * ratio;
            let left = ((centre - support).floor() as i64).clamp(0, from as i64 - 1);
            let right = ((centre + support).ceil() as i64).clamp(left + 1, from as i64);
            let centre = centre - 0.5;
            let mut weights: Vec<f32> = (left..right)
                .map(|i| {
                    let x = ((i as f32 - centre) / sratio).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            // Summed and divided in this order, as `image` does, for the same last bits.
            let mut sum = 0.0f32;
            for w in &weights {
                sum += *w;
            }
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: left as usize,
                weights,
            }
        })
        .collect()
}

/// Resizes the `(x, y, w, h)` crop of `img` to `width x height` and hands each output pixel,
/// in row-major order, to `put(index, [r, g, b])`. Requires a non-empty crop inside `img`.
pub(crate) fn resize_crop(
    img: &RgbImage,
    (x0, y0, w, h): (u32, u32, u32, u32),
    width: usize,
    height: usize,
    mut put: impl FnMut(usize, [u8; 3]),
) {
    let (w, h, x0, y0) = (w as usize, h as usize, x0 as usize, y0 as usize);
    let stride = img.width() as usize * 3;
    let src = img.as_raw();
    // Vertical pass first (as `image` does): every crop column, `height` rows, in f32.
    let rows = taps(h, height);
    // Each worker's pass buffer, kept between photos: a fresh one of this size (300 KB for a
    // shop photo) came from new pages each time.
    let mut mid = MID.take();
    mid.clear();
    mid.resize(w * height * 3, 0.0);
    for (oy, t) in rows.iter().enumerate() {
        let line = &mut mid[oy * w * 3..(oy + 1) * w * 3];
        // Tap by tap over whole rows, so the loop runs over contiguous bytes (and vectorises);
        // each value still sums its taps in `image`'s order.
        for (i, wt) in t.weights.iter().enumerate() {
            let at = (y0 + t.first + i) * stride + x0 * 3;
            for (acc, &v) in line.iter_mut().zip(&src[at..at + w * 3]) {
                *acc += v as f32 * wt;
            }
        }
    }
    // Horizontal pass, rounded to the nearest byte (half away from zero) after clamping.
    let cols = taps(w, width);
    for y in 0..height {
        let line = &mid[y * w * 3..(y + 1) * w * 3];
        for (ox, t) in cols.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for (i, wt) in t.weights.iter().enumerate() {
                let at = (t.first + i) * 3;
                for c in 0..3 {
                    acc[c] += line[at + c] * wt;
                }
            }
            put(y * width + ox, acc.map(round_byte));
        }
    }
    MID.set(mid);
}

thread_local! {
    /// The vertical pass's output, per thread (see [`resize_crop`]).
    static MID: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `v` clamped to 0..=255 and rounded half away from zero, as `image` rounds, without a call
/// to `roundf`: the truncation is exact there, and so is the fraction left.
fn round_byte(v: f32) -> u8 {
    let v = v.clamp(0.0, 255.0);
    let t = v as u8;
    if v - f32::from(t) >= 0.5 { t + 1 } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{self, FilterType};

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed;
        RgbImage::from_fn(w, h, |_, _| {
            let mut px = [0u8; 3];
            for v in &mut px {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *v = (s >> 24) as u8;
            }
            image::Rgb(px)
        })
    }

    /// Every byte equals `image`'s own triangle resize of the cropped photo, shrinking and
    /// enlarging, odd sizes and crops included: stored vectors stay valid.
    #[test]
    fn bytes_round_as_clamp_then_round_does() {
        let mut v = -3.0f32;
        while v < 260.0 {
            for x in [v, v + 0.5, v.next_up(), (v + 0.5).next_down(), (v + 0.5).next_up()] {
                assert_eq!(round_byte(x), x.clamp(0.0, 255.0).round() as u8, "{x}");
            }
            v += 0.25;
        }
        assert_eq!(round_byte(f32::NAN), f32::NAN.clamp(0.0, 255.0).round() as u8);
    }

    #[test]
    fn matches_image_crate_byte_for_byte() {
        let cases = [
            (225, 300, (0, 0, 225, 300), 84, 112),
            (225, 300, (0, 0, 225, 300), 108, 144),
            (225, 300, (0, 0, 225, 300), 224, 224),
            (60, 80, (0, 0, 60, 80), 84, 112),
            (300, 200, (62, 12, 175, 175), 224, 224),
            (1000, 37, (400, 0, 28, 37), 84, 112),
            (7, 5, (1, 1, 5, 3), 3, 9),
            (1, 1, (0, 0, 1, 1), 4, 2),
        ];
        for (k, &(sw, sh, (x, y, w, h), ow, oh)) in cases.iter().enumerate() {
            let img = noise(sw, sh, k as u32 + 1);
            let want = imageops::resize(
                &imageops::crop_imm(&img, x, y, w, h).to_image(),
                ow,
                oh,
                FilterType::Triangle,
            );
            let mut got = RgbImage::new(ow, oh);
            resize_crop(&img, (x, y, w, h), ow as usize, oh as usize, |i, px| {
                got.put_pixel(i as u32 % ow, i as u32 / ow, image::Rgb(px));
            });
            assert!(got == want, "case {k}: {sw}x{sh} crop {w}x{h} -> {ow}x{oh} differs");
        }
    }
}
