//! The candle ResNet50 on weights the tests make: names, shapes, errors, batching, normalisation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use lookbook::vision::cpu::Kernels;
use lookbook::vision::{Embedder, Pooling, Precision, ResNet50};

fn rewrite_without(src: &std::path::Path, dst: &std::path::Path, drop: &str, reshape: Option<(&str, Vec<usize>)>) {
    let bytes = std::fs::read(src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        if name == drop {
            continue;
        }
        let shape = match &reshape {
            Some((n, s)) if *n == name => s.clone(),
            _ => view.shape().to_vec(),
        };
        let n: usize = shape.iter().product();
        let data = if shape == view.shape() {
            view.data().to_vec()
        } else {
            vec![0u8; n * 4]
        };
        owned.push((name, shape, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, dst).unwrap();
}

#[test]
fn missing_or_misshapen_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    common::write_weights(&good, 1);
    let missing = dir.path().join("missing.safetensors");
    rewrite_without(&good, &missing, "layer3.2.bn2.running_var", None);
    let err = ResNet50::load(&missing).err().unwrap().to_string();
    assert!(
        err.contains("missing tensor layer3.2.bn2.running_var") && err.contains("[256]"),
        "{err}"
    );
    let bad = dir.path().join("bad.safetensors");
    rewrite_without(
        &good,
        &bad,
        "",
        Some(("layer1.0.downsample.0.weight", vec![256, 64, 3, 3])),
    );
    let err = ResNet50::load(&bad).err().unwrap().to_string();
    assert!(
        err.contains("layer1.0.downsample.0.weight has shape [256, 64, 3, 3], expected [256, 64, 1, 1]"),
        "{err}"
    );
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file at all").unwrap();
    assert!(
        ResNet50::load(&junk)
            .err()
            .unwrap()
            .to_string()
            .contains("junk.safetensors")
    );
}

#[test]
fn torchvision_names_and_imagenet_classifier_load() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("imagenet-like.safetensors");
    // No lookbook metadata: ImageNet preprocessing, 1000-way fc.
    lookbook::vision::write_random_weights(&p, 3, 1000, HashMap::new()).unwrap();
    let e = Embedder::load(&p, Pooling::Avg).unwrap();
    assert_eq!((e.preprocess.height, e.preprocess.width), (224, 224));
    assert!(e.spec.preprocessing.starts_with("v1:224x224:crop=0.875"));
}

#[test]
fn batches_equal_single_images_and_vectors_are_unit_length() {
    let fx = common::Fixture::mini();
    let e = Embedder::load(&fx.weights(), Pooling::Avg).unwrap();
    let imgs: Vec<image::RgbImage> = fx
        .ids()
        .iter()
        .take(3)
        .map(|id| lookbook::vision::load(&fx.images().join(format!("{id}.jpg"))).unwrap())
        .collect();
    let batch = e.embed_images(&imgs).unwrap();
    assert_eq!(batch.len(), 3);
    // A batch may run its 3x3 convolutions as Winograd and a single photo as im2col: in f32
    // the same values up to rounding; in bf16, whose activations are rounded between layers,
    // a rounding flipped by the last bit moves a vector as little as a change of kernel level
    // does (the cosine bound embed workers on different machines rely on).
    let exact = Embedder::load_with(&fx.weights(), Pooling::Avg, Precision::F32).unwrap();
    let batch32 = exact.embed_images(&imgs).unwrap();
    for (i, img) in imgs.iter().enumerate() {
        let one = e.embed_images(std::slice::from_ref(img)).unwrap().remove(0);
        assert_eq!(one.len(), 2048);
        let norm: f32 = one.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        let cos: f32 = one.iter().zip(&batch[i]).map(|(a, b)| a * b).sum();
        assert!(cos >= 0.9999, "bf16 batch and single photo: cosine {cos}");
        let one32 = exact.embed_images(std::slice::from_ref(img)).unwrap().remove(0);
        let diff = one32
            .iter()
            .zip(&batch32[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-4, "f32 batch and single photo differ by {diff}");
    }
    assert_ne!(batch[0], batch[1], "different photos, different vectors");
    let max = Embedder::load(&fx.weights(), Pooling::Max).unwrap();
    assert_ne!(max.spec.key(), e.spec.key(), "pooling is part of the model identity");
}

#[test]
fn f16_weights_load_and_match_f32() {
    let dir = tempfile::tempdir().unwrap();
    let f32p = dir.path().join("w32.safetensors");
    common::write_weights(&f32p, 5);
    let bytes = std::fs::read(&f32p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let owned: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| {
            let halves: Vec<u8> = v
                .data()
                .chunks_exact(4)
                .flat_map(|c| half_bits(f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes())
                .collect();
            (n, v.shape().to_vec(), halves)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), d).unwrap(),
            )
        })
        .collect();
    let f16p = dir.path().join("w16.safetensors");
    safetensors::serialize_to_file(views, meta.metadata().clone(), &f16p).unwrap();
    let a = Embedder::load(&f32p, Pooling::Avg).unwrap();
    let b = Embedder::load(&f16p, Pooling::Avg).unwrap();
    let img = image::RgbImage::from_fn(48, 64, |x, y| image::Rgb([(x * 5) as u8, (y * 3) as u8, 128]));
    let va = a.embed_images(std::slice::from_ref(&img)).unwrap().remove(0);
    let vb = b.embed_images(std::slice::from_ref(&img)).unwrap().remove(0);
    let cos: f32 = va.iter().zip(&vb).map(|(x, y)| x * y).sum();
    assert!(cos > 0.99, "f16 copy drifted: cos {cos}");
}

/// f32 -> IEEE half bits (round to nearest), enough for test data in normal range.
fn half_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    let mant = b & 0x7f_ffff;
    if exp <= 0 {
        return sign;
    }
    if exp >= 31 {
        return sign | 0x7c00;
    }
    let m = (mant + 0x1000) >> 13;
    if m > 0x3ff {
        return sign | (((exp + 1) as u16) << 10);
    }
    sign | ((exp as u16) << 10) | m as u16
}

/// The shipped model's weights file and `take` demo photos after the first `skip` (by name).
fn shipped_model_and_demo_photos(skip: usize, take: usize) -> (std::path::PathBuf, Vec<image::RgbImage>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut photos: Vec<_> = std::fs::read_dir(root.join("demo/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    let images = photos
        .iter()
        .skip(skip)
        .take(take)
        .map(|p| lookbook::vision::load(p).unwrap())
        .collect();
    (root.join("models/lookbook-fashion-resnet50.safetensors"), images)
}

/// The embedder's vectors for `images` and the candle reference's for the same inputs.
fn fast_and_reference(
    e: &Embedder,
    reference: &ResNet50,
    images: &[image::RgbImage],
    pooling: Pooling,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let fast = e.embed_images(images).unwrap();
    let inputs: Vec<Vec<f32>> = images.iter().map(|i| e.preprocess.apply(i)).collect();
    let x = lookbook::vision::batch_tensor(&inputs, e.preprocess.height, e.preprocess.width).unwrap();
    (fast, reference.features(&x, pooling).unwrap().to_vec2::<f32>().unwrap())
}

/// The NHWC fast path against the candle network it is built from, on the shipped weights and
/// real photos, at the model's own input size and at ImageNet's 224 x 224 (other tilings).
#[test]
fn the_nhwc_path_matches_the_candle_reference_on_real_weights_and_photos() {
    let (weights, images) = shipped_model_and_demo_photos(0, 5);
    let reference = ResNet50::load(&weights).unwrap();
    for (kernels, pooling) in Kernels::here().into_iter().map(|k| (k, Pooling::Avg)).chain([
        (Kernels::detected(), Pooling::Max),
        (Kernels::detected(), Pooling::Gem(3)),
    ]) {
        let mut e = Embedder::load_on(&weights, pooling, Precision::F32, kernels).unwrap();
        for size in [None, Some(224)] {
            if let Some(s) = size {
                e.preprocess.height = s;
                e.preprocess.width = s;
            }
            let (fast, slow) = fast_and_reference(&e, &reference, &images, pooling);
            for (f, s) in fast.iter().zip(&slow) {
                let diff = f.iter().zip(s).map(|(a, b)| (a - b) * (a - b)).sum::<f32>().sqrt();
                let norm = s.iter().map(|b| b * b).sum::<f32>().sqrt();
                assert!(
                    diff <= 1e-4 * norm,
                    "{kernels:?} {pooling:?} at {size:?}: relative error {}",
                    diff / norm
                );
            }
        }
    }
}

/// bf16 (the default; AMX tiles on this machine, the f32 kernel on rounded values elsewhere)
/// against the f32 candle reference on the shipped weights and real photos: the same direction
/// up to bf16's 8-bit mantissa, at the model's input size and at 224 x 224.
#[test]
fn bf16_vectors_point_where_the_f32_reference_does() {
    let (weights, images) = shipped_model_and_demo_photos(5, 6);
    let reference = ResNet50::load(&weights).unwrap();
    let mut e = Embedder::load(&weights, Pooling::Avg).unwrap();
    assert_eq!(
        e.spec.architecture, "resnet50-bf16",
        "bf16 is the default and names its vectors"
    );
    for size in [None, Some(224)] {
        if let Some(s) = size {
            e.preprocess.height = s;
            e.preprocess.width = s;
        }
        let (fast, slow) = fast_and_reference(&e, &reference, &images, Pooling::Avg);
        for (f, s) in fast.iter().zip(&slow) {
            let cos: f32 = f.iter().zip(s).map(|(a, b)| a * b).sum();
            assert!(cos > 0.999, "at {size:?}: cosine {cos} with the f32 reference");
        }
    }
}

/// Every kernel level this CPU has, in bf16, gives the vectors of the emulated path (operands
/// rounded, f32 sums: what a CPU without bf16 instructions runs) to a cosine of 0.9999 per
/// photo, so embed workers on different machines can fill one catalogue.
#[test]
fn bf16_vectors_agree_across_every_kernel_level() {
    let (weights, images) = shipped_model_and_demo_photos(11, 6);
    let emulated = Embedder::load_on(&weights, Pooling::Avg, Precision::Bf16, Kernels::Portable)
        .unwrap()
        .embed_images(&images)
        .unwrap();
    for kernels in Kernels::ALL {
        if !kernels.here_or_skip("bf16_vectors_agree_across_every_kernel_level") {
            continue;
        }
        let e = Embedder::load_on(&weights, Pooling::Avg, Precision::Bf16, kernels).unwrap();
        assert_eq!(e.spec.architecture, "resnet50-bf16", "one identity on every level");
        for (f, s) in e.embed_images(&images).unwrap().iter().zip(&emulated) {
            let cos: f32 = f.iter().zip(s).map(|(a, b)| a * b).sum();
            assert!(cos >= 0.9999, "{kernels:?}: cosine {cos} with the emulated path");
        }
    }
}
