//! Which product each convolution of a bf16 network runs at the `avx512bf16` level, measured on
//! this CPU: `vdpbf16ps` on bf16 weights ([`super::bf16dot`]), or the AVX-512 f32 kernel on
//! bf16-rounded weights, which 3x3 stride-1 convolutions of a batch run through Winograd.
//!
//! Both compute the same products up to summation order, so the choice changes speed, never
//! answers beyond f32 rounding. Why measure, and per convolution: a dot product does twice an
//! FMA's work per instruction on AMD's Zen 4 and about the same on Intel's CPUs, while Winograd
//! does a 3x3 convolution with a quarter to four ninths of the multiplications; which wins
//! depends on the CPU and on the layer's shape (issue 38 saw the emulated path ahead on a Zen 4
//! at 224x224 and behind at 112x84, for the network as a whole). The measurement runs once per
//! weights file, input size and CPU, on the batch `lookbook embed` runs, and is kept with the
//! packed network (`super::network_file`), so later loads only map it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Precision;
use super::cpu::Kernels;
use super::nhwc::{Buffers, Conv, Maps, Net, Then};
use super::resnet::ResNet50;
use crate::{Error, Result};

/// Environment variable: `0` (or `off`) runs every convolution on the level's own product,
/// unmeasured (to time the dot products alone); unset, empty or `1` measures.
pub const ENV_MEASURE: &str = "LOOKBOOK_MEASURE";

/// Images per measured batch: as many as `lookbook embed` runs at once by default, where the
/// choice matters; Winograd needs at least two.
pub const BATCH: usize = 16;

/// Timed runs of each candidate per convolution; the fastest counts (noise only slows a run).
const RUNS: usize = 3;

/// Whether a network in `precision` on `kernels` has its products measured: bf16 at the
/// `avx512bf16` level (below it there are no dot products; AMX tiles beat both), unless
/// `LOOKBOOK_MEASURE` says not to.
pub fn wanted(precision: Precision, kernels: Kernels) -> Result<bool> {
    if precision != Precision::Bf16 || kernels.min(Kernels::detected()) != Kernels::Avx512Bf16 {
        return Ok(false);
    }
    asked(std::env::var(ENV_MEASURE).ok().as_deref())
}

/// What `LOOKBOOK_MEASURE`'s value asks for.
fn asked(value: Option<&str>) -> Result<bool> {
    match value.map(str::trim) {
        None | Some("" | "1" | "on") => Ok(true),
        Some("0" | "off") => Ok(false),
        Some(other) => Err(Error::Invalid(format!(
            "{ENV_MEASURE}={other:?}: expected 1 (measure each convolution's product) or 0 (dot products throughout)"
        ))),
    }
}

/// What was measured for one convolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    /// Its shape, e.g. "3x3 256->256 /1 on 14x11".
    pub shape: String,
    /// Multiply-adds in one run (output pixels of the batch x taps x output channels).
    pub macs: u64,
    /// The fastest run on dot products.
    pub dot: Duration,
    /// The fastest run on the f32 kernel (and Winograd where it applies).
    pub emulated: Duration,
}

impl Timing {
    /// Whether the dot products won (a tie keeps them: they need half the weights' memory).
    pub fn dot_wins(&self) -> bool {
        self.dot <= self.emulated
    }
}

/// `reference` as a bf16 network on `kernels` (the `avx512bf16` level), each convolution on the
/// product that ran it faster at `height x width` on this CPU, with what was measured.
pub fn build(reference: &ResNet50, kernels: Kernels, height: usize, width: usize) -> Result<(Net, Vec<Timing>)> {
    let dot = reference.to_nhwc(Precision::Bf16, kernels)?;
    let emulated = reference.to_nhwc_emulated(kernels)?;
    let timings = measure(&dot, &emulated, height, width);
    Ok((choose(dot, emulated, &timings)?, timings))
}

/// Each convolution of `dot` and its twin in `emulated` timed on the activations a batch of
/// random photos gives it, the faster one's output passed on.
fn measure(dot: &Net, emulated: &Net, height: usize, width: usize) -> Vec<Timing> {
    let mut seed = 7u32;
    let photos = Maps {
        data: (0..BATCH * height * width * 3)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 8) as f32 / (1 << 24) as f32 * 4.0 - 2.0
            })
            .collect(),
        n: BATCH,
        h: height,
        w: width,
        c: 3,
    };
    let twins = emulated.convs();
    let index: HashMap<*const Conv, usize> = dot
        .convs()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (std::ptr::from_ref(c), i))
        .collect();
    let timings = Mutex::new(vec![None; twins.len()]);
    let (pool, scratch) = (Buffers::default(), Buffers::default());
    // Times `run` on both twins, alternating which goes first, and returns the faster's output.
    let pick = |i: usize, a: &Conv, b: &Conv, run: &dyn Fn(&Conv) -> Maps<u16>| -> Maps<u16> {
        // The first runs build Winograd's weights and fill the buffer pool: not timed.
        let y = run(a);
        let shape = format!(
            "{k}x{k} {}->{} /{} on {}x{}",
            a.cin,
            a.cout,
            a.stride,
            y.h,
            y.w,
            k = a.k
        );
        let macs = (y.n * y.h * y.w * a.k * a.k * a.cin * a.cout) as u64;
        pool.give(y.data);
        pool.give(run(b).data);
        let mut best = [Duration::MAX; 2];
        for r in 0..RUNS {
            for k in if r % 2 == 0 { [0, 1] } else { [1, 0] } {
                let start = Instant::now();
                let y = run([a, b][k]);
                best[k] = best[k].min(start.elapsed());
                pool.give(y.data);
            }
        }
        let t = Timing {
            shape,
            macs,
            dot: best[0],
            emulated: best[1],
        };
        let winner = if t.dot_wins() { a } else { b };
        timings.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(t);
        run(winner)
    };
    let stem = pick(0, &dot.stem, twins[0], &|c| {
        c.forward_bf16(&photos, Then::Relu, &pool, &scratch)
    });
    let map = dot.blocks_from(stem, &pool, |c, x, then| {
        let i = index[&std::ptr::from_ref(c)];
        pick(i, c, twins[i], &|c| c.forward_bf16(x, then, &pool, &scratch))
    });
    pool.give(map.data);
    let timings = timings.into_inner().unwrap_or_else(|p| p.into_inner());
    timings.into_iter().flatten().collect()
}

/// Per convolution, `dot`'s when its timing says the dot products won, else `emulated`'s.
pub(super) fn choose(dot: Net, emulated: Net, timings: &[Timing]) -> Result<Net> {
    let (dots, downs) = dot.into_convs();
    let (twins, _) = emulated.into_convs();
    if timings.len() != dots.len() || twins.len() != dots.len() {
        return Err(Error::Invalid(format!(
            "measured {} of {} convolutions",
            timings.len(),
            dots.len()
        )));
    }
    let convs = dots
        .into_iter()
        .zip(twins)
        .zip(timings)
        .map(|((d, e), t)| if t.dot_wins() { d } else { e });
    Net::from_convs(convs, &downs).ok_or_else(|| Error::Invalid("the measured network lost a convolution".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::Pooling;

    fn timing(dot_ms: u64, emulated_ms: u64) -> Timing {
        Timing {
            shape: String::new(),
            macs: 1,
            dot: Duration::from_millis(dot_ms),
            emulated: Duration::from_millis(emulated_ms),
        }
    }

    fn random_reference(dir: &std::path::Path) -> ResNet50 {
        let path = dir.join("w.safetensors");
        crate::vision::write_random_weights(&path, 5, 10, Default::default()).unwrap();
        ResNet50::load(&path).unwrap()
    }

    #[test]
    fn the_faster_product_is_kept_and_a_tie_keeps_the_dot_products() {
        assert!(timing(3, 4).dot_wins());
        assert!(timing(4, 4).dot_wins());
        assert!(!timing(5, 4).dot_wins());
    }

    #[test]
    fn each_convolution_gets_the_product_its_timing_chose() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("each_convolution_gets_the_product_its_timing_chose") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let reference = random_reference(dir.path());
        let dot = reference.to_nhwc(Precision::Bf16, kernels).unwrap();
        let n = dot.convs().len();
        // Every third convolution on the f32 kernel.
        let timings: Vec<Timing> = (0..n)
            .map(|i| if i % 3 == 0 { timing(2, 1) } else { timing(1, 2) })
            .collect();
        let net = choose(dot, reference.to_nhwc_emulated(kernels).unwrap(), &timings).unwrap();
        let got: Vec<bool> = net.convs().iter().map(|c| c.bf16_products()).collect();
        let want: Vec<bool> = (0..n).map(|i| i % 3 != 0).collect();
        assert_eq!(got, want);
        assert!(
            choose(
                reference.to_nhwc(Precision::Bf16, kernels).unwrap(),
                reference.to_nhwc_emulated(kernels).unwrap(),
                &timings[1..]
            )
            .is_err()
        );
    }

    #[test]
    fn a_measured_network_gives_the_dot_products_vectors() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("a_measured_network_gives_the_dot_products_vectors") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let reference = random_reference(dir.path());
        let (h, w) = (40, 32);
        let (net, timings) = build(&reference, kernels, h, w).unwrap();
        assert_eq!(timings.len(), net.convs().len());
        assert!(
            timings
                .iter()
                .all(|t| t.dot > Duration::ZERO && t.emulated > Duration::ZERO)
        );
        let chosen: Vec<bool> = net.convs().iter().map(|c| c.bf16_products()).collect();
        assert_eq!(chosen, timings.iter().map(Timing::dot_wins).collect::<Vec<_>>());
        // Whatever was chosen, the vectors are the dot products' up to summation order.
        let photos: Vec<Vec<f32>> = (0..3)
            .map(|p| {
                (0..3 * h * w)
                    .map(|i| ((i * 31 + p * 7) % 97) as f32 / 40.0 - 1.2)
                    .collect()
            })
            .collect();
        let x = Maps::from_chw(&photos, h, w).unwrap();
        let want = reference
            .to_nhwc(Precision::Bf16, kernels)
            .unwrap()
            .features(&x, Pooling::Avg);
        for (a, b) in net.features(&x, Pooling::Avg).iter().zip(&want) {
            let cos: f32 = a.iter().zip(b).map(|(a, b)| a * b).sum();
            assert!(cos > 0.9999, "cosine {cos}");
        }
    }

    #[test]
    fn measuring_is_asked_for_only_where_there_is_a_choice() {
        assert!(!wanted(Precision::F32, Kernels::Avx512Bf16).unwrap());
        assert!(!wanted(Precision::Bf16, Kernels::Avx512).unwrap());
        // Asking for AMX on a CPU without it is asking for its best, which may be this level.
        assert_eq!(
            wanted(Precision::Bf16, Kernels::Amx).unwrap(),
            Kernels::detected() == Kernels::Avx512Bf16 && asked(std::env::var(ENV_MEASURE).ok().as_deref()).unwrap()
        );
        assert!(asked(None).unwrap() && asked(Some(" 1")).unwrap() && asked(Some("")).unwrap());
        assert!(!asked(Some("0")).unwrap() && !asked(Some("off")).unwrap());
        let e = asked(Some("yes")).unwrap_err().to_string();
        assert!(
            e.contains("LOOKBOOK_MEASURE=\"yes\"") && e.contains("expected 1"),
            "{e}"
        );
    }

    #[test]
    fn the_measured_batch_is_the_one_embed_runs() {
        assert_eq!(BATCH, crate::embedding::DEFAULT_BATCH);
    }
}
