//! Every table and column of the catalogue, listed once. The SQLite and PostgreSQL schemas, the
//! forward migrations of both and `lookbook migrate`'s copy are all made from this list, so a
//! new column is one entry here (with the version it arrives in) plus that version's step in
//! [`MIGRATIONS`].

/// Which store a statement runs on (each column's type is written per store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (bundled).
    Sqlite,
    /// PostgreSQL with pgvector.
    Postgres,
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The table's own integer id, given by the store when not set.
    Id,
    /// An integer.
    Int,
    /// A float.
    Real,
    /// Text.
    Text,
    /// Bytes.
    Blob,
    /// An embedding: f32 BLOB in SQLite, pgvector `vector` in PostgreSQL.
    Vector,
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Its name.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// False for a column that may be NULL.
    pub required: bool,
    /// `table(column)` it refers to, if any.
    pub references: Option<&'static str>,
    /// Rows go when the row they refer to goes.
    pub cascade: bool,
    /// No two rows share a value.
    pub unique: bool,
    /// Text a new row gets when it does not say (and rows that existed before the column).
    pub default: Option<&'static str>,
    /// The schema version the column arrived in (1 for the first schema).
    pub since: i64,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        required: true,
        references: None,
        cascade: false,
        unique: false,
        default: None,
        since: 1,
    }
}

const fn nullable(c: Column) -> Column {
    Column { required: false, ..c }
}

const fn refers(c: Column, to: &'static str, cascade: bool) -> Column {
    Column {
        references: Some(to),
        cascade,
        ..c
    }
}

const fn since(version: i64, c: Column) -> Column {
    Column { since: version, ..c }
}

const fn defaults(c: Column, value: &'static str) -> Column {
    Column {
        default: Some(value),
        ..c
    }
}

/// A text column that is empty unless set (rows from before it read as empty).
const fn text_default(c: Column) -> Column {
    defaults(c, "''")
}

const fn unique(c: Column) -> Column {
    Column { unique: true, ..c }
}

/// One table.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    /// Its name.
    pub name: &'static str,
    /// Its columns, in order.
    pub columns: &'static [Column],
    /// The primary key when it is not an [`Kind::Id`] column.
    pub key: &'static [&'static str],
    /// The order `migrate` copies rows in (parents before children).
    pub copy_order: &'static str,
    /// Indexes: (name, unique, expression list, the version it arrived in).
    pub indexes: &'static [(&'static str, bool, &'static str, i64)],
    /// The schema version the table arrived in.
    pub since: i64,
}

impl Table {
    /// The column names, comma-separated, for SELECT and INSERT lists.
    pub fn column_list(&self) -> String {
        self.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
    }

    /// `INSERT INTO t(every column) VALUES (?1, ...)`.
    pub fn insert_all(&self) -> String {
        let marks: Vec<String> = (1..=self.columns.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {}({}) VALUES ({})",
            self.name,
            self.column_list(),
            marks.join(", ")
        )
    }
}

/// The catalogue's tables, in an order that respects foreign keys when creating and filling
/// them (`models.head_id`, which points forward to `heads`, is filled in after).
pub const TABLES: &[Table] = &[
    Table {
        name: "settings",
        columns: &[col("key", Kind::Text), col("value", Kind::Text)],
        key: &["key"],
        copy_order: "key",
        indexes: &[],
        since: 1,
    },
    Table {
        name: "categories",
        columns: &[
            col("id", Kind::Id),
            nullable(refers(col("parent_id", Kind::Int), "categories(id)", false)),
            col("name", Kind::Text),
            col("level", Kind::Int),
        ],
        key: &[],
        copy_order: "level, id",
        indexes: &[("categories_by_parent", true, "COALESCE(parent_id, 0), name", 1)],
        since: 1,
    },
    Table {
        name: "products",
        columns: &[
            col("id", Kind::Id),
            col("name", Kind::Text),
            refers(col("category_id", Kind::Int), "categories(id)", false),
            col("gender", Kind::Text),
            col("colour", Kind::Text),
            col("season", Kind::Text),
            nullable(col("year", Kind::Int)),
            col("usage", Kind::Text),
            col("image_path", Kind::Text),
            col("image_hash", Kind::Text),
            col("added_at", Kind::Int),
            col("updated_at", Kind::Int),
            // Shop catalogues (issue 20): the shop's own id and grouping, what a shop sells by.
            since(2, nullable(col("shop_id", Kind::Text))),
            since(2, nullable(col("group_key", Kind::Text))),
            since(2, text_default(col("brand", Kind::Text))),
            since(2, text_default(col("description", Kind::Text))),
            since(2, text_default(col("link", Kind::Text))),
            since(2, text_default(col("image_url", Kind::Text))),
            since(2, nullable(col("price", Kind::Real))),
            since(2, nullable(col("compare_at", Kind::Real))),
            since(2, text_default(col("currency", Kind::Text))),
            since(2, defaults(col("availability", Kind::Text), "'unknown'")),
            since(2, defaults(col("listed", Kind::Int), "1")),
            since(2, text_default(col("gender_raw", Kind::Text))),
        ],
        key: &[],
        copy_order: "id",
        indexes: &[
            ("products_by_category", false, "category_id", 1),
            ("products_by_shop_id", true, "shop_id", 2),
            ("products_by_group", false, "group_key", 2),
        ],
        since: 1,
    },
    Table {
        name: "users",
        columns: &[
            col("id", Kind::Id),
            unique(col("name", Kind::Text)),
            col("created_at", Kind::Int),
            // A shop's customers (issue 35): what best sellers per segment go by.
            since(3, nullable(col("age", Kind::Int))),
            since(3, text_default(col("gender", Kind::Text))),
        ],
        key: &[],
        copy_order: "id",
        indexes: &[],
        since: 1,
    },
    Table {
        name: "models",
        columns: &[
            col("id", Kind::Id),
            unique(col("key", Kind::Text)),
            col("name", Kind::Text),
            col("architecture", Kind::Text),
            col("weights_sha256", Kind::Text),
            col("preprocessing", Kind::Text),
            col("pooling", Kind::Text),
            col("dim", Kind::Int),
            nullable(refers(col("head_id", Kind::Int), "heads(id)", false)),
            col("created_at", Kind::Int),
        ],
        key: &[],
        copy_order: "id",
        indexes: &[],
        since: 1,
    },
    Table {
        name: "heads",
        columns: &[
            col("id", Kind::Id),
            refers(col("backbone_model_id", Kind::Int), "models(id)", false),
            col("in_dim", Kind::Int),
            col("out_dim", Kind::Int),
            col("weight", Kind::Blob),
            col("bias", Kind::Blob),
            col("sha256", Kind::Text),
            col("params", Kind::Text),
            col("metrics", Kind::Text),
            col("created_at", Kind::Int),
        ],
        key: &[],
        copy_order: "id",
        indexes: &[],
        since: 1,
    },
    Table {
        name: "variants",
        columns: &[
            since(2, refers(col("product_id", Kind::Int), "products(id)", true)),
            since(2, col("sku", Kind::Text)),
            since(2, text_default(col("size", Kind::Text))),
            since(2, nullable(col("price", Kind::Real))),
            since(2, nullable(col("stock", Kind::Int))),
            since(2, defaults(col("availability", Kind::Text), "'unknown'")),
        ],
        key: &["product_id", "sku"],
        copy_order: "product_id, sku",
        indexes: &[("variants_by_sku", false, "sku", 2)],
        since: 2,
    },
    Table {
        name: "feedback",
        columns: &[
            refers(col("user_id", Kind::Int), "users(id)", true),
            refers(col("product_id", Kind::Int), "products(id)", true),
            col("weight", Kind::Real),
            col("at", Kind::Int),
        ],
        key: &["user_id", "product_id"],
        copy_order: "user_id, product_id",
        indexes: &[],
        since: 1,
    },
    // What shoppers did (issue 35): purchases, views, carts, one row per row of a history file
    // (`seq` tells apart identical rows, a product bought twice the same day), so importing the
    // same file twice adds nothing. Likes and dislikes stay in `feedback`.
    Table {
        name: "events",
        columns: &[
            since(3, refers(col("user_id", Kind::Int), "users(id)", true)),
            since(3, refers(col("product_id", Kind::Int), "products(id)", true)),
            since(3, col("kind", Kind::Text)),
            since(3, col("at", Kind::Int)),
            since(3, col("seq", Kind::Int)),
            since(3, defaults(col("count", Kind::Int), "1")),
            since(3, nullable(col("price", Kind::Real))),
        ],
        key: &["user_id", "product_id", "kind", "at", "seq"],
        copy_order: "user_id, product_id, kind, at, seq",
        indexes: &[("events_by_time", false, "at", 3)],
        since: 3,
    },
    // The trained blend of the feed's sources (`train --feed`): its weights, what it was trained
    // on and how it scored, like a vision head.
    Table {
        name: "feed_models",
        columns: &[
            since(3, col("id", Kind::Id)),
            since(3, col("params", Kind::Text)),
            since(3, col("metrics", Kind::Text)),
            // The item side of the model (co-purchases, best sellers, factors), see
            // `recommend::shop::model`'s format.
            since(3, col("data", Kind::Blob)),
            // The newest event it learned from.
            since(3, col("trained_through", Kind::Int)),
            since(3, col("created_at", Kind::Int)),
        ],
        key: &[],
        copy_order: "id",
        indexes: &[],
        since: 3,
    },
    // Each stored feed model's bought-together lists, one row per product, so a one-shot
    // `recommend` reads only its shopper's products' lists.
    Table {
        name: "feed_neighbours",
        columns: &[
            since(3, refers(col("model_id", Kind::Int), "feed_models(id)", true)),
            since(3, refers(col("product_id", Kind::Int), "products(id)", true)),
            since(3, col("data", Kind::Blob)),
        ],
        key: &["model_id", "product_id"],
        copy_order: "model_id, product_id",
        indexes: &[],
        since: 3,
    },
    Table {
        name: "embeddings",
        columns: &[
            refers(col("model_id", Kind::Int), "models(id)", false),
            refers(col("product_id", Kind::Int), "products(id)", true),
            col("image_hash", Kind::Text),
            col("vector", Kind::Vector),
            col("created_at", Kind::Int),
        ],
        key: &["model_id", "product_id"],
        copy_order: "model_id, product_id",
        indexes: &[],
        since: 1,
    },
];

/// A table by name.
pub fn table(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// One forward step of the schema, the same for both stores.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Adds every table, column and index of [`TABLES`] whose `since` is this step's version.
    AddColumns,
    /// Statements in the dialect both stores share.
    Sql(&'static str),
}

/// The steps from each version to the next: `MIGRATIONS[i]` brings version `i + 1` to `i + 2`.
/// Version 1 is the first schema; a new store gets the newest schema at once.
pub const MIGRATIONS: &[&[Step]] = &[
    // 1 -> 2: shop catalogues (issue 20): shop ids, groups, prices, availability, links and
    // the variants table.
    &[Step::AddColumns],
    // 2 -> 3: a shop's history (issue 35): events, shoppers' age and gender, the feed's blend.
    &[Step::AddColumns],
];

/// The schema version this lookbook writes, in both stores.
pub const SCHEMA_VERSION: i64 = 1 + MIGRATIONS.len() as i64;

fn sql_type(kind: Kind, d: Dialect) -> &'static str {
    match (kind, d) {
        (Kind::Id, Dialect::Sqlite) => "INTEGER PRIMARY KEY",
        (Kind::Id, Dialect::Postgres) => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        (Kind::Int, Dialect::Sqlite) => "INTEGER",
        (Kind::Int, Dialect::Postgres) => "BIGINT",
        (Kind::Real, Dialect::Sqlite) => "REAL",
        (Kind::Real, Dialect::Postgres) => "DOUBLE PRECISION",
        (Kind::Text, _) => "TEXT",
        (Kind::Blob | Kind::Vector, Dialect::Sqlite) => "BLOB",
        (Kind::Blob, Dialect::Postgres) => "BYTEA",
        (Kind::Vector, Dialect::Postgres) => "vector",
    }
}

/// A column's definition; `inline_fk` false leaves its reference out (added after the table it
/// points to exists).
fn column_sql(c: &Column, d: Dialect, inline_fk: bool) -> String {
    let mut s = format!("{} {}", c.name, sql_type(c.kind, d));
    if c.required && c.kind != Kind::Id {
        s.push_str(" NOT NULL");
    }
    if let Some(v) = c.default {
        s.push_str(&format!(" DEFAULT {v}"));
    }
    if c.unique {
        s.push_str(" UNIQUE");
    }
    if let (Some(to), true) = (c.references, inline_fk) {
        s.push_str(&format!(" REFERENCES {to}"));
        if c.cascade {
            s.push_str(" ON DELETE CASCADE");
        }
    }
    s
}

/// One table's `CREATE TABLE` and indexes; `inline_all` puts every reference inline (else the
/// references to tables made later come back, as `ALTER TABLE` statements, for the end).
fn create_table(t: &Table, d: Dialect, inline_all: bool) -> (String, Vec<String>) {
    let i = TABLES.iter().position(|u| u.name == t.name).unwrap_or(0);
    let mut defs = Vec::new();
    let mut later = Vec::new();
    for c in t.columns {
        // PostgreSQL checks a reference when it is declared; SQLite when it is used.
        let forward = c.references.is_some_and(|to| {
            let target = to.split('(').next().unwrap_or(to);
            TABLES.iter().position(|u| u.name == target).is_some_and(|j| j > i)
        });
        let inline = inline_all || d == Dialect::Sqlite || !forward;
        defs.push(format!("    {}", column_sql(c, d, inline)));
        if !inline && let Some(to) = c.references {
            later.push(format!(
                "ALTER TABLE {} ADD FOREIGN KEY ({}) REFERENCES {to};\n",
                t.name, c.name
            ));
        }
    }
    if !t.key.is_empty() {
        defs.push(format!("    PRIMARY KEY ({})", t.key.join(", ")));
    }
    let rowid = if d == Dialect::Sqlite && !t.key.is_empty() {
        " WITHOUT ROWID"
    } else {
        ""
    };
    let mut out = format!("CREATE TABLE {} (\n{}\n){rowid};\n", t.name, defs.join(",\n"));
    for ix in t.indexes {
        out.push_str(&index_sql(t, ix));
    }
    (out, later)
}

fn index_sql(t: &Table, (name, uniq, expr, _): &(&str, bool, &str, i64)) -> String {
    let u = if *uniq { "UNIQUE " } else { "" };
    format!("CREATE {u}INDEX {name} ON {}({expr});\n", t.name)
}

/// The whole newest schema in `d`'s dialect: tables, indexes, and (PostgreSQL) the references
/// that point forward, added at the end.
pub fn create_all(d: Dialect) -> String {
    let mut out = String::new();
    let mut later = Vec::new();
    for t in TABLES {
        let (sql, refs) = create_table(t, d, false);
        out.push_str(&sql);
        later.extend(refs);
    }
    for l in later {
        out.push_str(&l);
    }
    out
}

/// The statements that bring a store from version `from` to `from + 1`.
pub fn step_sql(from: i64, d: Dialect) -> String {
    let to = from + 1;
    let Some(steps) = usize::try_from(from - 1).ok().and_then(|i| MIGRATIONS.get(i)) else {
        return String::new();
    };
    let mut out = String::new();
    for step in *steps {
        match step {
            Step::AddColumns => {
                for t in TABLES {
                    if t.since == to {
                        out.push_str(&create_table(t, d, true).0);
                        continue;
                    }
                    for c in t.columns.iter().filter(|c| c.since == to) {
                        out.push_str(&format!(
                            "ALTER TABLE {} ADD COLUMN {};\n",
                            t.name,
                            column_sql(c, d, true)
                        ));
                    }
                    for ix in t.indexes.iter().filter(|ix| ix.3 == to) {
                        out.push_str(&index_sql(t, ix));
                    }
                }
            }
            Step::Sql(s) => {
                out.push_str(s);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_arrives_in_a_known_version_and_ids_come_first() {
        for t in TABLES {
            for c in t.columns {
                assert!((1..=SCHEMA_VERSION).contains(&c.since), "{}.{}", t.name, c.name);
                assert!(
                    c.since == t.since || !c.required || c.default.is_some(),
                    "{}.{} needs a default",
                    t.name,
                    c.name
                );
            }
            assert!(
                t.key.is_empty() == t.columns.iter().any(|c| c.kind == Kind::Id),
                "{}: one key",
                t.name
            );
            assert!(t.columns.iter().all(|c| c.since >= t.since), "{}", t.name);
        }
    }

    #[test]
    fn the_postgres_schema_adds_forward_references_after_the_tables() {
        let pg = create_all(Dialect::Postgres);
        assert!(pg.contains("ALTER TABLE models ADD FOREIGN KEY (head_id) REFERENCES heads(id);"));
        assert!(pg.contains("vector vector NOT NULL"));
        let lite = create_all(Dialect::Sqlite);
        assert!(lite.contains("head_id INTEGER REFERENCES heads(id)"));
        assert!(lite.contains(") WITHOUT ROWID;"));
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(&lite).unwrap();
    }
}
