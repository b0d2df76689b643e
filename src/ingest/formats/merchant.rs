//! Google Merchant Center product feeds: tab-separated text with a header of attribute names (`id`,
//! `item_group_id`, `image_link`, ..., with or without `g:`), and XML, RSS 2.0 (`<rss><channel>
//! <item>`) or Atom (`<feed><entry>`) with the attributes as `g:` elements, read with a streaming
//! reader that refuses DTDs (a feed comes from outside: no entity expansion).
//!
//! Each item is one variant (colour x size). Items are joined into one colourway per
//! `item_group_id`, colour and `image_link` (a group may hold two colourways of one colour name,
//! each with its photo); an item without `item_group_id` is a product of its own.
//!
//! Shop id: an ungrouped item's `id`; in a group, the `item_group_id` when the group is one
//! colourway, else `item_group_id-colour` (colour as a slug), with `-2`, `-3` for further
//! colourways of a colour already named. `group` is the `item_group_id`.

use std::collections::HashMap;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::table::{MAX_FIELD_BYTES, Overrides, Table, missing, norm, sniff_delimiter};
use super::{GOOGLE_NS, colourway_ids, colourways, gender_for, parse_stock, reject, settle, split_urls};
use crate::ingest::feed::{
    Availability, Decimals, FeedItem, Parsed, Rejected, Variant, category_path, decode_entities, parse_price,
    strip_html,
};

const NAME: &str = "Merchant Center feed";

/// The attributes lookbook reads, for messages.
const EXPECTED: [&str; 12] = [
    "id",
    "item_group_id",
    "title",
    "description",
    "link",
    "image_link",
    "availability",
    "price",
    "color",
    "gender",
    "size",
    "product_type",
];

/// `--map` fields that override a column of the TSV feed.
const FIELDS: [&str; 14] = [
    "id",
    "name",
    "group",
    "description",
    "brand",
    "category",
    "gender",
    "colour",
    "size",
    "price",
    "availability",
    "stock",
    "link",
    "image",
];

/// A header cell as a Merchant attribute name: `g:Image Link` as `image_link`.
pub(crate) fn attribute_name(header: &str) -> String {
    let n = norm(header);
    n.strip_prefix("g:").unwrap_or(&n).trim().replace(' ', "_")
}

/// One item (a variant) as the feed gave it.
#[derive(Debug, Default, Clone)]
struct Record {
    line: usize,
    id: String,
    group: String,
    title: String,
    description: String,
    link: String,
    image: String,
    more: Vec<String>,
    availability: String,
    price: String,
    sale_price: String,
    brand: String,
    color: String,
    gender: String,
    age_group: String,
    size: String,
    product_type: String,
    google_category: String,
    quantity: String,
}

impl Record {
    /// Sets the attribute `name` (without `g:`) to `value`; repeated ones (`additional_image_link`)
    /// add up, the others keep their first value.
    fn set(&mut self, name: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if name == "additional_image_link" {
            self.more.extend(split_urls(value));
            return;
        }
        let slot = match name {
            "id" => &mut self.id,
            "item_group_id" => &mut self.group,
            "title" => &mut self.title,
            "description" => &mut self.description,
            "link" => &mut self.link,
            "image_link" => &mut self.image,
            "availability" => &mut self.availability,
            "price" => &mut self.price,
            "sale_price" => &mut self.sale_price,
            "brand" => &mut self.brand,
            "color" | "colour" => &mut self.color,
            "gender" => &mut self.gender,
            "age_group" => &mut self.age_group,
            "size" => &mut self.size,
            "product_type" => &mut self.product_type,
            "google_product_category" => &mut self.google_category,
            "quantity" | "sell_on_google_quantity" => &mut self.quantity,
            _ => return,
        };
        if slot.is_empty() {
            *slot = value.to_string();
        }
    }
}

/// Reads a tab-separated feed (a comma-separated one too: the delimiter is read off the header).
pub(crate) fn parse_tsv(text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let overrides = Overrides::new(map, &FIELDS, "merchant-tsv")?;
    let mut t = Table::open(text, sniff_delimiter(text), NAME)?;
    let attrs: Vec<String> = t.header.iter().map(|h| attribute_name(h)).collect();
    // Which attribute each column is: the `--map` override for it, else its own name.
    let mut columns: Vec<(usize, String)> = attrs.iter().cloned().enumerate().collect();
    for (field, attr) in [
        ("id", "id"),
        ("name", "title"),
        ("group", "item_group_id"),
        ("description", "description"),
        ("brand", "brand"),
        ("category", "product_type"),
        ("gender", "gender"),
        ("colour", "color"),
        ("size", "size"),
        ("price", "price"),
        ("availability", "availability"),
        ("stock", "quantity"),
        ("link", "link"),
        ("image", "image_link"),
    ] {
        if let Some(col) = t.column(&overrides, field, &[])? {
            columns.retain(|(_, a)| a != attr);
            columns.insert(0, (col, attr.to_string()));
        }
    }
    for required in ["id", "image_link"] {
        if !columns.iter().any(|(_, a)| a == required) {
            return Err(missing(NAME, required, &EXPECTED));
        }
    }
    // Rows go straight into their groups: a 50,000-row feed is never held twice.
    let mut rejected = Vec::new();
    let mut groups = Groups::default();
    while let Some(row) = t.next_row() {
        let mut r = Record {
            line: row.line,
            ..Default::default()
        };
        for (col, attr) in &columns {
            r.set(attr, row.get(Some(*col)));
        }
        groups.add(r, &mut rejected);
    }
    rejected.append(&mut t.rejected);
    rejected.sort_by_key(|r| r.line);
    let items = groups.into_items();
    Ok(Parsed { items, rejected })
}

/// True when `text` is XML whose root is `<rss>` or `<feed>` and that declares Google's namespace.
pub(crate) fn is_google_xml(text: &str) -> bool {
    let mut end = text.len().min(64 << 10);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = &text[..end];
    let mut reader = quick_xml::Reader::from_str(head);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                let root = e.local_name();
                return matches!(root.as_ref(), "rss" | "feed") && declares_google(head);
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// True when Google's namespace is declared (some feeds write it with https).
fn declares_google(head: &str) -> bool {
    head.contains("base.google.com/ns/1.0")
}

/// True for Google's namespace as feeds write it.
fn is_google_ns(ns: &str) -> bool {
    ns == GOOGLE_NS || ns == "https://base.google.com/ns/1.0"
}

/// The namespace an element is in, as far as a feed cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    /// Google's `g:`.
    Google,
    /// RSS's own elements (no namespace), or any other.
    Plain,
    /// Atom's elements, whose `<id>` is the entry's URI, not the product's id.
    Atom,
}

/// Reads an RSS 2.0 or Atom feed with `g:` elements.
pub(crate) fn parse_xml(text: &str) -> Result<Parsed, String> {
    let mut reader = NsReader::from_str(text);
    let mut lines = LineCounter::default();
    let mut groups = Groups::default();
    let mut rejected = Vec::new();
    let mut depth = 0usize;
    let mut root_seen = false;
    // The item being read: its depth, the record, plain elements as fallbacks.
    let mut item: Option<(usize, Record, HashMap<String, String>)> = None;
    // The child element being read: its depth, space, name, text so far.
    let mut child: Option<(usize, Space, String, String)> = None;
    loop {
        let pos = reader.buffer_position() as usize;
        let (space, event) = match reader.read_resolved_event() {
            Ok((ns, ev)) => (classify(&ns), ev),
            Err(e) => {
                let line = lines.line_at(text, reader.error_position() as usize);
                if groups.is_empty() && item.is_none() {
                    return Err(format!("line {line}: not well-formed XML: {e}"));
                }
                rejected.push(Rejected {
                    line: Some(line),
                    id: item.as_ref().map(|(_, r, _)| r.id.clone()).filter(|i| !i.is_empty()),
                    reason: format!("not well-formed XML ({e}); the feed was not read past this line"),
                });
                break;
            }
        };
        match event {
            Event::DocType(_) => {
                return Err(format!(
                    "line {}: the feed has a DOCTYPE; lookbook reads no DTDs or entity declarations from a \
                     feed (they can expand without bound): remove the <!DOCTYPE ...> declaration",
                    lines.line_at(text, pos)
                ));
            }
            Event::Start(e) => {
                depth += 1;
                let name = e.local_name().as_ref().to_string();
                if !root_seen {
                    root_seen = true;
                    check_root(&name)?;
                    continue;
                }
                match &mut item {
                    None if space != Space::Google && (name == "item" || name == "entry") => {
                        let record = Record {
                            line: lines.line_at(text, pos + 1),
                            ..Default::default()
                        };
                        item = Some((depth, record, HashMap::new()));
                    }
                    Some((d, _, plain)) if depth == *d + 1 => {
                        if space != Space::Google && name == "link" {
                            take_href(&e, plain);
                        }
                        child = Some((depth, space, name, String::new()));
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if !root_seen {
                    root_seen = true;
                    check_root(e.local_name().as_ref())?;
                }
                if let Some((d, _, plain)) = &mut item
                    && depth == *d
                    && space != Space::Google
                    && e.local_name().as_ref() == "link"
                {
                    take_href(&e, plain);
                }
            }
            Event::Text(t) => push_text(&mut child, depth, &t.xml10_content()),
            Event::CData(t) => push_text(&mut child, depth, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let name = r.xml10_content();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    // Only XML's own entities and &nbsp; are known; any other stays as written.
                    _ => decode_entities(&format!("&{name};")),
                };
                push_text(&mut child, depth, &resolved);
            }
            Event::End(_) => {
                if let Some((_, space, name, value)) = child.take_if(|(d, ..)| *d == depth)
                    && let Some((_, record, plain)) = &mut item
                {
                    match space {
                        Space::Google => record.set(&name, &value),
                        Space::Atom if name == "id" => {}
                        Space::Plain | Space::Atom => {
                            plain.entry(name).or_insert(value);
                        }
                    }
                }
                if item.as_ref().is_some_and(|(d, ..)| *d == depth)
                    && let Some((_, mut record, plain)) = item.take()
                {
                    // RSS's and Atom's own elements stand in where the g: ones are missing.
                    for (g, fallbacks) in [
                        ("title", &["title"][..]),
                        ("link", &["link", "href"][..]),
                        ("description", &["description", "summary", "content"][..]),
                    ] {
                        if let Some(v) = fallbacks
                            .iter()
                            .find_map(|f| plain.get(*f).filter(|v| !v.trim().is_empty()))
                        {
                            record.set(g, v);
                        }
                    }
                    // Some generators write the attributes without `g:` (`<image_link>`).
                    for (name, value) in &plain {
                        record.set(name, value);
                    }
                    groups.add(record, &mut rejected);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => {
                if let Some((_, record, _)) = item.take() {
                    rejected.push(reject(
                        record.line,
                        Some(&record.id),
                        "the feed ends inside this item (no closing tag)",
                    ));
                }
                break;
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !root_seen {
        return Err("no XML element found; a Merchant Center feed is <rss> (RSS 2.0) or <feed> (Atom)".into());
    }
    let items = groups.into_items();
    Ok(Parsed { items, rejected })
}

/// Err unless the root element is RSS's or Atom's.
fn check_root(name: &str) -> Result<(), String> {
    if name == "rss" || name == "feed" {
        Ok(())
    } else {
        Err(format!(
            "the XML root is <{name}>; a Merchant Center feed is <rss> (RSS 2.0) or <feed> (Atom)"
        ))
    }
}

/// Google's elements apart from the rest (an undeclared `g:` prefix counts as Google's).
fn classify(ns: &ResolveResult) -> Space {
    match ns {
        ResolveResult::Bound(n) if is_google_ns(n.as_ref()) => Space::Google,
        ResolveResult::Unknown(p) if p == "g" => Space::Google,
        ResolveResult::Bound(n) if n.as_ref() == "http://www.w3.org/2005/Atom" => Space::Atom,
        _ => Space::Plain,
    }
}

/// Keeps an Atom `<link href="..."/>` (the `alternate` one, or the first without `rel`).
fn take_href(e: &BytesStart, plain: &mut HashMap<String, String>) {
    let mut href = None;
    let mut rel = None;
    for a in e.attributes().flatten() {
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|v| v.into_owned())
            .unwrap_or_else(|_| decode_entities(&a.value));
        match a.key.local_name().as_ref() {
            "href" => href = Some(value),
            "rel" => rel = Some(value),
            _ => {}
        }
    }
    if let Some(h) = href
        && rel.as_deref().is_none_or(|r| r == "alternate")
    {
        plain.entry("href".into()).or_insert(h);
    }
}

/// Adds text to the child element being read, when it is directly inside it, up to the cap.
fn push_text(child: &mut Option<(usize, Space, String, String)>, depth: usize, text: &str) {
    if let Some((d, _, _, value)) = child
        && *d == depth
    {
        let mut room = MAX_FIELD_BYTES.saturating_sub(value.len()).min(text.len());
        while !text.is_char_boundary(room) {
            room -= 1;
        }
        value.push_str(&text[..room]);
    }
}

/// Byte offsets to line numbers, counting forward as the reader goes.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    /// The 1-based line of byte `offset` (offsets only grow, so each byte is counted once).
    fn line_at(&mut self, text: &str, offset: usize) -> usize {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        if offset >= self.pos {
            self.line += text[self.pos..offset].matches('\n').count();
            self.pos = offset;
        }
        self.line + 1
    }
}

/// Checks each item and joins them into colourways.
/// Items gathered into products as they are read: by `item_group_id`, an item without one
/// its own product, in the order groups first appear.
#[derive(Default)]
struct Groups {
    /// Ids seen, with their line (a later item with the same id is refused).
    seen: HashMap<String, usize>,
    groups: Vec<(String, Vec<Record>)>,
    index: HashMap<String, usize>,
}

impl Groups {
    /// True before the first item.
    fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Takes one item, or refuses it (no id, no image, a repeated id) into `rejected`.
    fn add(&mut self, r: Record, rejected: &mut Vec<Rejected>) {
        if r.id.is_empty() {
            rejected.push(reject(r.line, None, "no id"));
            return;
        }
        if r.image.is_empty() {
            rejected.push(reject(r.line, Some(&r.id), "no image_link"));
            return;
        }
        for field in [&r.price, &r.sale_price] {
            if let Err(why) = parse_price(field, Decimals::PointOrComma) {
                rejected.push(reject(r.line, Some(&r.id), &why));
                return;
            }
        }
        if let Some(first) = self.seen.get(&r.id) {
            let why = format!("id `{}` is already used by the item on line {first}", r.id);
            rejected.push(reject(r.line, Some(&r.id), &why));
            return;
        }
        self.seen.insert(r.id.clone(), r.line);
        // An item without a group is its own product; `\0` keeps its key apart from group ids.
        let key = if r.group.is_empty() {
            format!("\0{}", r.id)
        } else {
            r.group.clone()
        };
        let groups = &mut self.groups;
        let i = *self.index.entry(key.clone()).or_insert_with(|| {
            // Most groups are one item: room for one, not the four a first push reserves
            // (at 50,000 single items that was 88 MB of empty slots).
            groups.push((key, Vec::with_capacity(1)));
            groups.len() - 1
        });
        self.groups[i].1.push(r);
    }

    /// The products: one per colourway of each group.
    fn into_items(self) -> Vec<FeedItem> {
        drop(self.seen);
        drop(self.index);
        let mut items = Vec::with_capacity(self.groups.len());
        for (_, members) in self.groups {
            let group = members[0].group.clone();
            let ways = colourways(
                members
                    .into_iter()
                    .map(|r| (r.color.clone(), r.image.clone(), r))
                    .collect(),
            );
            let colours: Vec<&str> = ways.iter().map(|w| w.colour.as_str()).collect();
            let ids = if group.is_empty() {
                vec![ways[0].members[0].id.clone()]
            } else {
                colourway_ids(&group, &colours)
            };
            for (way, id) in ways.into_iter().zip(ids) {
                items.push(colourway(way.members, id, &group));
            }
        }
        items
    }
}

/// One colourway from its items (variants).
fn colourway(members: Vec<Record>, shop_id: String, group: &str) -> FeedItem {
    let first = &members[0];
    let mut category = category_path(&first.product_type);
    // A numeric google_product_category is a taxonomy id, not a path.
    if category.is_empty() && !first.google_category.chars().all(|c| c.is_ascii_digit()) {
        category = category_path(&first.google_category);
    }
    let mut item = FeedItem {
        line: first.line,
        shop_id,
        group: (!group.is_empty()).then(|| group.to_string()),
        name: first.title.clone(),
        description: strip_html(&first.description),
        brand: first.brand.clone(),
        category,
        gender: gender_for(&first.gender, &first.age_group),
        gender_raw: first.gender.clone(),
        colour: first.color.clone(),
        link: first.link.clone(),
        photo: first.image.clone(),
        ..Default::default()
    };
    let mut compare = Vec::new();
    for r in &members {
        // Checked when the record was taken (`add`).
        let price = parse_price(&r.price, Decimals::PointOrComma).ok().flatten();
        let sale = parse_price(&r.sale_price, Decimals::PointOrComma).ok().flatten();
        if item.currency.is_empty()
            && let Some(c) = sale
                .as_ref()
                .and_then(|s| s.1.clone())
                .or_else(|| price.as_ref().and_then(|p| p.1.clone()))
        {
            item.currency = c;
        }
        let (now, before) = match (&sale, &price) {
            (Some(s), p) => (Some(s.0), p.as_ref().map(|p| p.0)),
            (None, p) => (p.as_ref().map(|p| p.0), None),
        };
        compare.push(before);
        item.more_photos.extend(r.more.iter().cloned());
        item.variants.push(Variant {
            sku: r.id.clone(),
            size: r.size.clone(),
            price: now,
            stock: parse_stock(&r.quantity),
            availability: Availability::parse(&r.availability),
        });
    }
    settle(&mut item, &compare);
    item
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, item, parsed};
    use super::*;
    use crate::ingest::feed::Format;
    use std::collections::HashSet;

    fn sizes(i: &FeedItem) -> Vec<(&str, &str, Option<f64>, Availability)> {
        i.variants
            .iter()
            .map(|v| (v.sku.as_str(), v.size.as_str(), v.price, v.availability))
            .collect()
    }

    #[test]
    fn tsv_excerpt() {
        let p = parsed("google_feed.tsv", Format::MerchantTsv);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 12);
        let groups: HashSet<_> = p.items.iter().map(|i| i.group.clone()).collect();
        // Three ungrouped items (None) and five groups.
        assert_eq!(groups.len(), 6);
        let pack = item(&p, "24832-BLU");
        assert_eq!(pack.group, None);
        assert_eq!(pack.name, "Wildcraft Unisex Blue & Black Backpack");
        assert_eq!(pack.photo, "https://cdn.shop.example/images/32/24832-main.jpg");
        assert_eq!(
            pack.link,
            "https://shop.example/p/wildcraft-unisex-blue-black-backpack?variant=24832"
        );
        assert_eq!((pack.price, pack.currency.as_str()), (Some(1069.0), "INR"));
        assert_eq!(pack.category, vec!["Accessories", "Bags", "Backpacks"]);
        assert_eq!((pack.gender.as_str(), pack.gender_raw.as_str()), ("Unisex", "unisex"));
        assert_eq!(pack.variants.len(), 1);

        let brief = item(&p, "G19490");
        assert_eq!(brief.variants.len(), 4);
        assert_eq!((brief.price, brief.compare_at), (Some(767.2), Some(959.0)));
        assert_eq!(
            sizes(brief)[2],
            ("19490-GRE-L", "L", Some(959.0), Availability::OutOfStock)
        );

        let vests: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("G15763"))
            .collect();
        let ids: Vec<_> = vests.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(ids, vec!["G15763-charcoal", "G15763-red", "G15763-orange"]);
        assert_eq!(vests[0].availability, Availability::InStock);
        assert_eq!(
            sizes(vests[0])[0],
            ("15763-CHA-S", "S", Some(449.0), Availability::Preorder)
        );
        assert_eq!(vests[0].price, Some(359.2));
        assert_eq!(vests[2].photo, "https://cdn.shop.example/images/24/15824-main.jpg");
        let girl = item(&p, "G5581");
        assert_eq!((girl.gender.as_str(), girl.gender_raw.as_str()), ("Girls", "female"));
        assert_eq!(item(&p, "G38961-grey").gender, "Boys");
        assert_eq!(item(&p, "G28376-black").availability, Availability::InStock);
        assert_eq!(item(&p, "G28376-grey").availability, Availability::OutOfStock);
    }

    #[test]
    fn tsv_with_g_prefixes_crlf_and_bad_rows() {
        let p = parsed("google_feed_gprefix.tsv", Format::MerchantTsv);
        let ids: Vec<_> = p.items.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(ids, vec!["TEE-1", "G-DRESS"]);
        let tee = item(&p, "TEE-1");
        assert_eq!(tee.name, "Tee with a 5\" print");
        assert_eq!(
            tee.more_photos,
            vec![
                "https://cdn.example/tee-back.jpg",
                "https://cdn.example/w_1,h_2/tee-side.jpg"
            ]
        );
        assert_eq!((tee.price, tee.currency.as_str()), (Some(15.0), "USD"));
        assert_eq!(tee.category, vec!["Apparel & Accessories", "Clothing", "Shirts & Tops"]);
        assert_eq!(tee.availability, Availability::Backorder);
        let dress = item(&p, "G-DRESS");
        assert_eq!(dress.variants.len(), 2);
        assert_eq!(dress.variants[1].stock, Some(3));
        assert_eq!((dress.price, dress.currency.as_str()), (Some(1299.0), "EUR"));
        let why: Vec<_> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            why,
            vec![
                (Some(5), "no image_link"),
                (Some(6), "id `TEE-1` is already used by the item on line 2"),
                (Some(7), "no id"),
                (Some(8), "4 fields where the header has 12"),
            ]
        );
    }

    #[test]
    fn rss_excerpt() {
        let p = parsed("google_feed.xml", Format::MerchantXml);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 11);
        let white = item(&p, "G28447-white");
        assert_eq!(white.name, "Kiara Women White Handbag");
        assert_eq!(white.line, 24);
        assert_eq!(white.category, vec!["Accessories", "Bags", "Handbags"]);
        assert_eq!(white.photo, "https://cdn.shop.example/images/98/53698-main.jpg");
        let jeans = item(&p, "G51476");
        assert_eq!(jeans.variants.len(), 4);
        assert_eq!(jeans.availability, Availability::InStock);
        let shoe = item(&p, "G3553");
        assert_eq!(shoe.name, "Skechers Men's Brown Lifestyle Casual Shoe");
        // Two colourways named Brown in one group, each with its photo.
        let brown: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("G13131"))
            .collect();
        let ids: Vec<_> = brown.iter().map(|i| (i.shop_id.as_str(), i.photo.as_str())).collect();
        assert_eq!(
            ids,
            vec![
                ("G13131-brown", "https://cdn.shop.example/images/31/13131-main.jpg"),
                ("G13131-brown-2", "https://cdn.shop.example/images/33/13133-main.jpg"),
            ]
        );
        let silver = item(&p, "44986-SIL");
        assert_eq!(silver.group, None);
    }

    #[test]
    fn atom_with_links_nested_elements_and_bad_entries() {
        let p = parsed("google_atom.xml", Format::MerchantXml);
        let ids: Vec<_> = p.items.iter().map(|i| i.shop_id.as_str()).collect();
        assert_eq!(ids, vec!["SHOE-7", "BAG"]);
        let shoe = item(&p, "SHOE-7");
        assert_eq!(shoe.name, "Trail Runner");
        assert_eq!(shoe.link, "https://shop.example/p/trail-runner?c=blue&s=7");
        assert_eq!(shoe.description, "Light & fast.");
        // g:price inside g:shipping is the shipping cost, not the price.
        assert_eq!(
            (shoe.price, shoe.compare_at, shoe.currency.as_str()),
            (Some(79.0), Some(99.0), "USD")
        );
        assert_eq!(
            shoe.more_photos,
            vec!["https://cdn.example/shoe-2.jpg", "https://cdn.example/shoe-3.jpg"]
        );
        assert_eq!(shoe.category, vec!["Shoes", "Running"]);
        assert_eq!(shoe.gender, "Women");
        let bag = item(&p, "BAG");
        assert_eq!(bag.group.as_deref(), Some("BAG"));
        assert_eq!(bag.variants.len(), 2);
        assert_eq!(bag.availability, Availability::Preorder);
        assert_eq!(bag.category, vec!["Apparel & Accessories", "Handbags"]);
        let why: Vec<_> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(why, vec![(Some(41), "no image_link"), (Some(46), "no id")]);
        assert_eq!(p.rejected[0].id.as_deref(), Some("NOPHOTO"));
    }

    #[test]
    fn cdata_entities_and_plain_fallbacks() {
        let p = parsed("google_cdata_entities.xml", Format::MerchantXml);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 3);
        let a = item(&p, "A&B-1");
        assert_eq!(a.name, "Tom & Jerry's <Tee>");
        assert_eq!(a.description, "Soft & light. 100% cotton.");
        assert_eq!(a.category, vec!["Apparel", "Tops & Tees"]);
        assert_eq!(a.photo, "https://cdn.example/a.jpg?x=1&y=2");
        assert_eq!(a.brand, "Café Ünïcode");
        let b = item(&p, "B-2");
        // No g:title or g:link: RSS's own title and link stand in.
        assert_eq!(b.name, "Plain title");
        assert_eq!(b.link, "https://shop.example/b");
        assert_eq!(b.colour, "Grün");
        assert_eq!(b.description, "Bold claim");
        assert_eq!((b.price, b.currency.as_str()), (Some(7.0), "USD"));
        let c = item(&p, "C-3");
        assert_eq!(
            (c.name.as_str(), c.photo.as_str()),
            ("Written without g:", "https://cdn.example/c.jpg")
        );
        assert_eq!((c.price, c.currency.as_str()), (Some(3.0), "GBP"));
    }

    #[test]
    fn xml_refusals_and_broken_feeds() {
        let dtd = "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [<!ENTITY a \"aaaa\">]>\n<rss xmlns:g=\"http://base.google.com/ns/1.0\"><channel></channel></rss>";
        let e = parse_xml(dtd).unwrap_err();
        assert!(e.contains("DOCTYPE") && e.starts_with("line 2"), "{e}");
        let e = parse_xml("<catalog><item/></catalog>").unwrap_err();
        assert!(e.contains("<catalog>"), "{e}");
        let empty = parse_xml("<?xml version=\"1.0\"?><rss xmlns:g=\"http://base.google.com/ns/1.0\"/>").unwrap();
        assert!(empty.items.is_empty() && empty.rejected.is_empty());
        assert!(parse_xml("not xml at all").is_err());
        let item =
            |id: &str| format!("<item><g:id>{id}</g:id><g:image_link>https://x/{id}.jpg</g:image_link></item>\n");
        let broken = format!(
            "<rss xmlns:g=\"http://base.google.com/ns/1.0\"><channel>\n{}{}<item><g:id>3</g:oops></item>\n",
            item("1"),
            item("2")
        );
        let p = parse_xml(&broken).unwrap();
        assert_eq!(p.items.len(), 2);
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].line, Some(4));
        assert!(
            p.rejected[0].reason.contains("not read past this line"),
            "{:?}",
            p.rejected
        );
        let e = super::super::parse(
            Format::MerchantXml,
            &fixture("google_atom.xml"),
            &[("id".into(), "x".into())],
        )
        .unwrap_err();
        assert!(e.contains("--map"), "{e}");
    }

    #[test]
    fn tsv_needs_id_and_image_link() {
        let e = parse_tsv("title\tlink\nx\ty\n", &[]).unwrap_err();
        assert!(e.contains("`id`") && e.contains("image_link"), "{e}");
        let e = parse_tsv("id\ttitle\nx\ty\n", &[]).unwrap_err();
        assert!(e.contains("`image_link`"), "{e}");
        let map = vec![("image".to_string(), "picture".to_string())];
        let p = parse_tsv("id\ttitle\tpicture\n1\tT\thttps://x/1.jpg\n", &map).unwrap();
        assert_eq!(p.items[0].photo, "https://x/1.jpg");
    }
}
