//! Criterion benchmarks of the hot kernels: scoring a matrix, top-k, profile building, the full
//! blended recommend, and MMR. Run with `cargo bench --bench kernels`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use lookbook::bench::{synthetic_feedback, synthetic_matrix, synthetic_products};
use lookbook::recommend::{Engine, FlatIndex, Profile, ProfileSettings, Request, VectorIndex, mmr, top_k};

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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = kernels
}
criterion_main!(benches);
