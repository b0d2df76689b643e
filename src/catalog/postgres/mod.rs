//! The catalogue in PostgreSQL with pgvector: the same tables, columns and version as the SQLite
//! file ([`crate::catalog::tables`]), vectors as pgvector `vector`, BLOBs as `bytea`. Every
//! statement the two stores share lives with the catalogue; this module holds what only
//! PostgreSQL does, by job:
//!
//! | module | job |
//! | --- | --- |
//! | [`url`] | URLs, passwords kept out of messages, connecting, reconnecting ([`Link`]) |
//! | [`schema`] | creating and recognising a catalogue, its version, HNSW indexes per model |
//! | [`search`] | vector search in the database (exact or HNSW, filtered) |
//! | [`claims`] | the embed workers' batches (`FOR UPDATE SKIP LOCKED`) |

pub mod claims;
pub mod schema;
pub mod search;
pub mod url;

pub use schema::{State, create_schema, index_expr, index_model, open, state};
pub use search::{Method, Search, search};
pub use url::{Link, connect, display_db, is_url, redact, scrub};
