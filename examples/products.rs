//! What `lookbook::vision::tune` measures, laid out per convolution:
//! `cargo run --release --example products -- [WEIGHTS [HEIGHT WIDTH]]` (default: the shipped
//! weights at their 112x84). For each convolution of the bf16 network at the `avx512bf16` level:
//! its fastest run on `vdpbf16ps`, on `vdpbf16ps` inside Winograd's F(2x2, 3x3) (3x3 stride-1
//! convolutions only) and on the f32 kernel over bf16-rounded operands (Winograd for a batch's
//! 3x3 stride-1 convolutions), in ms and in multiply-adds (of the direct convolution) per second
//! per core, and which one a measured network keeps. Then what one core's `vdpbf16ps` and f32 FMA reach with
//! everything in registers, so each kernel's share of its instruction's peak reads off directly
//! (issue 38: is the dot kernel slow, or the instruction?). Needs a CPU with AVX512_BF16.

use lookbook::vision::{ResNet50, cpu::Kernels, tune};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let weights = args
        .first()
        .map(String::as_str)
        .unwrap_or("models/lookbook-fashion-resnet50.safetensors");
    let size = |i: usize| args.get(i).map(|s| s.parse::<usize>()).transpose();
    let (h, w) = (size(1)?.unwrap_or(112), size(2)?.unwrap_or(84));
    if Kernels::detected() < Kernels::Avx512Bf16 {
        anyhow::bail!(
            "this CPU has no AVX512_BF16 (its best level is {})",
            Kernels::detected().name()
        );
    }
    // Before the network's worker threads exist, which spin a while after each layer.
    let (dp, fma) = peaks();
    let reference = ResNet50::load(weights.as_ref())?;
    let (_, timings) = tune::build(&reference, Kernels::Avx512Bf16, h, w)?;
    let cores = rayon::current_num_threads() as f64;
    let per_core = |macs: u64, s: f64| macs as f64 / s / 1e9 / cores;
    println!(
        "{h}x{w}, batch {}, {} threads; GMAC/s per core",
        tune::BATCH,
        rayon::current_num_threads()
    );
    println!(
        "{:<32} {:>9} {:>7} {:>9} {:>7} {:>9} {:>7}  kept",
        "convolution", "dot ms", "GMAC/s", "wino ms", "GMAC/s", "f32 ms", "GMAC/s"
    );
    let (mut dot, mut emulated, mut kept) = (0.0, 0.0, 0.0);
    for t in &timings {
        let (d, e) = (t.dot.as_secs_f64(), t.emulated.as_secs_f64());
        let w = t.dot_winograd.map(|w| w.as_secs_f64());
        (dot, emulated, kept) = (dot + d, emulated + e, kept + d.min(e).min(w.unwrap_or(f64::MAX)));
        let winograd = match w {
            Some(w) => format!("{:>9.2} {:>7.1}", w * 1e3, per_core(t.macs, w)),
            None => format!("{:>9} {:>7}", "-", "-"),
        };
        println!(
            "{:<32} {:>9.2} {:>7.1} {winograd} {:>9.2} {:>7.1}  {}",
            t.shape,
            d * 1e3,
            per_core(t.macs, d),
            e * 1e3,
            per_core(t.macs, e),
            t.chosen().name()
        );
    }
    let count = |p: tune::Product| timings.iter().filter(|t| t.chosen() == p).count();
    println!(
        "all convolutions: dot {:.1} ms, f32 {:.1} ms, as kept {:.1} ms ({} of {} on dot products, {} on Winograd on dot products)",
        dot * 1e3,
        emulated * 1e3,
        kept * 1e3,
        count(tune::Product::Dot),
        timings.len(),
        count(tune::Product::DotWinograd),
    );
    println!(
        "one core, registers only: vdpbf16ps {:.2} G/s ({:.1} GMAC/s), f32 FMA {:.2} G/s ({:.1} GMAC/s)",
        dp,
        dp * 32.0,
        fma,
        fma * 16.0
    );
    Ok(())
}

/// Instructions a second on one core, best of three: `vdpbf16ps` then f32 FMA on zmm registers,
/// sixteen independent sums each, so neither latency nor memory limits them.
fn peaks() -> (f64, f64) {
    const N: usize = 20_000_000;
    let best = |f: &dyn Fn() -> f32| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                16.0 * N as f64 / t.elapsed().as_secs_f64() / 1e9
            })
            .fold(0.0, f64::max)
    };
    // SAFETY: main checked that the CPU has AVX512_BF16 (and with it AVX-512F).
    (best(&|| unsafe { dot_loop(N) }), best(&|| unsafe { fma_loop(N) }))
}

/// `n` rounds of `step` on sixteen accumulators, each its own variable so all stay in
/// registers (an array of them did not: the compiler moved them around every round).
macro_rules! sixteen_sums {
    ($n:expr, $zero:expr, |$acc:ident| $step:expr, $reduce:path) => {{
        let [mut a0, mut a1, mut a2, mut a3, mut a4, mut a5, mut a6, mut a7] = [$zero; 8];
        let [mut a8, mut a9, mut a10, mut a11, mut a12, mut a13, mut a14, mut a15] = [$zero; 8];
        for _ in 0..$n {
            for $acc in [
                &mut a0, &mut a1, &mut a2, &mut a3, &mut a4, &mut a5, &mut a6, &mut a7, &mut a8, &mut a9, &mut a10,
                &mut a11, &mut a12, &mut a13, &mut a14, &mut a15,
            ] {
                *$acc = $step;
            }
        }
        [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15]
            .into_iter()
            .map(|a| $reduce(a))
            .sum::<f32>()
    }};
}

/// `n` rounds of sixteen `vdpbf16ps`.
///
/// # Safety
/// The CPU has AVX-512F and AVX512_BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn dot_loop(n: usize) -> f32 {
    use std::arch::x86_64::*;
    // Pairs of bf16 ones.
    let one: __m512bh = unsafe { std::mem::transmute(_mm512_set1_epi32(0x3f80_3f80)) };
    let x = std::hint::black_box(one);
    sixteen_sums!(
        n,
        _mm512_setzero_ps(),
        |a| _mm512_dpbf16_ps(*a, x, one),
        _mm512_reduce_add_ps
    )
}

/// `n` rounds of sixteen f32 FMAs.
///
/// # Safety
/// The CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn fma_loop(n: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (std::hint::black_box(_mm512_set1_ps(0.5)), _mm512_set1_ps(0.25));
    sixteen_sums!(
        n,
        _mm512_setzero_ps(),
        |s| _mm512_fmadd_ps(*s, a, b),
        _mm512_reduce_add_ps
    )
}
