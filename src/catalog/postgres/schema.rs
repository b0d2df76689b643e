//! The catalogue's schema in PostgreSQL with pgvector: the tables of [`tables::TABLES`] in
//! PostgreSQL's types, the schema version in `lookbook_meta` (PostgreSQL has no `user_version`),
//! and one vector index per model (models differ in dimension): HNSW, or IVFFlat for a large
//! copy.
//!
//! A database is lookbook's when it holds the `lookbook_meta` table; a database with other
//! tables and no such table is refused untouched, as a foreign SQLite file is.

use postgres::Client;

use super::url::{connect, redact};
use crate::catalog::tables::Dialect;
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

/// Which pgvector index a model's vectors get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexChoice {
    /// HNSW below [`IVFFLAT_FROM`] vectors, IVFFlat from there on.
    Auto,
    /// A graph: the best speed for its recall, and new vectors join it as they come, but its
    /// build grows fastest with the catalogue.
    Hnsw,
    /// Inverted lists around k-means centroids: built in about a minute at 10^6 x 256, searched
    /// through the nearest `probes` lists.
    IvfFlat,
}

/// The index a model has in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelIndex {
    /// pgvector HNSW.
    Hnsw,
    /// pgvector IVFFlat with this many lists.
    IvfFlat {
        /// Its `lists`.
        lists: u32,
    },
}

/// From this many vectors, [`IndexChoice::Auto`] builds IVFFlat: pgvector's HNSW at lookbook's
/// settings took 94 s for 10^5 x 256 on two cores and about 28 minutes for 10^6 (pgvector's
/// defaults build about five times faster and still need over 5 minutes), while IVFFlat built
/// 10^6 x 256 in 49 s.
pub const IVFFLAT_FROM: i64 = 100_000;

/// The index name of each kind, per model.
fn index_name(kind: &str, model_id: i64) -> String {
    format!("embeddings_{kind}_{model_id}")
}

/// The index lookbook made for `model_id`, if any.
pub fn model_index(client: &mut impl postgres::GenericClient, model_id: i64) -> Result<Option<ModelIndex>> {
    let rows = client.query(
        "SELECT a.amname::text, array_to_string(c.reloptions, ',')
         FROM pg_class c JOIN pg_am a ON a.oid = c.relam
         WHERE c.relkind = 'i' AND c.relname = ANY($1)",
        &[&vec![index_name("hnsw", model_id), index_name("ivfflat", model_id)]],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    let (am, options): (String, Option<String>) = (row.get(0), row.get(1));
    Ok(Some(if am == "ivfflat" {
        let lists = options
            .unwrap_or_default()
            .split(',')
            .find_map(|o| o.strip_prefix("lists=").and_then(|n| n.parse().ok()))
            .unwrap_or(100); // pgvector's default
        ModelIndex::IvfFlat { lists }
    } else {
        ModelIndex::Hnsw
    }))
}

/// IVFFlat lists for `rows` vectors, as pgvector advises: rows / 1000 up to 10^6, the square
/// root past that.
pub fn ivfflat_lists(rows: i64) -> u32 {
    let lists = if rows <= 1_000_000 {
        rows / 1000
    } else {
        (rows as f64).sqrt() as i64
    };
    lists.clamp(1, 32_768) as u32
}

/// Builds an index (cosine distance) over one model's vectors unless it has one; pgvector
/// indexes one dimension per index, so each model gets its own, partial on its id. A model
/// registered before its vectors exist gets HNSW under `Auto` (IVFFlat learns its lists from
/// the vectors present when it is built).
pub fn index_model(
    client: &mut impl postgres::GenericClient,
    model_id: i64,
    dim: i64,
    choice: IndexChoice,
) -> Result<()> {
    if dim > 4000 || model_index(client, model_id)?.is_some() {
        return Ok(()); // beyond pgvector's indexes (searches scan exactly), or already built
    }
    let ops = if dim <= 2000 {
        "vector_cosine_ops"
    } else {
        "halfvec_cosine_ops"
    };
    let mut rows = || -> Result<i64> {
        let n: i64 = client
            .query_one("SELECT count(*) FROM embeddings WHERE model_id = $1", &[&model_id])?
            .get(0);
        Ok(n)
    };
    let ivfflat = match choice {
        IndexChoice::Hnsw => None,
        IndexChoice::IvfFlat => Some(rows()?),
        IndexChoice::Auto => Some(rows()?).filter(|&n| n >= IVFFLAT_FROM),
    };
    let expr = index_expr(dim);
    let sql = match ivfflat {
        Some(n) => format!(
            "CREATE INDEX {} ON embeddings USING ivfflat ({expr} {ops}) WITH (lists = {}) WHERE model_id = {model_id}",
            index_name("ivfflat", model_id),
            ivfflat_lists(n)
        ),
        // m 32 and ef_construction 200 instead of pgvector's 16 and 64: on 10^6 synthetic
        // 256-d vectors (tight clusters, the hard case) the defaults reached recall@10 0.83 at
        // ef_search 40 and 0.96 at 400; these reach 1.000 at 40 (`lookbook bench postgres`).
        None => format!(
            "CREATE INDEX IF NOT EXISTS {} ON embeddings
             USING hnsw ({expr} {ops}) WITH (m = 32, ef_construction = 200) WHERE model_id = {model_id}",
            index_name("hnsw", model_id)
        ),
    };
    client.batch_execute(&sql)?;
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
