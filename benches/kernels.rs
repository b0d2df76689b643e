//! Criterion benchmarks of the hot kernels: scoring a matrix, top-k, profile building, the full
//! blended recommend, and MMR. Run with `cargo bench --bench kernels`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use lookbook::recommend::{Engine, FlatIndex, Profile, ProfileSettings, Request, mmr, top_k};
use lookbook::synthetic::{synthetic_feedback, synthetic_matrix, synthetic_products};

fn kernels(c: &mut Criterion) {
    for dim in [256usize, 2048] {
        let n = 50_000;
        let index = FlatIndex::new(synthetic_matrix(n, dim, 1));
        let q = index.vector(17).to_vec();
        c.bench_function(&format!("scores {n}x{dim}"), |b| {
            b.iter(|| black_box(index.scores(black_box(&q))))
        });
        let s = index.scores(&q);
        c.bench_function(&format!("top_k 10 of {n}"), |b| {
            b.iter(|| black_box(top_k(black_box(&s), 10, |_| true)))
        });
        let fb = synthetic_feedback(n, 100, 2);
        c.bench_function(&format!("profile 100 likes {dim}-d"), |b| {
            b.iter(|| black_box(Profile::build(black_box(&fb), &index, ProfileSettings::default())))
        });
        let cand = top_k(&s, 50, |_| true);
        c.bench_function(&format!("mmr 10 of 50 {dim}-d"), |b| {
            b.iter(|| black_box(mmr(&index, black_box(&cand), 10, 0.7)))
        });
        let engine = Engine::new(synthetic_products(n), FlatIndex::new(synthetic_matrix(n, dim, 1)));
        let req = Request {
            k: 10,
            ..Default::default()
        };
        c.bench_function(&format!("recommend 100 likes over {n}x{dim}"), |b| {
            b.iter(|| {
                let p = Profile::build(&fb, engine.index(), ProfileSettings::default());
                black_box(engine.recommend(&p, &req).ok())
            })
        });
    }
}

/// ResNet50's convolution shapes at the shipped model's 112x84 input, batch 8: the GEMMs the
/// NHWC path runs (1x1 as a plain product, 3x3 and the 7x7 stem through im2col).
fn convolutions(c: &mut Criterion) {
    use lookbook::vision::cpu::Kernels;
    use lookbook::vision::nhwc::{Conv, Maps};
    let shapes = [
        ("stem 7x7/2 3->64 at 112x84", 112, 84, 3, 64, 7, 2),
        ("layer1 1x1 256->64 at 28x21", 28, 21, 256, 64, 1, 1),
        ("layer1 3x3 64->64 at 28x21", 28, 21, 64, 64, 3, 1),
        ("layer3 3x3 256->256 at 7x6", 7, 6, 256, 256, 3, 1),
        ("layer4 1x1 512->2048 at 4x3", 4, 3, 512, 2048, 1, 1),
        ("layer3 3x3 256->256 at 14x14", 14, 14, 256, 256, 3, 1),
        ("layer3 1x1 256->1024 at 14x14", 14, 14, 256, 1024, 1, 1),
    ];
    for (name, h, w, cin, cout, k, stride) in shapes {
        let weight: Vec<f32> = (0..cout * cin * k * k)
            .map(|i| ((i % 17) as f32 - 8.0) * 0.01)
            .collect();
        let x = Maps {
            data: (0..8 * h * w * cin).map(|i| (i % 13) as f32 * 0.05).collect(),
            n: 8,
            h,
            w,
            c: cin,
        };
        // Every kernel path this CPU has (`LOOKBOOK_CPU` caps them): f32 where the f32 kernel
        // differs, bf16 where the bf16 product does (emulated on AVX-512, then dot products,
        // then tiles). Plain Rust only on the smallest shape: it is the slow reference.
        let top = Kernels::capped().unwrap_or(Kernels::Portable);
        for kernels in Kernels::here().into_iter().filter(|k| *k <= top) {
            let runs: &[bool] = match kernels {
                Kernels::Portable if cin * k * k > 600 => &[],
                Kernels::Portable | Kernels::Avx2 => &[false],
                Kernels::Avx512 => &[false, true],
                Kernels::Avx512Bf16 | Kernels::Amx => &[true],
            };
            for &bf16 in runs {
                let conv = Conv::new(&weight, vec![0.1; cout], cin, k, stride).unwrap().on(kernels);
                let conv = if bf16 { conv.into_bf16() } else { conv };
                let precision = if bf16 { "bf16" } else { "f32" };
                c.bench_function(
                    &format!("conv {name}, batch 8, {precision} on {}", kernels.name()),
                    |b| b.iter(|| black_box(conv.apply(black_box(&x)))),
                );
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = kernels, convolutions
}
criterion_main!(benches);
