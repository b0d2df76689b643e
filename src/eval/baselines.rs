//! Two vision-free baselines computed from the photos: a colour histogram and downscaled raw
//! pixels. A learned model has to beat both to be worth its weights.

use image::{RgbImage, imageops};
use rayon::prelude::*;

use crate::catalog::{Catalog, EmbeddingMatrix, Product};
use crate::recommend::normalize;
use crate::{Progress, Result};

/// Bins per channel of the joint RGB histogram.
const BINS: usize = 8;
/// Side of the raw-pixel thumbnail.
const RAW_SIDE: u32 = 32;

/// Joint 8x8x8 RGB histogram of the non-background pixels, square-rooted (Hellinger) and unit
/// length, so cosine compares colour distributions.
pub fn colour_histogram(img: &RgbImage) -> Vec<f32> {
    let mut h = vec![0.0f32; BINS * BINS * BINS];
    let small = imageops::thumbnail(img, 64, 64);
    for p in small.pixels() {
        // Product photos sit on white: skip the background so it does not dominate.
        if p[0] > 235 && p[1] > 235 && p[2] > 235 {
            continue;
        }
        let b = |v: u8| v as usize * BINS / 256;
        h[(b(p[0]) * BINS + b(p[1])) * BINS + b(p[2])] += 1.0;
    }
    h.iter_mut().for_each(|x| *x = x.sqrt());
    normalize(&mut h);
    h
}

/// 32x32 RGB thumbnail, mean-centred and unit length.
pub fn raw_pixels(img: &RgbImage) -> Vec<f32> {
    let small = imageops::resize(img, RAW_SIDE, RAW_SIDE, imageops::FilterType::Triangle);
    let mut v: Vec<f32> = small.pixels().flat_map(|p| p.0.map(|c| c as f32 / 255.0)).collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    v.iter_mut().for_each(|x| *x -= mean);
    normalize(&mut v);
    v
}

/// Computes a baseline's vectors for `products`, skipping photos that do not decode.
pub fn compute(
    catalog: &Catalog,
    products: &[&Product],
    f: fn(&RgbImage) -> Vec<f32>,
    progress: &dyn Progress,
) -> Result<EmbeddingMatrix> {
    let root = catalog.image_root()?;
    progress.start("baseline features", products.len());
    let rows: Vec<Option<(i64, Vec<f32>)>> = products
        .par_iter()
        .map(|p| {
            let r = crate::vision::load(&root.join(&p.image_path))
                .ok()
                .map(|img| (p.id, f(&img)));
            progress.advance(1);
            r
        })
        .collect();
    progress.finish();
    let mut m = EmbeddingMatrix::default();
    for (id, v) in rows.into_iter().flatten() {
        m.dim = v.len();
        m.ids.push(id);
        m.data.extend(v);
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_ignores_white_and_separates_colours() {
        let mut red = RgbImage::from_pixel(10, 10, image::Rgb([255, 255, 255]));
        red.put_pixel(5, 5, image::Rgb([200, 10, 10]));
        let blue = RgbImage::from_pixel(10, 10, image::Rgb([10, 10, 200]));
        let (hr, hb) = (colour_histogram(&red), colour_histogram(&blue));
        assert!((crate::recommend::dot(&hr, &hr) - 1.0).abs() < 1e-5);
        assert!(crate::recommend::dot(&hr, &hb).abs() < 1e-6);
    }

    #[test]
    fn raw_pixels_has_fixed_length_and_unit_norm() {
        let v = raw_pixels(&RgbImage::from_fn(50, 70, |x, y| image::Rgb([x as u8, y as u8, 0])));
        assert_eq!(v.len(), 32 * 32 * 3);
        assert!((crate::recommend::dot(&v, &v) - 1.0).abs() < 1e-4);
    }
}
