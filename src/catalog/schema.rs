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

/// Brings the database up to [`SCHEMA_VERSION`], refusing files from a newer lookbook.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
