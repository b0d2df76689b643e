//! Prices misread in silence (issue 37, case 5): exponents, hex, signs, NaN and infinities are
//! refused with their row, a code written against the number keeps its currency, and a feed that
//! mixes currencies is told so.

use super::common::{Fixture, json};
use std::path::{Path, PathBuf};

fn cdn() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/shop/cdn")
}

fn feed(fx: &Fixture, prices: &[(&str, &str)]) -> PathBuf {
    let mut rows = vec!["id\ttitle\timage_link\tprice\tavailability\tproduct_type\tcolor".to_string()];
    for (id, price) in prices {
        rows.push(format!(
            "{id}\tProduct {id}\thttps://cdn.shop.example/images/32/24832-main.jpg\t{price}\tin_stock\tApparel > Topwear > Tshirts\tBlack"
        ));
    }
    let path = fx.path("prices.tsv");
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

fn import(fx: &Fixture, feed: &Path) -> (serde_json::Value, String, i32) {
    let out = fx
        .cmd(&[
            "import",
            "--metadata",
            feed.to_str().unwrap(),
            "--images",
            cdn().to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    (
        json(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn price_of(fx: &Fixture, id: &str) -> (Option<f64>, String) {
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let p = cat
        .find_product(id)
        .unwrap()
        .unwrap_or_else(|| panic!("{id} not imported"));
    (p.price, p.currency)
}

#[test]
fn unreadable_prices_are_refused_with_their_row_never_read_as_another_number() {
    let fx = Fixture::mini();
    let bad = [
        "1e3 USD",
        "2e5 USD",
        "1e309",
        "0x10 USD",
        "NaN",
        "-1",
        "inf",
        "1.2.3 USD",
    ];
    let mut rows: Vec<(String, &str)> = bad.iter().enumerate().map(|(i, p)| (format!("BAD-{i}"), *p)).collect();
    rows.push(("GOOD".into(), "12.99USD"));
    rows.push(("COMMA".into(), "1.299,00 USD"));
    let rows_ref: Vec<(&str, &str)> = rows.iter().map(|(i, p)| (i.as_str(), *p)).collect();
    let (r, _, code) = import(&fx, &feed(&fx, &rows_ref));
    assert_eq!(code, 3, "skipped rows make exit 3: {r}");
    assert_eq!(r["inserted"], 2, "{r}");
    let skipped = r["skipped"].as_array().unwrap();
    for (i, price) in bad.iter().enumerate() {
        let s = skipped
            .iter()
            .find(|s| s["shop_id"] == format!("BAD-{i}"))
            .unwrap_or_else(|| panic!("{price:?} not reported: {r}"));
        assert_eq!(s["line"], i + 2, "{s}");
        assert!(s["reason"].as_str().unwrap().contains("price"), "{s}");
    }
    assert_eq!(price_of(&fx, "GOOD"), (Some(12.99), "USD".to_string()));
    assert_eq!(price_of(&fx, "COMMA"), (Some(1299.0), "USD".to_string()));
}

#[test]
fn a_feed_that_mixes_currencies_is_told_so() {
    let fx = Fixture::mini();
    let (r, _, _) = import(
        &fx,
        &feed(
            &fx,
            &[("A", "10 USD"), ("B", "10 EUR"), ("C", "1000 JPY"), ("D", "5 USD")],
        ),
    );
    assert_eq!(r["inserted"], 4, "{r}");
    assert_eq!(
        r["mixed_currencies"],
        serde_json::json!({"EUR": 1, "JPY": 1, "USD": 2}),
        "{r}"
    );
    let (one, _, _) = import(&fx, &feed(&fx, &[("A", "10 USD"), ("D", "5 USD")]));
    assert!(one.get("mixed_currencies").is_none(), "{one}");
    let out = fx
        .cmd(&[
            "import",
            "--metadata",
            feed(&fx, &[("A", "10 USD"), ("B", "10 EUR")]).to_str().unwrap(),
            "--images",
            cdn().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("mixes currencies (1 in EUR, 1 in USD)"), "{text}");
}
