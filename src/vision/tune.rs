//! Which product each convolution of a bf16 network runs at the `avx512bf16` level, measured on
//! this CPU: `vdpbf16ps` on bf16 weights ([`super::bf16dot`]); for a 3x3 stride-1 convolution,
//! the same dot products inside Winograd's F(2x2, 3x3) on bf16-rounded transformed operands; or
//! the AVX-512 f32 kernel on bf16-rounded weights, which 3x3 stride-1 convolutions of a batch
//! run through Winograd.
//!
//! The first and last compute the same products up to summation order; Winograd on dot
//! products rounds its transformed operands to bf16 as well, which moves a vector by about as
//! much again as the bf16 network already differs from f32 (tested: cosine above 0.999 with the
//! dot network's). Why measure, and per convolution: a dot product does twice an FMA's work per
//! instruction on AMD's Zen 4 and about half on Intel's CPUs, while Winograd does a 3x3
//! convolution with a quarter to four ninths of the multiplications but adds transforms; which
//! wins depends on the CPU and on the layer's shape. The measurement runs once per weights file,
//! input size and CPU, on the batch `lookbook embed` runs, and is kept with the packed network
//! (`super::network_file`), so later loads only map it.

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
    /// The fastest run through Winograd on dot products, for the convolutions it applies to.
    pub dot_winograd: Option<Duration>,
    /// The fastest run on the f32 kernel (and Winograd where it applies).
    pub emulated: Duration,
}

/// The product a convolution runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `vdpbf16ps` over im2col (or the activation itself).
    Dot,
    /// `vdpbf16ps` inside Winograd's F(2x2, 3x3).
    DotWinograd,
    /// The f32 kernel on bf16-rounded operands (Winograd for 3x3 stride-1).
    Emulated,
}

impl Product {
    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Product::Dot => "dot",
            Product::DotWinograd => "dot-winograd",
            Product::Emulated => "f32",
        }
    }
}

impl Timing {
    /// The fastest product; a tie goes to dot products (half the weights' memory), plain
    /// before Winograd (exact sums of the rounded operands).
    pub fn chosen(&self) -> Product {
        let winograd = self.dot_winograd.unwrap_or(Duration::MAX);
        if self.dot <= self.emulated && self.dot <= winograd {
            Product::Dot
        } else if winograd <= self.emulated {
            Product::DotWinograd
        } else {
            Product::Emulated
        }
    }
}

/// `reference` as a bf16 network on `kernels` (the `avx512bf16` level), each convolution on the
/// product that ran it faster at `height x width` on this CPU, with what was measured.
pub fn build(reference: &ResNet50, kernels: Kernels, height: usize, width: usize) -> Result<(Net, Vec<Timing>)> {
    let dot = reference.to_nhwc(Precision::Bf16, kernels)?;
    let candidates = Candidates {
        // A copy, not a second packing of the same weights (about 100 ms on a Zen 4).
        winograd: dot.duplicate()?.on_dot_winograd()?,
        dot,
        emulated: reference.to_nhwc_emulated(kernels)?,
    };
    let timings = measure(&candidates, height, width);
    Ok((choose(candidates, &timings)?, timings))
}

/// The same network three ways, convolution for convolution.
pub(super) struct Candidates {
    /// Every convolution on dot products.
    pub dot: Net,
    /// The 3x3 stride-1 convolutions through Winograd on dot products, the rest as `dot`
    /// (never chosen from here).
    pub winograd: Net,
    /// Every convolution on the f32 kernel over rounded operands.
    pub emulated: Net,
}

/// Each convolution of the candidates timed on the activations a batch of random photos gives
/// it, the fastest one's output passed on.
fn measure(candidates: &Candidates, height: usize, width: usize) -> Vec<Timing> {
    let Candidates {
        dot,
        winograd,
        emulated,
    } = candidates;
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
    let wins = winograd.convs();
    let index: HashMap<*const Conv, usize> = dot
        .convs()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (std::ptr::from_ref(c), i))
        .collect();
    let timings = Mutex::new(vec![None; twins.len()]);
    let (pool, scratch) = (Buffers::default(), Buffers::default());
    // Times `run` on each candidate (dot products, the f32 kernel, and Winograd on dot products
    // where it applies), turn by turn in a rotating order, and returns the fastest's output.
    let pick = |i: usize, a: &Conv, b: &Conv, c: &Conv, run: &dyn Fn(&Conv) -> Maps<u16>| -> Maps<u16> {
        let all: &[&Conv] = if c.dot_winograd { &[a, b, c] } else { &[a, b] };
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
        for conv in &all[1..] {
            pool.give(run(conv).data);
        }
        let mut best = [Duration::MAX; 3];
        for r in 0..RUNS {
            for turn in 0..all.len() {
                let k = (r + turn) % all.len();
                let start = Instant::now();
                let y = run(all[k]);
                best[k] = best[k].min(start.elapsed());
                pool.give(y.data);
            }
        }
        let t = Timing {
            shape,
            macs,
            dot: best[0],
            dot_winograd: c.dot_winograd.then_some(best[2]),
            emulated: best[1],
        };
        let winner = match t.chosen() {
            Product::Dot => a,
            Product::DotWinograd => c,
            Product::Emulated => b,
        };
        timings.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(t);
        run(winner)
    };
    let stem = pick(0, &dot.stem, twins[0], wins[0], &|c| {
        c.forward_bf16(&photos, Then::Relu, &pool, &scratch)
    });
    let map = dot.blocks_from(stem, &pool, |c, x, then| {
        let i = index[&std::ptr::from_ref(c)];
        pick(i, c, twins[i], wins[i], &|c| c.forward_bf16(x, then, &pool, &scratch))
    });
    pool.give(map.data);
    let timings = timings.into_inner().unwrap_or_else(|p| p.into_inner());
    timings.into_iter().flatten().collect()
}

/// Per convolution, the candidate its timing chose.
pub(super) fn choose(candidates: Candidates, timings: &[Timing]) -> Result<Net> {
    let (dots, downs) = candidates.dot.into_convs();
    let (twins, _) = candidates.emulated.into_convs();
    let (wins, _) = candidates.winograd.into_convs();
    if timings.len() != dots.len() || twins.len() != dots.len() || wins.len() != dots.len() {
        return Err(Error::Invalid(format!(
            "measured {} of {} convolutions",
            timings.len(),
            dots.len()
        )));
    }
    let convs = dots
        .into_iter()
        .zip(twins)
        .zip(wins)
        .zip(timings)
        .map(|(((d, e), w), t)| match t.chosen() {
            Product::Dot => Ok(d),
            Product::Emulated => Ok(e),
            Product::DotWinograd if w.dot_winograd => Ok(w),
            Product::DotWinograd => Err(Error::Invalid(format!(
                "{}: Winograd on dot products was chosen where it does not apply",
                t.shape
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
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
            dot_winograd: None,
            emulated: Duration::from_millis(emulated_ms),
        }
    }

    fn with_winograd(t: Timing, ms: u64) -> Timing {
        Timing {
            dot_winograd: Some(Duration::from_millis(ms)),
            ..t
        }
    }

    fn candidates(reference: &ResNet50, kernels: Kernels) -> Candidates {
        Candidates {
            dot: reference.to_nhwc(Precision::Bf16, kernels).unwrap(),
            winograd: reference
                .to_nhwc(Precision::Bf16, kernels)
                .unwrap()
                .on_dot_winograd()
                .unwrap(),
            emulated: reference.to_nhwc_emulated(kernels).unwrap(),
        }
    }

    /// Per convolution, the product it runs.
    fn plan(net: &Net) -> Vec<Product> {
        net.convs()
            .iter()
            .map(|c| match (c.bf16_products(), c.dot_winograd) {
                (true, false) => Product::Dot,
                (true, true) => Product::DotWinograd,
                (false, _) => Product::Emulated,
            })
            .collect()
    }

    fn random_reference(dir: &std::path::Path) -> ResNet50 {
        let path = dir.join("w.safetensors");
        crate::vision::write_random_weights(&path, 5, 10, Default::default()).unwrap();
        ResNet50::load(&path).unwrap()
    }

    #[test]
    fn the_fastest_product_is_kept_and_a_tie_keeps_the_dot_products() {
        assert_eq!(timing(3, 4).chosen(), Product::Dot);
        assert_eq!(timing(4, 4).chosen(), Product::Dot);
        assert_eq!(timing(5, 4).chosen(), Product::Emulated);
        assert_eq!(with_winograd(timing(5, 4), 3).chosen(), Product::DotWinograd);
        assert_eq!(with_winograd(timing(5, 4), 4).chosen(), Product::DotWinograd);
        assert_eq!(with_winograd(timing(3, 4), 3).chosen(), Product::Dot);
        assert_eq!(with_winograd(timing(5, 3), 4).chosen(), Product::Emulated);
    }

    #[test]
    fn each_convolution_gets_the_product_its_timing_chose() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("each_convolution_gets_the_product_its_timing_chose") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let reference = random_reference(dir.path());
        let all = candidates(&reference, kernels);
        let winograd: Vec<bool> = all.winograd.convs().iter().map(|c| c.dot_winograd).collect();
        // Every 3x3 stride-1 convolution with 32 or more input channels, nothing else.
        let want_winograd: Vec<bool> = all
            .dot
            .convs()
            .iter()
            .map(|c| (c.k, c.stride) == (3, 1) && c.cin % 32 == 0)
            .collect();
        assert_eq!(winograd, want_winograd);
        assert!(winograd.contains(&true));
        // Every third convolution on the f32 kernel, every other Winograd one on Winograd.
        let timings: Vec<Timing> = winograd
            .iter()
            .enumerate()
            .map(|(i, &w)| match (i % 3, w) {
                (0, _) => timing(2, 1),
                (1, true) => with_winograd(timing(2, 3), 1),
                (_, true) => with_winograd(timing(1, 3), 2),
                _ => timing(1, 2),
            })
            .collect();
        let want: Vec<Product> = timings.iter().map(Timing::chosen).collect();
        assert!(want.contains(&Product::DotWinograd) && want.contains(&Product::Emulated));
        let net = choose(all, &timings).unwrap();
        assert_eq!(plan(&net), want);
        assert!(choose(candidates(&reference, kernels), &timings[1..]).is_err());
        // Winograd chosen for a convolution it does not apply to is an error, not a guess.
        let mut wrong = timings.clone();
        wrong[0] = with_winograd(timing(2, 2), 1);
        let Err(e) = choose(candidates(&reference, kernels), &wrong) else {
            panic!("Winograd chosen where it does not apply")
        };
        let e = e.to_string();
        assert!(e.contains("does not apply"), "{e}");
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
        // Winograd was timed for exactly the 3x3 stride-1 convolutions.
        let winograd: Vec<bool> = timings.iter().map(|t| t.dot_winograd.is_some()).collect();
        let want: Vec<bool> = timings
            .iter()
            .map(|t| t.shape.starts_with("3x3") && t.shape.contains(" /1 "))
            .collect();
        assert_eq!(winograd, want);
        assert_eq!(plan(&net), timings.iter().map(Timing::chosen).collect::<Vec<_>>());
        // Whatever was chosen, the vectors are the dot products' up to summation order, and
        // the rounding of Winograd's transformed operands where it was chosen.
        let bound = if plan(&net).contains(&Product::DotWinograd) {
            0.999
        } else {
            0.9999
        };
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
            assert!(cos > bound, "cosine {cos}");
        }
    }

    #[test]
    fn winograd_on_dot_products_moves_vectors_no_more_than_bf16_rounding_does() {
        let kernels = Kernels::Avx512Bf16;
        if !kernels.here_or_skip("winograd_on_dot_products_moves_vectors_no_more_than_bf16_rounding_does") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let reference = random_reference(dir.path());
        let all = candidates(&reference, kernels);
        let (h, w) = (48, 40);
        let photos: Vec<Vec<f32>> = (0..4)
            .map(|p| {
                (0..3 * h * w)
                    .map(|i| ((i * 37 + p * 11) % 101) as f32 / 40.0 - 1.2)
                    .collect()
            })
            .collect();
        let x = Maps::from_chw(&photos, h, w).unwrap();
        let exact = reference
            .to_nhwc(Precision::F32, Kernels::Avx512)
            .unwrap()
            .features(&x, Pooling::Avg);
        let dot = all.dot.features(&x, Pooling::Avg);
        let winograd = all.winograd.features(&x, Pooling::Avg);
        let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
        for ((e, d), w) in exact.iter().zip(&dot).zip(&winograd) {
            // Both bf16 networks stay close to f32, and Winograd's extra rounding moves a
            // vector from f32 no more than a few times what bf16 itself does.
            let (dot_err, win_err) = (1.0 - cos(e, d), 1.0 - cos(e, w));
            assert!(cos(d, w) > 0.999, "cosine {}", cos(d, w));
            assert!(
                win_err < 4.0 * dot_err.max(1e-5),
                "f32 to dot {dot_err}, to Winograd {win_err}"
            );
            assert_ne!(d, w, "Winograd ran");
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
