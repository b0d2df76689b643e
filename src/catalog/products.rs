//! Products and the category tree (masterCategory > subCategory > articleType).

use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use super::Catalog;
use crate::Result;

/// One product of the catalogue, with its category path resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    /// The catalogue's own id (the CSV's `id`).
    pub id: i64,
    /// Display name (`productDisplayName`).
    pub name: String,
    /// Top of the category tree (`masterCategory`).
    #[serde(rename = "masterCategory")]
    pub master_category: String,
    /// Middle of the category tree (`subCategory`).
    #[serde(rename = "subCategory")]
    pub sub_category: String,
    /// Leaf of the category tree (`articleType`).
    #[serde(rename = "articleType")]
    pub article_type: String,
    /// Men, Women, Unisex, Boys, Girls, or whatever the catalogue says.
    pub gender: String,
    /// Base colour.
    pub colour: String,
    /// Season.
    pub season: String,
    /// Year, when known.
    pub year: Option<i32>,
    /// Usage (Casual, Sports, ...).
    pub usage: String,
    /// Photo path, relative to the catalogue's image root.
    #[serde(skip)]
    pub image_path: String,
    /// SHA-256 of the photo's bytes (embeddings remember which photo they came from).
    #[serde(skip)]
    pub image_hash: String,
}

/// What the importer writes for one product.
#[derive(Debug, Clone)]
pub struct ProductUpsert {
    /// The catalogue's id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Category path, top to leaf.
    pub category: [String; 3],
    /// Gender.
    pub gender: String,
    /// Colour.
    pub colour: String,
    /// Season.
    pub season: String,
    /// Year.
    pub year: Option<i32>,
    /// Usage.
    pub usage: String,
    /// Image path relative to the image root.
    pub image_path: String,
    /// SHA-256 of the image bytes.
    pub image_hash: String,
}

/// The outcome of writing one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// It was new.
    Inserted,
    /// It existed and something changed.
    Updated,
    /// It existed exactly like this.
    Unchanged,
}

/// Filters applied before ranking; empty fields match everything, matching ignores case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProductFilter {
    /// A category name at any level of the tree.
    pub category: Option<String>,
    /// Gender.
    pub gender: Option<String>,
    /// Colour.
    pub colour: Option<String>,
}

impl ProductFilter {
    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.category.is_none() && self.gender.is_none() && self.colour.is_none()
    }

    /// Whether `p` passes every set field.
    pub fn matches(&self, p: &Product) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        let cat_ok = self.category.as_ref().is_none_or(|c| {
            [&p.master_category, &p.sub_category, &p.article_type]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(c))
        });
        cat_ok && eq(&self.gender, &p.gender) && eq(&self.colour, &p.colour)
    }
}

/// Every product column with its category path; the same SQL in SQLite and PostgreSQL.
pub(crate) const SELECT: &str =
    "SELECT p.id, p.name, m.name, s.name, a.name, p.gender, p.colour, p.season, p.year, p.usage,
        p.image_path, p.image_hash
    FROM products p
    JOIN categories a ON a.id = p.category_id
    JOIN categories s ON s.id = a.parent_id
    JOIN categories m ON m.id = s.parent_id";

fn from_row(r: &Row) -> rusqlite::Result<Product> {
    Ok(Product {
        id: r.get(0)?,
        name: r.get(1)?,
        master_category: r.get(2)?,
        sub_category: r.get(3)?,
        article_type: r.get(4)?,
        gender: r.get(5)?,
        colour: r.get(6)?,
        season: r.get(7)?,
        year: r.get(8)?,
        usage: r.get(9)?,
        image_path: r.get(10)?,
        image_hash: r.get(11)?,
    })
}

impl Catalog {
    /// Every product, ordered by id.
    pub fn products(&self) -> Result<Vec<Product>> {
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::products(&mut c);
        }
        let mut st = self.conn()?.prepare(&format!("{SELECT} ORDER BY p.id"))?;
        let rows = st.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One product, if it exists.
    pub fn product(&self, id: i64) -> Result<Option<Product>> {
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::product_by_id(&mut c, id);
        }
        let mut st = self.conn()?.prepare_cached(&format!("{SELECT} WHERE p.id = ?1"))?;
        Ok(st.query_row([id], from_row).optional()?)
    }

    /// One product, or an error naming the id.
    pub fn require_product(&self, id: i64) -> Result<Product> {
        self.product(id)?.ok_or_else(|| {
            crate::Error::NotFound(format!(
                "product {id} is not in the catalogue {}",
                self.path().display()
            ))
        })
    }

    /// Number of products.
    pub fn product_count(&self) -> Result<usize> {
        if let Some(mut c) = self.pg() {
            return Ok(super::postgres::sql::count(&mut c, "SELECT COUNT(*) FROM products", &[])? as usize);
        }
        Ok(self
            .conn()?
            .query_row("SELECT COUNT(*) FROM products", [], |r| r.get::<_, i64>(0))? as usize)
    }

    /// Every category name at every level, with its level (0 = master) and product count.
    pub fn categories(&self) -> Result<Vec<(String, i64, usize)>> {
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::categories(&mut c);
        }
        let mut st = self.conn()?.prepare(CATEGORIES)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Every category with its level and product count; the same SQL in SQLite and PostgreSQL.
pub(crate) const CATEGORIES: &str = "SELECT c.name, c.level,
        (SELECT COUNT(*) FROM products p
           JOIN categories a ON a.id = p.category_id
           JOIN categories s ON s.id = a.parent_id
          WHERE a.id = c.id OR s.id = c.id OR s.parent_id = c.id)
     FROM categories c ORDER BY c.level, c.name";

/// Finds or creates the category path, returning the leaf id.
fn category_id(tx: &Transaction, path: &[String; 3]) -> Result<i64> {
    let mut parent: Option<i64> = None;
    for (level, name) in path.iter().enumerate() {
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM categories WHERE IFNULL(parent_id, 0) = IFNULL(?1, 0) AND name = ?2")?
            .query_row(params![parent, name], |r| r.get(0))
            .optional()?;
        parent = Some(match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO categories(parent_id, name, level) VALUES (?1, ?2, ?3)")?
                    .execute(params![parent, name, level as i64])?;
                tx.last_insert_rowid()
            }
        });
    }
    // The loop ran three times, so `parent` is the leaf.
    Ok(parent.unwrap_or_default())
}

/// The stored columns an upsert compares to tell a changed product from an unchanged one.
type StoredRow = (String, i64, String, String, String, Option<i32>, String, String, String);

/// Inserts or updates one product inside the importer's transaction.
pub(crate) fn upsert(tx: &Transaction, p: &ProductUpsert, now: i64) -> Result<Upserted> {
    let cat = category_id(tx, &p.category)?;
    let existing: Option<StoredRow> = tx
        .prepare_cached(
            "SELECT name, category_id, gender, colour, season, year, usage, image_path, image_hash FROM products WHERE id = ?1",
        )?
        .query_row([p.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
        })
        .optional()?;
    let new = (
        p.name.clone(),
        cat,
        p.gender.clone(),
        p.colour.clone(),
        p.season.clone(),
        p.year,
        p.usage.clone(),
        p.image_path.clone(),
        p.image_hash.clone(),
    );
    match existing {
        Some(old) if old == new => Ok(Upserted::Unchanged),
        Some(_) => {
            tx.prepare_cached(
                "UPDATE products SET name=?2, category_id=?3, gender=?4, colour=?5, season=?6, year=?7, usage=?8,
                    image_path=?9, image_hash=?10, updated_at=?11 WHERE id=?1",
            )?
            .execute(params![
                p.id,
                p.name,
                cat,
                p.gender,
                p.colour,
                p.season,
                p.year,
                p.usage,
                p.image_path,
                p.image_hash,
                now
            ])?;
            Ok(Upserted::Updated)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO products(id, name, category_id, gender, colour, season, year, usage, image_path, image_hash,
                    added_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            )?
            .execute(params![p.id, p.name, cat, p.gender, p.colour, p.season, p.year, p.usage, p.image_path, p.image_hash, now])?;
            Ok(Upserted::Inserted)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(id: i64, colour: &str) -> ProductUpsert {
        ProductUpsert {
            id,
            name: format!("item {id}"),
            category: ["Apparel".into(), "Topwear".into(), "Tshirts".into()],
            gender: "Men".into(),
            colour: colour.into(),
            season: "Fall".into(),
            year: Some(2011),
            usage: "Casual".into(),
            image_path: format!("{id}.jpg"),
            image_hash: "h".into(),
        }
    }

    #[test]
    fn upsert_reports_insert_update_unchanged_and_filters_match_any_level() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let tx = cat.conn_mut().unwrap().transaction().unwrap();
        assert_eq!(upsert(&tx, &product(1, "Red"), 1).unwrap(), Upserted::Inserted);
        assert_eq!(upsert(&tx, &product(1, "Red"), 2).unwrap(), Upserted::Unchanged);
        assert_eq!(upsert(&tx, &product(1, "Blue"), 3).unwrap(), Upserted::Updated);
        tx.commit().unwrap();
        let p = cat.require_product(1).unwrap();
        assert_eq!((p.article_type.as_str(), p.colour.as_str()), ("Tshirts", "Blue"));
        let f = ProductFilter {
            category: Some("topwear".into()),
            ..Default::default()
        };
        assert!(f.matches(&p));
        let f = ProductFilter {
            category: Some("Footwear".into()),
            ..Default::default()
        };
        assert!(!f.matches(&p));
        assert_eq!(cat.categories().unwrap().len(), 3);
        assert!(cat.require_product(2).is_err());
    }
}
