//! Recommendation: the vector index, taste profiles, the blended ranking with MMR diversity,
//! explanations and cold start. Pure computation over vectors already in memory.

mod engine;
pub mod facts;
mod index;
mod ivf;
pub mod ivf_file;
mod pg_index;
mod profile;
pub mod rerank;
pub mod shop;
pub mod shown;

pub use engine::{DEFAULT_ALPHA, DEFAULT_DIVERSITY, Engine, Reason, Recommendation, Request, mmr};
pub use index::{FlatIndex, VectorIndex, dot, normalize, top_k};
pub use ivf::{IVF_MIN_ROWS, IvfIndex, TARGET_RECALL};
pub use pg_index::PgIndex;
pub use profile::{DEFAULT_HALF_LIFE_DAYS, Profile, ProfileSettings};
