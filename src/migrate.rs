//! `lookbook migrate`: copies a whole catalogue (products, categories, users, feedback, models,
//! heads, vectors and settings) from a SQLite file into an empty PostgreSQL database, or back,
//! in one transaction on the receiving side, so a failed copy leaves nothing behind.
//!
//! Ids are copied as they are, so a round trip gives the same catalogue row for row; vectors
//! keep their f32 values exactly (pgvector stores f32).

use pgvector::Vector;
use postgres::Client;
use rusqlite::params;
use std::path::Path;

use crate::catalog::postgres::{self as pg, State};
use crate::catalog::{Catalog, SCHEMA_VERSION, from_blob, to_blob};
use crate::{Error, Result};

/// Rows copied, per table, in copy order.
#[derive(Debug, Default, serde::Serialize)]
pub struct Copied {
    /// (table, rows).
    pub tables: Vec<(String, u64)>,
}

impl Copied {
    fn add(&mut self, table: &str, rows: u64) {
        self.tables.push((table.to_string(), rows));
    }
}

/// Copies the SQLite catalogue `src` into the PostgreSQL database at `url`, which must hold no
/// tables. A relative image root becomes absolute, so the copy finds the photos.
pub fn sqlite_to_postgres(src: &Catalog, url: &str) -> Result<Copied> {
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
    let conn = src.conn()?;
    let mut copied = Copied::default();
    let mut tx = client.transaction()?;
    pg::create_schema(&mut tx)?;

    let mut n = 0;
    let root = src.image_root().ok();
    let mut st = conn.prepare("SELECT key, value FROM settings ORDER BY key")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (key, mut value): (String, String) = (r.get(0)?, r.get(1)?);
        if key == "image_root"
            && let Some(root) = &root
        {
            value = root
                .canonicalize()
                .unwrap_or(root.clone())
                .to_string_lossy()
                .into_owned();
        }
        tx.execute("INSERT INTO settings(key, value) VALUES ($1, $2)", &[&key, &value])?;
        n += 1;
    }
    copied.add("settings", n);

    // Parents before children: a level is only ever below the one above it.
    let mut n = 0;
    let ins = tx.prepare("INSERT INTO categories(id, parent_id, name, level) VALUES ($1, $2, $3, $4)")?;
    let mut st = conn.prepare("SELECT id, parent_id, name, level FROM categories ORDER BY level, id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (id, parent, name, level): (i64, Option<i64>, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        tx.execute(&ins, &[&id, &parent, &name, &level])?;
        n += 1;
    }
    copied.add("categories", n);

    let mut n = 0;
    let ins = tx.prepare(
        "INSERT INTO products(id, name, category_id, gender, colour, season, year, usage, image_path, image_hash,
             added_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )?;
    let mut st = conn.prepare(
        "SELECT id, name, category_id, gender, colour, season, year, usage, image_path, image_hash, added_at,
             updated_at FROM products ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (id, name, cat, gender, colour, season): (i64, String, i64, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        let (year, usage, path, hash, added, updated): (Option<i64>, String, String, String, i64, i64) =
            (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?);
        tx.execute(
            &ins,
            &[
                &id, &name, &cat, &gender, &colour, &season, &year, &usage, &path, &hash, &added, &updated,
            ],
        )?;
        n += 1;
    }
    copied.add("products", n);

    let mut n = 0;
    let ins = tx.prepare("INSERT INTO users(id, name, created_at) VALUES ($1, $2, $3)")?;
    let mut st = conn.prepare("SELECT id, name, created_at FROM users ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (id, name, at): (i64, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        tx.execute(&ins, &[&id, &name, &at])?;
        n += 1;
    }
    copied.add("users", n);

    // Models first without their head (a head refers to its backbone model), then heads, then
    // the models' head ids.
    let mut n = 0;
    let mut heads_of: Vec<(i64, i64)> = Vec::new();
    let ins = tx.prepare(
        "INSERT INTO models(id, key, name, architecture, weights_sha256, preprocessing, pooling, dim, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )?;
    let mut st = conn.prepare(
        "SELECT id, key, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id, created_at
         FROM models ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    let mut dims: Vec<(i64, i64)> = Vec::new();
    while let Some(r) = rows.next()? {
        let (id, key, name, arch, sha): (i64, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let (pre, pool, dim, head, at): (String, String, i64, Option<i64>, i64) =
            (r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
        tx.execute(&ins, &[&id, &key, &name, &arch, &sha, &pre, &pool, &dim, &at])?;
        if let Some(h) = head {
            heads_of.push((id, h));
        }
        dims.push((id, dim));
        n += 1;
    }
    copied.add("models", n);

    let mut n = 0;
    let ins = tx.prepare(
        "INSERT INTO heads(id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )?;
    let mut st = conn.prepare(
        "SELECT id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at
         FROM heads ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (id, backbone, in_dim, out_dim): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let (w, b, sha, params, metrics, at): (Vec<u8>, Vec<u8>, String, String, String, i64) =
            (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?);
        tx.execute(
            &ins,
            &[&id, &backbone, &in_dim, &out_dim, &w, &b, &sha, &params, &metrics, &at],
        )?;
        n += 1;
    }
    copied.add("heads", n);
    for (model, head) in heads_of {
        tx.execute("UPDATE models SET head_id = $1 WHERE id = $2", &[&head, &model])?;
    }

    let mut n = 0;
    let ins = tx.prepare("INSERT INTO feedback(user_id, product_id, weight, at) VALUES ($1, $2, $3, $4)")?;
    let mut st = conn.prepare("SELECT user_id, product_id, weight, at FROM feedback ORDER BY user_id, product_id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (user, product, weight, at): (i64, i64, f64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        tx.execute(&ins, &[&user, &product, &weight, &at])?;
        n += 1;
    }
    copied.add("feedback", n);

    let mut n = 0;
    let ins = tx.prepare(
        "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES ($1, $2, $3, $4, $5)",
    )?;
    let mut st = conn.prepare(
        "SELECT model_id, product_id, image_hash, vector, created_at FROM embeddings ORDER BY model_id, product_id",
    )?;
    let mut rows = st.query([])?;
    let mut v = Vec::new();
    while let Some(r) = rows.next()? {
        let (model, product, hash, blob, at): (i64, i64, String, Vec<u8>, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        v.clear();
        from_blob(&blob, &mut v)
            .map_err(|e| Error::Invalid(format!("vector of product {product} (model {model}): {e}")))?;
        tx.execute(&ins, &[&model, &product, &hash, &Vector::from(v.clone()), &at])?;
        n += 1;
    }
    copied.add("embeddings", n);

    for table in ["categories", "users", "models", "heads"] {
        // The next id a new row gets continues after the copied ones.
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ),
            &[],
        )?;
    }
    // HNSW builds fast only while its graph fits in maintenance memory (the default is 64 MB).
    tx.batch_execute("SET LOCAL maintenance_work_mem = '1GB'")?;
    for (model, dim) in dims {
        pg::index_model(&mut tx, model, dim)?;
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

fn copy_from_postgres(client: &mut Client, cat: &mut Catalog) -> Result<Copied> {
    let mut copied = Copied::default();
    // One snapshot of the source for the whole copy.
    let mut src = client
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()?;
    let tx = cat.conn_mut()?.transaction()?;

    let rows = src.query("SELECT key, value FROM settings ORDER BY key", &[])?;
    for r in &rows {
        tx.execute(
            "INSERT INTO settings(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![r.get::<_, String>(0), r.get::<_, String>(1)],
        )?;
    }
    copied.add("settings", rows.len() as u64);

    let rows = src.query(
        "SELECT id, parent_id, name, level FROM categories ORDER BY level, id",
        &[],
    )?;
    for r in &rows {
        tx.execute(
            "INSERT INTO categories(id, parent_id, name, level) VALUES (?1, ?2, ?3, ?4)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, Option<i64>>(1),
                r.get::<_, String>(2),
                r.get::<_, i64>(3)
            ],
        )?;
    }
    copied.add("categories", rows.len() as u64);

    let rows = src.query(
        "SELECT id, name, category_id, gender, colour, season, year, usage, image_path, image_hash, added_at,
             updated_at FROM products ORDER BY id",
        &[],
    )?;
    {
        let mut ins = tx.prepare(
            "INSERT INTO products(id, name, category_id, gender, colour, season, year, usage, image_path, image_hash,
                 added_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for r in &rows {
            ins.execute(params![
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, i64>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, String>(5),
                r.get::<_, Option<i64>>(6),
                r.get::<_, String>(7),
                r.get::<_, String>(8),
                r.get::<_, String>(9),
                r.get::<_, i64>(10),
                r.get::<_, i64>(11),
            ])?;
        }
    }
    copied.add("products", rows.len() as u64);

    let rows = src.query("SELECT id, name, created_at FROM users ORDER BY id", &[])?;
    for r in &rows {
        tx.execute(
            "INSERT INTO users(id, name, created_at) VALUES (?1, ?2, ?3)",
            params![r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, i64>(2)],
        )?;
    }
    copied.add("users", rows.len() as u64);

    let rows = src.query(
        "SELECT id, key, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id, created_at
         FROM models ORDER BY id",
        &[],
    )?;
    for r in &rows {
        tx.execute(
            "INSERT INTO models(id, key, name, architecture, weights_sha256, preprocessing, pooling, dim, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, String>(4),
                r.get::<_, String>(5),
                r.get::<_, String>(6),
                r.get::<_, i64>(7),
                r.get::<_, i64>(9),
            ],
        )?;
    }
    copied.add("models", rows.len() as u64);
    let heads_of: Vec<(i64, i64)> = rows
        .iter()
        .filter_map(|r| r.get::<_, Option<i64>>(8).map(|h| (r.get::<_, i64>(0), h)))
        .collect();

    let rows = src.query(
        "SELECT id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at
         FROM heads ORDER BY id",
        &[],
    )?;
    for r in &rows {
        tx.execute(
            "INSERT INTO heads(id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, i64>(2),
                r.get::<_, i64>(3),
                r.get::<_, Vec<u8>>(4),
                r.get::<_, Vec<u8>>(5),
                r.get::<_, String>(6),
                r.get::<_, String>(7),
                r.get::<_, String>(8),
                r.get::<_, i64>(9),
            ],
        )?;
    }
    copied.add("heads", rows.len() as u64);
    for (model, head) in heads_of {
        tx.execute("UPDATE models SET head_id = ?1 WHERE id = ?2", params![head, model])?;
    }

    let rows = src.query(
        "SELECT user_id, product_id, weight, at FROM feedback ORDER BY user_id, product_id",
        &[],
    )?;
    for r in &rows {
        tx.execute(
            "INSERT INTO feedback(user_id, product_id, weight, at) VALUES (?1, ?2, ?3, ?4)",
            params![
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, f64>(2),
                r.get::<_, i64>(3)
            ],
        )?;
    }
    copied.add("feedback", rows.len() as u64);

    // Vectors streamed: a large catalogue's never sit in memory all at once.
    let mut n = 0u64;
    {
        let mut ins = tx.prepare(
            "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let stmt = src.prepare(
            "SELECT model_id, product_id, image_hash, vector, created_at FROM embeddings ORDER BY model_id, product_id",
        )?;
        let mut it = src.query_raw(&stmt, std::iter::empty::<i64>())?;
        while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut it)? {
            let v: Vector = r.get(3);
            ins.execute(params![
                r.get::<_, i64>(0),
                r.get::<_, i64>(1),
                r.get::<_, String>(2),
                to_blob(v.as_slice()),
                r.get::<_, i64>(4),
            ])?;
            n += 1;
        }
    }
    copied.add("embeddings", n);
    tx.commit()?;
    src.commit()?;
    Ok(copied)
}
