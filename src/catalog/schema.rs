//! Forward-only migrations; the version lives in `PRAGMA user_version`.

use rusqlite::Connection;

use crate::{Error, Result};
use std::path::Path;

/// Each entry upgrades the schema by one version; index 0 brings an empty file to version 1.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE categories (
    id        INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES categories(id),
    name      TEXT NOT NULL,
    level     INTEGER NOT NULL
);
CREATE UNIQUE INDEX categories_by_parent ON categories(IFNULL(parent_id, 0), name);
CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    category_id INTEGER NOT NULL REFERENCES categories(id),
    gender      TEXT NOT NULL,
    colour      TEXT NOT NULL,
    season      TEXT NOT NULL,
    year        INTEGER,
    usage       TEXT NOT NULL,
    image_path  TEXT NOT NULL,
    image_hash  TEXT NOT NULL,
    added_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX products_by_category ON products(category_id);
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE feedback (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    weight     REAL NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
) WITHOUT ROWID;
CREATE TABLE models (
    id             INTEGER PRIMARY KEY,
    key            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    architecture   TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    preprocessing  TEXT NOT NULL,
    pooling        TEXT NOT NULL,
    dim            INTEGER NOT NULL,
    head_id        INTEGER REFERENCES heads(id),
    created_at     INTEGER NOT NULL
);
CREATE TABLE heads (
    id                INTEGER PRIMARY KEY,
    backbone_model_id INTEGER NOT NULL REFERENCES models(id),
    in_dim            INTEGER NOT NULL,
    out_dim           INTEGER NOT NULL,
    weight            BLOB NOT NULL,
    bias              BLOB NOT NULL,
    sha256            TEXT NOT NULL,
    params            TEXT NOT NULL,
    metrics           TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE TABLE embeddings (
    model_id   INTEGER NOT NULL REFERENCES models(id),
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    image_hash TEXT NOT NULL,
    vector     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (model_id, product_id)
) WITHOUT ROWID;
"#];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `PRAGMA application_id` of every lookbook catalogue ("LkBk"), so other programs' SQLite files
/// are told apart without guessing from table names.
pub const APPLICATION_ID: i32 = 0x4C6B_426B;

/// The tables of schema version 1, used to recognise catalogues made before the application id.
const V1_TABLES: [&str; 8] = [
    "categories",
    "embeddings",
    "feedback",
    "heads",
    "models",
    "products",
    "settings",
    "users",
];

/// Refuses, without writing anything, a database that is neither empty nor a lookbook catalogue.
pub fn check_ownership(conn: &Connection, path: &Path) -> Result<()> {
    let p = path.display();
    let app: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| super::open_error(path, e))?;
    if app == APPLICATION_ID {
        return Ok(());
    }
    if app != 0 {
        return Err(Error::Invalid(format!(
            "{p}: a SQLite database of another program (application_id {app:#x}); lookbook leaves it untouched; point --db at a lookbook catalogue or a new file"
        )));
    }
    let mut st =
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
    let tables = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if tables.is_empty() && version == 0 {
        return Ok(()); // a new or empty file: the catalogue is created in it
    }
    if version >= 1 && tables.iter().map(String::as_str).eq(V1_TABLES) {
        return Ok(()); // a catalogue from before the application id; migrate() stamps it
    }
    let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
    if tables.len() > 5 {
        shown.push("...");
    }
    Err(Error::Invalid(format!(
        "{p}: a SQLite database of another program (tables: {}); lookbook leaves it untouched; point --db at a lookbook catalogue or a new file",
        crate::text::sanitize(&shown.join(", "))
    )))
}

/// Brings the database up to [`SCHEMA_VERSION`], refusing files from a newer lookbook.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if found == SCHEMA_VERSION && app == APPLICATION_ID {
        return Ok(());
    }
    // Immediate, and the version read again inside: two processes opening a new file at once
    // must not both run the same migration.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}
