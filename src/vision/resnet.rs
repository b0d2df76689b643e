//! ResNet50 (torchvision layout) for inference, with batch norm folded into the convolutions.
//!
//! Tensor names follow torchvision (`conv1`, `bn1`, `layerN.i.convK`, `layerN.0.downsample.0/1`,
//! `fc`), so torchvision's and timm's ImageNet exports load unchanged. Folding at load time makes
//! each conv+bn one convolution with a bias, which is measurably faster on the CPU.

use candle_core::{D, DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

use super::weights::WeightFile;
use crate::{Error, Result};

/// Batch-norm epsilon used by torchvision.
const BN_EPS: f64 = 1e-5;

/// Blocks per stage and bottleneck widths of ResNet50.
const STAGES: [(usize, usize); 4] = [(3, 64), (4, 128), (6, 256), (3, 512)];

/// Width of the pooled feature vector.
pub const FEATURE_DIM: usize = 2048;

/// A convolution with its batch norm folded in.
struct ConvBn {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
}

impl ConvBn {
    fn load(w: &WeightFile, conv: &str, bn: &str, cin: usize, cout: usize, k: usize, stride: usize) -> Result<Self> {
        let weight = w.get(&format!("{conv}.weight"), &[cout, cin, k, k])?;
        let gamma = w.get(&format!("{bn}.weight"), &[cout])?;
        let beta = w.get(&format!("{bn}.bias"), &[cout])?;
        let mean = w.get(&format!("{bn}.running_mean"), &[cout])?;
        let var = w.get(&format!("{bn}.running_var"), &[cout])?;
        let scale = gamma.div(&(var + BN_EPS)?.sqrt()?)?;
        let weight = weight.broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?.contiguous()?;
        let bias = beta.sub(&mean.mul(&scale)?)?.reshape((1, cout, 1, 1))?;
        Ok(ConvBn {
            weight,
            bias,
            stride,
            padding: k / 2,
        })
    }

    /// The same convolution laid out for the NHWC path.
    fn to_nhwc(&self) -> Result<super::nhwc::Conv> {
        let (_, cin, k, _) = self.weight.dims4()?;
        let w = self.weight.flatten_all()?.to_vec1::<f32>()?;
        super::nhwc::Conv::new(&w, self.bias.flatten_all()?.to_vec1::<f32>()?, cin, k, self.stride)
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
            .broadcast_add(&self.bias)
    }
}

/// torchvision's Bottleneck (stride on the 3x3 convolution, "ResNet v1.5").
struct Bottleneck {
    c1: ConvBn,
    c2: ConvBn,
    c3: ConvBn,
    down: Option<ConvBn>,
}

impl Bottleneck {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.c1.forward(x)?.relu()?;
        let y = self.c2.forward(&y)?.relu()?;
        let y = self.c3.forward(&y)?;
        let skip = match &self.down {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        (y + skip)?.relu()
    }
}

/// ResNet50 up to global pooling; produces 2048-d features.
pub struct ResNet50 {
    stem: ConvBn,
    blocks: Vec<Bottleneck>,
    /// The classifier (`fc`), when the file has one; its width is free (1000 for ImageNet).
    classifier: Option<(Tensor, Tensor)>,
    /// The file's `__metadata__` (input size, class names, recipe for lookbook's own model).
    pub metadata: HashMap<String, String>,
}

impl ResNet50 {
    /// Loads and folds weights; a missing or mis-shaped tensor is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_weights(&WeightFile::read(path)?)
    }

    /// Builds the network from already-read tensors.
    pub fn from_weights(w: &WeightFile) -> Result<Self> {
        let stem = ConvBn::load(w, "conv1", "bn1", 3, 64, 7, 2)?;
        let mut blocks = Vec::new();
        let mut cin = 64;
        for (s, &(n, width)) in STAGES.iter().enumerate() {
            let cout = width * 4;
            for i in 0..n {
                let p = format!("layer{}.{i}", s + 1);
                let stride = if i == 0 && s > 0 { 2 } else { 1 };
                let block_in = if i == 0 { cin } else { cout };
                let down = if i == 0 {
                    Some(ConvBn::load(
                        w,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        block_in,
                        cout,
                        1,
                        stride,
                    )?)
                } else {
                    None
                };
                blocks.push(Bottleneck {
                    c1: ConvBn::load(w, &format!("{p}.conv1"), &format!("{p}.bn1"), block_in, width, 1, 1)?,
                    c2: ConvBn::load(w, &format!("{p}.conv2"), &format!("{p}.bn2"), width, width, 3, stride)?,
                    c3: ConvBn::load(w, &format!("{p}.conv3"), &format!("{p}.bn3"), width, cout, 1, 1)?,
                    down,
                });
            }
            cin = cout;
        }
        let classifier = match (w.tensors.get("fc.weight"), w.tensors.get("fc.bias")) {
            (Some(fw), Some(_)) => {
                let classes = fw.dims().first().copied().unwrap_or(0);
                Some((
                    w.get("fc.weight", &[classes, FEATURE_DIM])?,
                    w.get("fc.bias", &[classes])?,
                ))
            }
            (None, None) => None,
            _ => {
                return Err(Error::Weights {
                    path: w.path.clone(),
                    message: "fc.weight and fc.bias must come together".into(),
                });
            }
        };
        Ok(ResNet50 {
            stem,
            blocks,
            classifier,
            metadata: w.metadata.clone(),
        })
    }

    /// The last stage's feature map, `N x 2048 x h x w`, for a normalised `N x 3 x H x W` batch.
    pub fn feature_map(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.stem.forward(x)?.relu()?;
        // Zero padding equals torchvision's -inf padding here: inputs are >= 0 after the ReLU.
        let x = x
            .pad_with_zeros(2, 1, 1)?
            .pad_with_zeros(3, 1, 1)?
            .max_pool2d_with_stride(3, 2)?;
        let mut x = x;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        Ok(x)
    }

    /// Pooled, L2-normalised features, `N x 2048`.
    pub fn features(&self, x: &Tensor, pooling: super::Pooling) -> Result<Tensor> {
        let map = self.feature_map(x)?;
        let pooled = match pooling {
            super::Pooling::Avg => map.mean((2, 3))?,
            super::Pooling::Max => map.max(D::Minus1)?.max(D::Minus1)?,
            super::Pooling::Gem(p) => {
                let p = f64::from(p);
                map.clamp(1e-6f32, f32::MAX)?.powf(p)?.mean((2, 3))?.powf(1.0 / p)?
            }
        };
        Ok(l2_normalize(&pooled)?)
    }

    /// The same network for the NHWC path (its weights copied into GEMM layout), in
    /// `precision`, on `kernels` (at most what the CPU has).
    pub fn to_nhwc(&self, precision: super::Precision, kernels: super::cpu::Kernels) -> Result<super::nhwc::Net> {
        self.nhwc_with(|c| {
            let c = c.to_nhwc()?.on(kernels);
            Ok(if precision == super::Precision::Bf16 {
                c.into_bf16()
            } else {
                c
            })
        })
    }

    /// The same network in bf16 on `kernels`, every product through the f32 kernel on rounded
    /// operands even where the CPU has bf16 products (what [`super::tune`] times them against).
    pub(super) fn to_nhwc_emulated(&self, kernels: super::cpu::Kernels) -> Result<super::nhwc::Net> {
        self.nhwc_with(|c| Ok(c.to_nhwc()?.on(kernels).into_bf16_emulated()))
    }

    /// The NHWC network of `conv` applied to each folded convolution.
    fn nhwc_with(&self, conv: impl Fn(&ConvBn) -> Result<super::nhwc::Conv>) -> Result<super::nhwc::Net> {
        Ok(super::nhwc::Net::new(
            conv(&self.stem)?,
            self.blocks
                .iter()
                .map(|b| {
                    Ok(super::nhwc::Block {
                        c1: conv(&b.c1)?,
                        c2: conv(&b.c2)?,
                        c3: conv(&b.c3)?,
                        down: b.down.as_ref().map(&conv).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
        ))
    }

    /// Class scores from the `fc` layer for un-normalised pooled features, if the file had one.
    pub fn classify(&self, pooled: &Tensor) -> Result<Option<Tensor>> {
        match &self.classifier {
            Some((w, b)) => Ok(Some(pooled.matmul(&w.t()?)?.broadcast_add(b)?)),
            None => Ok(None),
        }
    }
}

/// Scales each row to unit length (rows of zeros stay zero).
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norm)
}

/// Every tensor name and shape of a torchvision ResNet50 with a `classes`-way `fc`.
pub fn tensor_shapes(classes: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut convbn = |conv: String, bn: String, cin: usize, cout: usize, k: usize| {
        out.push((format!("{conv}.weight"), vec![cout, cin, k, k]));
        for s in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{bn}.{s}"), vec![cout]));
        }
    };
    convbn("conv1".into(), "bn1".into(), 3, 64, 7);
    let mut cin = 64;
    for (s, &(n, width)) in STAGES.iter().enumerate() {
        let cout = width * 4;
        for i in 0..n {
            let p = format!("layer{}.{i}", s + 1);
            let bin = if i == 0 { cin } else { cout };
            convbn(format!("{p}.conv1"), format!("{p}.bn1"), bin, width, 1);
            convbn(format!("{p}.conv2"), format!("{p}.bn2"), width, width, 3);
            convbn(format!("{p}.conv3"), format!("{p}.bn3"), width, cout, 1);
            if i == 0 {
                convbn(format!("{p}.downsample.0"), format!("{p}.downsample.1"), bin, cout, 1);
            }
        }
        cin = cout;
    }
    out.push(("fc.weight".into(), vec![classes, FEATURE_DIM]));
    out.push(("fc.bias".into(), vec![classes]));
    out
}

/// Writes a ResNet50 with random (He-initialised) weights: for tests and benchmarks, which
/// cannot download real ones. Batch norms are near identity with a little noise.
pub fn write_random_weights(path: &Path, seed: u64, classes: usize, metadata: HashMap<String, String>) -> Result<()> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*: good enough noise, no dependency.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    };
    let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, shape) in tensor_shapes(classes) {
        let n: usize = shape.iter().product();
        let fan_in: usize = shape.iter().skip(1).product::<usize>().max(1);
        let vals: Vec<f32> = if name.ends_with("running_var") {
            (0..n).map(|_| 1.0 + 0.1 * next().abs()).collect()
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            (0..n).map(|_| 0.05 * next()).collect()
        } else if shape.len() == 1 {
            (0..n).map(|_| 1.0 + 0.1 * next()).collect()
        } else {
            let a = (6.0 / fan_in as f32).sqrt();
            (0..n).map(|_| a * next()).collect()
        };
        data.push((name, shape, vals.iter().flat_map(|v| v.to_le_bytes()).collect()));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = data
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Invalid(format!("building random weights: {e}")))?;
    let meta = if metadata.is_empty() { None } else { Some(metadata) };
    safetensors::serialize_to_file(views, meta, path).map_err(|e| Error::Weights {
        path: path.to_path_buf(),
        message: format!("cannot write: {e}"),
    })
}

/// Turns CHW float buffers into one `N x 3 x H x W` tensor.
pub fn batch_tensor(items: &[Vec<f32>], height: usize, width: usize) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(items.len() * 3 * height * width);
    for it in items {
        flat.extend_from_slice(it);
    }
    Ok(Tensor::from_vec(flat, (items.len(), 3, height, width), &Device::Cpu)?.to_dtype(DType::F32)?)
}
