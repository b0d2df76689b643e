//! The forward pass alone, for a profiler: `cargo run --release --example forward -- WEIGHTS
//! [HEIGHT WIDTH BATCH ROUNDS [f32|bf16]]` runs the shipped ResNet50 on random inputs at the
//! kernels `LOOKBOOK_CPU` allows, in bf16 (the default) or f32, and prints images per second.
//! `perf record -g target/release/examples/forward models/lookbook-fashion-resnet50.safetensors 224 224 8 10`.

use lookbook::vision::{Embedder, Pooling, Precision, cpu::Kernels};
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let weights = args
        .first()
        .map(String::as_str)
        .unwrap_or("models/lookbook-fashion-resnet50.safetensors");
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (h, w, batch, rounds) = (num(1, 224), num(2, 224), num(3, 8), num(4, 10));
    let precision = match args.get(5).map(String::as_str) {
        Some("f32") => Precision::F32,
        Some("bf16") | None => Precision::Bf16,
        Some(other) => anyhow::bail!("precision {other:?}: f32 or bf16"),
    };
    let kernels = Kernels::chosen()?;
    let mut e = Embedder::load_on(weights.as_ref(), Pooling::Avg, precision, kernels)?;
    e.preprocess.height = h;
    e.preprocess.width = w;
    let mut seed = 1u32;
    let inputs: Vec<Vec<f32>> = (0..batch)
        .map(|_| {
            (0..3 * h * w)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
                })
                .collect()
        })
        .collect();
    e.embed_inputs(&inputs)?;
    let t = Instant::now();
    for _ in 0..rounds {
        e.embed_inputs(&inputs)?;
    }
    let s = t.elapsed().as_secs_f64();
    let (on_bf16, convs) = e.bf16_products();
    println!(
        "{h}x{w} batch {batch} {precision:?} on {} ({on_bf16} of {convs} convolutions on bf16 products): {:.1} images/s",
        kernels.name(),
        (rounds * batch) as f64 / s
    );
    Ok(())
}
