//! Network input from pixels: crop to the model's aspect, resize, normalise. Versioned, because
//! a vector is only comparable with vectors made the same way.

use image::RgbImage;
use serde::Serialize;

/// Bumped whenever the arithmetic below changes, so old vectors become stale.
pub const PREPROCESS_VERSION: u32 = 1;

/// How a photo becomes a `3 x height x width` tensor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preprocess {
    /// Input height in pixels.
    pub height: usize,
    /// Input width in pixels.
    pub width: usize,
    /// Share of the photo kept by the centre crop (0.875 is torchvision's 256 -> 224).
    pub crop_fraction: f32,
    /// Per-channel mean subtracted after scaling to 0..1.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Preprocess {
    /// torchvision's ImageNet recipe: 224 x 224 centre crop of a 256 resize.
    pub fn imagenet() -> Self {
        Preprocess {
            height: 224,
            width: 224,
            crop_fraction: 0.875,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }

    /// Stable description stored with every vector.
    pub fn describe(&self) -> String {
        format!(
            "v{PREPROCESS_VERSION}:{}x{}:crop={:.3}:mean={:.3},{:.3},{:.3}:std={:.3},{:.3},{:.3}:triangle",
            self.height,
            self.width,
            self.crop_fraction,
            self.mean[0],
            self.mean[1],
            self.mean[2],
            self.std[0],
            self.std[1],
            self.std[2]
        )
    }

    /// The centred crop box (x, y, w, h) of an `sw x sh` photo with the input's aspect ratio.
    pub fn crop_box(&self, sw: u32, sh: u32) -> (u32, u32, u32, u32) {
        let target = self.width as f64 / self.height as f64;
        let (sw_f, sh_f) = (sw as f64, sh as f64);
        let (mut cw, mut ch) = if sw_f / sh_f > target {
            (sh_f * target, sh_f)
        } else {
            (sw_f, sw_f / target)
        };
        cw *= self.crop_fraction as f64;
        ch *= self.crop_fraction as f64;
        let cw = (cw.round() as u32).clamp(1, sw);
        let ch = (ch.round() as u32).clamp(1, sh);
        ((sw - cw) / 2, (sh - ch) / 2, cw, ch)
    }

    /// Writes the normalised CHW tensor of `img` into `out` (length `3 * height * width`).
    pub fn apply_into(&self, img: &RgbImage, out: &mut [f32]) {
        let crop = self.crop_box(img.width(), img.height());
        let plane = self.width * self.height;
        let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * self.std[c]));
        let shift: [f32; 3] = std::array::from_fn(|c| self.mean[c] / self.std[c]);
        let mut put = |i: usize, p: [u8; 3]| {
            for c in 0..3 {
                out[c * plane + i] = p[c] as f32 * scale[c] - shift[c];
            }
        };
        let (x0, y0, w, h) = crop;
        if (w as usize, h as usize) == (self.width, self.height) {
            // Already the input's size: the crop's pixels as they are.
            for y in 0..h {
                for x in 0..w {
                    put((y * w + x) as usize, img.get_pixel(x0 + x, y0 + y).0);
                }
            }
        } else {
            super::resize::resize_crop(img, crop, self.width, self.height, put);
        }
    }

    /// The normalised CHW tensor of `img`.
    pub fn apply(&self, img: &RgbImage) -> Vec<f32> {
        let mut v = vec![0.0; 3 * self.width * self.height];
        self.apply_into(img, &mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_keeps_aspect_and_centres() {
        let p = Preprocess::imagenet();
        assert_eq!(p.crop_box(300, 200), (62, 12, 175, 175));
        let portrait = Preprocess {
            height: 112,
            width: 84,
            crop_fraction: 1.0,
            ..Preprocess::imagenet()
        };
        assert_eq!(portrait.crop_box(225, 300), (0, 0, 225, 300));
    }

    #[test]
    fn normalises_white_and_black() {
        let p = Preprocess {
            height: 2,
            width: 2,
            crop_fraction: 1.0,
            ..Preprocess::imagenet()
        };
        let white = p.apply(&RgbImage::from_pixel(4, 4, image::Rgb([255, 255, 255])));
        assert!((white[0] - (1.0 - 0.485) / 0.229).abs() < 1e-5);
        let black = p.apply(&RgbImage::from_pixel(4, 4, image::Rgb([0, 0, 0])));
        assert!((black[8] + 0.406 / 0.225).abs() < 1e-5);
        assert_eq!(white.len(), 12);
    }
}
