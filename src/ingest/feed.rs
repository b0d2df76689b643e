//! What every catalogue format turns into: [`FeedItem`]s, one per product (a colourway with its
//! own photo) with its variants (sizes), whatever the file looked like. The format readers in
//! [`super::formats`] produce these; the importer stores them.

use serde::Serialize;

/// The shapes of catalogue lookbook reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Kaggle "Fashion Product Images" `styles.csv` (the demo's).
    Kaggle,
    /// Shopify's product CSV, classic or newer column names.
    Shopify,
    /// Google Merchant Center feed, tab-separated text.
    MerchantTsv,
    /// Google Merchant Center feed, RSS 2.0 or Atom XML with the `g:` namespace.
    MerchantXml,
    /// WooCommerce's product CSV.
    WooCommerce,
    /// H&M Personalized Fashion Recommendations `articles.csv`.
    Hm,
    /// Any CSV or TSV, columns named with `--map field=column`.
    Mapped,
}

impl Format {
    /// Every format, as `--format` names them.
    pub const ALL: [Format; 7] = [
        Format::Kaggle,
        Format::Shopify,
        Format::MerchantTsv,
        Format::MerchantXml,
        Format::WooCommerce,
        Format::Hm,
        Format::Mapped,
    ];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Kaggle => "kaggle",
            Format::Shopify => "shopify",
            Format::MerchantTsv => "merchant-tsv",
            Format::MerchantXml => "merchant-xml",
            Format::WooCommerce => "woocommerce",
            Format::Hm => "hm",
            Format::Mapped => "mapped",
        }
    }

    /// The format `--format NAME` names.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// Whether a product can be bought now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// In stock.
    InStock,
    /// Out of stock.
    OutOfStock,
    /// Orderable before it is in stock.
    Preorder,
    /// Orderable, delivered later.
    Backorder,
    /// The feed does not say.
    #[default]
    Unknown,
}

impl Availability {
    /// As stored and printed: `in_stock`, `out_of_stock`, `preorder`, `backorder`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::InStock => "in_stock",
            Availability::OutOfStock => "out_of_stock",
            Availability::Preorder => "preorder",
            Availability::Backorder => "backorder",
            Availability::Unknown => "unknown",
        }
    }

    /// Reads the words feeds use (`in stock`, `in_stock`, `instock`, `1`, `out of stock`,
    /// `0`, `preorder`, `backorder`, Shopify's `active`/`draft` are not availability).
    pub fn parse(s: &str) -> Availability {
        let t: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        match t.as_str() {
            "instock" | "1" | "yes" | "true" | "available" => Availability::InStock,
            "outofstock" | "0" | "no" | "false" | "soldout" | "discontinued" => Availability::OutOfStock,
            "preorder" => Availability::Preorder,
            "backorder" | "onbackorder" => Availability::Backorder,
            _ => Availability::Unknown,
        }
    }

    /// True when it can be bought now.
    pub fn buyable(self) -> bool {
        matches!(self, Availability::InStock)
    }
}

/// One size (or other option that shares the photo) of a product.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Variant {
    /// The shop's SKU (or variant id).
    pub sku: String,
    /// Size, or the option's value.
    pub size: String,
    /// Price in the product's currency.
    pub price: Option<f64>,
    /// Units in stock, when the feed says.
    pub stock: Option<i64>,
    /// Availability of this variant.
    pub availability: Availability,
}

/// One product as a feed describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FeedItem {
    /// Line (or record) of the file where it starts, for messages.
    pub line: usize,
    /// The shop's id for this colourway: a SKU, an item id, a handle with its colour, an
    /// article id; unique in the file.
    pub shop_id: String,
    /// Colourways of one handle, `item_group_id`, WooCommerce parent or H&M `product_code`.
    pub group: Option<String>,
    /// Display name.
    pub name: String,
    /// Description, HTML stripped.
    pub description: String,
    /// Brand or vendor.
    pub brand: String,
    /// Category path, top first, any depth (`Apparel > Topwear > Tshirts`).
    pub category: Vec<String>,
    /// Gender normalised to `Men`, `Women`, `Unisex`, `Boys`, `Girls` (or as given when it is
    /// none of those).
    pub gender: String,
    /// Gender as the feed wrote it.
    pub gender_raw: String,
    /// Colour.
    pub colour: String,
    /// Season.
    pub season: String,
    /// Year.
    pub year: Option<i32>,
    /// Usage (Casual, Sports, ...).
    pub usage: String,
    /// Price (the lowest of its variants when they differ).
    pub price: Option<f64>,
    /// The price before a sale, when the feed gives one.
    pub compare_at: Option<f64>,
    /// ISO 4217 currency, when known (`USD`, `INR`).
    pub currency: String,
    /// Availability (in stock when any variant is).
    pub availability: Availability,
    /// The product page.
    pub link: String,
    /// The main photo as the feed gave it: a URL, or a path relative to `--images`.
    pub photo: String,
    /// Further photos.
    pub more_photos: Vec<String>,
    /// Sizes.
    pub variants: Vec<Variant>,
    /// Why the shop does not show it now (`draft`, `archived`, `unpublished`, `hidden`), when it
    /// does not: imported, but unlisted like a pruned product until a feed lists it again.
    pub hidden: Option<String>,
}

/// A row or item that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Line (or record) in the file.
    pub line: Option<usize>,
    /// The shop id, when known.
    pub id: Option<String>,
    /// Why.
    pub reason: String,
}

/// What a format reader made of a file.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The products, in file order.
    pub items: Vec<FeedItem>,
    /// What was left out.
    pub rejected: Vec<Rejected>,
}

/// `Menswear`, `male`, `M`, `Ladieswear`, `female`, `women`... as lookbook's words.
pub fn normalise_gender(raw: &str) -> String {
    let t = raw.trim().to_ascii_lowercase();
    let word = match t.as_str() {
        "men" | "man" | "male" | "m" | "mens" | "men's" | "menswear" | "gents" => "Men",
        "women" | "woman" | "female" | "f" | "w" | "womens" | "women's" | "ladieswear" | "ladies" => "Women",
        "unisex" | "all" | "any" => "Unisex",
        "boys" | "boy" => "Boys",
        "girls" | "girl" => "Girls",
        "kids" | "children" | "baby" | "divided" | "baby/children" => "Kids",
        _ => return raw.trim().to_string(),
    };
    word.to_string()
}

/// Which decimal marks a format's prices may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decimals {
    /// A point only (`1299.00`, `1,299.00`): WooCommerce's export writes machine numbers.
    Point,
    /// A point or a comma (`1.299,00 EUR`): feeds written by people and exports in a shop's
    /// locale (Google Merchant, Shopify, `--map`).
    PointOrComma,
}

/// The largest price read; more is a typo or an attack, not a product.
const MAX_PRICE: f64 = 1e12;

/// A price as feeds write it: `15.00`, `15.00 USD`, `USD 15.00`, `12.99USD`, `1.299,00 EUR`,
/// `$15`. `Ok(None)` for an empty field, the amount and the currency code (when one is written)
/// for a price, and why for anything else: an exponent, a sign, hex, `NaN`, two currencies or a
/// decimal mark the format does not use is refused, never read as another number.
pub fn parse_price(s: &str, decimals: Decimals) -> Result<Option<(f64, Option<String>)>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        Err(format!(
            "price {:?} {why}; write it as 12.99 or 12.99 USD",
            crate::text::clip(t, 40)
        ))
    };
    let mut currency: Option<String> = None;
    let mut set_currency = |code: String| -> Result<(), ()> {
        match &currency {
            Some(c) if *c != code => Err(()),
            _ => {
                currency = Some(code);
                Ok(())
            }
        }
    };
    let mut amount = String::new();
    for word in t.split_whitespace() {
        let mut w = word;
        for (symbol, code) in [('$', "USD"), ('€', "EUR"), ('£', "GBP"), ('₹', "INR"), ('¥', "JPY")] {
            if let Some(rest) = w.strip_prefix(symbol).or_else(|| w.strip_suffix(symbol)) {
                if set_currency(code.to_string()).is_err() {
                    return bad("names two currencies");
                }
                w = rest;
            }
        }
        // A three-letter code alone, or written against the number (`12.99USD`, `EUR12,99`).
        let letters_front = w.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let letters_back = w.chars().rev().take_while(|c| c.is_ascii_alphabetic()).count();
        let (code, rest) = if letters_front == w.len() && w.len() == 3 {
            (Some(&w[..3]), "")
        } else if letters_front == 3 && letters_back == 0 {
            (Some(&w[..3]), &w[3..])
        } else if letters_back == 3 && letters_front == 0 {
            (Some(&w[w.len() - 3..]), &w[..w.len() - 3])
        } else {
            (None, w)
        };
        if let Some(code) = code
            && set_currency(code.to_ascii_uppercase()).is_err()
        {
            return bad("names two currencies");
        }
        amount.push_str(rest);
    }
    if amount.is_empty() {
        return bad("has no amount");
    }
    if !amount.chars().all(|c| c.is_ascii_digit() || c == '.' || c == ',') {
        return bad("is not a plain number (no signs, exponents, hex or words)");
    }
    let b = amount.as_bytes();
    if !b[0].is_ascii_digit()
        || !b[b.len() - 1].is_ascii_digit()
        || amount.contains("..")
        || amount.contains(",,")
        || amount.contains(".,")
        || amount.contains(",.")
    {
        return bad("has a misplaced separator");
    }
    let (points, commas) = (amount.matches('.').count(), amount.matches(',').count());
    // Which mark is the decimal one, if any: the last of two kinds; a single one unless it is a
    // comma followed by exactly three digits (a thousands mark).
    let decimal = match (points, commas) {
        (0, 0) => None,
        (p, c) if p > 0 && c > 0 => amount.rfind(['.', ',']).map(|i| b[i] as char),
        (1, 0) => Some('.'),
        (0, 1) => match amount.len() - amount.rfind(',').unwrap_or(0) - 1 {
            3 => None,
            _ => Some(','),
        },
        _ => None, // several of one kind: thousands marks only
    };
    if decimal == Some(',') && decimals == Decimals::Point {
        return bad("has a decimal comma, which this format does not use");
    }
    let (whole, fraction) = match decimal {
        Some(d) => match amount.rsplit_once(d) {
            Some((w, f)) => (w.to_string(), f),
            None => (amount.clone(), ""),
        },
        None => (amount.clone(), ""),
    };
    if fraction.contains(['.', ',']) {
        return bad("has a decimal mark twice");
    }
    // What is left of the whole part may hold thousands marks of one kind (not the decimal
    // one; a point only where commas are decimal marks), each followed by three digits.
    let marks: std::collections::BTreeSet<char> = whole.chars().filter(|c| !c.is_ascii_digit()).collect();
    if let Some(&mark) = marks.iter().next() {
        if marks.len() > 1 || Some(mark) == decimal {
            return bad("has misplaced thousands marks");
        }
        if mark == '.' && decimals == Decimals::Point {
            return bad("uses a point as thousands mark, which this format does not");
        }
    }
    let groups: Vec<&str> = whole.split(['.', ',']).collect();
    if groups.len() > 1 && (groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3)) {
        return bad("has misplaced thousands marks");
    }
    let normalised = format!(
        "{}.{}",
        groups.concat(),
        if fraction.is_empty() { "0" } else { fraction }
    );
    match normalised.parse::<f64>() {
        Ok(v) if v.is_finite() && v <= MAX_PRICE => Ok(Some((v, currency))),
        _ => bad("is out of range"),
    }
}

/// Text of an HTML fragment: tags dropped, block ends as spaces, the common entities decoded,
/// white space folded. (Sanitising for the terminal happens where all text is cleaned.)
pub fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c => out.push(c),
        }
    }
    let decoded = decode_entities(&out);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;` and numeric `&#...;` references.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                n if n.starts_with("#x") || n.starts_with("#X") => {
                    u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32)
                }
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A category path from a feed's text: `>`-separated (`Apparel > Tops > T-shirts`), or `/`
/// when there is no `>`; empty parts dropped.
pub fn category_path(s: &str) -> Vec<String> {
    // Entities first: `&gt;` in an XML feed is the separator too.
    let s = decode_entities(s);
    let sep = if s.contains('>') { '>' } else { '/' };
    s.split(sep)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_in_the_shapes_feeds_write_them() {
        let p = |s: &str| parse_price(s, Decimals::PointOrComma);
        let ok = |v: f64, c: Option<&str>| Ok(Some((v, c.map(str::to_string))));
        assert_eq!(p("15.00 USD"), ok(15.0, Some("USD")));
        assert_eq!(p("USD 15"), ok(15.0, Some("USD")));
        assert_eq!(p("1.299,00 EUR"), ok(1299.0, Some("EUR")));
        assert_eq!(p("1,299.50"), ok(1299.5, None));
        assert_eq!(p("$9.99"), ok(9.99, Some("USD")));
        assert_eq!(p("12,5"), ok(12.5, None));
        assert_eq!(
            p("12.99USD"),
            ok(12.99, Some("USD")),
            "a code written against the number"
        );
        assert_eq!(p("EUR12,99"), ok(12.99, Some("EUR")));
        assert_eq!(p("0"), ok(0.0, None));
        assert_eq!(p("  "), Ok(None));
        assert_eq!(parse_price("12.5", Decimals::Point), ok(12.5, None));
        assert_eq!(parse_price("1,299.00", Decimals::Point), ok(1299.0, None));
    }

    #[test]
    fn prices_that_would_be_misread_are_refused() {
        // Issue 37, case 5: each of these was once stored as another number or as no price.
        for bad in [
            "1e3 USD",
            "2e5 USD",
            "1e309",
            "0x10 USD",
            "NaN",
            "-1",
            "inf",
            "free",
            "12.99 USD EUR",
            "1.2.3",
            "12..5",
            "1,2,3",
            "15 dollars",
            "--5",
            "5-",
            "12.5%",
            "99999999999999999999",
        ] {
            let got = parse_price(bad, Decimals::PointOrComma);
            assert!(got.is_err(), "{bad:?} read as {got:?}");
        }
        assert!(
            parse_price("12,5", Decimals::Point).is_err(),
            "a decimal comma where the format has none"
        );
        assert!(parse_price("1.299,00", Decimals::Point).is_err());
    }

    #[test]
    fn html_entities_genders_and_categories() {
        assert_eq!(
            strip_html("<p>Soft &amp; warm.</p><ul><li>Colour: Red</li></ul>"),
            "Soft & warm. Colour: Red"
        );
        assert_eq!(decode_entities("a &#233; &#x263A; &bogus; &"), "a é ☺ &bogus; &");
        assert_eq!(normalise_gender("Menswear"), "Men");
        assert_eq!(normalise_gender("female"), "Women");
        assert_eq!(normalise_gender("Ladieswear"), "Women");
        assert_eq!(normalise_gender("Unisex"), "Unisex");
        assert_eq!(normalise_gender("Other"), "Other");
        assert_eq!(
            category_path("Apparel &gt; Topwear > Tshirts"),
            vec!["Apparel", "Topwear", "Tshirts"]
        );
        assert_eq!(Availability::parse("in stock"), Availability::InStock);
        assert_eq!(Availability::parse("out_of_stock"), Availability::OutOfStock);
    }
}
