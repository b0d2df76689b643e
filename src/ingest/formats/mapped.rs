//! Any CSV or TSV whose columns `--map field=column` names (a field left unmapped is read from a
//! column of its own name, when there is one). Rows sharing `id` are one product, each row a
//! variant (a size, a SKU).
//!
//! Shop id: the `id` column's value.

use std::collections::{HashMap, HashSet};

use super::table::{Overrides, Row, Table, sniff_delimiter};
use super::{from_stock, gender_for, parse_stock, reject, settle};
use crate::ingest::feed::{Availability, Decimals, FeedItem, Parsed, Variant, category_path, parse_price, strip_html};

/// Every field `--map` takes.
const FIELDS: [&str; 20] = [
    "id",
    "name",
    "group",
    "description",
    "brand",
    "category",
    "gender",
    "colour",
    "size",
    "sku",
    "price",
    "compare_at",
    "currency",
    "availability",
    "stock",
    "link",
    "image",
    "season",
    "year",
    "usage",
];

/// Reads a CSV or TSV with the columns `map` names.
pub(crate) fn parse(text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let overrides = Overrides::new(map, &FIELDS, "a mapped file")?;
    let mut t = Table::open(text, sniff_delimiter(text), "mapped CSV")?;
    let mut cols: HashMap<&str, usize> = HashMap::new();
    for field in FIELDS {
        let own = if field == "colour" {
            &["colour", "color"][..]
        } else {
            &[field][..]
        };
        if let Some(c) = t.column(&overrides, field, own)? {
            cols.insert(field, c);
        }
    }
    for required in ["id", "image"] {
        if !cols.contains_key(required) {
            return Err(format!(
                "no column for `{required}`: name it with --map {required}=COLUMN (the header has {})",
                t.header.join(", ")
            ));
        }
    }
    let mut items: Vec<FeedItem> = Vec::new();
    let mut compare: Vec<Vec<Option<f64>>> = Vec::new();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    // The (sku, size) pairs each product has, to catch a repeated row.
    let mut seen: Vec<HashSet<(String, String)>> = Vec::new();
    let mut rejected = Vec::new();
    while let Some(row) = t.next_row() {
        let get = |f: &str| row.get(cols.get(f).copied());
        let id = get("id");
        if id.is_empty() {
            rejected.push(reject(row.line, None, "no id"));
            continue;
        }
        let image = get("image");
        if image.is_empty() {
            rejected.push(reject(row.line, Some(id), "no image"));
            continue;
        }
        let (variant, before, currency) = match variant(&row, &cols, id) {
            Ok(v) => v,
            Err(why) => {
                rejected.push(reject(row.line, Some(id), &why));
                continue;
            }
        };
        let i = match by_id.get(id) {
            Some(&i) => {
                if !seen[i].insert((variant.sku.clone(), variant.size.clone())) {
                    let why = format!("repeats id `{id}` with the same sku and size as line {}", items[i].line);
                    rejected.push(reject(row.line, Some(id), &why));
                    continue;
                }
                if image != items[i].photo {
                    items[i].more_photos.push(image.to_string());
                }
                i
            }
            None => {
                by_id.insert(id.to_string(), items.len());
                items.push(product(&row, &cols, id, image, currency));
                compare.push(Vec::new());
                seen.push(HashSet::from([(variant.sku.clone(), variant.size.clone())]));
                items.len() - 1
            }
        };
        items[i].variants.push(variant);
        compare[i].push(before);
    }
    for (item, c) in items.iter_mut().zip(&compare) {
        settle(item, c);
    }
    rejected.append(&mut t.rejected);
    Ok(Parsed { items, rejected })
}

/// The product fields of a product's first row.
fn product(row: &Row, cols: &HashMap<&str, usize>, id: &str, image: &str, currency: String) -> FeedItem {
    let get = |f: &str| row.get(cols.get(f).copied()).to_string();
    let gender_raw = get("gender");
    FeedItem {
        line: row.line,
        shop_id: id.to_string(),
        group: Some(get("group")).filter(|g| !g.is_empty()),
        name: get("name"),
        description: strip_html(&get("description")),
        brand: get("brand"),
        category: category_path(&get("category")),
        gender: gender_for(&gender_raw, ""),
        gender_raw,
        colour: get("colour"),
        season: get("season"),
        year: get("year").parse().ok(),
        usage: get("usage"),
        currency,
        link: get("link"),
        photo: image.to_string(),
        ..Default::default()
    }
}

/// A row's variant, its compare-at price, and the currency its price or `currency` names; a
/// price that cannot be read is the row's error.
fn variant(row: &Row, cols: &HashMap<&str, usize>, id: &str) -> Result<(Variant, Option<f64>, String), String> {
    let get = |f: &str| row.get(cols.get(f).copied());
    let price = parse_price(get("price"), Decimals::PointOrComma)?;
    let before = parse_price(get("compare_at"), Decimals::PointOrComma)?.map(|p| p.0);
    let currency = match get("currency") {
        "" => price.as_ref().and_then(|p| p.1.clone()).unwrap_or_default(),
        c => c.to_ascii_uppercase(),
    };
    let stock = parse_stock(get("stock"));
    let availability = match Availability::parse(get("availability")) {
        Availability::Unknown => from_stock(stock, false),
        a => a,
    };
    // The importer keys variants by SKU; without one, the id and size stand in.
    let sku = match (get("sku"), super::slug(get("size"))) {
        ("", size) if size.is_empty() => id.to_string(),
        ("", size) => format!("{id}-{size}"),
        (s, _) => s.to_string(),
    };
    let v = Variant {
        sku,
        size: get("size").to_string(),
        price: price.map(|p| p.0),
        stock,
        availability,
    };
    Ok((v, before, currency))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, item};
    use super::*;
    use crate::ingest::feed::Format;

    fn map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(f, c)| (f.to_string(), c.to_string())).collect()
    }

    fn csv_map() -> Vec<(String, String)> {
        map(&[
            ("id", "Style No"),
            ("name", "Product Name"),
            ("image", "Picture"),
            ("price", "Cost"),
            ("colour", "Shade"),
            ("size", "Size"),
            ("sku", "EAN"),
            ("stock", "Qty"),
            ("category", "Dept"),
            ("gender", "For"),
            ("compare_at", "Was"),
        ])
    }

    #[test]
    fn mapped_csv() {
        let p = super::super::parse(Format::Mapped, &fixture("mapped.csv"), &csv_map()).unwrap();
        let ids: Vec<_> = p.items.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(ids, vec!["ST-100", "ST-200", "ST-300"]);
        let tee = item(&p, "ST-100");
        assert_eq!(tee.name, "Organic Tee");
        assert_eq!(tee.colour, "Sage");
        assert_eq!(tee.photo, "photos/st-100.jpg");
        assert_eq!(tee.more_photos, vec!["photos/st-100-back.jpg"]);
        assert_eq!(tee.category, vec!["Apparel", "Topwear", "Tshirts"]);
        assert_eq!(tee.gender, "Women");
        let v: Vec<_> = tee
            .variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.price, v.stock, v.availability))
            .collect();
        assert_eq!(
            v,
            vec![
                ("4000000000017", "S", Some(19.5), Some(0), Availability::OutOfStock),
                ("4000000000024", "M", Some(19.5), Some(7), Availability::InStock),
                ("4000000000031", "L", Some(21.0), None, Availability::Unknown),
            ]
        );
        assert_eq!(
            (tee.price, tee.compare_at, tee.currency.as_str()),
            (Some(19.5), Some(25.0), "GBP")
        );
        assert_eq!(tee.availability, Availability::InStock);
        // `year` is not mapped and the file has a `year` column: read by its own name.
        assert_eq!(item(&p, "ST-200").year, Some(2024));
        let why: Vec<_> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            why,
            vec![
                (Some(6), "repeats id `ST-100` with the same sku and size as line 2"),
                (Some(8), "no image"),
                (Some(9), "no id"),
                (Some(10), "3 fields where the header has 12"),
            ]
        );
    }

    #[test]
    fn mapped_tsv_detects_tabs() {
        let m = map(&[("id", "code"), ("image", "img"), ("color", "colour name")]);
        let p = super::super::parse(Format::Mapped, &fixture("mapped.tsv"), &m).unwrap();
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 2);
        let a = item(&p, "A1");
        assert_eq!(a.name, "Wrap \"Midi\" Skirt, pleated");
        assert_eq!(a.colour, "Rust");
        assert_eq!((a.price, a.currency.as_str()), (Some(1299.0), "EUR"));
        let skus: Vec<_> = a.variants.iter().map(|v| v.sku.as_str()).collect();
        assert_eq!(skus, vec!["A1-s", "A1-m"]);
        assert_eq!(item(&p, "B2").variants[0].sku, "B2");
    }

    #[test]
    fn map_errors_name_the_field_or_column() {
        let text = fixture("mapped.csv");
        let e = super::super::parse(Format::Mapped, &text, &map(&[("hue", "Shade")])).unwrap_err();
        assert!(
            e.contains("hue") && e.contains("compare_at") && e.contains("usage"),
            "{e}"
        );
        let e =
            super::super::parse(Format::Mapped, &text, &map(&[("id", "Style No"), ("image", "Photo")])).unwrap_err();
        assert!(e.contains("`Photo`"), "{e}");
        let e = super::super::parse(Format::Mapped, &text, &map(&[("image", "Picture")])).unwrap_err();
        assert!(e.contains("`id`") && e.contains("Style No"), "{e}");
    }
}
