//! WooCommerce's product CSV, as its core exporter writes it: `simple` products, `variable`
//! parents and their `variation` rows, which name the parent in `Parent` by SKU or as `id:N`
//! (and may come before it in the file). Colour and size come from the attributes named
//! Color/Colour (Farbe, Couleur, `pa_color`, ...) and Size.
//!
//! Shop id: a product's SKU, or `id:N` (its ID) when it has none. A variable product with
//! variations of several colours (or photos) becomes one colourway per colour and photo, named
//! `parent-colour` (colour as a slug, `-2`, `-3` for further colourways of one colour), all in
//! the parent's `group`; with one colourway it keeps the parent's id.

use std::collections::{HashMap, HashSet};

use super::table::{Overrides, Row, Table, missing};
use super::{colourway_ids, colourways, from_stock, is_colour_name, is_gender_name, is_size_name, known_gender};
use super::{parse_stock, reject, settle, split_urls};
use crate::ingest::feed::{
    Availability, Decimals, FeedItem, Parsed, Rejected, Variant, category_path, normalise_gender, parse_price,
    strip_html,
};

const NAME: &str = "WooCommerce product CSV";

/// The columns lookbook reads, for messages.
const EXPECTED: [&str; 12] = [
    "ID",
    "Type",
    "SKU",
    "Name",
    "Description",
    "In stock?",
    "Stock",
    "Sale price",
    "Regular price",
    "Categories",
    "Images",
    "Parent",
];

/// `--map` fields that override a WooCommerce column.
const FIELDS: [&str; 11] = [
    "id",
    "sku",
    "name",
    "description",
    "brand",
    "category",
    "availability",
    "stock",
    "image",
    "group",
    "link",
];

/// What a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A product on its own (also `external`).
    Simple,
    /// A parent of variations.
    Variable,
    /// One variation of a variable product.
    Variation,
    /// A set of other products, which have rows of their own.
    Grouped,
}

/// One row, read.
#[derive(Debug, Clone)]
struct WooRow {
    line: usize,
    kind: Kind,
    id: String,
    sku: String,
    name: String,
    short: String,
    description: String,
    in_stock: String,
    stock: Option<i64>,
    sale: Option<f64>,
    regular: Option<f64>,
    currency: Option<String>,
    categories: String,
    images: Vec<String>,
    parent: String,
    attributes: Vec<(String, String)>,
    brand: String,
    link: String,
    /// Why the shop hides it: `Published` -1 (a draft) or 0 (private), or `Visibility in
    /// catalog` `hidden`.
    hidden: Option<String>,
}

impl WooRow {
    /// The product's own id: its SKU, else `id:N`.
    fn key(&self) -> String {
        if !self.sku.is_empty() {
            self.sku.clone()
        } else {
            format!("id:{}", self.id)
        }
    }

    /// The value of the first attribute whose name `pred` accepts.
    fn attribute(&self, pred: fn(&str) -> bool) -> &str {
        self.attributes
            .iter()
            .find(|(n, v)| pred(n) && !v.is_empty())
            .map_or("", |(_, v)| v.as_str())
    }

    /// Availability from `In stock?` (`1`, `0`, `backorder`), else from `Stock`.
    fn availability(&self) -> Availability {
        match Availability::parse(&self.in_stock) {
            Availability::Unknown => from_stock(self.stock, false),
            a => a,
        }
    }
}

/// Where each field is in this file's header.
struct Cols {
    id: Option<usize>,
    kind: usize,
    sku: Option<usize>,
    name: Option<usize>,
    short: Option<usize>,
    description: Option<usize>,
    in_stock: Option<usize>,
    stock: Option<usize>,
    sale: Option<usize>,
    regular: Option<usize>,
    categories: Option<usize>,
    images: usize,
    parent: Option<usize>,
    attributes: Vec<(usize, usize)>,
    brand: Option<usize>,
    link: Option<usize>,
    published: Option<usize>,
    visibility: Option<usize>,
}

impl Cols {
    fn find(t: &Table, map: &Overrides) -> Result<Cols, String> {
        let col = |field: &str, names: &[&str]| t.column(map, field, names);
        let kind = t.find(&["Type"]).ok_or_else(|| missing(NAME, "Type", &EXPECTED))?;
        let images = col("image", &["Images"])?.ok_or_else(|| missing(NAME, "Images", &EXPECTED))?;
        let id = col("id", &["ID"])?;
        let sku = col("sku", &["SKU"])?;
        if id.is_none() && sku.is_none() {
            return Err(missing(NAME, "SKU", &EXPECTED));
        }
        // `Attribute 1 name` with `Attribute 1 value(s)`, for every number the header has.
        let mut attributes = Vec::new();
        for (i, h) in t.names().iter().enumerate() {
            if let Some(n) = h.strip_prefix("attribute ").and_then(|r| r.strip_suffix(" name"))
                && let Some(v) = t.find(&[&format!("attribute {n} value(s)"), &format!("attribute {n} value")])
            {
                attributes.push((i, v));
            }
        }
        Ok(Cols {
            id,
            kind,
            sku,
            name: col("name", &["Name"])?,
            short: t.find(&["Short description"]),
            description: col("description", &["Description"])?,
            in_stock: col("availability", &["In stock?"])?,
            stock: col("stock", &["Stock"])?,
            sale: t.find(&["Sale price"]),
            regular: t.find(&["Regular price"]),
            categories: col("category", &["Categories"])?,
            images,
            parent: col("group", &["Parent"])?,
            attributes,
            brand: col("brand", &["Brands", "Brand"])?,
            link: col("link", &["External URL", "Product URL"])?,
            published: t.find(&["Published"]),
            visibility: t.find(&["Visibility in catalog"]),
        })
    }

    fn read(&self, row: &Row) -> Result<WooRow, String> {
        let kinds: Vec<String> = row
            .get(Some(self.kind))
            .split(',')
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        let has = |k: &str| kinds.iter().any(|x| x == k);
        let kind = if has("variation") {
            Kind::Variation
        } else if has("variable") {
            Kind::Variable
        } else if has("grouped") {
            Kind::Grouped
        } else if has("simple") || has("external") {
            Kind::Simple
        } else if kinds.is_empty() {
            return Err("no Type (simple, variable, variation, grouped or external)".into());
        } else {
            return Err(format!(
                "unknown Type `{}` (expected simple, variable, variation, grouped or external)",
                row.get(Some(self.kind))
            ));
        };
        let regular = parse_price(row.get(self.regular), Decimals::Point)?;
        let sale = parse_price(row.get(self.sale), Decimals::Point)?;
        let currency = sale
            .as_ref()
            .and_then(|s| s.1.clone())
            .or_else(|| regular.as_ref().and_then(|r| r.1.clone()));
        Ok(WooRow {
            line: row.line,
            kind,
            id: row.get(self.id).to_string(),
            sku: row.get(self.sku).to_string(),
            name: row.get(self.name).to_string(),
            short: row.get(self.short).to_string(),
            description: row.get(self.description).to_string(),
            in_stock: row.get(self.in_stock).to_string(),
            stock: parse_stock(row.get(self.stock)),
            sale: sale.map(|s| s.0),
            regular: regular.map(|r| r.0),
            currency,
            categories: row.get(self.categories).to_string(),
            images: split_urls(row.get(Some(self.images))),
            parent: row.get(self.parent).to_string(),
            attributes: self
                .attributes
                .iter()
                .map(|(n, v)| (row.get(Some(*n)).to_string(), row.get(Some(*v)).to_string()))
                .filter(|(n, _)| !n.is_empty())
                .collect(),
            brand: split_list(row.get(self.brand)).into_iter().next().unwrap_or_default(),
            link: row.get(self.link).to_string(),
            hidden: match (row.get(self.published).trim(), row.get(self.visibility).trim()) {
                ("-1", _) => Some("draft".into()),
                ("0", _) => Some("private".into()),
                (_, v) if v.eq_ignore_ascii_case("hidden") => Some("hidden".into()),
                _ => None,
            },
        })
    }
}

/// A WooCommerce list field: comma-separated, `\,` a comma inside an item.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                current.push(',');
                chars.next();
            }
            ',' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The deepest of the `>` paths in `Categories` (the first of equal depth).
fn deepest_category(s: &str) -> Vec<String> {
    let mut best: Vec<String> = Vec::new();
    for path in split_list(s) {
        let p = category_path(&path);
        if p.len() > best.len() {
            best = p;
        }
    }
    best
}

/// Reads a WooCommerce product CSV.
pub(crate) fn parse(text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let overrides = Overrides::new(map, &FIELDS, "woocommerce")?;
    let mut t = Table::open(text, super::table::sniff_delimiter(text), NAME)?;
    let c = Cols::find(&t, &overrides)?;
    let mut rows: Vec<WooRow> = Vec::new();
    let mut rejected: Vec<Rejected> = Vec::new();
    while let Some(row) = t.next_row() {
        match c.read(&row) {
            Ok(r) => rows.push(r),
            Err(why) => rejected.push(reject(row.line, Some(row.get(c.sku)), &why)),
        }
    }
    rejected.append(&mut t.rejected);

    // Parents by SKU and by ID, for variations that name theirs either way.
    let mut by_sku: HashMap<&str, usize> = HashMap::new();
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.kind != Kind::Variation) {
        if !r.sku.is_empty() {
            by_sku.entry(r.sku.as_str()).or_insert(i);
        }
        if !r.id.is_empty() {
            by_id.entry(r.id.as_str()).or_insert(i);
        }
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.kind == Kind::Variation) {
        let p = r.parent.as_str();
        let parent = match p.strip_prefix("id:") {
            Some(id) => by_id.get(id.trim()).copied(),
            None => by_sku.get(p).copied().or_else(|| {
                p.chars()
                    .all(|c| c.is_ascii_digit())
                    .then(|| by_id.get(p).copied())
                    .flatten()
            }),
        };
        match parent {
            Some(pi) => children.entry(pi).or_default().push(i),
            None if p.is_empty() => rejected.push(reject(
                r.line,
                Some(&r.key()),
                "a variation with no Parent: it belongs to no product",
            )),
            None => rejected.push(reject(
                r.line,
                Some(&r.key()),
                &format!("the variation's parent `{p}` is not in the file"),
            )),
        }
    }

    let mut items = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        match r.kind {
            Kind::Variation => {}
            Kind::Grouped => rejected.push(reject(
                r.line,
                Some(&r.key()),
                "a grouped product is a set of other products, each imported from its own row",
            )),
            Kind::Simple => {
                if let Some(item) = simple(r) {
                    items.push(item);
                } else {
                    rejected.push(reject(r.line, Some(&r.key()), "no photo: Images is empty"));
                }
            }
            Kind::Variable => {
                let vs: Vec<&WooRow> = children
                    .get(&i)
                    .map_or(Vec::new(), |v| v.iter().map(|&j| &rows[j]).collect());
                variable(r, vs, &mut items, &mut rejected);
            }
        }
    }
    Ok(Parsed { items, rejected })
}

/// The fields a product and its colourways share.
fn base(p: &WooRow) -> FeedItem {
    let category = deepest_category(&p.categories);
    let mut gender_raw = p.attribute(is_gender_name).to_string();
    // No gender attribute: a shop's top category (`Women > Dresses`) often says it.
    if gender_raw.is_empty()
        && let Some(top) = category.first()
        && known_gender(&normalise_gender(top))
    {
        gender_raw = top.clone();
    }
    let description = if p.description.is_empty() {
        &p.short
    } else {
        &p.description
    };
    FeedItem {
        line: p.line,
        shop_id: p.key(),
        name: p.name.clone(),
        description: strip_html(description),
        brand: if p.brand.is_empty() {
            p.attribute(is_brand_name).to_string()
        } else {
            p.brand.clone()
        },
        category,
        gender: normalise_gender(&gender_raw),
        gender_raw,
        colour: p.attribute(is_colour_name).to_string(),
        currency: p.currency.clone().unwrap_or_default(),
        link: p.link.clone(),
        hidden: p.hidden.clone(),
        ..Default::default()
    }
}

/// A row's price now and before a sale.
fn prices(r: &WooRow) -> (Option<f64>, Option<f64>) {
    match (r.sale, r.regular) {
        (Some(s), regular) => (Some(s), regular),
        (None, regular) => (regular, None),
    }
}

/// True for an attribute name that means brand.
fn is_brand_name(name: &str) -> bool {
    matches!(
        name.trim().to_lowercase().as_str(),
        "brand" | "brands" | "marke" | "marque" | "pa_brand"
    )
}

/// The size of a variation: its Size attribute, then any other attribute it varies by that is
/// not colour, gender or brand.
fn size(r: &WooRow) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let sized = r.attributes.iter().filter(|(n, _)| is_size_name(n));
    let rest = r
        .attributes
        .iter()
        .filter(|(n, _)| !is_size_name(n) && !is_colour_name(n) && !is_gender_name(n) && !is_brand_name(n));
    for (_, v) in sized.chain(rest) {
        if !v.is_empty() {
            parts.push(v);
        }
    }
    parts.join(" / ")
}

/// A simple product: one colourway with one variant; None without a photo.
fn simple(r: &WooRow) -> Option<FeedItem> {
    let photo = r.images.first()?.clone();
    let mut item = FeedItem {
        photo,
        more_photos: r.images[1..].to_vec(),
        ..base(r)
    };
    let (price, before) = prices(r);
    // A simple product's attributes describe it (`Size: S, M` lists what exists); one size is its size.
    let sizes = split_list(r.attribute(is_size_name));
    item.variants.push(Variant {
        sku: r.key(),
        size: if sizes.len() == 1 {
            sizes[0].clone()
        } else {
            String::new()
        },
        price,
        stock: r.stock,
        availability: r.availability(),
    });
    settle(&mut item, &[before]);
    Some(item)
}

/// A variation's own name without the attribute values WooCommerce appends (`Tee - Red, M`).
fn variation_name(v: &WooRow) -> Option<String> {
    let (head, tail) = v.name.rsplit_once(" - ")?;
    let values: Vec<&str> = v
        .attributes
        .iter()
        .map(|(_, val)| val.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    let written: Vec<&str> = tail.split(',').map(str::trim).collect();
    let same = written.len() == values.len() && written.iter().zip(&values).all(|(a, b)| a.eq_ignore_ascii_case(b));
    (same && !head.trim().is_empty()).then(|| head.trim().to_string())
}

/// A variable product: one colourway per colour and photo of its variations.
fn variable(p: &WooRow, vs: Vec<&WooRow>, items: &mut Vec<FeedItem>, rejected: &mut Vec<Rejected>) {
    let shared = base(p);
    if vs.is_empty() {
        // A parent without variations in the file: the product alone, nothing to buy yet.
        match p.images.first() {
            Some(photo) => items.push(FeedItem {
                group: Some(p.key()),
                photo: photo.clone(),
                more_photos: p.images[1..].to_vec(),
                availability: p.availability(),
                ..shared
            }),
            None => rejected.push(reject(p.line, Some(&p.key()), "no photo: Images is empty")),
        }
        return;
    }
    // A parent listing one colour gives it to variations that name none ("any colour").
    let parent_colours = split_list(p.attribute(is_colour_name));
    let parent_colour = if parent_colours.len() == 1 {
        parent_colours[0].clone()
    } else {
        String::new()
    };
    let ways = colourways(
        vs.into_iter()
            .map(|v| {
                let own = v.attribute(is_colour_name);
                let colour = if own.is_empty() {
                    parent_colour.clone()
                } else {
                    own.to_string()
                };
                (colour, v.images.first().cloned().unwrap_or_default(), v)
            })
            .collect(),
    );
    let colours: Vec<&str> = ways.iter().map(|w| w.colour.as_str()).collect();
    let ids = colourway_ids(&p.key(), &colours);
    let claimed: HashSet<&String> = ways.iter().filter_map(|w| w.photo.as_ref()).collect();
    let spare = p
        .images
        .iter()
        .find(|u| !claimed.contains(u))
        .or(p.images.first())
        .cloned();
    let photos: Vec<Option<String>> = ways.iter().map(|w| w.photo.clone().or_else(|| spare.clone())).collect();
    // A photo another colourway shows is not a further photo of this one.
    let shown: HashSet<&String> = photos.iter().flatten().collect();
    for (i, (way, id)) in ways.into_iter().zip(ids).enumerate() {
        // A colourway starts at its first row; the first one at the parent's row when that comes first.
        let line = if i == 0 {
            p.line.min(way.members[0].line)
        } else {
            way.members[0].line
        };
        let Some(photo) = photos[i].clone() else {
            let why = format!(
                "no photo: colour `{}` has no variation image and the parent no Images",
                way.colour
            );
            rejected.push(reject(line, Some(&id), &why));
            continue;
        };
        let mut more: Vec<String> = p
            .images
            .iter()
            .filter(|u| **u != photo && !shown.contains(u))
            .cloned()
            .collect();
        for v in &way.members {
            more.extend(v.images.iter().skip(1).cloned());
        }
        let mut item = FeedItem {
            line,
            shop_id: id,
            group: Some(p.key()),
            name: variation_name(way.members[0]).unwrap_or_else(|| p.name.clone()),
            colour: way.colour.clone(),
            photo,
            more_photos: more,
            ..shared.clone()
        };
        let mut compare = Vec::new();
        for v in &way.members {
            let (mut price, mut before) = prices(v);
            if price.is_none() {
                (price, before) = prices(p);
            }
            if item.currency.is_empty() {
                item.currency = v.currency.clone().unwrap_or_default();
            }
            compare.push(before);
            item.variants.push(Variant {
                sku: v.key(),
                size: size(v),
                price,
                stock: v.stock,
                availability: v.availability(),
            });
        }
        settle(&mut item, &compare);
        items.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{item, parsed};
    use super::*;
    use crate::ingest::feed::Format;

    const UP: &str = "https://cdn.shop.example/wp-content/uploads/2024/";

    #[test]
    fn export_excerpt() {
        let p = parsed("wc-product-export.csv", Format::WooCommerce);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 11);
        let groups: std::collections::HashSet<_> = p.items.iter().filter_map(|i| i.group.clone()).collect();
        assert_eq!(groups.len(), 5);

        let cap = item(&p, "WC-17532");
        assert_eq!(cap.group, None);
        assert_eq!(cap.category, vec!["Accessories", "Headwear", "Caps"]);
        assert_eq!(cap.photo, format!("{UP}01/adidas-unisex-sports-black-caps.jpg"));
        assert_eq!((cap.price, cap.availability), (Some(1339.0), Availability::InStock));
        assert_eq!(cap.variants.len(), 1);
        assert_eq!(cap.variants[0].sku, "WC-17532");
        assert_eq!(cap.colour, "Black");
        assert_eq!(
            cap.description,
            "ADIDAS Unisex Sports Black Caps. Colour: Black Season: Fall Occasion: Sports"
        );

        let hoodie = item(&p, "WC-21147");
        let v: Vec<_> = hoodie
            .variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.price, v.stock, v.availability))
            .collect();
        assert_eq!(
            v,
            vec![
                ("WC-21147-grey-s", "S", Some(1149.0), Some(2), Availability::InStock),
                ("WC-21147-grey-m", "M", Some(1149.0), Some(0), Availability::OutOfStock),
                ("WC-21147-grey-l", "L", Some(1149.0), Some(9), Availability::InStock),
                ("WC-21147-grey-xl", "XL", Some(1149.0), Some(9), Availability::InStock),
            ]
        );
        assert_eq!(hoodie.group.as_deref(), Some("WC-21147"));
        assert_eq!(hoodie.name, "s.Oliver Women Grey Hooded Sweatshirt");

        // Two colours, each its variation image; the parent's second image is the blue one's.
        let navy = item(&p, "WC-13110-navy-blue");
        let blue = item(&p, "WC-13110-blue");
        assert_eq!(blue.photo, format!("{UP}09/adidas-men-solid-blue-shorts.jpg"));
        assert_eq!(blue.name, "ADIDAS Men Solid Blue Shorts");
        assert_eq!(blue.price, Some(1539.0));
        assert!(navy.more_photos.is_empty() && blue.more_photos.is_empty());

        // One colour name, two photos: two colourways.
        let heels: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("WC-18556"))
            .collect();
        let names: Vec<_> = heels.iter().map(|i| (i.shop_id.as_str(), i.name.as_str())).collect();
        assert_eq!(
            names,
            vec![
                ("WC-18556-brown", "Catwalk Women Casual Brown Flats"),
                ("WC-18556-brown-2", "Catwalk Women Buckel Brown Heels")
            ]
        );
        assert_eq!(heels[1].category, vec!["Footwear", "Shoes", "Heels"]);
        let kurtas: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("WC-15101"))
            .collect();
        assert_eq!(kurtas.len(), 3);
        assert_eq!(kurtas[2].shop_id, "WC-15101-brown");
        assert_eq!(kurtas[2].name, "Mother Earth Women Beige Kurta");
    }

    #[test]
    fn variations_before_parents_by_id_and_orphans() {
        let p = parsed("woocommerce_edge.csv", Format::WooCommerce);
        let ids: Vec<_> = p.items.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["DRESS-rot", "DRESS-blau", "id:300", "BELT, LEATHER", "ebook-cover"]
        );
        let red = item(&p, "DRESS-rot");
        assert_eq!(red.colour, "Rot");
        assert_eq!(red.photo, "https://shop.example/wp-content/uploads/dress-red.jpg");
        assert_eq!(red.group.as_deref(), Some("DRESS"));
        assert_eq!(red.brand, "Acme");
        assert_eq!(red.gender, "Women");
        assert_eq!(red.category, vec!["Women", "Dresses, Skirts", "Maxi"]);
        let v: Vec<_> = red
            .variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.price, v.availability))
            .collect();
        assert_eq!(
            v,
            vec![
                ("DRESS-R-S", "S", Some(40.0), Availability::InStock),
                ("DRESS-R-M", "M", Some(40.0), Availability::Backorder)
            ]
        );
        assert_eq!((red.price, red.compare_at), (Some(40.0), Some(50.0)));
        // A blue variation without its own image takes the parent's photo no colourway shows.
        let blue = item(&p, "DRESS-blau");
        assert_eq!(blue.photo, "https://shop.example/wp-content/uploads/dress-blue.jpg");
        // The parent has no SKU: its variation names it `id:300`.
        let scarf = item(&p, "id:300");
        assert_eq!(scarf.variants.len(), 1);
        assert_eq!(scarf.variants[0].sku, "id:301");
        assert_eq!(scarf.gender, "Unisex");
        assert_eq!(scarf.variants[0].stock, Some(4));
        let belt = item(&p, "BELT, LEATHER");
        assert_eq!(belt.group, None);
        assert_eq!(
            belt.more_photos,
            vec!["https://shop.example/wp-content/uploads/belt-2.jpg"]
        );
        assert_eq!(item(&p, "ebook-cover").link, "https://example.org/ebook");
        let why: Vec<_> = p
            .rejected
            .iter()
            .map(|r| (r.line, r.id.as_deref(), r.reason.as_str()))
            .collect();
        assert_eq!(
            why,
            vec![
                (
                    Some(9),
                    Some("GHOST-1"),
                    "the variation's parent `GHOST` is not in the file"
                ),
                (
                    Some(10),
                    Some("SET"),
                    "a grouped product is a set of other products, each imported from its own row"
                ),
                (
                    Some(11),
                    Some("WEIRD"),
                    "unknown Type `bundle` (expected simple, variable, variation, grouped or external)"
                ),
                (Some(12), Some("NOIMG"), "no photo: Images is empty"),
            ]
        );
    }

    #[test]
    fn lists_names_and_missing_columns() {
        assert_eq!(split_list("a\\, b, c ,, d"), vec!["a, b", "c", "d"]);
        assert_eq!(
            deepest_category("Apparel, Apparel > Topwear, Sale > Summer > Shirts > Linen, Apparel > Topwear > Shirts"),
            vec!["Sale", "Summer", "Shirts", "Linen"]
        );
        let e = parse("ID,SKU,Name\n1,x,y\n", &[]).unwrap_err();
        assert!(e.contains("`Type`") && e.contains("Regular price"), "{e}");
        let e = parse("ID,Type,SKU\n1,simple,x\n", &[]).unwrap_err();
        assert!(e.contains("`Images`"), "{e}");
    }
}
