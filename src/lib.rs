//! # lookbook
//!
//! A fashion recommender: product photos and metadata go into a catalogue (a SQLite file, or
//! PostgreSQL with pgvector for several machines), a ResNet50 turns each photo into a vector (weights
//! loaded and checked with candle, the forward pass on lookbook's own NHWC GEMM kernels), and the recommender ranks look-alikes and a personal feed from those vectors and a
//! user's likes. This crate is the engine; the `lookbook` binary
//! (`src/main.rs`, `src/cli/`, `src/tui/`) is a thin view over it and holds all terminal code.
//!
//! Data flows one way, and the modules follow it:
//!
//! | module | job |
//! | --- | --- |
//! | [`catalog`] | the catalogue in SQLite (default) or PostgreSQL with pgvector: every table and column listed once (`catalog::tables`), statements written once for both stores (`catalog::sql`), products and their variants, categories, users, feedback, models, embeddings |
//! | [`dates`] | dates to and from the catalogue's milliseconds |
//! | [`files`] | bounded reads of user-named files (photos, CSV, weights): regular files only, capped |
//! | [`ingest`] | `import`: a Kaggle styles.csv or a shop's export (Shopify, Google Merchant, WooCommerce, H&M, `--map`) read into feed items (`ingest::formats`), photos from a folder or downloaded by URL (`ingest::fetch`), stored transactionally with a report of what was skipped; shoppers' history (`ingest::interactions`) |
//! | [`kept`] | checksums of the files kept to answer fast (the index, packed networks), verified once per file |
//! | [`live`] | a long-running front end's engine: reloaded when the catalogue changes, the feed learned again when shoppers did something |
//! | [`migrate`] | a whole catalogue copied between SQLite and PostgreSQL (pgvector), either way |
//! | [`vision`] | decoding and preprocessing, weight loading, the ResNet50 (candle reference; NHWC fast path: bf16 on AMX tiles or AVX512_BF16 dot products, f32 on an AVX-512 GEMM, the `gemm` crate, plain Rust; `vision::cpu` picks and caps the level), the batched embedder |
//! | [`recommend`] | the vector index contract (exact scan, IVF, kept beside a SQLite catalogue by `recommend::ivf_file` with the per-product facts ranking needs, `recommend::facts`), query expansion and other neighbourhood re-rankings (`recommend::rerank`), taste profiles, blended ranking, MMR, explanations |
//! | [`embedding`] | the active model end to end: embed a catalogue keeping a trained head, a photo's query vector |
//! | [`eval`] | held-out split, retrieval metrics (micro, macro, rare types), class prototypes, personalisation on simulated or stored users, baselines, plots |
//! | [`train`] | the projection head learned on frozen backbone features |
//! | [`bundled`] | the shipped demo and model: found in the data folder, installed there from the source tree |
//! | [`paths`] | the user's data folder and the source tree the binary was built from |
//! | [`memory`] | the process's memory as the library manages it (freed memory back to the system) |
//! | [`sample`] | seeded randomness and the held-out split (shared with the Python recipe) |
//! | [`synthetic`] | synthetic products, vectors, likes, histories and catalogues: the workloads `lookbook bench` and the tests measure on |
//! | [`text`] | the sanitiser every piece of text passes on its way to a terminal, and truncation |
//!
//! Start with [`catalog::Catalog`] (open a database), then [`vision::Embedder`] (vectors) and
//! [`recommend::Engine`] (rankings).

pub mod bundled;
pub mod catalog;
pub mod dates;
pub mod embedding;
pub mod error;
pub mod eval;
pub mod files;
#[cfg(test)]
mod fuzz_smoke;
pub mod ingest;
pub mod kept;
pub mod live;
pub mod memory;
pub mod migrate;
pub mod paths;
pub mod progress;
pub mod recommend;
pub mod sample;
pub mod synthetic;
pub mod text;
pub mod train;
pub mod vision;

pub use error::{Error, Result};
pub use progress::{NoProgress, Progress};

/// Milliseconds since the Unix epoch, the unit of every timestamp in the catalogue.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
