//! Readers for shop catalogue exports: Shopify's product CSV, Google Merchant Center feeds (TSV,
//! RSS and Atom XML), WooCommerce's product CSV, H&M's `articles.csv`, and any CSV or TSV named
//! column by column with `--map`. Each turns a file's text into [`FeedItem`]s, one per
//! colourway with its own photo, its sizes as variants; rows that cannot be read are
//! [`Rejected`] with their line and the rest still parse.
//!
//! Shared rules, so every format behaves alike: a product's variants are split into colourways by
//! colour and photo (two colourways may share a colour name and differ in photo, and each is a
//! product someone can like); a colourway's `price` is its lowest variant price and it is in stock
//! when any variant is; shop ids are checked unique in the file.

mod hm;
mod mapped;
mod merchant;
mod shopify;
mod table;
mod woocommerce;

use std::collections::HashMap;
use std::path::Path;

use crate::ingest::feed::{Availability, FeedItem, Format, Parsed, Rejected, Variant, normalise_gender};

/// Most variants kept for one colourway; more is not a catalogue but a broken export.
const MAX_VARIANTS: usize = 1000;

/// Most further photos kept for one colourway.
const MAX_PHOTOS: usize = 64;

/// Google's namespace for Merchant Center attributes (`g:`).
pub(crate) const GOOGLE_NS: &str = "http://base.google.com/ns/1.0";

/// The Kaggle `styles.csv` columns that tell it apart (the importer needs only `id`).
const KAGGLE: [&str; 5] = [
    "id",
    "mastercategory",
    "subcategory",
    "articletype",
    "productdisplayname",
];

/// The format of a catalogue file, from its name, first bytes, header or XML root; None when unknown.
///
/// The content decides; the name only helps where the content is thin (`styles.csv` or
/// `articles.csv` with fewer columns than usual).
pub fn detect(path: &Path, text: &str) -> Option<Format> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('<') {
        return merchant::is_google_xml(text).then_some(Format::MerchantXml);
    }
    let delimiter = table::sniff_delimiter(text);
    let header: Vec<String> = crate::ingest::csv::Records::new(text)
        .delimiter(delimiter)
        .max_field_bytes(1024)
        .next()?
        .ok()?
        .fields
        .iter()
        .map(|h| table::norm(h))
        .collect();
    let has = |name: &str| header.iter().any(|h| h == name);
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if (has("handle") || has("url handle")) && has("title") {
        return Some(Format::Shopify);
    }
    if has("type") && has("sku") && has("parent") && has("regular price") {
        return Some(Format::WooCommerce);
    }
    if has("article_id") && (has("product_code") || file == "articles.csv") {
        return Some(Format::Hm);
    }
    let merchant: Vec<String> = header.iter().map(|h| merchant::attribute_name(h)).collect();
    let has_attr = |name: &str| merchant.iter().any(|h| h == name);
    if has_attr("id") && has_attr("title") && has_attr("image_link") {
        return Some(Format::MerchantTsv);
    }
    if KAGGLE.iter().all(|c| has(c)) || (file == "styles.csv" && has("id")) {
        return Some(Format::Kaggle);
    }
    None
}

/// Reads `text` (the whole file, UTF-8, a leading BOM allowed, LF or CRLF) as `format`; `map` is the `--map field=column` pairs for Format::Mapped (and may override columns of the other CSV formats). Err is a one-line message for a file that cannot be read at all (no usable header, a required column missing — name it and list what was expected).
pub fn parse(format: Format, text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = match format {
        Format::Kaggle => {
            return Err("a Kaggle styles.csv is handled by the Kaggle importer, not the shop formats".into());
        }
        Format::Shopify => shopify::parse(text, map)?,
        Format::MerchantTsv => merchant::parse_tsv(text, map)?,
        Format::MerchantXml => {
            if !map.is_empty() {
                return Err("--map applies to CSV and TSV files; a Merchant XML feed names its own fields".into());
            }
            merchant::parse_xml(text)?
        }
        Format::WooCommerce => woocommerce::parse(text, map)?,
        Format::Hm => hm::parse(text, map)?,
        Format::Mapped => mapped::parse(text, map)?,
    };
    Ok(finish(parsed))
}

/// Checks what every format must hold (a shop id, a photo, ids unique in the file), caps variants
/// and photos, and puts items and rejections in file order.
fn finish(parsed: Parsed) -> Parsed {
    let Parsed {
        mut items,
        mut rejected,
    } = parsed;
    items.sort_by_key(|i| i.line);
    let mut kept: Vec<FeedItem> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for mut item in items {
        if item.shop_id.is_empty() {
            rejected.push(reject(item.line, None, "no id"));
            continue;
        }
        if item.photo.is_empty() {
            rejected.push(reject(item.line, Some(&item.shop_id), "no photo"));
            continue;
        }
        if let Some(first) = seen.get(&item.shop_id) {
            let why = format!("id `{}` is already used by the product on line {first}", item.shop_id);
            rejected.push(reject(item.line, Some(&item.shop_id), &why));
            continue;
        }
        if item.variants.len() > MAX_VARIANTS {
            let why = format!(
                "{} variants for one colourway; the first {MAX_VARIANTS} are kept",
                item.variants.len()
            );
            rejected.push(reject(item.line, Some(&item.shop_id), &why));
            item.variants.truncate(MAX_VARIANTS);
        }
        let photo = item.photo.clone();
        let mut more = Vec::new();
        for p in std::mem::take(&mut item.more_photos) {
            if !p.is_empty() && p != photo && !more.contains(&p) && more.len() < MAX_PHOTOS {
                more.push(p);
            }
        }
        item.more_photos = more;
        seen.insert(item.shop_id.clone(), item.line);
        kept.push(item);
    }
    rejected.sort_by_key(|r| r.line);
    Parsed { items: kept, rejected }
}

/// How many products name each currency, when the feed names more than one: a catalogue's
/// prices are compared as numbers (`--max-price`, the feed's price bands), so the import
/// reports a mix rather than letting 10 EUR pass for 10 USD in silence.
pub fn mixed_currencies(items: &[FeedItem]) -> Option<std::collections::BTreeMap<String, usize>> {
    let mut counts = std::collections::BTreeMap::new();
    for i in items.iter().filter(|i| !i.currency.is_empty()) {
        *counts.entry(i.currency.clone()).or_default() += 1;
    }
    (counts.len() > 1).then_some(counts)
}

/// A rejection with a line, maybe an id, and a reason.
pub(crate) fn reject(line: usize, id: Option<&str>, reason: &str) -> Rejected {
    Rejected {
        line: Some(line),
        id: id.filter(|i| !i.is_empty()).map(str::to_string),
        reason: reason.to_string(),
    }
}

/// `Light Blue` as `light-blue`: letters and digits (any script) lower-cased, the rest as single
/// dashes; what colour suffixes of shop ids are made of.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// True for an option or attribute name that means colour, in the languages shops export in.
pub(crate) fn is_colour_name(name: &str) -> bool {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pa_").unwrap_or(&n);
    [
        "color", "colour", "farbe", "couleur", "colore", "kleur", "färg", "farve", "farge", "kolor",
    ]
    .iter()
    .any(|w| n.contains(w))
        || ["cor", "カラー", "色", "颜色", "顏色", "색상", "цвет"].contains(&n)
}

/// True for an option or attribute name that means size.
pub(crate) fn is_size_name(name: &str) -> bool {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pa_").unwrap_or(&n);
    [
        "size", "größe", "groesse", "grösse", "taille", "talla", "taglia", "maat", "storlek", "rozmiar",
    ]
    .iter()
    .any(|w| n.contains(w))
        || ["størrelse", "tamanho", "サイズ", "尺码", "尺寸", "사이즈", "размер"].contains(&n)
}

/// True for an attribute name that means gender.
pub(crate) fn is_gender_name(name: &str) -> bool {
    let n = name.trim().to_lowercase();
    let n = n.strip_prefix("pa_").unwrap_or(&n);
    ["gender", "geschlecht", "genre", "sexe", "género", "genere", "geslacht"].contains(&n)
}

/// True for one of lookbook's gender words, as [`normalise_gender`] returns them.
pub(crate) fn known_gender(g: &str) -> bool {
    matches!(g, "Men" | "Women" | "Unisex" | "Boys" | "Girls" | "Kids")
}

/// The gender from a feed's gender and age group: Google's `male` with age group `kids` is a boy.
pub(crate) fn gender_for(raw: &str, age_group: &str) -> String {
    let g = normalise_gender(raw);
    let age = age_group.trim().to_ascii_lowercase();
    let kid = matches!(
        age.as_str(),
        "kids" | "kid" | "child" | "children" | "toddler" | "infant" | "newborn" | "baby"
    );
    if !kid {
        return g;
    }
    match g.as_str() {
        "Men" => "Boys".into(),
        "Women" => "Girls".into(),
        "Unisex" | "" => "Kids".into(),
        _ => g,
    }
}

/// Sets a colourway's price, compare-at price and availability from its variants: the lowest
/// price (and that variant's compare-at price, when above it), in stock when any variant is.
/// `compare_at` runs beside `item.variants`. An item without variants keeps what it has.
pub(crate) fn settle(item: &mut FeedItem, compare_at: &[Option<f64>]) {
    if item.variants.is_empty() {
        return;
    }
    let cheapest = item
        .variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.price.map(|p| (i, p)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((i, p)) = cheapest {
        item.price = Some(p);
        item.compare_at = compare_at.get(i).copied().flatten().filter(|c| *c > p);
    }
    item.availability = overall(&item.variants);
}

/// In stock when any variant is; else preorder, then backorder, when any is; out of stock when
/// every variant says so; unknown otherwise.
fn overall(variants: &[Variant]) -> Availability {
    let any = |a: Availability| variants.iter().any(|v| v.availability == a);
    if any(Availability::InStock) {
        Availability::InStock
    } else if any(Availability::Preorder) {
        Availability::Preorder
    } else if any(Availability::Backorder) {
        Availability::Backorder
    } else if variants.iter().all(|v| v.availability == Availability::OutOfStock) {
        Availability::OutOfStock
    } else {
        Availability::Unknown
    }
}

/// Availability from a stock count: more than none is in stock; none is out of stock, or on
/// backorder when the shop keeps selling.
pub(crate) fn from_stock(stock: Option<i64>, keeps_selling: bool) -> Availability {
    match stock {
        Some(n) if n > 0 => Availability::InStock,
        Some(_) if keeps_selling => Availability::Backorder,
        Some(_) => Availability::OutOfStock,
        None => Availability::Unknown,
    }
}

/// A stock count as exports write it (`12`, `12.0`, ` -3 `); None when blank or not a number.
pub(crate) fn parse_stock(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>()
        .ok()
        .or_else(|| t.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// One colourway while it is assembled: its colour, photo (None: take the product's), and the
/// members (variant rows) in file order.
pub(crate) struct Way<T> {
    /// The colour as first written.
    pub colour: String,
    /// Its own photo, when its variants name one.
    pub photo: Option<String>,
    /// Its variant rows.
    pub members: Vec<T>,
}

/// Splits a product's variant rows (colour, own photo or empty, row) into colourways, in file
/// order: one per colour and photo. A row without a photo joins the first colourway of its colour
/// that has one (a shop often sets the image on one size only), or a colourway of that colour
/// without a photo.
pub(crate) fn colourways<T>(rows: Vec<(String, String, T)>) -> Vec<Way<T>> {
    let mut first_photo: HashMap<String, String> = HashMap::new();
    for (colour, photo, _) in &rows {
        if !photo.is_empty() {
            first_photo.entry(slug(colour)).or_insert_with(|| photo.clone());
        }
    }
    let mut ways: Vec<Way<T>> = Vec::new();
    let mut index: HashMap<(String, Option<String>), usize> = HashMap::new();
    for (colour, photo, row) in rows {
        let key = slug(&colour);
        let photo = if photo.is_empty() {
            first_photo.get(&key).cloned()
        } else {
            Some(photo)
        };
        match index.get(&(key.clone(), photo.clone())) {
            Some(&i) => ways[i].members.push(row),
            None => {
                index.insert((key, photo.clone()), ways.len());
                ways.push(Way {
                    colour,
                    photo,
                    members: vec![row],
                });
            }
        }
    }
    ways
}

/// Shop ids for the colourways of one product whose own id is `base`: `base` alone when there is
/// one colourway; else `base-<colour>` (colour as [`slug`]), with `-2`, `-3`... in file order for
/// further colourways of a colour already named (same colour, another photo), and `base` for a
/// colourway without a colour.
pub(crate) fn colourway_ids(base: &str, colours: &[&str]) -> Vec<String> {
    if colours.len() == 1 {
        return vec![base.to_string()];
    }
    let mut count: HashMap<String, usize> = HashMap::new();
    colours
        .iter()
        .map(|c| {
            let s = slug(c);
            let name = if s.is_empty() {
                base.to_string()
            } else {
                format!("{base}-{s}")
            };
            let n = count.entry(name.clone()).or_insert(0);
            *n += 1;
            if *n == 1 { name } else { format!("{name}-{n}") }
        })
        .collect()
}

/// A list of URLs as exports write them in one field: comma-separated, where a comma starts a
/// new URL only when `http` (or `/`) follows it, so a CDN's `w_100,h_100` stays whole.
pub(crate) fn split_urls(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for part in s.split(',') {
        let t = part.trim_start();
        let starts_url = t.starts_with("http://") || t.starts_with("https://") || t.starts_with('/');
        if !current.is_empty() && !starts_url {
            current.push(',');
            current.push_str(part);
        } else {
            if !current.trim().is_empty() {
                out.push(current.trim().to_string());
            }
            current = part.to_string();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A fixture's path under tests/fixtures/shop.
    pub(crate) fn fixture_path(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/shop")
            .join(name)
    }

    /// A fixture's text.
    pub(crate) fn fixture(name: &str) -> String {
        std::fs::read_to_string(fixture_path(name)).unwrap()
    }

    /// The fixture parsed as `format` with no `--map`.
    pub(crate) fn parsed(name: &str, format: Format) -> Parsed {
        parse(format, &fixture(name), &[]).unwrap()
    }

    /// The item with this shop id.
    pub(crate) fn item<'a>(p: &'a Parsed, id: &str) -> &'a FeedItem {
        p.items.iter().find(|i| i.shop_id == id).unwrap_or_else(|| {
            panic!(
                "no item {id} in {:?}",
                p.items.iter().map(|i| &i.shop_id).collect::<Vec<_>>()
            )
        })
    }

    #[test]
    fn every_fixture_is_detected() {
        let cases = [
            ("shopify_products_export.csv", Some(Format::Shopify)),
            ("shopify_new_bom_crlf.csv", Some(Format::Shopify)),
            ("google_feed.tsv", Some(Format::MerchantTsv)),
            ("google_feed_gprefix.tsv", Some(Format::MerchantTsv)),
            ("google_feed.xml", Some(Format::MerchantXml)),
            ("google_atom.xml", Some(Format::MerchantXml)),
            ("google_cdata_entities.xml", Some(Format::MerchantXml)),
            ("wc-product-export.csv", Some(Format::WooCommerce)),
            ("woocommerce_edge.csv", Some(Format::WooCommerce)),
            ("hm/articles.csv", Some(Format::Hm)),
            ("hm/transactions_train.csv", None),
            ("mapped.csv", None),
            ("mapped.tsv", None),
            ("styles.csv", Some(Format::Kaggle)),
        ];
        for (name, want) in cases {
            assert_eq!(detect(&fixture_path(name), &fixture(name)), want, "{name}");
        }
    }

    #[test]
    fn detection_copes_with_bom_crlf_and_thin_headers() {
        let p = Path::new("x.csv");
        assert_eq!(detect(p, "\u{feff}Handle,Title\r\nx,y\r\n"), Some(Format::Shopify));
        assert_eq!(detect(p, " Title , URL handle \r\n"), Some(Format::Shopify));
        assert_eq!(detect(p, "g:id\tg:title\tg:image_link\r\n"), Some(Format::MerchantTsv));
        assert_eq!(
            detect(
                p,
                "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName\n"
            ),
            Some(Format::Kaggle)
        );
        assert_eq!(detect(Path::new("data/styles.csv"), "id,name\n"), Some(Format::Kaggle));
        assert_eq!(detect(p, "id,name\n"), None);
        assert_eq!(detect(p, ""), None);
        assert_eq!(detect(p, "<rss version=\"2.0\"><channel></channel></rss>"), None);
        let atom = "\u{feff}<?xml version=\"1.0\"?>\r\n<!-- export -->\r\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:g=\"http://base.google.com/ns/1.0\"></feed>";
        assert_eq!(detect(Path::new("f.xml"), atom), Some(Format::MerchantXml));
    }

    #[test]
    fn kaggle_is_left_to_its_importer() {
        let e = parse(Format::Kaggle, "id\n1\n", &[]).unwrap_err();
        assert!(e.contains("Kaggle importer"), "{e}");
    }

    #[test]
    fn colourways_split_by_colour_and_photo_and_are_named_stably() {
        let rows = vec![
            ("Black".to_string(), "a.jpg".to_string(), 1),
            ("Black".to_string(), "".to_string(), 2),
            ("Brown".to_string(), "b.jpg".to_string(), 3),
            ("black".to_string(), "c.jpg".to_string(), 4),
            ("Red".to_string(), "".to_string(), 5),
        ];
        let ways = colourways(rows);
        let got: Vec<_> = ways
            .iter()
            .map(|w| (w.colour.as_str(), w.photo.as_deref(), w.members.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Black", Some("a.jpg"), vec![1, 2]),
                ("Brown", Some("b.jpg"), vec![3]),
                ("black", Some("c.jpg"), vec![4]),
                ("Red", None, vec![5]),
            ]
        );
        let colours: Vec<&str> = ways.iter().map(|w| w.colour.as_str()).collect();
        assert_eq!(
            colourway_ids("tee", &colours),
            vec!["tee-black", "tee-brown", "tee-black-2", "tee-red"]
        );
        assert_eq!(colourway_ids("tee", &["Light Blue"]), vec!["tee"]);
        assert_eq!(slug(" Light  Blue/Grey "), "light-blue-grey");
        assert_eq!(slug("黒"), "黒");
    }

    #[test]
    fn settle_takes_the_cheapest_variant_and_any_stock() {
        let v = |price: f64, a: Availability| Variant {
            price: Some(price),
            availability: a,
            ..Default::default()
        };
        let mut item = FeedItem {
            variants: vec![v(10.0, Availability::OutOfStock), v(8.0, Availability::Preorder)],
            ..Default::default()
        };
        settle(&mut item, &[None, Some(12.0)]);
        assert_eq!((item.price, item.compare_at), (Some(8.0), Some(12.0)));
        assert_eq!(item.availability, Availability::Preorder);
        item.variants[0].availability = Availability::InStock;
        settle(&mut item, &[None, Some(7.0)]);
        assert_eq!((item.compare_at, item.availability), (None, Availability::InStock));
        assert_eq!(
            overall(&[v(1.0, Availability::OutOfStock), v(1.0, Availability::Unknown)]),
            Availability::Unknown
        );
    }

    #[test]
    fn urls_split_on_commas_that_start_a_url() {
        assert_eq!(
            split_urls("https://a/x.jpg, https://b/w_1,h_2/y.jpg,https://c/z.jpg"),
            vec!["https://a/x.jpg", "https://b/w_1,h_2/y.jpg", "https://c/z.jpg"]
        );
        assert!(split_urls(" ").is_empty());
    }

    #[test]
    fn genders_with_age_groups_and_option_names() {
        assert_eq!(gender_for("male", "kids"), "Boys");
        assert_eq!(gender_for("female", "adult"), "Women");
        assert_eq!(gender_for("", "toddler"), "Kids");
        assert!(is_colour_name("Farbe") && is_colour_name("pa_color") && is_colour_name("カラー"));
        assert!(is_size_name("Größe") && is_size_name("Shoe size") && !is_size_name("Color"));
        assert!(!is_colour_name("Corte") && is_colour_name("Cor"));
    }

    #[test]
    fn a_feed_that_mixes_currencies_is_told() {
        let it = |id: &str, currency: &str| FeedItem {
            shop_id: id.into(),
            currency: currency.into(),
            ..Default::default()
        };
        let mixed = mixed_currencies(&[it("a", "USD"), it("b", "EUR"), it("c", "USD"), it("d", "")]).unwrap();
        assert_eq!(
            mixed.into_iter().collect::<Vec<_>>(),
            [("EUR".into(), 1), ("USD".into(), 2)]
        );
        assert_eq!(mixed_currencies(&[it("a", "USD"), it("d", "")]), None);
    }

    #[test]
    fn finish_rejects_duplicates_and_missing_photos() {
        let it = |line: usize, id: &str, photo: &str| FeedItem {
            line,
            shop_id: id.into(),
            photo: photo.into(),
            more_photos: vec![photo.into(), "m.jpg".into(), "m.jpg".into()],
            ..Default::default()
        };
        let p = finish(Parsed {
            items: vec![
                it(5, "a", "p.jpg"),
                it(2, "a", "q.jpg"),
                it(7, "b", ""),
                it(9, "", "x.jpg"),
            ],
            rejected: vec![],
        });
        assert_eq!(p.items.len(), 1);
        assert_eq!(p.items[0].more_photos, vec!["m.jpg"]);
        let why: Vec<_> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            why,
            vec![
                (Some(5), "id `a` is already used by the product on line 2"),
                (Some(7), "no photo"),
                (Some(9), "no id")
            ]
        );
    }
}
