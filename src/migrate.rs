//! `lookbook migrate`: copies a whole catalogue (products, categories, users, feedback, models,
//! heads, vectors and settings) from a SQLite file into an empty PostgreSQL database, or back,
//! in one transaction on the receiving side, so a failed copy leaves nothing behind.
//!
//! Both directions are one copy driven by [`TABLES`]: every column of every table, in an order
//! that respects foreign keys. Ids are copied as they are, so a round trip gives the same
//! catalogue row for row; vectors keep their f32 values exactly (pgvector stores f32).

use std::path::Path;

use crate::catalog::postgres::{self as pg, State};
use crate::catalog::sql::{Db, Pg, Value, params};
use crate::catalog::tables::{Kind, TABLES};
use crate::catalog::{Catalog, SCHEMA_VERSION};
use crate::{Error, Result};

/// Rows copied, per table, in copy order.
#[derive(Debug, Default, serde::Serialize)]
pub struct Copied {
    /// (table, rows).
    pub tables: Vec<(String, u64)>,
}

/// Copies every table from `src` to `dst`, streaming rows. References that point to a table
/// copied later (`models.head_id` to `heads`) are filled in at the end. `setting` may rewrite a
/// setting's value on its way (an image root made absolute).
fn copy_tables(src: &mut impl Db, dst: &mut impl Db, setting: &dyn Fn(&str, String) -> String) -> Result<Copied> {
    let mut copied = Copied::default();
    let mut later: Vec<(String, Value, Value)> = Vec::new();
    for (ti, t) in TABLES.iter().enumerate() {
        let forward: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.references.is_some_and(|to| {
                    let target = to.split('(').next().unwrap_or(to);
                    TABLES.iter().position(|u| u.name == target).is_some_and(|j| j > ti)
                })
            })
            .map(|(i, _)| i)
            .collect();
        let select = format!("SELECT {} FROM {} ORDER BY {}", t.column_list(), t.name, t.copy_order);
        // Rows stream from the source straight into the destination's bulk path (COPY in
        // binary into PostgreSQL: 10^6 vectors row by row took 997 s).
        let n = dst.bulk_insert(t, &mut |push| {
            src.each(&select, &[], &mut |mut row| {
                for &i in &forward {
                    let v = std::mem::replace(&mut row.0[i], Value::Null);
                    if v != Value::Null {
                        let sql = format!("UPDATE {} SET {} = ?1 WHERE id = ?2", t.name, t.columns[i].name);
                        later.push((sql, v, row.0[0].clone()));
                    }
                }
                if t.name == "settings"
                    && let (Some(Value::Text(key)), Some(Value::Text(value))) = (row.0.first(), row.0.get(1))
                {
                    row.0[1] = Value::Text(setting(key, value.clone()));
                }
                push(&row.0)
            })
        })?;
        copied.tables.push((t.name.to_string(), n));
    }
    for (sql, v, id) in later {
        dst.execute(&sql, &[v, id])?;
    }
    Ok(copied)
}

/// Copies the SQLite catalogue `src` into the PostgreSQL database at `url`, which must hold no
/// tables, and builds each model's vector index after the copy, of the kind `index` says. A
/// relative image root becomes absolute, so the copy finds the photos.
pub fn sqlite_to_postgres(src: &Catalog, url: &str, index: pg::IndexChoice) -> Result<Copied> {
    let mut client = pg::connect(url)?;
    let here = pg::redact(url);
    match pg::state(&mut client)? {
        State::Empty => {}
        State::Catalogue(_) => {
            return Err(Error::Invalid(format!(
                "{here}: already holds a lookbook catalogue; migrate into an empty database (CREATE DATABASE ...)"
            )));
        }
        State::Foreign(t) => {
            return Err(Error::Invalid(format!(
                "{here}: holds another program's tables ({}); lookbook leaves it untouched; use an empty database",
                crate::text::sanitize(&t.join(", "))
            )));
        }
    }
    src.conn()?; // a SQLite file: the error says so otherwise
    let root = src
        .image_root()
        .ok()
        .map(|r| r.canonicalize().unwrap_or(r).to_string_lossy().into_owned());
    let mut tx = client.transaction()?;
    pg::create_schema(&mut tx)?;
    let copied = {
        let mut dst = Pg(&mut tx);
        let absolute = |key: &str, value: String| match (key, &root) {
            ("image_root", Some(root)) => root.clone(),
            _ => value,
        };
        copy_tables(&mut src.db()?, &mut dst, &absolute)?
    };
    for t in TABLES.iter().filter(|t| t.columns.iter().any(|c| c.kind == Kind::Id)) {
        // The next id a new row gets continues after the copied ones.
        let name = t.name;
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{name}', 'id'), COALESCE((SELECT MAX(id) FROM {name}), 0) + 1, false)"
            ),
            &[],
        )?;
    }
    // HNSW builds fast only while its graph fits in maintenance memory (the default is 64 MB),
    // and IVFFlat's k-means works there too.
    tx.batch_execute("SET LOCAL maintenance_work_mem = '1GB'")?;
    let models = Pg(&mut tx).rows("SELECT id, dim FROM models ORDER BY id", params![])?;
    for m in models {
        pg::index_model(&mut tx, m.get(0)?, m.get(1)?, index)?;
    }
    tx.commit()?;
    Ok(copied)
}

/// Copies the catalogue in the PostgreSQL database at `url` into a new SQLite file `dest`.
pub fn postgres_to_sqlite(url: &str, dest: &Path) -> Result<Copied> {
    if dest.exists() && std::fs::metadata(dest).map(|m| m.len() > 0).unwrap_or(true) {
        return Err(Error::Invalid(format!(
            "{}: already exists; migrate into a new file so nothing is overwritten",
            dest.display()
        )));
    }
    let mut client = pg::connect(url)?;
    let here = pg::redact(url);
    match pg::state(&mut client)? {
        State::Catalogue(v) if v == SCHEMA_VERSION => {}
        State::Catalogue(v) => {
            return Err(Error::Invalid(format!(
                "{here}: catalogue schema version {v}, this lookbook reads {SCHEMA_VERSION}; use the lookbook that wrote it"
            )));
        }
        State::Empty => return Err(Error::Invalid(format!("{here}: holds no lookbook catalogue"))),
        State::Foreign(t) => {
            return Err(Error::Invalid(format!(
                "{here}: holds another program's tables ({}), not a lookbook catalogue",
                crate::text::sanitize(&t.join(", "))
            )));
        }
    }
    let mut cat = Catalog::open(dest)?;
    let copied = copy_from_postgres(&mut client, &mut cat);
    if copied.is_err() {
        drop(cat);
        // The file was new: leave nothing half-made behind.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", dest.display()));
        }
    }
    copied
}

fn copy_from_postgres(client: &mut postgres::Client, cat: &mut Catalog) -> Result<Copied> {
    // One snapshot of the source for the whole copy.
    let mut src = client
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()?;
    let mut tx = cat.tx()?;
    let copied = copy_tables(&mut Pg(&mut src), &mut tx, &|_, v| v)?;
    tx.commit()?;
    src.commit()?;
    Ok(copied)
}
