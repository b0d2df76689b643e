//! H&M Personalized Fashion Recommendations `articles.csv`: one article per colourway, grouped
//! by `product_code`, photos at `images/<first 3 digits>/<article_id>.jpg` under `--images`.
//! The file has no prices, stock or sizes.
//!
//! Shop id: the `article_id`, 10 digits with its leading zeros (an id a spreadsheet stripped
//! of them, `108775015`, gets them back, so the photo path still matches).

use super::table::{Overrides, Table, missing};
use super::{known_gender, reject};
use crate::ingest::feed::{FeedItem, Parsed, Variant, normalise_gender, strip_html};

const NAME: &str = "H&M articles.csv";

/// The columns lookbook reads, for messages.
const EXPECTED: [&str; 8] = [
    "article_id",
    "product_code",
    "prod_name",
    "product_type_name",
    "product_group_name",
    "colour_group_name",
    "index_group_name",
    "detail_desc",
];

/// `--map` fields that override an H&M column.
const FIELDS: [&str; 7] = ["id", "group", "name", "description", "gender", "colour", "image"];

/// Reads an H&M `articles.csv`.
pub(crate) fn parse(text: &str, map: &[(String, String)]) -> Result<Parsed, String> {
    let overrides = Overrides::new(map, &FIELDS, "hm")?;
    let mut t = Table::open(text, super::table::sniff_delimiter(text), NAME)?;
    let col = |field: &str, names: &[&str]| t.column(&overrides, field, names);
    let id = col("id", &["article_id"])?.ok_or_else(|| missing(NAME, "article_id", &EXPECTED))?;
    let group = Some(col("group", &["product_code"])?.ok_or_else(|| missing(NAME, "product_code", &EXPECTED))?);
    let name = col("name", &["prod_name"])?;
    let description = col("description", &["detail_desc"])?;
    let gender = col("gender", &["index_group_name"])?;
    let colour = col("colour", &["colour_group_name"])?;
    let image = col("image", &[])?;
    let product_group = t.find(&["product_group_name"]);
    let product_type = t.find(&["product_type_name"]);
    let section = t.find(&["section_name"]);
    let department = t.find(&["department_name"]);
    let mut items = Vec::new();
    let mut rejected = Vec::new();
    while let Some(row) = t.next_row() {
        let raw_id = row.get(Some(id));
        let Some(article) = pad(raw_id, 10) else {
            let why = if raw_id.is_empty() {
                "no article_id".to_string()
            } else {
                format!("article_id `{raw_id}` is not a number of up to 10 digits")
            };
            rejected.push(reject(row.line, Some(raw_id), &why));
            continue;
        };
        let code = row.get(group);
        let mut category: Vec<String> = Vec::new();
        for part in [row.get(product_group), row.get(product_type)] {
            if !part.is_empty() && !category.iter().any(|c| c == part) {
                category.push(part.to_string());
            }
        }
        let gender_raw = row.get(gender).to_string();
        let mut gender_word = normalise_gender(&gender_raw);
        // `Sport` (and any group that is no gender) says it in the section: `Men H&M Sport`.
        if !known_gender(&gender_word) {
            let hint = [row.get(section), row.get(department)]
                .iter()
                .flat_map(|s| s.split_whitespace())
                .filter(|w| w.chars().count() >= 3)
                .map(normalise_gender)
                .find(|g| known_gender(g));
            if let Some(g) = hint {
                gender_word = g;
            }
        }
        let photo = match image {
            Some(_) => row.get(image).to_string(),
            None => format!("images/{}/{article}.jpg", &article[..3]),
        };
        items.push(FeedItem {
            line: row.line,
            shop_id: article.clone(),
            group: (!code.is_empty()).then(|| pad(code, 7).unwrap_or_else(|| code.to_string())),
            name: row.get(name).to_string(),
            description: strip_html(row.get(description)),
            category,
            gender: gender_word,
            gender_raw,
            colour: row.get(colour).to_string(),
            photo,
            variants: vec![Variant {
                sku: article,
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    rejected.append(&mut t.rejected);
    Ok(Parsed { items, rejected })
}

/// `s` as a number of `width` digits with leading zeros; None when it is not up to that many digits.
fn pad(s: &str, width: usize) -> Option<String> {
    let ok = !s.is_empty() && s.len() <= width && s.chars().all(|c| c.is_ascii_digit());
    ok.then(|| format!("{s:0>width$}"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{fixture, fixture_path, item, parsed};
    use super::*;
    use crate::ingest::feed::{Availability, Format};

    #[test]
    fn articles_excerpt() {
        let p = parsed("hm/articles.csv", Format::Hm);
        assert!(p.rejected.is_empty(), "{:?}", p.rejected);
        assert_eq!(p.items.len(), 11);
        let groups: std::collections::HashSet<_> = p.items.iter().map(|i| i.group.clone()).collect();
        assert_eq!(groups.len(), 10);
        let shirt = item(&p, "0100000001");
        assert_eq!(shirt.group.as_deref(), Some("0100000"));
        assert_eq!(shirt.name, "Men Check Red");
        assert_eq!(shirt.photo, "images/010/0100000001.jpg");
        assert_eq!(shirt.category, vec!["Topwear", "Shirts"]);
        assert_eq!((shirt.gender.as_str(), shirt.gender_raw.as_str()), ("Men", "Menswear"));
        assert_eq!(shirt.colour, "Red");
        assert_eq!(shirt.description, "Locomotive Men Check Red Shirt.");
        assert_eq!((shirt.price, shirt.availability), (None, Availability::Unknown));
        assert_eq!(shirt.variants.len(), 1);
        assert_eq!(shirt.variants[0].sku, "0100000001");
        let pair: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.group.as_deref() == Some("0100185"))
            .collect();
        let colours: Vec<_> = pair.iter().map(|i| i.colour.as_str()).collect();
        assert_eq!(colours, vec!["Pink", "Green"]);
        assert_eq!(item(&p, "0100037001").gender, "Women");
        let kids: Vec<_> = p
            .items
            .iter()
            .filter(|i| i.gender == "Kids")
            .map(|i| i.gender_raw.as_str())
            .collect();
        assert_eq!(kids, vec!["Divided", "Baby/Children"]);
        // Every photo path names a fixture file but the two left out: 0100111001 on purpose,
        // 0100407001 missing in the data set itself.
        let missing: Vec<_> = p
            .items
            .iter()
            .filter(|i| !fixture_path("hm").join(&i.photo).exists())
            .map(|i| i.shop_id.as_str())
            .collect();
        assert_eq!(missing, vec!["0100111001", "0100407001"]);
    }

    #[test]
    fn ids_get_their_zeros_back_and_bad_ones_are_rejected() {
        let text = "article_id,product_code,prod_name,index_group_name,section_name\n\
                    108775015,108775,Strap top,Ladieswear,Womens Basics\n\
                    01000x0001,0100000,Bad,Menswear,\n\
                    ,0100000,Empty,Menswear,\n\
                    0200000001,0200000,Run tee,Sport,Men H&M Sport\n";
        let p = parse(text, &[]).unwrap();
        let ids: Vec<_> = p.items.iter().map(|i| (i.shop_id.as_str(), i.photo.as_str())).collect();
        assert_eq!(
            ids,
            vec![
                ("0108775015", "images/010/0108775015.jpg"),
                ("0200000001", "images/020/0200000001.jpg")
            ]
        );
        assert_eq!(p.items[0].group.as_deref(), Some("0108775"));
        // `Sport` is no gender; the section says whose it is.
        assert_eq!(
            (p.items[1].gender.as_str(), p.items[1].gender_raw.as_str()),
            ("Men", "Sport")
        );
        let why: Vec<_> = p.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            why,
            vec![
                (Some(3), "article_id `01000x0001` is not a number of up to 10 digits"),
                (Some(4), "no article_id")
            ]
        );
    }

    #[test]
    fn transactions_are_not_articles() {
        let e = parse(&fixture("hm/transactions_train.csv"), &[]).unwrap_err();
        assert!(e.contains("`product_code`"), "{e}");
        assert_eq!(pad("12345678901", 10), None);
    }
}
