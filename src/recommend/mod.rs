//! Recommendation: the vector index, taste profiles, the blended ranking with MMR diversity,
//! explanations and cold start, and the feed from a shop's history (`shop`). `load` (and
//! `shop`'s model loading) read the catalogue; everything else computes over vectors in memory.
//!
//! | module | job |
//! | --- | --- |
//! | `engine` | the [`Engine`]: products, the index, what ranking knows of each row |
//! | `load` | building an engine from a catalogue: vectors, the kept index, the feed model |
//! | `rank` | look-alikes, the blended feed, MMR, reasons, cold start |
//! | `index`, `ivf`, `ivf_file`, `pg_index`, [`facts`] | the vector indexes and the per-row facts kept with them |
//! | `profile`, [`rerank`] | taste profiles; query expansion and neighbourhood re-ranking |
//! | [`shop`], [`shown`] | the feed from a shop's history; results as JSON rows |

mod engine;
pub mod facts;
mod index;
mod ivf;
pub mod ivf_file;
mod load;
mod pg_index;
mod profile;
mod rank;
pub mod rerank;
pub mod shop;
pub mod shown;

pub use engine::{Engine, SharedEngine};
pub use index::{FlatIndex, VectorIndex, dot, normalize, top_k};
pub use ivf::{IVF_MIN_ROWS, IvfIndex, TARGET_RECALL};
pub use pg_index::PgIndex;
pub use profile::{DEFAULT_HALF_LIFE_DAYS, Profile, ProfileSettings};
pub use rank::{DEFAULT_ALPHA, DEFAULT_DIVERSITY, Reason, Recommendation, Request, mmr};
