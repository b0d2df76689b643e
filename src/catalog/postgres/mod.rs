//! The catalogue in PostgreSQL with pgvector: the same tables, columns and version as the SQLite
//! file ([`crate::catalog::tables`]), vectors as pgvector `vector`, BLOBs as `bytea`. Every
//! statement the two stores share lives with the catalogue; this module holds what only
//! PostgreSQL does, by job:
//!
//! | module | job |
//! | --- | --- |
//! | [`url`] | URLs, passwords kept out of messages, connecting |
//! | [`link`] | a connection that reconnects by itself after the server went away ([`Link`]) |
//! | [`schema`] | creating and recognising a catalogue, its version, a vector index per model (HNSW or IVFFlat) |
//! | [`search`](mod@search) | vector search in the database (exact, HNSW or IVFFlat, filtered) |
//! | [`claims`] | the embed workers' batches (`FOR UPDATE SKIP LOCKED`) |

pub mod claims;
pub mod link;
pub mod schema;
pub mod search;
pub mod url;

pub use link::Link;
pub use schema::{
    IVFFLAT_FROM, IndexChoice, ModelIndex, State, create_schema, index_expr, index_model, ivfflat_lists, model_index,
    open, state,
};
pub use search::{Method, Search, default_probes, search};
pub use url::{connect, display_db, is_url, redact, scrub};
