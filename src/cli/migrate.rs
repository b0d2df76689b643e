//! `lookbook migrate`: a whole catalogue between a SQLite file and a PostgreSQL database.

use anyhow::{Result, bail};
use std::path::Path;
use std::process::ExitCode;

use super::out::{out, outln};
use super::table::render;
use lookbook::catalog::Catalog;
use lookbook::catalog::postgres::IndexChoice;

/// Copy a whole catalogue between a SQLite file and a PostgreSQL database, either way
/// (see docs/postgres.md).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to copy to: `postgres://...` (an empty database) or a new SQLite file.
    #[arg(long)]
    pub to: String,
    /// Where to copy from (default: --db).
    #[arg(long)]
    pub from: Option<String>,
    /// The vector index built in PostgreSQL after the copy: `auto` (HNSW below 100,000
    /// vectors per model, IVFFlat from there, which builds in about a minute at 10^6),
    /// `hnsw` or `ivfflat`.
    #[arg(long, value_enum, default_value_t = IndexArg::Auto)]
    pub index: IndexArg,
    /// Print the rows copied as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `migrate --index`: which pgvector index each model gets.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum IndexArg {
    /// HNSW below 100,000 vectors per model, IVFFlat from there.
    Auto,
    /// HNSW (pgvector's graph index).
    Hnsw,
    /// IVFFlat (pgvector's inverted lists).
    Ivfflat,
}

impl From<IndexArg> for lookbook::catalog::postgres::IndexChoice {
    fn from(a: IndexArg) -> Self {
        match a {
            IndexArg::Auto => Self::Auto,
            IndexArg::Hnsw => Self::Hnsw,
            IndexArg::Ivfflat => Self::IvfFlat,
        }
    }
}

/// Runs `migrate`, from --from or else the global --db.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let from = a.from.unwrap_or_else(|| db.to_string_lossy().into_owned());
    copy(&from, &a.to, a.index.into(), a.json)
}

/// `lookbook migrate`: SQLite to PostgreSQL or back, one transaction on the receiving side;
/// `index` is the vector index built in PostgreSQL.
fn copy(from: &str, to: &str, index: IndexChoice, json: bool) -> Result<ExitCode> {
    use lookbook::catalog::postgres::{is_url, redact};
    let copied = match (is_url(from), is_url(to)) {
        (false, true) => lookbook::migrate::sqlite_to_postgres(&Catalog::open_existing(from)?, to, index)?,
        (true, false) => lookbook::migrate::postgres_to_sqlite(from, Path::new(to))?,
        _ => bail!(
            "migrate copies between a SQLite file and a PostgreSQL database: one of --from ({}) and --to ({}) must be a postgres:// URL and the other a file",
            redact(from),
            redact(to)
        ),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&copied)?);
    } else {
        let rows: Vec<Vec<String>> = copied
            .tables
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        outln!("copied {} to {}", redact(from), redact(to));
        out!("{}", render(&["table", "rows"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}
