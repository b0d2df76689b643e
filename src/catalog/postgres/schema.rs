//! The catalogue's schema in PostgreSQL with pgvector: the tables of [`tables::TABLES`] in
//! PostgreSQL's types, the schema version in `lookbook_meta` (PostgreSQL has no `user_version`),
//! and one HNSW index per model (models differ in dimension).
//!
//! A database is lookbook's when it holds the `lookbook_meta` table; a database with other
//! tables and no such table is refused untouched, as a foreign SQLite file is.

use postgres::Client;

use super::url::{connect, redact};
use crate::catalog::sql::Dialect;
use crate::catalog::tables::{self, SCHEMA_VERSION};
use crate::{Error, Result};

/// What only PostgreSQL needs before the tables: pgvector, and where the version lives.
const META: &str = "CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE lookbook_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

/// What a database holds.
#[derive(Debug, PartialEq)]
pub enum State {
    /// No tables at all: a catalogue can be created in it.
    Empty,
    /// A lookbook catalogue of this schema version.
    Catalogue(i64),
    /// Another program's tables (some named).
    Foreign(Vec<String>),
}

/// Looks at a database without changing it.
pub fn state(client: &mut Client) -> Result<State> {
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY table_name",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if tables.is_empty() {
        return Ok(State::Empty);
    }
    if !tables.iter().any(|t| t == "lookbook_meta") {
        return Ok(State::Foreign(tables.into_iter().take(5).collect()));
    }
    let version: Option<String> = client
        .query_opt("SELECT value FROM lookbook_meta WHERE key = 'schema_version'", &[])?
        .map(|r| r.get(0));
    let version = version
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Invalid("lookbook_meta has no schema_version; the catalogue is damaged".into()))?;
    Ok(State::Catalogue(version))
}

/// Creates the schema inside `tx` (PostgreSQL's DDL is transactional, so a failed copy leaves
/// nothing behind): the tables of [`tables::TABLES`] and the record of its version.
pub fn create_schema(tx: &mut postgres::Transaction<'_>) -> Result<()> {
    tx.batch_execute(&format!("{META}{}", tables::create_all(Dialect::Postgres)))?;
    tx.execute(
        "INSERT INTO lookbook_meta(key, value) VALUES ('schema_version', $1), ('application', 'lookbook')",
        &[&SCHEMA_VERSION.to_string()],
    )?;
    Ok(())
}

/// The expression an HNSW index of a model's vectors is built on, and searches order by:
/// pgvector's HNSW takes `vector` up to 2,000 dimensions and `halfvec` (f16) up to 4,000, so the
/// 2048-d backbone is indexed at half precision while the stored vectors stay f32.
pub fn index_expr(dim: i64) -> String {
    if dim <= 2000 {
        format!("(vector::vector({dim}))")
    } else {
        format!("(vector::halfvec({dim}))")
    }
}

/// Builds an HNSW index (cosine distance) over one model's vectors; pgvector indexes one
/// dimension per index, so each model gets its own, partial on its id.
pub fn index_model(client: &mut impl postgres::GenericClient, model_id: i64, dim: i64) -> Result<()> {
    if dim > 4000 {
        return Ok(()); // beyond pgvector's HNSW: searches scan exactly
    }
    let ops = if dim <= 2000 {
        "vector_cosine_ops"
    } else {
        "halfvec_cosine_ops"
    };
    // m 32 and ef_construction 200 instead of pgvector's 16 and 64: on 10^6 synthetic 256-d
    // vectors (tight clusters, the hard case) the defaults reached recall@10 0.83 at ef_search
    // 40 and 0.96 at 400; these reach 1.000 at 40 (`lookbook bench --postgres`), for a build
    // about three times longer (28 minutes for 10^6 x 256 on two cores).
    client.batch_execute(&format!(
        "CREATE INDEX IF NOT EXISTS embeddings_hnsw_{model_id} ON embeddings
         USING hnsw ({} {ops}) WITH (m = 32, ef_construction = 200) WHERE model_id = {model_id}",
        index_expr(dim)
    ))?;
    Ok(())
}

/// Opens the lookbook catalogue at `url`; an empty or foreign database, or one from a newer
/// lookbook, is an error that says what to do.
pub fn open(url: &str, create: bool) -> Result<Client> {
    let mut client = connect(url)?;
    let here = redact(url);
    match state(&mut client)? {
        State::Empty if create => {
            let mut tx = client.transaction()?;
            create_schema(&mut tx)?;
            tx.commit()?;
            Ok(client)
        }
        State::Catalogue(v) if v == SCHEMA_VERSION => Ok(client),
        State::Catalogue(v) if v > SCHEMA_VERSION => Err(Error::Invalid(format!(
            "{here}: catalogue schema version {v} is newer than this lookbook reads ({SCHEMA_VERSION}); upgrade lookbook"
        ))),
        State::Catalogue(v) => {
            // Forward, in one transaction, as a SQLite file moves forward when opened.
            let mut tx = client.transaction()?;
            for from in v..SCHEMA_VERSION {
                tx.batch_execute(&tables::step_sql(from, Dialect::Postgres))?;
            }
            tx.execute(
                "UPDATE lookbook_meta SET value = $1 WHERE key = 'schema_version'",
                &[&SCHEMA_VERSION.to_string()],
            )?;
            tx.commit()?;
            Ok(client)
        }
        State::Empty => Err(Error::Invalid(format!(
            "{here}: holds no lookbook catalogue yet; `lookbook --db URL import ...` makes one, or copy one in with `lookbook --db catalog.db migrate --to URL`"
        ))),
        State::Foreign(t) => Err(Error::Invalid(format!(
            "{here}: holds another program's tables ({}), not a lookbook catalogue",
            crate::text::sanitize(&t.join(", "))
        ))),
    }
}
