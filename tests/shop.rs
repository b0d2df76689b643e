//! Shop catalogues (issue 20): each format imports, embeds and answers `similar SKU --json` and
//! price filters on a fresh catalogue; look-alikes skip the query's own colourways; photos by URL
//! come from a loopback CDN (dead links, a slow one, an oversized one, one that is not an image,
//! a redirect loop, a redirect to `file://`, a 503 that clears), cached, and not downloaded again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use common::http::HttpServer;
use std::path::{Path, PathBuf};

fn shop(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/shop")
        .join(rel)
}

fn import(fx: &Fixture, metadata: &Path, images: Option<&Path>, extra: &[&str]) -> (serde_json::Value, i32) {
    let mut args = vec!["import", "--metadata", metadata.to_str().unwrap(), "--json"];
    if let Some(i) = images {
        args.extend(["--images", i.to_str().unwrap()]);
    }
    args.extend(extra);
    let out = fx
        .cmd(&args)
        .timeout(std::time::Duration::from_secs(180))
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (common::json(&out.stdout), out.status.code().unwrap_or(-1))
}

fn similar(fx: &Fixture, reference: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["similar", reference, "--json"];
    if !extra.contains(&"-k") {
        args.extend(["-k", "5"]);
    }
    args.extend(extra);
    let out = fx.cmd(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::json(&out.stdout)
}

/// Every format: import on a fresh catalogue, embed, look-alikes by a variant's SKU with the
/// shop's fields in the JSON, a price filter, and a second import that changes nothing.
#[test]
fn every_format_imports_embeds_and_answers_by_the_shops_own_ids() {
    let cases: [(&str, &str, &str); 5] = [
        ("shopify_products_export.csv", "cdn", "shopify"),
        ("google_feed.tsv", "cdn", "merchant-tsv"),
        ("google_feed.xml", "cdn", "merchant-xml"),
        ("wc-product-export.csv", "cdn", "woocommerce"),
        ("hm/articles.csv", "hm", "hm"),
    ];
    for (file, images, name) in cases {
        let fx = Fixture::mini();
        let (r, _) = import(&fx, &shop(file), Some(&shop(images)), &[]);
        let inserted = r["inserted"].as_u64().unwrap();
        assert!(inserted >= 5, "{name}: {r}");
        fx.cmd(&["embed"]).assert().success();
        let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
        let products = cat.products().unwrap();
        // A variant SKU where there are variants, else the shop's id.
        let query = products
            .iter()
            .find_map(|p| p.variants.first().map(|v| v.sku.clone()))
            .unwrap_or_else(|| products[0].shop_id.clone().unwrap());
        let v = similar(&fx, &query, &[]);
        let q = &v["query"];
        assert!(q["shop_id"].is_string(), "{name}: {q}");
        assert!(
            q["image"].as_str().unwrap().len() > 4,
            "{name}: the photo as the feed gave it"
        );
        let results = v["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{name}");
        for r in results {
            assert!(r["shop_id"].is_string() && r["availability"].is_string(), "{name}: {r}");
        }
        if name != "hm" {
            assert!(
                results.iter().any(|r| r["price"].is_number()),
                "{name}: prices as numbers"
            );
            let cheap = similar(&fx, &query, &["--max-price", "1500"]);
            for r in cheap["results"].as_array().unwrap() {
                assert!(r["price"].as_f64().unwrap() <= 1500.0, "{name}: {r}");
            }
            let stocked = similar(&fx, &query, &["--in-stock"]);
            for r in stocked["results"].as_array().unwrap() {
                assert_eq!(r["availability"], "in_stock", "{name}");
            }
        }
        // A feed is a snapshot: the same file again changes nothing.
        let (again, _) = import(&fx, &shop(file), Some(&shop(images)), &[]);
        assert_eq!(again["inserted"], 0, "{name}: {again}");
        assert_eq!(again["updated"], 0, "{name}: {again}");
        assert_eq!(again["unchanged"].as_u64().unwrap(), inserted, "{name}");
    }
}

#[test]
fn look_alikes_skip_the_querys_colourways_and_show_one_per_group() {
    let fx = Fixture::mini();
    import(&fx, &shop("google_feed.tsv"), Some(&shop("cdn")), &[]);
    import(&fx, &shop("shopify_products_export.csv"), Some(&shop("cdn")), &[]);
    fx.cmd(&["embed"]).assert().success();
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let products = cat.products().unwrap();
    let grouped = products
        .iter()
        .find(|p| {
            p.group
                .as_ref()
                .is_some_and(|g| products.iter().filter(|o| o.group.as_ref() == Some(g)).count() > 1)
        })
        .expect("the fixtures have a product in several colours");
    let v = similar(&fx, grouped.shop_id.as_deref().unwrap(), &["-k", "20"]);
    let groups: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["group"].as_str())
        .collect();
    assert!(
        !groups.contains(&grouped.group.as_deref().unwrap()),
        "the query's own colourways are listed: {groups:?}"
    );
    let mut unique = groups.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), groups.len(), "two colourways of one group: {groups:?}");
}

/// A folder with a real photo at every path (or URL path) the file names, so a hand-made
/// fixture imports whole.
fn photos_for(fx: &Fixture, file: &Path, map: &[(String, String)]) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    let format = if map.is_empty() {
        lookbook::ingest::formats::detect(file, &text).unwrap()
    } else {
        lookbook::ingest::feed::Format::Mapped
    };
    let parsed = lookbook::ingest::formats::parse(format, &text, map).unwrap();
    let dir = fx.path(&format!("photos-{}", file.file_name().unwrap().to_string_lossy()));
    for item in parsed.items {
        let rel = lookbook::ingest::shop::local_photo(&item.photo).unwrap();
        let to = dir.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(fx.images().join(format!("{}.jpg", fx.ids()[0])), to).unwrap();
    }
    dir
}

#[test]
fn newer_shopify_columns_bom_crlf_atom_and_mapped_csv_import() {
    let fx = Fixture::mini();
    for file in ["shopify_new_bom_crlf.csv", "google_atom.xml"] {
        let photos = photos_for(&fx, &shop(file), &[]);
        let (r, _) = import(&fx, &shop(file), Some(&photos), &[]);
        assert!(r["inserted"].as_u64().unwrap() >= 2, "{file}: {r}");
    }
    let text = std::fs::read_to_string(shop("mapped.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let maps = mapped_args(&header);
    let pairs: Vec<(String, String)> = maps
        .chunks(2)
        .map(|c| {
            let (f, col) = c[1].split_once('=').unwrap();
            (f.to_string(), col.to_string())
        })
        .collect();
    let photos = photos_for(&fx, &shop("mapped.csv"), &pairs);
    let refs: Vec<&str> = maps.iter().map(String::as_str).collect();
    let (r, _) = import(&fx, &shop("mapped.csv"), Some(&photos), &refs);
    assert!(r["inserted"].as_u64().unwrap() >= 1, "{r}");
    // Rows that share an id are one product with a variant per size.
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let p = cat.require_product_ref("ST-100").unwrap();
    assert!(p.variants.len() >= 2, "{:?}", p.variants);
    // A field lookbook does not know is refused, naming it.
    let out = fx
        .cmd(&[
            "import",
            "--metadata",
            shop("mapped.csv").to_str().unwrap(),
            "--images",
            photos.to_str().unwrap(),
            "--map",
            "colour_of_the_day=x",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour_of_the_day"));
}

/// `--map` pairs for the mapped fixture, by its header's names.
fn mapped_args(header: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (field, names) in [
        ("id", &["id", "style no", "code", "item"][..]),
        ("name", &["name", "product name", "title"]),
        ("image", &["image", "photo", "picture"]),
        ("price", &["price", "cost"]),
        ("compare_at", &["was"]),
        ("size", &["size"]),
        ("sku", &["sku", "ean"]),
        ("stock", &["qty", "stock"]),
        ("category", &["category", "dept"]),
        ("colour", &["colour", "color", "shade"]),
        ("gender", &["for", "gender"]),
    ] {
        if let Some(col) = header
            .iter()
            .find(|h| names.contains(&h.trim().trim_matches('"').to_ascii_lowercase().as_str()))
        {
            out.push("--map".to_string());
            out.push(format!("{field}={}", col.trim().trim_matches('"')));
        }
    }
    out
}

/// A Merchant TSV whose photos are on the loopback CDN, with every misbehaviour.
fn loopback_feed(fx: &Fixture, base: &str) -> PathBuf {
    let photos: Vec<String> = std::fs::read_dir(shop("cdn/images"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| {
            let p = f.unwrap().path();
            p.strip_prefix(shop("cdn")).unwrap().to_string_lossy().into_owned()
        })
        .take(6)
        .collect();
    assert_eq!(photos.len(), 6);
    let mut rows = vec!["id\ttitle\timage_link\tprice\tavailability\tproduct_type\tcolor".to_string()];
    let mut add = |id: &str, url: String| {
        rows.push(format!(
            "{id}\tProduct {id}\t{url}\t100.00 USD\tin_stock\tApparel > Topwear > Tshirts\tBlack"
        ))
    };
    for (i, p) in photos.iter().take(3).enumerate() {
        add(&format!("OK-{i}"), format!("{base}/{p}"));
    }
    add("SLOW", format!("{base}/slow/{}", photos[3]));
    add("FLAKY", format!("{base}/flaky/{}", photos[4]));
    add("DEAD", format!("{base}/404/{}", photos[5]));
    add("BIG", format!("{base}/big/photo.jpg"));
    add("TEXT", format!("{base}/text/photo.jpg"));
    add("LOOP", format!("{base}/loop/photo.jpg"));
    add("TOFILE", format!("{base}/to-file/photo.jpg"));
    add("LOCAL", "file:///etc/passwd".to_string());
    let path = fx.path("feed.tsv");
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

#[test]
fn photos_by_url_are_downloaded_once_and_bad_links_are_reported_not_fatal() {
    let fx = Fixture::mini();
    let cdn = HttpServer::serve(shop("cdn"));
    let feed = loopback_feed(&fx, &cdn.base());
    let allow = format!("127.0.0.1:{}", cdn.port);
    let (r, code) = import(&fx, &feed, None, &["--allow-hosts", &allow]);
    assert_eq!(code, 3, "skipped rows make exit 3");
    assert_eq!(r["inserted"], 5, "the good, slow and flaky photos land: {r}");
    let skipped = r["skipped"].as_array().unwrap();
    let reason = |id: &str| -> String {
        skipped
            .iter()
            .find(|s| s["shop_id"] == id)
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{id} not reported: {skipped:?}"))
    };
    assert!(reason("DEAD").contains("404"), "{}", reason("DEAD"));
    assert!(reason("BIG").contains("limit"), "{}", reason("BIG"));
    assert!(!reason("TEXT").is_empty());
    assert!(reason("LOOP").contains("redirect"), "{}", reason("LOOP"));
    assert!(!reason("TOFILE").is_empty());
    assert!(reason("LOCAL").contains("not allowed"), "{}", reason("LOCAL"));
    for s in skipped {
        assert!(s["line"].is_number(), "each names its row: {s}");
    }
    fx.cmd(&["embed"]).assert().success();
    let v = similar(&fx, "OK-0", &[]);
    assert!(v["query"]["image"].as_str().unwrap().starts_with(&cdn.base()));
    // Again: the cache asks only whether each photo changed, and nothing changes.
    let before = cdn.requests().len();
    let (again, _) = import(&fx, &feed, None, &[]);
    assert_eq!(again["unchanged"], 5, "{again}");
    assert_eq!(again["inserted"], 0);
    let second: Vec<String> = cdn.requests()[before..].to_vec();
    let fetched_ok = second
        .iter()
        .filter(|l| l.ends_with(" 200") && !l.contains("/big/") && !l.contains("/text/"))
        .count();
    assert_eq!(fetched_ok, 0, "photos downloaded again: {second:?}");
    assert!(second.iter().any(|l| l.ends_with(" 304")), "{second:?}");
}

#[test]
fn prune_unlists_what_a_feed_no_longer_has_and_a_later_feed_brings_it_back() {
    let fx = Fixture::mini();
    let (first, _) = import(&fx, &shop("google_feed.tsv"), Some(&shop("cdn")), &[]);
    let all = first["inserted"].as_u64().unwrap();
    fx.cmd(&["embed"]).assert().success();
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let products = cat.products().unwrap();
    drop(cat);
    let kept = products[0].shop_id.clone().unwrap();
    let gone = products.last().unwrap().shop_id.clone().unwrap();
    fx.cmd(&["like", "--user", "ana", &gone]).assert().success();
    // The same feed without its last product's rows.
    let text = std::fs::read_to_string(shop("google_feed.tsv")).unwrap();
    let gone_group = products.last().unwrap().group.clone();
    let smaller: Vec<&str> = text
        .lines()
        .filter(|l| {
            let id = l.split('\t').next().unwrap_or("");
            let group = l.split('\t').nth(1).unwrap_or("");
            let same_item = !id.is_empty() && gone.starts_with(id);
            let same_group = !group.is_empty() && gone_group.as_deref() == Some(group);
            !same_item && !same_group
        })
        .collect();
    let path = fx.path("smaller.tsv");
    std::fs::write(&path, smaller.join("\n") + "\n").unwrap();
    let (pruned, _) = import(&fx, &path, Some(&shop("cdn")), &["--prune"]);
    assert!(pruned["pruned"].as_u64().unwrap() >= 1, "{pruned}");
    let v = similar(&fx, &kept, &["-k", "50"]);
    let ids: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["shop_id"].as_str())
        .collect();
    assert!(
        !ids.contains(&gone.as_str()),
        "an unlisted product is a look-alike: {ids:?}"
    );
    let likes = fx.cmd(&["likes", "--user", "ana", "--json"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&likes.stdout).contains(&products.last().unwrap().name),
        "the like is kept"
    );
    // The whole feed again: the product is back.
    let (back, _) = import(&fx, &shop("google_feed.tsv"), Some(&shop("cdn")), &["--prune"]);
    assert_eq!(back["pruned"], 0, "{back}");
    assert!(
        back["updated"].as_u64().unwrap() >= 1,
        "the unlisted product is listed again: {back}"
    );
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    assert_eq!(cat.products().unwrap().iter().filter(|p| p.listed).count() as u64, all);
}

#[test]
fn a_shops_history_becomes_users_and_likes_and_unknown_products_are_counted() {
    let fx = Fixture::mini();
    import(&fx, &shop("hm/articles.csv"), Some(&shop("hm")), &[]);
    fx.cmd(&["embed"]).assert().success();
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let products = cat.products().unwrap();
    drop(cat);
    let (a, b) = (
        products[0].shop_id.clone().unwrap(),
        products[1].shop_id.clone().unwrap(),
    );
    let history = fx.path("history.csv");
    std::fs::write(
        &history,
        format!(
            "user,product,time,weight\nshopper1,{a},2024-01-02,1\nshopper1,{b},2024-01-03\nshopper1,{a},2024-02-01\nshopper2,NOT-SOLD-HERE,2024-01-02\nshopper2,{b},1704067200,-1\n,{a},,\n"
        ),
    )
    .unwrap();
    let out = fx
        .cmd(&["import", "--interactions", history.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "a bad row makes exit 3");
    let r = common::json(&out.stdout)["interactions"].clone();
    assert_eq!(r["rows"], 6, "{r}");
    assert_eq!(r["new_users"], 2, "{r}");
    assert_eq!(r["unknown_products"], 1, "{r}");
    assert_eq!(r["unknown_examples"][0], "NOT-SOLD-HERE");
    assert_eq!(r["bad_row_count"], 1);
    // The repeat purchase is one like, at its later time; the feed works from the first session.
    let likes = fx.cmd(&["likes", "--user", "shopper1", "--json"]).output().unwrap();
    let l = common::json(&likes.stdout);
    assert_eq!(
        l.as_array()
            .map(Vec::len)
            .or_else(|| l["feedback"].as_array().map(Vec::len)),
        Some(2),
        "{l}"
    );
    let feed = fx
        .cmd(&["recommend", "--user", "shopper1", "-k", "3", "--json"])
        .output()
        .unwrap();
    let f = common::json(&feed.stdout);
    assert_eq!(f["cold_start"], false, "{f}");
    // `eval --personal --histories` measures on these users: shopper1 (two likes, the newer
    // held out); shopper2 has only a dislike left and is counted as too short.
    let out = fx
        .cmd(&["eval", "--personal", "--histories", "-k", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let e = common::json(&out.stdout);
    assert_eq!(e["source"], "stored", "{e}");
    assert_eq!(e["users"], 1, "{e}");
    assert_eq!(e["too_short"], 1, "{e}");
    let methods: Vec<&str> = e["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    for m in ["feed", "last-like", "item-knn", "popularity"] {
        assert!(methods.contains(&m), "{methods:?}");
    }
    // The one user's only earlier like is `b` (a repeat purchase of `a` made `a` the newest):
    // the last-like baseline is look-alikes of `b`, so its hit says whether `a` is among them.
    let near: Vec<String> =
        common::json(&fx.cmd(&["similar", &b, "-k", "3", "--json"]).output().unwrap().stdout)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["shop_id"].as_str().unwrap_or("").to_string())
            .collect();
    let last_like = e["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "last-like")
        .unwrap();
    assert_eq!(
        last_like["hit_rate"],
        if near.contains(&a) { 1.0 } else { 0.0 },
        "{near:?} {e}"
    );
    // H&M's own transactions file reads too; its articles outside this excerpt are unknown.
    let out = fx
        .cmd(&[
            "import",
            "--interactions",
            shop("hm/transactions_train.csv").to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let r = common::json(&out.stdout)["interactions"].clone();
    assert!(r["rows"].as_u64().unwrap() >= 20, "{r}");
    // Every purchase is an event of its own (issue 35), none a like.
    assert_eq!(
        r["events"].as_u64().unwrap() + r["unknown_products"].as_u64().unwrap(),
        r["rows"].as_u64().unwrap()
    );
    assert_eq!(r["likes"], 0, "{r}");
}

/// A shop's drafts, archived and unpublished products are imported unlisted (not offered as
/// look-alikes, brought back by a later feed that publishes them), and a size whose SKU another
/// product already has is reported, not dropped in silence.
#[test]
fn drafts_are_stored_unlisted_and_a_reused_sku_is_reported() {
    let fx = Fixture::mini();
    let text = std::fs::read_to_string(shop("shopify_products_export.csv")).unwrap();
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("peter-england-men-elite-grey-tie-18771,Peter") {
                l.replacen(",active", ",draft", 1)
            } else if l.starts_with("lino-perros-brown-women-casual-sling-bag-22563,Lino") {
                l.replacen(",TRUE,", ",FALSE,", 1)
            } else {
                l.replacen("CHROMOZOME-M-50670-S", "MOTHER-EARTH-12768-S", 1)
            }
        })
        .collect();
    assert_ne!(edited.join("\n"), text.trim_end(), "the edits found their rows");
    let path = fx.path("shopify_drafts.csv");
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let (report, _) = import(&fx, &path, Some(&shop("cdn")), &[]);
    let dropped = report["variants_dropped"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{report}");
    let why = dropped[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("MOTHER-EARTH-12768-S") && why.contains("mother-earth"),
        "the report names the SKU and its owner: {why}"
    );
    let out = fx
        .cmd(&[
            "import",
            "--metadata",
            path.to_str().unwrap(),
            "--images",
            shop("cdn").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("left off") && err.contains("MOTHER-EARTH-12768-S"),
        "{err}"
    );

    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    let products = cat.products().unwrap();
    drop(cat);
    let hidden: Vec<&str> = products
        .iter()
        .filter(|p| !p.listed)
        .filter_map(|p| p.group.as_deref())
        .collect();
    assert!(hidden.iter().any(|g| g.starts_with("peter-england")), "{hidden:?}");
    assert!(hidden.iter().any(|g| g.starts_with("lino-perros")), "{hidden:?}");
    assert!(
        hidden
            .iter()
            .all(|g| g.starts_with("peter-england") || g.starts_with("lino-perros")),
        "{hidden:?}"
    );
    assert_eq!(
        report["hidden"],
        hidden.len(),
        "every colourway of the two, and no other: {report}"
    );
    let shown = format!("{} hidden by the shop", hidden.len());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&shown), "{stdout}");
    fx.cmd(&["embed"]).assert().success();
    let v = similar(&fx, "MOTHER-EARTH-12768-S", &["-k", "50"]);
    let groups: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["group"].as_str())
        .collect();
    assert!(!groups.is_empty());
    assert!(
        groups
            .iter()
            .all(|g| !g.starts_with("peter-england") && !g.starts_with("lino-perros")),
        "a draft is offered: {groups:?}"
    );
    // Published in the next export: listed again.
    let (back, _) = import(&fx, &shop("shopify_products_export.csv"), Some(&shop("cdn")), &[]);
    assert_eq!(back["hidden"], 0, "{back}");
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    assert!(cat.products().unwrap().iter().all(|p| p.listed));
}

/// `show` of a shop's product prints what the shop gave (its id, brand, price, stock, page) and
/// no empty facets: a feed has no season or usage to print as " ·  · ".
#[test]
fn show_prints_a_shops_fields_and_no_empty_facets() {
    let fx = Fixture::mini();
    import(&fx, &shop("google_feed.tsv"), Some(&shop("cdn")), &[]);
    let out = fx.cmd(&["--images", "none", "show", "24832-BLU"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "(24832-BLU)",
        "Wildcraft",
        "1069.00 INR",
        "https://shop.example/p/wildcraft-unisex-blue-black-backpack",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    assert!(
        !text.contains("·  ·") && !text.contains(" ·\n"),
        "empty facets printed:\n{text}"
    );
}
