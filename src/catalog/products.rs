//! Products and the category tree (masterCategory > subCategory > articleType).

use serde::Serialize;

use super::Catalog;
use super::sql::{Db, Row, Value, params};
use crate::Result;

/// One product of the catalogue, with its category path resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
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
    /// The shop's own id for this product (a SKU, handle, item or article id); `None` for a
    /// catalogue whose ids are its numbers (the Kaggle set).
    #[serde(rename = "shop_id", skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    /// The colourways' group (a handle, `item_group_id`, parent or `product_code`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Brand or vendor.
    pub brand: String,
    /// Description, HTML stripped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The product page.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub link: String,
    /// The photo as the feed gave it: a URL, or the path under the image folder.
    #[serde(rename = "image")]
    pub image_url: String,
    /// Price, in `currency`.
    pub price: Option<f64>,
    /// The price before a sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare_at: Option<f64>,
    /// ISO 4217 currency code, when known.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub currency: String,
    /// `in_stock`, `out_of_stock`, `preorder`, `backorder` or `unknown`.
    pub availability: String,
    /// False once a later feed no longer has it (`import --prune`): hidden from look-alikes and
    /// feeds, likes kept.
    #[serde(skip)]
    pub listed: bool,
    /// Gender as the catalogue wrote it (`gender` is normalised).
    #[serde(skip)]
    pub gender_raw: String,
    /// Sizes, by SKU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantRow>,
}

impl Product {
    /// True when the product can be bought now.
    pub fn in_stock(&self) -> bool {
        self.availability == "in_stock"
    }

    /// The sizes that can be bought now (variants in stock that name a size), in order.
    pub fn sizes_in_stock(&self) -> Vec<&str> {
        self.variants
            .iter()
            .filter(|v| v.availability == "in_stock" && !v.size.is_empty())
            .map(|v| v.size.as_str())
            .collect()
    }
}

/// What the importer writes for one product.
#[derive(Debug, Clone, Default)]
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
    /// The shop's fields: id, group, brand, price, link... (see [`Product`]).
    pub shop: ShopFields,
    /// Sizes, each with its SKU, price and stock (replaced whole on every write).
    pub variants: Vec<VariantRow>,
}

/// What a shop's catalogue says of a product beyond the Kaggle columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShopFields {
    /// The shop's id.
    pub shop_id: Option<String>,
    /// The colourways' group.
    pub group: Option<String>,
    /// Brand.
    pub brand: String,
    /// Description.
    pub description: String,
    /// Product page.
    pub link: String,
    /// The photo as the feed gave it.
    pub image_url: String,
    /// Price.
    pub price: Option<f64>,
    /// Price before a sale.
    pub compare_at: Option<f64>,
    /// Currency.
    pub currency: String,
    /// Availability.
    pub availability: String,
    /// Gender as written.
    pub gender_raw: String,
    /// The shop hides it (a draft, archived, unpublished): written unlisted.
    pub hidden: bool,
}

/// One size of a product, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VariantRow {
    /// The shop's SKU.
    pub sku: String,
    /// Size.
    pub size: String,
    /// Price.
    pub price: Option<f64>,
    /// Units in stock.
    pub stock: Option<i64>,
    /// Availability.
    pub availability: String,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProductFilter {
    /// A category name at any level of the tree.
    pub category: Option<String>,
    /// Gender.
    pub gender: Option<String>,
    /// Colour.
    pub colour: Option<String>,
    /// Brand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    /// Lowest price (a product without a price does not pass a price filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_price: Option<f64>,
    /// Highest price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_price: Option<f64>,
    /// Only products that can be bought now.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub in_stock: bool,
}

impl ProductFilter {
    /// True when nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.category.is_none()
            && self.gender.is_none()
            && self.colour.is_none()
            && self.brand.is_none()
            && self.min_price.is_none()
            && self.max_price.is_none()
            && !self.in_stock
    }

    /// Whether `p` passes every set field.
    pub fn matches(&self, p: &Product) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        let cat_ok = self.category.as_ref().is_none_or(|c| {
            [&p.master_category, &p.sub_category, &p.article_type]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(c))
        });
        let price_ok = match (self.min_price, self.max_price, p.price) {
            (None, None, _) => true,
            (_, _, None) => false,
            (lo, hi, Some(x)) => lo.is_none_or(|lo| x >= lo) && hi.is_none_or(|hi| x <= hi),
        };
        cat_ok
            && eq(&self.gender, &p.gender)
            && eq(&self.colour, &p.colour)
            && eq(&self.brand, &p.brand)
            && price_ok
            && (!self.in_stock || p.in_stock())
    }
}

/// Every product column with its category path.
pub(crate) const SELECT: &str =
    "SELECT p.id, p.name, m.name, s.name, a.name, p.gender, p.colour, p.season, p.year, p.usage,
        p.image_path, p.image_hash, p.shop_id, p.group_key, p.brand, p.description, p.link, p.image_url,
        p.price, p.compare_at, p.currency, p.availability, p.listed, p.gender_raw
    FROM products p
    JOIN categories a ON a.id = p.category_id
    JOIN categories s ON s.id = a.parent_id
    JOIN categories m ON m.id = s.parent_id";

/// A product from a row of [`SELECT`], its text moved out of the row rather than copied.
pub(crate) fn from_row(mut r: Row) -> Result<Product> {
    Ok(Product {
        id: r.take(0)?,
        name: r.take(1)?,
        master_category: r.take(2)?,
        sub_category: r.take(3)?,
        article_type: r.take(4)?,
        gender: r.take(5)?,
        colour: r.take(6)?,
        season: r.take(7)?,
        year: r.take(8)?,
        usage: r.take(9)?,
        image_path: r.take(10)?,
        image_hash: r.take(11)?,
        shop_id: r.take(12)?,
        group: r.take(13)?,
        brand: r.take(14)?,
        description: r.take(15)?,
        link: r.take(16)?,
        image_url: r.take(17)?,
        price: r.take(18)?,
        compare_at: r.take(19)?,
        currency: r.take(20)?,
        availability: r.take(21)?,
        listed: r.take::<i64>(22)? != 0,
        gender_raw: r.take(23)?,
        variants: Vec::new(),
    })
}

impl Catalog {
    /// Every product with its sizes, ordered by id.
    pub fn products(&self) -> Result<Vec<Product>> {
        let mut out = Vec::new();
        let mut db = self.db()?;
        db.each(&format!("{SELECT} ORDER BY p.id"), &[], &mut |r| {
            out.push(from_row(r)?);
            Ok(())
        })?;
        // One pass over every size, in product order, instead of a query per product.
        let mut at = 0;
        db.each(
            "SELECT product_id, sku, size, price, stock, availability FROM variants ORDER BY product_id, sku",
            &[],
            &mut |r| {
                let id: i64 = r.get(0)?;
                while at < out.len() && out[at].id < id {
                    at += 1;
                }
                if let Some(p) = out.get_mut(at).filter(|p| p.id == id) {
                    p.variants.push(VariantRow {
                        sku: r.get(1)?,
                        size: r.get(2)?,
                        price: r.get(3)?,
                        stock: r.get(4)?,
                        availability: r.get(5)?,
                    });
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// One product with its sizes, if it exists.
    pub fn product(&self, id: i64) -> Result<Option<Product>> {
        let mut db = self.db()?;
        let Some(row) = db.row(&format!("{SELECT} WHERE p.id = ?1"), params![id])? else {
            return Ok(None);
        };
        let mut p = from_row(row)?;
        p.variants = variants(&mut db, id)?;
        Ok(Some(p))
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
const WRITTEN: &str = "name, category_id, gender, colour, season, year, usage, image_path, image_hash, \
    shop_id, group_key, brand, description, link, image_url, price, compare_at, currency, availability, listed, \
    gender_raw";

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
        p.shop.shop_id.as_deref().into(),
        p.shop.group.as_deref().into(),
        p.shop.brand.as_str().into(),
        p.shop.description.as_str().into(),
        p.shop.link.as_str().into(),
        p.shop.image_url.as_str().into(),
        p.shop.price.into(),
        p.shop.compare_at.into(),
        p.shop.currency.as_str().into(),
        availability(&p.shop.availability).into(),
        // Written by an import, so listed (again, if a pruned product came back), unless the
        // shop itself hides it.
        i64::from(!p.shop.hidden).into(),
        p.shop.gender_raw.as_str().into(),
    ];
    let existing = db.row(&format!("SELECT {WRITTEN} FROM products WHERE id = ?1"), params![p.id])?;
    let variants_changed = existing.is_none() || variants(db, p.id)? != p.variants;
    let mut values = vec![Value::from(p.id)];
    values.extend(new.iter().cloned());
    values.push(now.into());
    let marks: Vec<String> = (2..=new.len() + 1).map(|i| format!("?{i}")).collect();
    match existing {
        Some(old) if old.0 == new && !variants_changed => Ok(Upserted::Unchanged),
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
            write_variants(db, p.id, &p.variants)?;
            super::embeddings::bump_generation(db)?;
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
            write_variants(db, p.id, &p.variants)?;
            super::embeddings::bump_generation(db)?;
            Ok(Upserted::Inserted)
        }
    }
}

/// Stops listing a product a later feed no longer has (`import --prune`): kept, with its
/// likes and vectors, but never ranked.
pub(crate) fn unlist(db: &mut impl Db, id: i64, now: i64) -> Result<()> {
    db.execute(
        "UPDATE products SET listed = 0, updated_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    super::embeddings::bump_generation(db)
}

/// Availability as stored: what the feed said, `unknown` when it said nothing.
fn availability(a: &str) -> &str {
    if a.is_empty() { "unknown" } else { a }
}

/// A product's sizes, by SKU.
pub(crate) fn variants(db: &mut impl Db, product: i64) -> Result<Vec<VariantRow>> {
    db.rows(
        "SELECT sku, size, price, stock, availability FROM variants WHERE product_id = ?1 ORDER BY sku",
        params![product],
    )?
    .iter()
    .map(|r| {
        Ok(VariantRow {
            sku: r.get(0)?,
            size: r.get(1)?,
            price: r.get(2)?,
            stock: r.get(3)?,
            availability: r.get(4)?,
        })
    })
    .collect()
}

/// Replaces a product's sizes (sorted by SKU, as [`variants`] reads them back).
fn write_variants(db: &mut impl Db, product: i64, rows: &[VariantRow]) -> Result<()> {
    db.execute("DELETE FROM variants WHERE product_id = ?1", params![product])?;
    for v in rows {
        db.execute(
            "INSERT INTO variants(product_id, sku, size, price, stock, availability) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(product_id, sku) DO NOTHING",
            params![
                product,
                &v.sku,
                &v.size,
                v.price,
                v.stock,
                availability(&v.availability)
            ],
        )?;
    }
    Ok(())
}

/// The id a shop's product has, or the next free one for a new product.
pub(crate) fn id_for_shop_id(db: &mut impl Db, shop_id: &str) -> Result<(i64, bool)> {
    if let Some(r) = db.row("SELECT id FROM products WHERE shop_id = ?1", params![shop_id])? {
        return Ok((r.get(0)?, true));
    }
    Ok((db.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM products", &[])?, false))
}

/// The number of the product a reference names (a shop id first, then a variant's SKU, then
/// the catalogue's number), in the caller's connection or transaction.
pub(crate) fn product_id_of(db: &mut impl Db, reference: &str) -> Result<Option<i64>> {
    let r = reference.trim();
    let by_shop = db.row(
        "SELECT p.id FROM products p WHERE p.shop_id = ?1 OR p.id = (SELECT v.product_id FROM variants v WHERE v.sku = ?1 LIMIT 1) \
         ORDER BY CASE WHEN p.shop_id = ?1 THEN 0 ELSE 1 END LIMIT 1",
        params![r],
    )?;
    if let Some(row) = by_shop {
        return Ok(Some(row.get(0)?));
    }
    match r.parse::<i64>() {
        Ok(id) => Ok(db
            .row("SELECT id FROM products WHERE id = ?1", params![id])?
            .map(|r| r.get(0))
            .transpose()?),
        Err(_) => Ok(None),
    }
}

impl Catalog {
    /// The product a reference names: a shop id, a variant's SKU, or the catalogue's number.
    pub fn find_product(&self, reference: &str) -> Result<Option<Product>> {
        // Bound first: a temporary in the match would hold PostgreSQL's one connection while
        // `product` asks for it again.
        let id = product_id_of(&mut self.db()?, reference)?;
        match id {
            Some(id) => self.product(id),
            None => Ok(None),
        }
    }

    /// The product a reference names, or an error that says what was looked for.
    pub fn require_product_ref(&self, reference: &str) -> Result<Product> {
        if let Some(p) = self.find_product(reference)? {
            return Ok(p);
        }
        if let Ok(id) = reference.trim().parse::<i64>() {
            return self.require_product(id);
        }
        Err({
            crate::Error::NotFound(format!(
                "no product {:?} in the catalogue {} (looked for it as a shop id, a SKU and a number)",
                crate::text::clip(reference.trim(), 80),
                self.path().display()
            ))
        })
    }

    /// The ids of the products these references name (shop ids, SKUs or numbers), in order; the
    /// first that names nothing is an error.
    pub fn product_ids(&self, references: &[String]) -> Result<Vec<i64>> {
        references.iter().map(|r| Ok(self.require_product_ref(r)?.id)).collect()
    }

    /// A product's sizes.
    pub fn variants(&self, product: i64) -> Result<Vec<VariantRow>> {
        variants(&mut self.db()?, product)
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
            ..Default::default()
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
