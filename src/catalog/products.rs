//! Products and the category tree (masterCategory > subCategory > articleType).

use serde::Serialize;

use super::Catalog;
use super::sql::{Db, Row, Value, params};
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

/// Every product column with its category path.
pub(crate) const SELECT: &str =
    "SELECT p.id, p.name, m.name, s.name, a.name, p.gender, p.colour, p.season, p.year, p.usage,
        p.image_path, p.image_hash
    FROM products p
    JOIN categories a ON a.id = p.category_id
    JOIN categories s ON s.id = a.parent_id
    JOIN categories m ON m.id = s.parent_id";

/// A product from a row of [`SELECT`].
pub(crate) fn from_row(r: &Row) -> Result<Product> {
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
        let mut out = Vec::new();
        self.db()?.each(&format!("{SELECT} ORDER BY p.id"), &[], &mut |r| {
            out.push(from_row(&r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// One product, if it exists.
    pub fn product(&self, id: i64) -> Result<Option<Product>> {
        self.db()?
            .row(&format!("{SELECT} WHERE p.id = ?1"), params![id])?
            .map(|r| from_row(&r))
            .transpose()
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
        self.db()?.scalar("SELECT COUNT(*) FROM products", &[])
    }

    /// Every category name at every level, with its level (0 = master) and product count.
    pub fn categories(&self) -> Result<Vec<(String, i64, usize)>> {
        self.db()?
            .rows(CATEGORIES, &[])?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
    }
}

/// Every category with its level and product count.
const CATEGORIES: &str = "SELECT c.name, c.level,
        (SELECT COUNT(*) FROM products p
           JOIN categories a ON a.id = p.category_id
           JOIN categories s ON s.id = a.parent_id
          WHERE a.id = c.id OR s.id = c.id OR s.parent_id = c.id)
     FROM categories c ORDER BY c.level, c.name";

/// Finds or creates the category path, returning the leaf id.
fn category_id(db: &mut impl Db, path: &[String; 3]) -> Result<i64> {
    let mut parent: Option<i64> = None;
    for (level, name) in path.iter().enumerate() {
        let found = db.row(
            "SELECT id FROM categories WHERE COALESCE(parent_id, 0) = COALESCE(CAST(?1 AS BIGINT), 0) AND name = ?2",
            params![parent, name],
        )?;
        parent = Some(match found {
            Some(r) => r.get(0)?,
            None => db.scalar(
                "INSERT INTO categories(parent_id, name, level) VALUES (?1, ?2, ?3) RETURNING id",
                params![parent, name, level],
            )?,
        });
    }
    // The loop ran three times, so `parent` is the leaf.
    Ok(parent.unwrap_or_default())
}

/// The columns an upsert writes and compares, in this order after `id`; the stored row equals
/// the new one exactly when nothing changed.
const WRITTEN: &str = "name, category_id, gender, colour, season, year, usage, image_path, image_hash";

/// Inserts or updates one product inside the importer's transaction, on either store.
pub(crate) fn upsert(db: &mut impl Db, p: &ProductUpsert, now: i64) -> Result<Upserted> {
    let cat = category_id(db, &p.category)?;
    let new: Vec<Value> = vec![
        p.name.as_str().into(),
        cat.into(),
        p.gender.as_str().into(),
        p.colour.as_str().into(),
        p.season.as_str().into(),
        p.year.into(),
        p.usage.as_str().into(),
        p.image_path.as_str().into(),
        p.image_hash.as_str().into(),
    ];
    let existing = db.row(&format!("SELECT {WRITTEN} FROM products WHERE id = ?1"), params![p.id])?;
    let mut values = vec![Value::from(p.id)];
    values.extend(new.iter().cloned());
    values.push(now.into());
    let marks: Vec<String> = (2..=new.len() + 1).map(|i| format!("?{i}")).collect();
    match existing {
        Some(old) if old.0 == new => Ok(Upserted::Unchanged),
        Some(_) => {
            let sets: Vec<String> = WRITTEN
                .split(", ")
                .zip(&marks)
                .map(|(c, m)| format!("{c} = {m}"))
                .collect();
            db.execute(
                &format!(
                    "UPDATE products SET {}, updated_at = ?{} WHERE id = ?1",
                    sets.join(", "),
                    new.len() + 2
                ),
                &values,
            )?;
            Ok(Upserted::Updated)
        }
        None => {
            let n = new.len() + 2;
            db.execute(
                &format!(
                    "INSERT INTO products(id, {WRITTEN}, added_at, updated_at) VALUES (?1, {}, ?{n}, ?{n})",
                    marks.join(", ")
                ),
                &values,
            )?;
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
        let mut tx = cat.tx().unwrap();
        assert_eq!(upsert(&mut tx, &product(1, "Red"), 1).unwrap(), Upserted::Inserted);
        assert_eq!(upsert(&mut tx, &product(1, "Red"), 2).unwrap(), Upserted::Unchanged);
        assert_eq!(upsert(&mut tx, &product(1, "Blue"), 3).unwrap(), Upserted::Updated);
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
