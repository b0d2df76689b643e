//! Photos by URL must not reach what the shop's CDN is not (issue 37, case 4): loopback,
//! private and link-local addresses, numbers written to hide them, and redirects to any of
//! those are refused by default, checked on the address actually connected to; `--allow-hosts`
//! lets a shop's own CDN in, and later imports and the app remember it.

use super::common::{Fixture, http::HttpServer, json};
use std::path::{Path, PathBuf};

fn shop(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/shop")
        .join(rel)
}

/// A Merchant TSV with one product per photo URL.
fn feed(fx: &Fixture, urls: &[(&str, String)]) -> PathBuf {
    let mut rows = vec!["id\ttitle\timage_link\tprice\tavailability\tproduct_type\tcolor".to_string()];
    for (id, url) in urls {
        rows.push(format!(
            "{id}\tProduct {id}\t{url}\t10.00 USD\tin_stock\tApparel > Topwear > Tshirts\tBlack"
        ));
    }
    let path = fx.path("hosts.tsv");
    std::fs::write(&path, rows.join("\n") + "\n").unwrap();
    path
}

fn import(fx: &Fixture, feed: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["import", "--metadata", feed.to_str().unwrap(), "--json"];
    args.extend(extra);
    let out = fx.cmd(&args).output().unwrap();
    json(&out.stdout)
}

fn reason(report: &serde_json::Value, id: &str) -> Option<String> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["shop_id"] == id)
        .map(|s| s["reason"].as_str().unwrap().to_string())
}

#[test]
fn loopback_private_and_disguised_addresses_are_not_fetched_unless_allowed() {
    let fx = Fixture::mini();
    let cdn = HttpServer::serve(shop("cdn"));
    let photo = "images/32/24832-main.jpg";
    let port = cdn.port;
    let urls = vec![
        ("LOOP", format!("http://127.0.0.1:{port}/{photo}")),
        ("NAME", format!("http://localhost:{port}/{photo}")),
        ("DECIMAL", format!("http://2130706433:{port}/{photo}")),
        ("HEX", format!("http://0x7f000001:{port}/{photo}")),
        ("SHORT", format!("http://127.1:{port}/{photo}")),
        ("V6", format!("http://[::1]:{port}/{photo}")),
        ("MAPPED", format!("http://[::ffff:127.0.0.1]:{port}/{photo}")),
        ("PRIVATE", "http://10.1.2.3:6379/x.jpg".to_string()),
        ("LINKLOCAL", "http://169.254.169.254/latest/meta-data/".to_string()),
    ];
    let report = import(&fx, &feed(&fx, &urls), &[]);
    assert_eq!(report["inserted"], 0, "{report}");
    for (id, _) in &urls {
        let why = reason(&report, id).unwrap_or_else(|| panic!("{id} not reported: {report}"));
        assert!(why.contains("--allow-hosts"), "{id}: {why}");
    }
    assert!(
        cdn.requests().is_empty(),
        "the loopback CDN was asked: {:?}",
        cdn.requests()
    );

    // The shop's own CDN, allowed by host and port; a redirect from it to another port of the
    // same host is checked again and refused.
    let allowed = import(
        &fx,
        &feed(
            &fx,
            &[
                ("OK", format!("http://127.0.0.1:{port}/{photo}")),
                ("HOP", format!("http://127.0.0.1:{port}/redirect-port/6379/{photo}")),
            ],
        ),
        &["--allow-hosts", &format!("127.0.0.1:{port}")],
    );
    assert_eq!(allowed["inserted"], 1, "{allowed}");
    assert!(reason(&allowed, "HOP").unwrap().contains("--allow-hosts"), "{allowed}");
    // The allowance is kept: a later import of the same shop needs no flag, but another port
    // of the same host is still refused.
    let again = import(
        &fx,
        &feed(
            &fx,
            &[
                ("OK", format!("http://127.0.0.1:{port}/{photo}")),
                ("REDIS", "http://127.0.0.1:6379/x.jpg".to_string()),
            ],
        ),
        &[],
    );
    assert!(reason(&again, "OK").is_none(), "{again}");
    assert!(reason(&again, "REDIS").unwrap().contains("--allow-hosts"), "{again}");
}

#[test]
fn an_import_stops_starting_downloads_at_its_timeout() {
    // Issue 37, case 8: nothing bounded an import's downloads as a whole.
    let fx = Fixture::mini();
    let cdn = HttpServer::serve(shop("cdn"));
    let photos: Vec<String> = std::fs::read_dir(shop("cdn/images"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| {
            let p = f.unwrap().path();
            p.strip_prefix(shop("cdn")).unwrap().to_string_lossy().into_owned()
        })
        .take(24)
        .collect();
    let urls: Vec<(String, String)> = photos
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("P{i}"), format!("{}/slow/{p}", cdn.base())))
        .collect();
    let refs: Vec<(&str, String)> = urls.iter().map(|(i, u)| (i.as_str(), u.clone())).collect();
    let started = std::time::Instant::now();
    let report = import(
        &fx,
        &feed(&fx, &refs),
        &["--allow-hosts", &format!("127.0.0.1:{}", cdn.port), "--timeout", "2"],
    );
    let took = started.elapsed();
    let late: Vec<String> = refs.iter().filter_map(|(id, _)| reason(&report, id)).collect();
    assert!(!late.is_empty(), "every slow photo was fetched: {report}");
    assert!(late.iter().all(|r| r.contains("--timeout")), "{late:?}");
    assert!(
        report["inserted"].as_u64().unwrap() >= 8,
        "those that started land: {report}"
    );
    assert!(took < std::time::Duration::from_secs(12), "{took:?}");
}
