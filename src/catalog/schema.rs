//! The catalogue's schema in a SQLite file: made from [`tables`] and moved forward by its
//! steps; the version lives in `PRAGMA user_version`, the owner in `PRAGMA application_id`.

use rusqlite::Connection;

use super::tables::Dialect;
use super::tables::{self, SCHEMA_VERSION};
use crate::{Error, Result};
use std::path::Path;

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
    if found == 0 {
        tx.execute_batch(&tables::create_all(Dialect::Sqlite))?;
    } else {
        for from in found..SCHEMA_VERSION {
            tx.execute_batch(&tables::step_sql(from, Dialect::Sqlite))?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(())
}
