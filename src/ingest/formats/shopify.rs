//! Shopify's product CSV, in both column generations: the classic export (`Handle`, `Body (HTML)`,
//! `Variant SKU`, `Variant Price`, `Image Src`, ...) and the newer one (`URL handle`,
//! `Description`, `SKU`, `Price`, `Product image URL`, ...), headers matched case-insensitively.
//!
//! A product is the rows of one handle: the first carries the product's fields, further rows
//! with a blank title are variants that inherit them, and rows with only an image add photos.
//! The option named Color/Colour (Farbe, Couleur, カラー, ...) splits the product into colourways;
//! the other options (Size, ...) make the variants.
//!
//! Shop id: the handle when the product has one colourway, else the handle plus `-` and the colour
//! as a slug (`tee-light-blue`), with `-2`, `-3` for a further colourway of a colour already named
//! (same colour, another variant image). All colourways of a handle share it as `group`.

use std::collections::{HashMap, HashSet};

use super::table::{Overrides, Row, Table, missing};
use super::{Way, colourway_ids, colourways, from_stock, gender_for, is_colour_name, is_size_name, parse_stock};
use super::{reject, settle, slug};
use crate::ingest::feed::{Availability, Decimals, FeedItem, Parsed, Variant, category_path, parse_price, strip_html};

const NAME: &str = "Shopify product CSV";

/// The columns a Shopify export is recognised by, for messages.
const EXPECTED: [&str; 10] = [
    "Handle (or URL handle)",
    "Title",
    "Body (HTML) (or Description)",
    "Vendor",
    "Product Category",
    "Type",
    "Option1 Name/Value",
    "Variant SKU (or SKU)",
    "Variant Price (or Price)",
    "Image Src (or Product image URL)",
];

/// `--map` fields that override a Shopify column.
const FIELDS: [&str; 13] = [
    "id",
    "name",
    "description",
    "brand",
    "category",
    "gender",
    "colour",
    "sku",
    "price",
    "compare_at",
    "stock",
    "link",
    "image",
];

/// Where each field is in this file's header.
struct Cols {
    handle: usize,
    title: usize,
    body: Option<usize>,
    vendor: Option<usize>,
    category: Option<usize>,
    kind: Option<usize>,
    options: [(Option<usize>, Option<usize>); 3],
    colour: Option<usize>,
    sku: Option<usize>,
    qty: Option<usize>,
    policy: Option<usize>,
    tracker: Option<usize>,
    price: Option<usize>,
    compare: Option<usize>,
    image: Option<usize>,
    position: Option<usize>,
    variant_image: Option<usize>,
    gender: Option<usize>,
    age_group: Option<usize>,
    link: Option<usize>,
    status: Option<usize>,
    published: Option<usize>,
}

impl Cols {
    fn find(t: &Table, map: &Overrides) -> Result<Cols, String> {
        let col = |field: &str, names: &[&str]| t.column(map, field, names);
        let handle = col("id", &["Handle", "URL handle"])?.ok_or_else(|| missing(NAME, "Handle", &EXPECTED))?;
        let title = col("name", &["Title"])?.ok_or_else(|| missing(NAME, "Title", &EXPECTED))?;
        let image = col("image", &["Image Src", "Product image URL", "Image URL"])?;
        let variant_image = t.find(&["Variant Image", "Variant image URL"]);
        if image.is_none() && variant_image.is_none() {
            return Err(missing(NAME, "Image Src", &EXPECTED));
        }
        let option = |n: usize| {
            (
                t.find(&[&format!("Option{n} Name")]),
                t.find(&[&format!("Option{n} Value")]),
            )
        };
        Ok(Cols {
            handle,
            title,
            body: col("description", &["Body (HTML)", "Description", "Body HTML", "Body"])?,
            vendor: col("brand", &["Vendor"])?,
            category: col(
                "category",
                &["Product Category", "Standardized Product Type", "Standard Product Type"],
            )?,
            kind: t.find(&["Type", "Custom Product Type"]),
            options: [option(1), option(2), option(3)],
            colour: match map.get("colour") {
                Some(_) => col("colour", &[])?,
                None => t.find_by(|h| h.starts_with("color (") || h.starts_with("colour (")),
            },
            sku: col("sku", &["Variant SKU", "SKU"])?,
            qty: col(
                "stock",
                &["Variant Inventory Qty", "Inventory quantity", "Inventory Qty"],
            )?,
            policy: t.find(&["Variant Inventory Policy", "Continue selling when out of stock"]),
            tracker: t.find(&["Variant Inventory Tracker", "Inventory tracker"]),
            price: col("price", &["Variant Price", "Price"])?,
            compare: col(
                "compare_at",
                &["Variant Compare At Price", "Compare-at price", "Compare At Price"],
            )?,
            image,
            position: t.find(&["Image Position"]),
            variant_image,
            gender: match col("gender", &["Google Shopping / Gender"])? {
                Some(c) => Some(c),
                None => t.find_by(|h| h.starts_with("target gender")),
            },
            age_group: t.find(&["Google Shopping / Age Group"]),
            link: col("link", &["Product URL", "Online Store URL", "URL", "Link"])?,
            status: t.find(&["Status"]),
            published: t.find(&["Published", "Published on online store"]),
        })
    }
}

/// One variant row.
struct VariantRow {
    line: usize,
    options: [String; 3],
    sku: String,
    price: Option<f64>,
    currency: Option<String>,
    compare: Option<f64>,
    stock: Option<i64>,
    availability: Availability,
    image: String,
}

/// The rows of one handle.
#[derive(Default)]
struct Product {
    line: usize,
    handle: String,
    rows: usize,
    product_row: bool,
    title: String,
    body: String,
    vendor: String,
    category: String,
    kind: String,
    colour: String,
    gender: String,
    age_group: String,
    link: String,
    /// Why the shop hides it, from `Status` (draft, archived) or `Published` (false).
    hidden: Option<String>,
    option_names: [String; 3],
    /// (position, order seen, URL).
    images: Vec<(u32, usize, String)>,
    variants: Vec<VariantRow>,
}

/// Reads a Shopify product CSV.
pub(crate) fn parse(text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let overrides = Overrides::new(map, &FIELDS, "shopify")?;
    let mut t = Table::open(text, super::table::sniff_delimiter(text), NAME)?;
    let c = Cols::find(&t, &overrides)?;
    let mut products: Vec<Product> = Vec::new();
    let mut by_handle: HashMap<String, usize> = HashMap::new();
    let mut rejected = Vec::new();
    let mut seq = 0;
    while let Some(row) = t.next_row() {
        let handle = row.get(Some(c.handle));
        if handle.is_empty() {
            rejected.push(reject(
                row.line,
                None,
                "no Handle: every Shopify row names its product's handle",
            ));
            continue;
        }
        let i = *by_handle.entry(handle.to_string()).or_insert_with(|| {
            products.push(Product {
                line: row.line,
                handle: handle.to_string(),
                ..Default::default()
            });
            products.len() - 1
        });
        let p = &mut products[i];
        p.rows += 1;
        if !row.get(Some(c.title)).is_empty() && !p.product_row {
            take_product_fields(p, &row, &c);
        }
        for (n, (name, _)) in c.options.iter().enumerate() {
            if p.option_names[n].is_empty() {
                p.option_names[n] = row.get(*name).to_string();
            }
        }
        let image = row.get(c.image);
        if !image.is_empty() {
            let position = row.get(c.position).parse().unwrap_or(u32::MAX);
            p.images.push((position, seq, image.to_string()));
            seq += 1;
        }
        match variant_row(&row, &c) {
            Err(why) => rejected.push(reject(row.line, Some(handle), &why)),
            Ok(Some(v)) => p.variants.push(v),
            Ok(None) if image.is_empty() && row.get(Some(c.title)).is_empty() => rejected.push(reject(
                row.line,
                Some(handle),
                "neither a product, a variant nor an image: the row has a handle and nothing else",
            )),
            Ok(None) => {}
        }
    }
    rejected.append(&mut t.rejected);
    let mut items = Vec::new();
    for p in products {
        build(p, &mut items, &mut rejected);
    }
    Ok(Parsed { items, rejected })
}

/// Copies the product's own fields from its first titled row.
fn take_product_fields(p: &mut Product, row: &Row, c: &Cols) {
    p.product_row = true;
    p.title = row.get(Some(c.title)).to_string();
    p.body = row.get(c.body).to_string();
    p.vendor = row.get(c.vendor).to_string();
    p.category = row.get(c.category).to_string();
    p.kind = row.get(c.kind).to_string();
    p.colour = row.get(c.colour).to_string();
    p.gender = row.get(c.gender).to_string();
    p.age_group = row.get(c.age_group).to_string();
    let link = row.get(c.link);
    if link.starts_with("http://") || link.starts_with("https://") {
        p.link = link.to_string();
    }
    p.hidden = hidden(row.get(c.status), row.get(c.published));
}

/// Why a product is not on sale, from its `Status` (`active`, `draft`, `archived`, and
/// `unlisted` in newer admins) and `Published` (`TRUE`/`FALSE`); `None` when it is, or when
/// the export does not say.
fn hidden(status: &str, published: &str) -> Option<String> {
    let status = status.trim().to_ascii_lowercase();
    if matches!(status.as_str(), "draft" | "archived" | "unlisted") {
        return Some(status);
    }
    matches!(published.trim().to_ascii_lowercase().as_str(), "false" | "no" | "0").then(|| "unpublished".to_string())
}

/// The row's variant, when it has any variant field (an option value, SKU, price or quantity);
/// a price that cannot be read is the row's error.
fn variant_row(row: &Row, c: &Cols) -> Result<Option<VariantRow>, String> {
    let options = [0, 1, 2].map(|n| row.get(c.options[n].1).to_string());
    let has_variant = options.iter().any(|o| !o.is_empty())
        || [c.sku, c.price, c.qty, c.compare, c.variant_image]
            .iter()
            .any(|col| !row.get(*col).is_empty());
    if !has_variant {
        return Ok(None);
    }
    let (price, currency) =
        parse_price(row.get(c.price), Decimals::PointOrComma)?.map_or((None, None), |(p, cur)| (Some(p), cur));
    let compare = parse_price(row.get(c.compare), Decimals::PointOrComma)?.map(|(p, _)| p);
    let stock = parse_stock(row.get(c.qty));
    let policy = row.get(c.policy).to_ascii_lowercase();
    let keeps_selling = matches!(policy.as_str(), "continue" | "true" | "yes" | "1");
    // An untracked variant (tracker column present, blank) is always for sale.
    let untracked = c.tracker.is_some() && row.get(c.tracker).is_empty();
    let availability = if untracked && stock.is_none_or(|n| n <= 0) {
        Availability::InStock
    } else {
        from_stock(stock, keeps_selling)
    };
    Ok(Some(VariantRow {
        line: row.line,
        options,
        sku: row.get(c.sku).to_string(),
        price,
        currency,
        compare,
        stock,
        availability,
        image: row.get(c.variant_image).to_string(),
    }))
}

/// Turns one handle's rows into its colourways.
fn build(p: Product, items: &mut Vec<FeedItem>, rejected: &mut Vec<crate::ingest::feed::Rejected>) {
    if !p.product_row {
        let why = format!(
            "no row of handle `{}` has a Title: its product row is missing ({} of its rows left out)",
            p.handle, p.rows
        );
        rejected.push(reject(p.line, Some(&p.handle), &why));
        return;
    }
    let mut images = p.images.clone();
    images.sort_by_key(|(pos, seq, _)| (*pos, *seq));
    let images: Vec<String> = images.into_iter().map(|(_, _, u)| u).collect();
    let colour_opt = (0..3).find(|&n| is_colour_name(&p.option_names[n]));
    let size_opt = (0..3).find(|&n| Some(n) != colour_opt && is_size_name(&p.option_names[n]));
    let mut category = category_path(&p.category);
    // A bare taxonomy id (`1604`, `gid://shopify/TaxonomyCategory/aa-1`) is no path.
    if p.category.chars().all(|c| c.is_ascii_digit()) || p.category.starts_with("gid://") {
        category.clear();
    }
    // Type is the shop's own, finer word (`Tunics` under `... > Topwear`): the leaf.
    if !p.kind.is_empty() && !category.iter().any(|c| c.eq_ignore_ascii_case(&p.kind)) {
        category.push(p.kind.clone());
    }
    let base = FeedItem {
        line: p.line,
        shop_id: p.handle.clone(),
        group: Some(p.handle.clone()),
        name: p.title.clone(),
        description: strip_html(&p.body),
        brand: p.vendor.clone(),
        category,
        gender: gender_for(&p.gender, &p.age_group),
        gender_raw: p.gender.clone(),
        colour: p.colour.clone(),
        link: p.link.clone(),
        hidden: p.hidden.clone(),
        ..Default::default()
    };
    let rows: Vec<(String, String, VariantRow)> = p
        .variants
        .into_iter()
        .map(|v| {
            let colour = colour_opt
                .map(|n| v.options[n].clone())
                .unwrap_or_else(|| p.colour.clone());
            (colour, v.image.clone(), v)
        })
        .collect();
    let mut ways: Vec<Way<VariantRow>> = colourways(rows);
    if ways.is_empty() {
        ways.push(Way {
            colour: p.colour.clone(),
            photo: None,
            members: Vec::new(),
        });
    }
    let colours: Vec<&str> = ways.iter().map(|w| w.colour.as_str()).collect();
    let ids = colourway_ids(&p.handle, &colours);
    // A colourway without a variant image takes the first product image no other colourway shows.
    let claimed: HashSet<&String> = ways.iter().filter_map(|w| w.photo.as_ref()).collect();
    let spare = images.iter().find(|u| !claimed.contains(u)).or(images.first()).cloned();
    let photos: Vec<Option<String>> = ways.iter().map(|w| w.photo.clone().or_else(|| spare.clone())).collect();
    // A photo another colourway shows is not a further photo of this one.
    let shown: HashSet<&String> = photos.iter().flatten().collect();
    for (i, (way, id)) in ways.into_iter().zip(ids).enumerate() {
        // A colourway starts at its first row; the first one at the product's row.
        let line = way
            .members
            .first()
            .map_or(p.line, |v| if i == 0 { v.line.min(p.line) } else { v.line });
        let Some(photo) = photos[i].clone() else {
            let why = match way.colour.as_str() {
                "" => "no photo: no Variant Image and no Image Src".to_string(),
                c => format!("no photo: colour `{c}` has no Variant Image and the product no Image Src"),
            };
            rejected.push(reject(line, Some(&id), &why));
            continue;
        };
        let mut item = FeedItem {
            line,
            shop_id: id,
            colour: way.colour.clone(),
            photo: photo.clone(),
            more_photos: images
                .iter()
                .filter(|u| **u != photo && !shown.contains(u))
                .cloned()
                .collect(),
            ..base.clone()
        };
        let mut compare = Vec::new();
        for v in way.members {
            if item.currency.is_empty() {
                item.currency = v.currency.clone().unwrap_or_default();
            }
            // The size option first, then any other option that shares the photo.
            let size: Vec<&str> = size_opt
                .into_iter()
                .chain((0..3).filter(|&n| Some(n) != colour_opt && Some(n) != size_opt))
                .map(|n| v.options[n].as_str())
                .filter(|o| !o.is_empty() && !o.eq_ignore_ascii_case("default title"))
                .collect();
            compare.push(v.compare);
            // The importer keys variants by SKU; without one, the handle and option values stand in.
            let sku = if v.sku.is_empty() {
                std::iter::once(p.handle.clone())
                    .chain(
                        v.options
                            .iter()
                            .filter(|o| !o.eq_ignore_ascii_case("default title"))
                            .map(|o| slug(o)),
                    )
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("-")
            } else {
                v.sku
            };
            item.variants.push(Variant {
                sku,
                size: size.join(" / "),
                price: v.price,
                stock: v.stock,
                availability: v.availability,
            });
        }
        settle(&mut item, &compare);
        items.push(item);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, item, parsed};
    use super::*;
    use crate::ingest::feed::Format;

    const CDN: &str = "https://cdn.shop.example/s/files/1/0612/products/";

    #[test]
    fn classic_export_excerpt() {
        let p = parsed("shopify_products_export.csv", Format::Shopify);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 12);
        let groups: std::collections::HashSet<_> = p.items.iter().map(|i| i.group.clone()).collect();
        assert_eq!(groups.len(), 9);

        let tunic = item(&p, "mother-earth-women-plain-mangalgiri-green-tunics-12768");
        assert_eq!(tunic.line, 2);
        assert_eq!(tunic.name, "Mother Earth Women Plain Mangalgiri Green Tunics");
        assert_eq!(tunic.brand, "Mother");
        assert_eq!(
            tunic.category,
            vec!["Apparel & Accessories", "Apparel", "Topwear", "Tunics"]
        );
        assert_eq!((tunic.gender.as_str(), tunic.gender_raw.as_str()), ("Women", "Female"));
        assert_eq!(tunic.colour, "Green");
        assert_eq!(
            tunic.photo,
            format!("{CDN}mother-earth-women-plain-mangalgiri-green-tunics_12768.jpg?v=1612768")
        );
        assert!(
            tunic
                .description
                .starts_with("Mother Earth Women Plain Mangalgiri Green Tunics. Colour: Green")
        );
        let v: Vec<_> = tunic
            .variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.price, v.stock, v.availability))
            .collect();
        assert_eq!(
            v,
            vec![
                (
                    "MOTHER-EARTH-12768-S",
                    "S",
                    Some(1279.0),
                    Some(3),
                    Availability::InStock
                ),
                (
                    "MOTHER-EARTH-12768-M",
                    "M",
                    Some(1279.0),
                    Some(0),
                    Availability::OutOfStock
                ),
                (
                    "MOTHER-EARTH-12768-L",
                    "L",
                    Some(1279.0),
                    Some(0),
                    Availability::OutOfStock
                ),
                (
                    "MOTHER-EARTH-12768-XL",
                    "XL",
                    Some(1279.0),
                    Some(0),
                    Availability::OutOfStock
                ),
            ]
        );
        assert_eq!((tunic.price, tunic.compare_at), (Some(1279.0), Some(1662.7)));
        assert_eq!(tunic.availability, Availability::InStock);
        assert_eq!(tunic.currency, "");
        assert!(tunic.link.is_empty() && tunic.more_photos.is_empty());

        // Two colours: two colourways in one group, each with its variant image; the image-only
        // row is the orange one's photo, so it is not a further photo of the brown one.
        let brown = item(&p, "lino-perros-brown-women-casual-sling-bag-22563-brown");
        let orange = item(&p, "lino-perros-brown-women-casual-sling-bag-22563-orange");
        assert_eq!(brown.group, orange.group);
        assert_eq!(
            orange.photo,
            format!("{CDN}lino-perros-women-orange-handbag_54487.jpg?v=1654487")
        );
        assert_eq!(orange.line, 12);
        assert!(brown.more_photos.is_empty() && orange.more_photos.is_empty());
        assert_eq!(orange.name, brown.name);
        assert_eq!(
            (orange.price, orange.availability),
            (Some(2339.0), Availability::OutOfStock)
        );

        let heels: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("catwalk-women-assorted-multi-heels-17685"))
            .collect();
        let colours: Vec<_> = heels.iter().map(|i| (i.colour.as_str(), i.variants.len())).collect();
        assert_eq!(colours, vec![("Multi", 4), ("Brown", 4), ("Beige", 4)]);
        assert_eq!(heels[1].price, Some(5189.0));
        assert_eq!(
            heels[1].category,
            vec!["Apparel & Accessories", "Footwear", "Shoes", "Heels"]
        );

        let infant = item(&p, "gini-and-jony-boy-s-karl-blue-white-infant-kidswear-4964");
        assert!(
            infant.description.starts_with("Gini and Jony Boy's Karl"),
            "{}",
            infant.description
        );
        assert_eq!(item(&p, "palm-tree-boys-check-black-shirt-34029").gender, "Unisex");
        let perfume = item(&p, "nina-ricci-women-apple-perfume-36700");
        assert_eq!(perfume.variants[0].size, "One Size");
        assert_eq!(perfume.compare_at, Some(1311.7));
    }

    #[test]
    fn newer_export_with_bom_crlf_and_edge_rows() {
        let p = parsed("shopify_new_bom_crlf.csv", Format::Shopify);
        let ids: Vec<_> = p.items.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "linen-shirt-weiß",
                "linen-shirt-navy",
                "silk-scarf",
                "draft-cap",
                "wool-socks"
            ]
        );
        // Colour is Option2 here (Farbe), size Option1 (Größe).
        let white = item(&p, "linen-shirt-weiß");
        assert_eq!(white.colour, "Weiß");
        assert_eq!(white.group.as_deref(), Some("linen-shirt"));
        assert_eq!(
            white.photo,
            "https://cdn.shop.example/s/files/1/0612/products/linen-white.jpg?v=11"
        );
        assert_eq!(
            white.more_photos,
            vec!["https://cdn.shop.example/s/files/1/0612/products/linen-back.jpg?v=13"]
        );
        let sizes: Vec<_> = white
            .variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.availability))
            .collect();
        assert_eq!(
            sizes,
            vec![
                ("LS-W-S", "S", Availability::InStock),
                ("LS-W-M", "M", Availability::Backorder)
            ]
        );
        assert_eq!(white.description, "Light linen. Line two & more.");
        assert_eq!(white.category, vec!["Apparel & Accessories", "Clothing", "Shirts"]);
        assert_eq!(white.gender, "Men");
        assert_eq!(white.link, "https://shop.example/products/linen-shirt");
        let navy = item(&p, "linen-shirt-navy");
        // No variant image for navy: the product's first image, by position.
        assert_eq!(
            navy.photo,
            "https://cdn.shop.example/s/files/1/0612/products/linen-navy.jpg?v=12"
        );
        assert_eq!((navy.price, navy.compare_at), (Some(45.0), Some(60.0)));
        // A single "Default Title" variant, the category from Type, stock blank.
        let scarf = item(&p, "silk-scarf");
        assert_eq!(scarf.category, vec!["Scarves"]);
        assert_eq!(scarf.variants.len(), 1);
        assert_eq!(scarf.variants[0].size, "");
        assert_eq!(scarf.variants[0].stock, None);
        assert_eq!(scarf.availability, Availability::Unknown);
        assert_eq!(scarf.currency, "EUR");
        assert_eq!(scarf.gender, "Girls");
        // Drafts are kept: the importer decides.
        let cap = item(&p, "draft-cap");
        assert_eq!(cap.name, "Draft Cap");
        // No SKU: the handle and the option values name the variant.
        assert_eq!(cap.variants[0].sku, "draft-cap-one-size-red");
        assert_eq!(cap.colour, "Red");
        let socks = item(&p, "wool-socks");
        assert_eq!(socks.variants[0].availability, Availability::InStock);
        let why: Vec<_> = p
            .rejected
            .iter()
            .map(|r| (r.line, r.id.as_deref(), r.reason.as_str()))
            .collect();
        assert_eq!(
            why,
            vec![
                (
                    Some(8),
                    Some("linen-shirt"),
                    "neither a product, a variant nor an image: the row has a handle and nothing else"
                ),
                (
                    Some(12),
                    Some("orphan-variants"),
                    "no row of handle `orphan-variants` has a Title: its product row is missing (1 of its rows left out)"
                ),
                (
                    Some(13),
                    Some("no-photo"),
                    "no photo: no Variant Image and no Image Src"
                ),
                (Some(14), None, "2 fields where the header has 27"),
                (
                    Some(15),
                    None,
                    "no Handle: every Shopify row names its product's handle"
                ),
            ]
        );
    }

    #[test]
    fn a_missing_required_column_is_named() {
        let e = parse("Handle,Variant SKU\nx,y\n", &[]).unwrap_err();
        assert!(e.contains("`Title`") && e.contains("Image Src"), "{e}");
        let e = parse("Title,Image Src\nx,y\n", &[]).unwrap_err();
        assert!(e.contains("`Handle`"), "{e}");
        let text = fixture("shopify_products_export.csv");
        let map = vec![("image".to_string(), "Photo".to_string())];
        assert!(parse(&text, &map).unwrap_err().contains("`Photo`"));
        let map = vec![("season".to_string(), "Tags".to_string())];
        assert!(parse(&text, &map).unwrap_err().contains("season"));
    }
}
