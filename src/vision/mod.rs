//! Vision: photos in, L2-normalised feature vectors out.
//!
//! [`decode`] turns untrusted bytes into pixels, [`Preprocess`] makes the network input (its
//! resize in `resize`, byte for byte the `image` crate's triangle filter, several times faster),
//! [`weights`] finds and loads safetensors (torchvision names), [`ResNet50`] is the network in
//! candle with batch norm folded (the reference), [`nhwc`] is the same network as the embedder
//! runs it (channels-last, every convolution a GEMM), and [`Embedder`] batches it over a
//! catalogue in a [`Precision`].
//!
//! The GEMM kernels: [`cpu`] says what the CPU has and picks a level (it imports no kernel);
//! `kernel` is the f32 product (packed panels, the AVX-512, AVX2 and portable micro-kernels);
//! `bf16` holds what the bf16 products share (rounding, pair-packed panels, the epilogue);
//! `amx` (tiles) and `bf16dot` (`vdpbf16ps`) are leaves over those two, and never import each
//! other; `nhwc` and `winograd` call them as [`cpu`] chose, and share the feature maps of
//! `maps`, so that neither imports the other. At the `avx512bf16` level, [`tune`] measures
//! which of the dot products and the f32 kernel on rounded operands runs each convolution.

mod amx;
mod bf16;
mod bf16dot;
pub mod cpu;
mod embedder;
mod kernel;
mod maps;
mod network_file;
pub mod nhwc;
mod preprocess;
mod resize;
mod resnet;
mod settings;
mod slab;
pub mod tune;
pub mod weights;
mod winograd;

pub use embedder::{EmbedReport, Embedder};
pub use preprocess::Preprocess;
pub use resnet::{FEATURE_DIM, ResNet50, batch_tensor, l2_normalize, tensor_shapes, write_random_weights};
pub use settings::{Pooling, Precision};

use image::{ImageDecoder, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Widest or tallest photo accepted; larger ones are refused before any pixel is allocated.
const MAX_SIDE: u32 = 12_000;
/// Most pixels in one photo (a 50-megapixel phone photo still passes). A catalogue photo needs a
/// few megapixels; a 12,000 x 12,000 all-zero PNG of 420 KB would cost 430 MB to decode.
pub const MAX_PIXELS: u64 = 50_000_000;
/// Pixels being decoded at once across all threads: big photos wait their turn, so peak memory
/// is bounded by this, not by the number of cores (small photos still decode in parallel).
const PIXELS_IN_FLIGHT: u64 = 2 * MAX_PIXELS;

/// The shared budget of pixels in flight.
struct PixelBudget {
    used: std::sync::Mutex<u64>,
    freed: std::sync::Condvar,
}

static BUDGET: PixelBudget = PixelBudget {
    used: std::sync::Mutex::new(0),
    freed: std::sync::Condvar::new(),
};

/// A reservation of pixels, given back on drop.
struct Reserved(u64);

impl PixelBudget {
    fn reserve(&'static self, px: u64) -> Reserved {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        // An oversized request still runs when nothing else does, so it cannot wait forever.
        while *used > 0 && *used + px > PIXELS_IN_FLIGHT {
            used = self.freed.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += px;
        Reserved(px)
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let mut used = BUDGET.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(self.0);
        BUDGET.freed.notify_all();
    }
}

/// Decodes untrusted image bytes into RGB, compositing transparency onto white (product photos
/// are shot on white). Truncated JPEGs, unknown formats and decompression bombs are errors.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, String> {
    decode_with(bytes, |img| img)
}

/// Decodes as [`decode`] does and hands the image to `use_it`, holding the photo's share of the
/// pixel budget until `use_it` returns: the decoded pixels count until they are dropped, not
/// only while they are being decoded.
pub fn decode_with<T>(bytes: &[u8], use_it: impl FnOnce(RgbImage) -> T) -> Result<T, String> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        // Decoders pad a cut-off JPEG with grey and call it success; the end marker says otherwise.
        let tail = &bytes[bytes.len().saturating_sub(4096)..];
        if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
            return Err("truncated JPEG (no end-of-image marker)".into());
        }
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    if reader.format().is_none() {
        return Err("not an image (unknown format)".into());
    }
    // The header alone gives the size, so a bomb is refused before any pixel is allocated.
    let (w, h) = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .and_then(|r| r.into_dimensions().map_err(std::io::Error::other))
        .map_err(|e| format!("cannot read image header: {e}"))?;
    let pixels = w as u64 * h as u64;
    if pixels > MAX_PIXELS {
        return Err(format!(
            "{w}x{h} is {} megapixels, over the {} megapixel limit",
            pixels / 1_000_000,
            MAX_PIXELS / 1_000_000
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 8);
    reader.limits(limits);
    let _slot = BUDGET.reserve(pixels);
    let mut decoder = reader.into_decoder().map_err(|e| format!("cannot decode image: {e}"))?;
    // Phone photos are often stored sideways with an EXIF note saying so; embed them upright.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode image: {e}"))?;
    img.apply_orientation(orientation);
    if img.width() == 0 || img.height() == 0 {
        return Err("image has no pixels".into());
    }
    if !img.color().has_alpha() {
        return Ok(use_it(img.into_rgb8()));
    }
    let rgba = img.into_rgba8();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let a = p[3] as u32;
        for c in 0..3 {
            o[c] = ((p[c] as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    drop(rgba);
    Ok(use_it(out))
}

/// Reads (regular files of at most 64 MB only) and decodes an image file, naming the file in
/// any error.
pub fn load(path: &std::path::Path) -> crate::Result<RgbImage> {
    let bytes = crate::files::read_capped(path, crate::files::MAX_PHOTO_BYTES, "photo")?;
    decode(&bytes).map_err(|reason| crate::Error::Image {
        path: path.to_path_buf(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg() -> Vec<u8> {
        let img = RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 90]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Jpeg).unwrap();
        buf.into_inner()
    }

    #[test]
    fn decodes_jpeg_and_rejects_truncated_and_text() {
        let j = jpeg();
        assert_eq!(decode(&j).unwrap().dimensions(), (40, 30));
        assert!(decode(&j[..j.len() / 2]).unwrap_err().contains("truncated"));
        assert!(decode(b"hello, I am not a photo").unwrap_err().contains("not an image"));
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn transparency_becomes_white() {
        let img = image::RgbaImage::from_pixel(2, 2, image::Rgba([0, 0, 0, 0]));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, image::ImageFormat::Png).unwrap();
        assert_eq!(decode(buf.get_ref()).unwrap().get_pixel(0, 0).0, [255, 255, 255]);
    }
}

#[cfg(test)]
mod orientation_tests {
    /// A 40x20 photo stored sideways with EXIF orientation 6 (the camera was turned 90° clockwise):
    /// red on its left half as stored, so on the top half once upright.
    #[test]
    fn exif_orientation_is_applied() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/exif-orientation-6.jpg"
        ))
        .unwrap();
        let img = super::decode(&bytes).unwrap();
        assert_eq!(img.dimensions(), (20, 40), "the photo is upright");
        let top = img.get_pixel(10, 5).0;
        let bottom = img.get_pixel(10, 35).0;
        assert!(top[0] > 150 && top[1] < 80, "red on top: {top:?}");
        assert!(bottom[1] > 200, "white below: {bottom:?}");
    }
}
