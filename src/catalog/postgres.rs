//! The catalogue's schema in PostgreSQL with pgvector: the same tables, columns and version as
//! the SQLite file, with vectors as pgvector `vector` (one HNSW index per model, on cosine
//! distance, since models differ in dimension) and BLOBs as `bytea`.
//!
//! A database is lookbook's when it holds the `lookbook_meta` table; a database with other
//! tables and no such table is refused untouched, as a foreign SQLite file is.

use postgres::{Client, NoTls};

use crate::{Error, Result};

use super::SCHEMA_VERSION;

/// True when `db` names a PostgreSQL database (`postgres://...` or `postgresql://...`) rather
/// than a SQLite file.
pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL with any password replaced by `***`, for messages and logs: the one in the user-info
/// part (`postgres://u:pw@h/db`) and any `password=` parameter (`?host=/tmp&password=pw`).
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (info, host) = authority.split_at(at);
            match info.find(':') {
                Some(c) => format!("{}:***{host}", &info[..c]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

/// `text` with every password that `db` carries (as written and percent-decoded) replaced by
/// `***`: the last gate before an error reaches the terminal, whatever put the URL into it.
pub fn scrub(text: &str, db: &str) -> String {
    if !is_url(db) {
        return text.to_string();
    }
    let redacted = redact(db);
    let mut out = text.replace(db, &redacted);
    for secret in passwords(db) {
        for form in [percent_decode(&secret), secret] {
            if !form.is_empty() {
                out = out.replace(&form, "***");
            }
        }
    }
    out
}

/// The passwords in a URL: the user-info one and any `password=` parameter.
fn passwords(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some((info, _)) = authority.rsplit_once('@')
        && let Some((_, pw)) = info.split_once(':')
    {
        found.push(pw.to_string());
    }
    if let Some((_, query)) = url.split_once('?') {
        for kv in query.split('&') {
            if let Some((k, v)) = kv.split_once('=')
                && k.eq_ignore_ascii_case("password")
            {
                found.push(v.to_string());
            }
        }
    }
    found
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a `--db` value is named in messages and logs: a file's path, or a URL without its password.
pub fn display_db(db: &std::path::Path) -> String {
    let text = db.to_string_lossy();
    if is_url(&text) {
        redact(&text)
    } else {
        db.display().to_string()
    }
}

/// Connects, naming the server (without its password) when that fails.
pub fn connect(url: &str) -> Result<Client> {
    Client::connect(url, NoTls).map_err(|e| {
        Error::Invalid(format!(
            "{}: cannot connect to PostgreSQL ({}); check the URL, that the server runs, and docs/postgres.md",
            redact(url),
            crate::error::postgres_detail(&e)
        ))
    })
}

/// A PostgreSQL connection that comes back by itself after the server went away (a restart, a
/// network cut): a query on a closed connection fails, and the next use after that reconnects,
/// with a growing pause between tries while the server stays away. Nothing is retried behind
/// the caller's back, so a write either reports success or an error, never a false success.
pub struct Link {
    url: String,
    client: Client,
    /// When the last reconnect failed, and the pause before the next try.
    backoff: Option<(std::time::Instant, std::time::Duration)>,
}

impl Link {
    /// The longest pause between two reconnect tries.
    const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

    /// Opens the lookbook catalogue at `url`, as [`open`] does.
    pub fn open(url: &str, create: bool) -> Result<Self> {
        Ok(Link {
            url: url.to_string(),
            client: open(url, create)?,
            backoff: None,
        })
    }

    /// The client, reconnected first when the connection was found closed and the pause since
    /// the last failed try is over.
    pub fn client(&mut self) -> &mut Client {
        let due = self.backoff.is_none_or(|(at, pause)| at.elapsed() >= pause);
        if self.client.is_closed() && due {
            match connect(&self.url) {
                Ok(c) => {
                    self.client = c;
                    self.backoff = None;
                }
                Err(_) => {
                    let pause = self.backoff.map_or(std::time::Duration::from_millis(250), |(_, p)| {
                        (p * 2).min(Self::MAX_PAUSE)
                    });
                    self.backoff = Some((std::time::Instant::now(), pause));
                }
            }
        }
        &mut self.client
    }
}

/// Version 1 of the schema, mirroring `schema.rs`'s SQLite tables.
const SCHEMA: &str = r#"
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE lookbook_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE categories (
    id        BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    parent_id BIGINT REFERENCES categories(id),
    name      TEXT NOT NULL,
    level     BIGINT NOT NULL
);
CREATE UNIQUE INDEX categories_by_parent ON categories(COALESCE(parent_id, 0), name);
CREATE TABLE products (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL,
    category_id BIGINT NOT NULL REFERENCES categories(id),
    gender      TEXT NOT NULL,
    colour      TEXT NOT NULL,
    season      TEXT NOT NULL,
    year        BIGINT,
    usage       TEXT NOT NULL,
    image_path  TEXT NOT NULL,
    image_hash  TEXT NOT NULL,
    added_at    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX products_by_category ON products(category_id);
CREATE TABLE users (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE feedback (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    weight     DOUBLE PRECISION NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE TABLE models (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    architecture   TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    preprocessing  TEXT NOT NULL,
    pooling        TEXT NOT NULL,
    dim            BIGINT NOT NULL,
    head_id        BIGINT,
    created_at     BIGINT NOT NULL
);
CREATE TABLE heads (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    backbone_model_id BIGINT NOT NULL REFERENCES models(id),
    in_dim            BIGINT NOT NULL,
    out_dim           BIGINT NOT NULL,
    weight            BYTEA NOT NULL,
    bias              BYTEA NOT NULL,
    sha256            TEXT NOT NULL,
    params            TEXT NOT NULL,
    metrics           TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
ALTER TABLE models ADD FOREIGN KEY (head_id) REFERENCES heads(id);
CREATE TABLE embeddings (
    model_id   BIGINT NOT NULL REFERENCES models(id),
    product_id BIGINT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    image_hash TEXT NOT NULL,
    vector     vector NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (model_id, product_id)
);
"#;

/// The tables of the schema, in an order that respects foreign keys when filling them
/// (`models.head_id` is set after `heads`).
pub const TABLES: [&str; 8] = [
    "settings",
    "categories",
    "products",
    "users",
    "models",
    "heads",
    "feedback",
    "embeddings",
];

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
/// nothing behind).
pub fn create_schema(tx: &mut postgres::Transaction<'_>) -> Result<()> {
    tx.batch_execute(SCHEMA)?;
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

/// How [`search`] finds its rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// Every row in f32: the reference.
    Exact,
    /// The model's HNSW index, keeping this many candidates (at least `k`).
    Hnsw {
        /// pgvector's `hnsw.ef_search`.
        ef_search: usize,
    },
}

/// What to search for in one model's vectors.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    /// The model.
    pub model_id: i64,
    /// Its vectors' dimension.
    pub dim: i64,
    /// How many results.
    pub k: usize,
    /// Products to leave out (the user's feedback, the query item).
    pub exclude: &'a [i64],
    /// Only products passing this (category at any level, gender, colour; case-insensitive).
    pub filter: Option<&'a crate::catalog::ProductFilter>,
    /// Exact or HNSW.
    pub method: Method,
}

/// The `k` products nearest `query` by cosine, as (id, cosine), best first. With HNSW and a
/// filter, pgvector's iterative scan keeps reading the graph until `k` rows pass it.
pub fn search(client: &mut Client, query: &[f32], s: &Search<'_>) -> Result<Vec<(i64, f32)>> {
    let (model_id, dim, exclude) = (s.model_id, s.dim, s.exclude);
    let q = pgvector::Vector::from(query.to_vec());
    let k = s.k as i64;
    let f = s.filter.cloned().unwrap_or_default();
    let (category, gender, colour) = (f.category, f.gender, f.colour);
    let exact = s.method == Method::Exact || dim > 4000;
    // The model id is a literal so the planner can match the model's partial HNSW index.
    let order = if exact {
        "e.vector <=> $1, e.product_id".to_string()
    } else {
        let cast = if dim <= 2000 { "vector" } else { "halfvec" };
        format!(
            "{} <=> $1::{cast}({dim})",
            index_expr(dim).replace("vector::", "e.vector::")
        )
    };
    // Without a filter, the embeddings table alone: joined to products, the planner stops
    // using the HNSW index (50 ms instead of 1.3 ms at 5,038 x 2048). A stale vector (a photo
    // changed since) can then come back; `PgIndex` drops ids the engine has no fresh vector for.
    let plain = format!(
        "SELECT e.product_id, 1 - (e.vector <=> $1) FROM embeddings e
         WHERE e.model_id = {model_id} AND e.product_id <> ALL($2)
           AND $3::text IS NULL AND $4::text IS NULL AND $5::text IS NULL
         ORDER BY {order} LIMIT $6"
    );
    let filtered = format!(
        "SELECT e.product_id, 1 - (e.vector <=> $1) FROM embeddings e
         JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
         JOIN categories a ON a.id = p.category_id
         JOIN categories sc ON sc.id = a.parent_id
         JOIN categories m ON m.id = sc.parent_id
         WHERE e.model_id = {model_id} AND e.product_id <> ALL($2)
           AND ($3::text IS NULL OR lower($3::text) IN (lower(m.name), lower(sc.name), lower(a.name)))
           AND ($4::text IS NULL OR lower(p.gender) = lower($4::text))
           AND ($5::text IS NULL OR lower(p.colour) = lower($5::text))
         ORDER BY {order} LIMIT $6"
    );
    let mut tx = client.transaction()?;
    if !exact {
        let ef = match s.method {
            Method::Hnsw { ef_search } => ef_search.max(s.k),
            Method::Exact => s.k,
        };
        tx.batch_execute(&format!(
            "SET LOCAL hnsw.ef_search = {ef}; SET LOCAL hnsw.iterative_scan = relaxed_order"
        ))?;
    }
    let sql = if s.filter.is_some_and(|f| !f.is_empty()) {
        filtered
    } else {
        plain
    };
    let rows = tx.query(&sql, &[&q, &exclude, &category, &gender, &colour, &k])?;
    tx.commit()?;
    let mut out: Vec<(i64, f32)> = rows
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, f64>(1) as f32))
        .collect();
    // A relaxed iterative scan may return rows slightly out of order.
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths_and_passwords_hidden() {
        assert!(is_url("postgres://u@h/db"));
        assert!(is_url("postgresql:///db?host=/tmp"));
        assert!(!is_url("catalog.db"));
        assert!(!is_url("./postgres://x"));
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgres://lookbook:s3cretPW%21@127.0.0.1:5432/shop"),
            "postgres://lookbook:***@127.0.0.1:5432/shop"
        );
        assert_eq!(redact("postgres://u:p@ss:w@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact("postgresql:///db?host=/tmp&password=s3cret&sslmode=disable"),
            "postgresql:///db?host=/tmp&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://h/db?PASSWORD=x"), "postgres://h/db?PASSWORD=***");
        assert_eq!(
            redact("postgres://u:pw@h?password=x"),
            "postgres://u:***@h?password=***"
        );
        let url = "postgres://lookbook:s3cretPW%21@h/db?password=other";
        assert_eq!(
            scrub(&format!("{url}: failed; s3cretPW! and other leaked"), url),
            "postgres://lookbook:***@h/db?password=***: failed; *** and *** leaked"
        );
        assert_eq!(scrub("catalog.db: fine", "catalog.db"), "catalog.db: fine");
    }
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
        State::Catalogue(v) => Err(Error::Invalid(format!(
            "{here}: catalogue schema version {v}; copy it out and in again with `lookbook migrate`"
        ))),
        State::Empty => Err(Error::Invalid(format!(
            "{here}: holds no lookbook catalogue yet; `lookbook --db URL import ...` makes one, or copy one in with `lookbook --db catalog.db migrate --to URL`"
        ))),
        State::Foreign(t) => Err(Error::Invalid(format!(
            "{here}: holds another program's tables ({}), not a lookbook catalogue",
            crate::text::sanitize(&t.join(", "))
        ))),
    }
}

/// The catalogue's queries in PostgreSQL's dialect, one per `Catalog` method that has one.
pub(crate) mod sql {
    use postgres::{Client, Row};

    use crate::Result;
    use crate::catalog::{EmbeddingMatrix, Feedback, ModelRecord, ModelSpec, Product, User};

    use crate::catalog::products::SELECT as SELECT_PRODUCT;

    fn product(r: &Row) -> Product {
        Product {
            id: r.get(0),
            name: r.get(1),
            master_category: r.get(2),
            sub_category: r.get(3),
            article_type: r.get(4),
            gender: r.get(5),
            colour: r.get(6),
            season: r.get(7),
            year: r.get::<_, Option<i64>>(8).map(|y| y as i32),
            usage: r.get(9),
            image_path: r.get(10),
            image_hash: r.get(11),
        }
    }

    pub fn products(c: &mut Client) -> Result<Vec<Product>> {
        Ok(c.query(&format!("{SELECT_PRODUCT} ORDER BY p.id"), &[])?
            .iter()
            .map(product)
            .collect())
    }

    pub fn product_by_id(c: &mut Client, id: i64) -> Result<Option<Product>> {
        Ok(c.query_opt(&format!("{SELECT_PRODUCT} WHERE p.id = $1"), &[&id])?
            .as_ref()
            .map(product))
    }

    pub fn count(c: &mut Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<i64> {
        Ok(c.query_one(sql, params)?.get(0))
    }

    pub fn categories(c: &mut Client) -> Result<Vec<(String, i64, usize)>> {
        Ok(c.query(crate::catalog::products::CATEGORIES, &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2) as usize))
            .collect())
    }

    pub fn users(c: &mut Client) -> Result<Vec<User>> {
        Ok(c.query(
            "SELECT u.id, u.name,
                (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight > 0),
                (SELECT COUNT(*) FROM feedback f WHERE f.user_id = u.id AND f.weight < 0)
             FROM users u ORDER BY u.name",
            &[],
        )?
        .iter()
        .map(|r| User {
            id: r.get(0),
            name: r.get(1),
            likes: r.get::<_, i64>(2) as usize,
            dislikes: r.get::<_, i64>(3) as usize,
        })
        .collect())
    }

    /// Inserts a user unless the name exists; the new id, or None.
    pub fn insert_user(c: &mut Client, name: &str, now: i64) -> Result<Option<i64>> {
        Ok(c.query_opt(
            "INSERT INTO users(name, created_at) VALUES ($1, $2) ON CONFLICT(name) DO NOTHING RETURNING id",
            &[&name, &now],
        )?
        .map(|r| r.get(0)))
    }

    pub fn user_id(c: &mut Client, name: &str) -> Result<Option<i64>> {
        Ok(c.query_opt("SELECT id FROM users WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    }

    pub fn remove_user(c: &mut Client, id: i64) -> Result<usize> {
        let mut tx = c.transaction()?;
        let n = tx.execute("DELETE FROM feedback WHERE user_id = $1", &[&id])?;
        tx.execute("DELETE FROM users WHERE id = $1", &[&id])?;
        tx.commit()?;
        Ok(n as usize)
    }

    /// Likes or dislikes; an unknown product is an error naming it, and nothing is written.
    pub fn set_feedback(c: &mut Client, user: i64, products: &[i64], weight: f32, now: i64) -> Result<()> {
        let mut tx = c.transaction()?;
        for &pid in products {
            if tx.query_opt("SELECT 1 FROM products WHERE id = $1", &[&pid])?.is_none() {
                return Err(crate::Error::NotFound(format!("product {pid} is not in the catalogue")));
            }
            tx.execute(
                "INSERT INTO feedback(user_id, product_id, weight, at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT(user_id, product_id) DO UPDATE SET weight = excluded.weight, at = excluded.at",
                &[&user, &pid, &f64::from(weight), &now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn clear_feedback(c: &mut Client, user: i64, products: &[i64]) -> Result<usize> {
        Ok(c.execute(
            "DELETE FROM feedback WHERE user_id = $1 AND product_id = ANY($2)",
            &[&user, &products],
        )? as usize)
    }

    pub fn feedback(c: &mut Client, user: i64) -> Result<Vec<Feedback>> {
        Ok(c.query(
            "SELECT product_id, weight, at FROM feedback WHERE user_id = $1 ORDER BY at DESC, product_id",
            &[&user],
        )?
        .iter()
        .map(|r| Feedback {
            product_id: r.get(0),
            weight: r.get::<_, f64>(1) as f32,
            at: r.get(2),
        })
        .collect())
    }

    pub fn like_counts(c: &mut Client) -> Result<Vec<(i64, usize)>> {
        Ok(c.query(
            "SELECT product_id, COUNT(*) FROM feedback WHERE weight > 0 GROUP BY product_id",
            &[],
        )?
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as usize))
        .collect())
    }

    pub fn model(c: &mut Client, id: i64) -> Result<Option<ModelRecord>> {
        Ok(c.query_opt(
            "SELECT id, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id FROM models WHERE id = $1",
            &[&id],
        )?
        .map(|r| ModelRecord {
            id: r.get(0),
            spec: ModelSpec {
                name: r.get(1),
                architecture: r.get(2),
                weights_sha256: r.get(3),
                preprocessing: r.get(4),
                pooling: r.get(5),
                dim: r.get::<_, i64>(6) as usize,
                head_id: r.get(7),
            },
        }))
    }

    /// (products, last product change, vectors) for the change signature.
    pub fn signature(c: &mut Client) -> Result<(i64, i64, i64)> {
        let r = c.query_one(
            "SELECT (SELECT COUNT(*) FROM products), (SELECT COALESCE(MAX(updated_at), 0) FROM products),
                    (SELECT COUNT(*) FROM embeddings)",
            &[],
        )?;
        Ok((r.get(0), r.get(1), r.get(2)))
    }

    pub fn fresh_ids(c: &mut Client, model_id: i64) -> Result<Vec<i64>> {
        Ok(c.query(
            "SELECT e.product_id FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
             WHERE e.model_id = $1",
            &[&model_id],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
    }

    pub fn embedding(c: &mut Client, model_id: i64, product_id: i64) -> Result<Option<Vec<f32>>> {
        Ok(c.query_opt(
            "SELECT e.vector FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
             WHERE e.model_id = $1 AND e.product_id = $2",
            &[&model_id, &product_id],
        )?
        .map(|r| r.get::<_, pgvector::Vector>(0).to_vec()))
    }

    /// Every fresh vector of a model, streamed into one matrix.
    pub fn load_embeddings(c: &mut Client, m: &mut EmbeddingMatrix, model_name: &str) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let stmt = c.prepare(
            "SELECT e.product_id, e.vector FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
             WHERE e.model_id = $1 ORDER BY e.product_id",
        )?;
        let mut rows = c.query_raw(&stmt, [m.model_id])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0);
            let v: pgvector::Vector = r.get(1);
            if v.as_slice().len() != m.dim {
                return Err(crate::Error::Invalid(format!(
                    "vector of product {id} has {} values, model {model_name} expects {}",
                    v.as_slice().len(),
                    m.dim
                )));
            }
            m.data.extend_from_slice(v.as_slice());
            m.ids.push(id);
        }
        Ok(())
    }

    /// Finds or registers a model by its key; its id.
    pub fn register_model(c: &mut Client, spec: &ModelSpec, now: i64) -> Result<i64> {
        let key = spec.key();
        c.execute(
            "INSERT INTO models(key, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT(key) DO NOTHING",
            &[
                &key,
                &spec.name,
                &spec.architecture,
                &spec.weights_sha256,
                &spec.preprocessing,
                &spec.pooling,
                &(spec.dim as i64),
                &spec.head_id,
                &now,
            ],
        )?;
        let id: i64 = c.query_one("SELECT id FROM models WHERE key = $1", &[&key])?.get(0);
        // Vectors embedded straight into PostgreSQL get the same HNSW index a migrated model has.
        super::index_model(c, id, spec.dim as i64)?;
        Ok(id)
    }

    /// One batch's work: the products given, their (id, image hash, vector) back.
    pub type Rows = Vec<(i64, String, Vec<f32>)>;

    /// Embeds every product without a fresh vector of `model_id`, `batch` at a time, side by
    /// side with any other process doing the same. Each batch is claimed with `FOR UPDATE SKIP
    /// LOCKED` inside a transaction that lives until its vectors are committed: another worker
    /// skips those rows, and a worker that dies (even by SIGKILL) loses only its transaction, so
    /// its rows are free again at once. `work` returns the vectors it could make; products it
    /// could not are not claimed again by this worker. Returns (vectors committed, batches).
    pub fn embed_claims(
        c: &mut Client,
        model_id: i64,
        batch: usize,
        mut work: impl FnMut(Vec<Product>) -> Result<Rows>,
        mut committed: impl FnMut(usize),
    ) -> Result<usize> {
        let mut given_up: Vec<i64> = Vec::new();
        let mut total = 0;
        loop {
            let mut tx = c.transaction()?;
            let claimed: Vec<Product> = tx
                .query(
                    &format!(
                        "{SELECT_PRODUCT}
                         WHERE NOT EXISTS (SELECT 1 FROM embeddings e
                                            WHERE e.model_id = $1 AND e.product_id = p.id AND e.image_hash = p.image_hash)
                           AND p.id <> ALL($2)
                         ORDER BY p.id LIMIT $3 FOR UPDATE OF p SKIP LOCKED"
                    ),
                    &[&model_id, &given_up, &(batch as i64)],
                )?
                .iter()
                .map(product)
                .collect();
            if claimed.is_empty() {
                tx.commit()?;
                return Ok(total);
            }
            // The rows are ours now; a vector committed by another worker between that query's
            // snapshot and our lock would show here (each statement sees what is committed).
            let ids: Vec<i64> = claimed.iter().map(|p| p.id).collect();
            let done: Vec<i64> = tx
                .query(
                    "SELECT e.product_id FROM embeddings e JOIN products p ON p.id = e.product_id
                     WHERE e.model_id = $1 AND e.product_id = ANY($2) AND e.image_hash = p.image_hash",
                    &[&model_id, &ids],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let todo: Vec<Product> = claimed.into_iter().filter(|p| !done.contains(&p.id)).collect();
            let asked: Vec<i64> = todo.iter().map(|p| p.id).collect();
            let rows = work(todo)?;
            given_up.extend(asked.iter().filter(|id| !rows.iter().any(|r| r.0 == **id)));
            let now = crate::now_ms();
            let st = tx.prepare(
                "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT(model_id, product_id) DO UPDATE
                 SET image_hash = excluded.image_hash, vector = excluded.vector, created_at = excluded.created_at",
            )?;
            for (id, hash, v) in &rows {
                tx.execute(&st, &[&model_id, id, hash, &pgvector::Vector::from(v.clone()), &now])?;
            }
            tx.commit()?;
            total += rows.len();
            committed(rows.len());
        }
    }

    /// Finds or creates the category path inside an import; the leaf's id.
    fn category_id(tx: &mut postgres::Transaction<'_>, path: &[String; 3]) -> Result<i64> {
        let mut parent: Option<i64> = None;
        for (level, name) in path.iter().enumerate() {
            let found: Option<i64> = tx
                .query_opt(
                    "SELECT id FROM categories WHERE COALESCE(parent_id, 0) = COALESCE($1::BIGINT, 0) AND name = $2",
                    &[&parent, name],
                )?
                .map(|r| r.get(0));
            parent = Some(match found {
                Some(id) => id,
                None => tx
                    .query_one(
                        "INSERT INTO categories(parent_id, name, level) VALUES ($1, $2, $3) RETURNING id",
                        &[&parent, name, &(level as i64)],
                    )?
                    .get(0),
            });
        }
        Ok(parent.unwrap_or_default())
    }

    /// Inserts or updates one product inside an import, as the SQLite importer does.
    pub fn upsert(
        tx: &mut postgres::Transaction<'_>,
        p: &crate::catalog::ProductUpsert,
        now: i64,
    ) -> Result<crate::catalog::Upserted> {
        use crate::catalog::Upserted;
        let cat = category_id(tx, &p.category)?;
        let year = p.year.map(i64::from);
        let existing = tx.query_opt(
            "SELECT name, category_id, gender, colour, season, year, usage, image_path, image_hash FROM products WHERE id = $1",
            &[&p.id],
        )?;
        let same = existing.as_ref().is_some_and(|r| {
            r.get::<_, String>(0) == p.name
                && r.get::<_, i64>(1) == cat
                && r.get::<_, String>(2) == p.gender
                && r.get::<_, String>(3) == p.colour
                && r.get::<_, String>(4) == p.season
                && r.get::<_, Option<i64>>(5) == year
                && r.get::<_, String>(6) == p.usage
                && r.get::<_, String>(7) == p.image_path
                && r.get::<_, String>(8) == p.image_hash
        });
        if same {
            return Ok(Upserted::Unchanged);
        }
        let params: [&(dyn postgres::types::ToSql + Sync); 11] = [
            &p.id,
            &p.name,
            &cat,
            &p.gender,
            &p.colour,
            &p.season,
            &year,
            &p.usage,
            &p.image_path,
            &p.image_hash,
            &now,
        ];
        if existing.is_some() {
            tx.execute(
                "UPDATE products SET name=$2, category_id=$3, gender=$4, colour=$5, season=$6, year=$7, usage=$8,
                    image_path=$9, image_hash=$10, updated_at=$11 WHERE id=$1",
                &params,
            )?;
            Ok(Upserted::Updated)
        } else {
            tx.execute(
                "INSERT INTO products(id, name, category_id, gender, colour, season, year, usage, image_path, image_hash,
                    added_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                &params,
            )?;
            Ok(Upserted::Inserted)
        }
    }

    /// Stores vectors in one transaction, replacing a product's older vector of the model.
    pub fn put_embeddings(c: &mut Client, model_id: i64, rows: &[(i64, String, Vec<f32>)], now: i64) -> Result<()> {
        let mut tx = c.transaction()?;
        let st = tx.prepare(
            "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT(model_id, product_id) DO UPDATE
             SET image_hash = excluded.image_hash, vector = excluded.vector, created_at = excluded.created_at",
        )?;
        for (pid, hash, v) in rows {
            tx.execute(&st, &[&model_id, pid, hash, &pgvector::Vector::from(v.clone()), &now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a trained head; its id.
    pub fn store_head(c: &mut Client, row: &HeadRow, now: i64) -> Result<i64> {
        Ok(c.query_one(
            "INSERT INTO heads(backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[&row.1, &row.2, &row.3, &row.4, &row.5, &row.6, &row.7, &row.8, &now],
        )?
        .get(0))
    }

    /// A stored head's row: (id, backbone, in, out, weight, bias, sha256, params, metrics).
    pub type HeadRow = (i64, i64, i64, i64, Vec<u8>, Vec<u8>, String, String, String);

    pub fn head(c: &mut Client, id: i64) -> Result<Option<HeadRow>> {
        Ok(c.query_opt(
            "SELECT id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics FROM heads WHERE id = $1",
            &[&id],
        )?
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
            )
        }))
    }
}
