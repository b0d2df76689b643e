//! `import --prune` after a bad download (issue 37, case 1): a cut feed, or one that lacks most
//! of the shop, unlists nothing without `--prune-force`, and says what it would have unlisted.

use super::common::{Fixture, json};
use std::path::{Path, PathBuf};

fn shop(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/shop")
        .join(rel)
}

/// `import --metadata FEED --images cdn --json EXTRA...`: the report and the exit code.
fn import(fx: &Fixture, feed: &Path, extra: &[&str]) -> (serde_json::Value, i32) {
    let cdn = shop("cdn");
    let mut args = vec![
        "import",
        "--metadata",
        feed.to_str().unwrap(),
        "--images",
        cdn.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    let out = fx.cmd(&args).output().unwrap();
    (json(&out.stdout), out.status.code().unwrap_or(-1))
}

fn listed(fx: &Fixture) -> usize {
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    cat.products().unwrap().iter().filter(|p| p.listed).count()
}

#[test]
fn a_cut_or_tiny_feed_unlists_nothing_without_prune_force() {
    let fx = Fixture::mini();
    let whole = shop("google_feed.tsv");
    let (first, _) = import(&fx, &whole, &[]);
    let all = first["inserted"].as_u64().unwrap() as usize;
    assert_eq!(listed(&fx), all);
    // A download cut at a tenth: it reads as a shop of one or two products.
    let text = std::fs::read(&whole).unwrap();
    let cut = fx.path("cut.tsv");
    std::fs::write(&cut, &text[..text.len() / 10]).unwrap();
    let (r, code) = import(&fx, &cut, &["--prune"]);
    assert_eq!(r["pruned"], 0, "{r}");
    assert!(r["prune_refused"].as_str().unwrap().contains("--prune-force"), "{r}");
    assert_eq!(code, 3, "a refused prune is not a clean import");
    assert_eq!(listed(&fx), all, "nothing unlisted");
    // Asked for, it is done.
    let (r, _) = import(&fx, &cut, &["--prune", "--prune-force"]);
    assert!(r["pruned"].as_u64().unwrap() as usize > all / 2, "{r}");
    assert!(listed(&fx) < all / 2);
}

#[test]
fn a_feed_that_could_not_be_read_whole_proves_nothing_missing() {
    let fx = Fixture::mini();
    let whole = shop("shopify_products_export.csv");
    import(&fx, &whole, &[]);
    let all = listed(&fx);
    // Cut inside a quoted field of the last product's first row: that product is missing, a
    // small share of the shop, but the file ends in the middle of a row.
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let last_handle = lines.last().unwrap().split(',').next().unwrap();
    let start = lines
        .iter()
        .position(|l| l.starts_with(&format!("{last_handle},")))
        .unwrap();
    let head: String = lines[..start].iter().map(|l| format!("{l}\n")).collect();
    let row = lines[start];
    let quote = row.find('"').expect("a quoted field in the row");
    let cut = fx.path("cut.csv");
    std::fs::write(&cut, format!("{head}{}", &row[..quote + 3])).unwrap();
    let (r, code) = import(&fx, &cut, &["--prune"]);
    assert_eq!(r["pruned"], 0, "{r}");
    assert!(
        r["prune_refused"].as_str().unwrap().contains("could not be read"),
        "{r}"
    );
    assert_eq!(code, 3);
    assert_eq!(listed(&fx), all);
}
