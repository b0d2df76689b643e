//! `lookbook http` through the real binary on loopback: the same answers as the CLI's `--json`,
//! events in and counted at once, keys, limits, and hostile requests that each get their status
//! while the server stays up. Every loop is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{Api, READ, WRITE};
use common::shop_history::{JEANS, SUNGLASSES, TSHIRT, history};
use common::{Fixture, json, result_ids};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The fixture, embedded, with the small shop history imported.
fn shop() -> Fixture {
    let fx = Fixture::mini();
    fx.ready();
    let file = history(&fx);
    fx.cmd(&["import", "--interactions", file.to_str().unwrap()])
        .assert()
        .success();
    fx
}

fn cli_json(fx: &Fixture, args: &[&str]) -> serde_json::Value {
    json(&fx.cmd(args).assert().success().get_output().stdout.clone())
}

#[test]
fn answers_with_the_clis_fields_and_counts_events_at_once() {
    let fx = shop();
    let api = Api::start(&fx, &[]);
    let t = TSHIRT.to_string();

    let similar = api.get(&format!("/v1/products/{t}/similar?k=5"), Some(READ));
    assert_eq!(similar.status, 200, "{}", similar.text());
    let cli = cli_json(&fx, &["similar", &t, "-k", "5", "--json"]);
    assert_eq!(similar.json()["results"], cli["results"]);
    assert_eq!(similar.json()["query"]["id"], TSHIRT);

    let filtered = api.get(
        &format!("/v1/products/{t}/similar?k=5&gender=Women&category=Topwear"),
        Some(READ),
    );
    let cli = cli_json(
        &fx,
        &[
            "similar",
            &t,
            "-k",
            "5",
            "--gender",
            "Women",
            "--category",
            "Topwear",
            "--json",
        ],
    );
    assert_eq!(filtered.json()["results"], cli["results"]);

    let together = api.get(&format!("/v1/products/{t}/together?k=3"), Some(READ));
    assert_eq!(result_ids(&together.json())[0], JEANS, "{}", together.text());
    let cli = cli_json(&fx, &["together", &t, "-k", "3", "--json"]);
    assert_eq!(together.json()["results"], cli["results"]);

    let ann = api.get("/v1/users/ann/feed?k=6", Some(READ));
    let cli = cli_json(&fx, &["recommend", "--user", "ann", "-k", "6", "--json"]);
    assert_eq!(ann.json()["results"], cli["results"]);
    assert_eq!(ann.json()["known"], true);

    // Somebody new gets what sells now, not an error, and so does /v1/popular.
    let new = api.get("/v1/users/walk-in/feed?k=3", Some(READ));
    assert_eq!(new.status, 200);
    assert_eq!(new.json()["cold_start"], true);
    assert_eq!(result_ids(&new.json())[0], SUNGLASSES, "{}", new.text());
    let popular = api.get("/v1/popular?k=3", Some(READ));
    assert_eq!(result_ids(&popular.json()), result_ids(&new.json()));

    // Events from the site count for that shopper's next feed at once.
    let body = format!(
        r#"[{{"user":"walk-in","product":"{TSHIRT}","kind":"purchase","time":"2024-01-20T10:00:00"}},
            {{"user":"walk-in","product":{JEANS},"kind":"like"}},
            {{"user":"walk-in","product":"no-such-sku","kind":"view"}},
            {{"user":"walk-in","product":"{TSHIRT}","kind":"wink"}},
            {{"user":"walk-in","product":"{TSHIRT}","kind":"view","time":0}},
            {{"user":"walk-in","product":"{TSHIRT}","kind":"view","time":"2024-01-20T10:00:00+25:00"}},
            {{"user":"walk-in","product":"{TSHIRT}","kind":"view","time":"2999-01-01"}}]"#
    );
    let posted = api.post("/v1/events", Some(WRITE), body.as_bytes());
    assert_eq!(posted.status, 200, "{}", posted.text());
    let p = posted.json();
    assert_eq!(p["accepted"], 2, "{p}");
    let rejected: Vec<u64> = p["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(rejected, [2, 3, 4, 5, 6], "{p}");
    assert!(
        p["rejected"][2]["error"].as_str().unwrap().contains("before 2000"),
        "{p}"
    );
    assert!(p["rejected"][4]["error"].as_str().unwrap().contains("future"), "{p}");
    assert!(p["rejected"][0]["error"].as_str().unwrap().contains("no-such-sku"));
    let after = api.get("/v1/users/walk-in/feed?k=6", Some(READ)).json();
    assert_eq!(after["known"], true);
    assert_eq!(after["purchases"], 1, "{after}");
    assert_eq!(after["likes"], 1);
    assert_eq!(after["cold_start"], false);
    // The CLI reads the same rows.
    let likes = cli_json(&fx, &["likes", "--user", "walk-in", "--json"]);
    assert_eq!(likes["feedback"].as_array().unwrap().len(), 1, "{likes}");

    // Keys: none, unknown, and a read key posting events.
    let none = api.get("/v1/popular", None);
    assert_eq!(none.status, 401);
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert!(none.json()["error"].as_str().unwrap().contains("Authorization: Bearer"));
    assert_eq!(api.get("/v1/popular", Some("read-key-0123456789abcdeX")).status, 401);
    let read_posts = api.post("/v1/events", Some(READ), b"[]");
    assert_eq!(read_posts.status, 403, "{}", read_posts.text());

    // The operations routes.
    assert_eq!(api.get("/healthz", None).json()["status"], "ok");
    let metrics = api.get("/metrics", Some(READ));
    assert_eq!(metrics.status, 200);
    let m = metrics.text();
    assert!(
        m.contains("lookbook_http_requests_total{route=\"similar\",status=\"200\"} 2"),
        "{m}"
    );
    assert!(m.contains("lookbook_http_events_accepted_total 2"), "{m}");
    assert!(
        m.contains("lookbook_http_requests_total{route=\"events\",status=\"403\"} 1"),
        "{m}"
    );
    let spec = api.get("/openapi.json", None).json();
    assert_eq!(spec["openapi"], "3.1.0");
    let photo = api.get(&format!("/v1/products/{t}/photo"), None);
    assert_eq!(photo.status, 200);
    assert_eq!(photo.header("content-type"), Some("image/jpeg"));
    assert_eq!(photo.body, std::fs::read(fx.images().join(format!("{t}.jpg"))).unwrap());
}

#[test]
fn bad_requests_get_their_status_and_nothing_leaks() {
    let fx = shop();
    let mut api = Api::start(
        &fx,
        &["--max-body-kb", "4", "--max-events", "10", "--max-upload-kb", "64"],
    );
    let t = TSHIRT.to_string();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("GET", "/v1/popular?k=0".into(), 400, "k must be"),
        ("GET", "/v1/popular?k=1000000".into(), 400, "k must be"),
        ("GET", "/v1/popular?k=-1".into(), 400, "k must be"),
        ("GET", "/v1/popular?k=3&k=4".into(), 400, "twice"),
        ("GET", "/v1/popular?colr=red".into(), 400, "unknown parameter"),
        (
            "GET",
            format!("/v1/products/{t}/together?gender=Men"),
            400,
            "unknown parameter",
        ),
        ("GET", "/v1/popular?min_price=NaN".into(), 400, "min_price"),
        ("GET", "/v1/popular?max_price=-3".into(), 400, "max_price"),
        ("GET", "/v1/popular?in_stock=maybe".into(), 400, "in_stock"),
        ("GET", "/v1/products/1'%20OR%20'1'='1/similar".into(), 404, "no product"),
        (
            "GET",
            "/v1/products/..%2F..%2Fetc%2Fpasswd/photo".into(),
            404,
            "no product",
        ),
        ("GET", "/v1/products/%FF%FE/similar".into(), 400, "path"),
        ("GET", "/v1/users/%00evil/feed".into(), 400, ""),
        ("GET", format!("/v1/users/{}/feed", "x".repeat(500)), 400, ""),
        ("GET", "/v1/nothing".into(), 404, "openapi"),
        ("DELETE", "/v1/popular".into(), 405, "method"),
    ];
    // Keys are checked before methods: the events route wants a write key whatever the method.
    assert_eq!(api.get("/v1/events", Some(READ)).status, 403);
    assert_eq!(api.get("/v1/events", Some(WRITE)).status, 405);
    for (method, path, status, says) in &cases {
        let r = api.request(method, path, Some(READ), &[], b"");
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
        let err = r.json()["error"].as_str().unwrap().to_string();
        assert!(err.contains(says), "{method} {path}: {err}");
    }
    let posts: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("/v1/events", b"{not json".to_vec(), 400, "not JSON"),
        ("/v1/events", b"{\"user\":\"a\"}".to_vec(), 400, "array"),
        ("/v1/events", vec![b'['; 3000], 400, "not JSON"),
        ("/v1/events", vec![b' '; 5000], 413, "4 KiB"),
        (
            "/v1/events",
            format!("[{}]", [r#"{"user":"a","product":1,"kind":"view"}"#; 11].join(",")).into_bytes(),
            413,
            "at most 10",
        ),
        ("/v1/similar", b"not a photo".to_vec(), 400, "uploaded photo"),
        ("/v1/similar", vec![0xFF; 70 * 1024], 413, "64 KiB"),
        ("/v1/similar", Vec::new(), 400, "photo"),
    ];
    for (path, body, status, says) in &posts {
        let r = api.post(path, Some(WRITE), body);
        assert_eq!(r.status, *status, "POST {path} ({} bytes): {}", body.len(), r.text());
        let err = r.json()["error"].as_str().unwrap().to_string();
        assert!(err.contains(says), "POST {path}: {err}");
    }
    // A declared body over the limit, or a request without a key, is answered at once: no
    // `100 Continue`, nothing read.
    for (key, status) in [("nope", 401), (WRITE, 413)] {
        let mut s = api.connect();
        s.write_all(
            format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nExpect: 100-continue\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
        let r = common::api::read_reply(&mut s).unwrap();
        assert_eq!(r.status, status, "{}", r.text());
    }
    // `color` is `colour`: both is one parameter twice.
    let r = api.get("/v1/popular?colour=Black&color=Blue", Some(READ));
    assert_eq!(r.status, 400, "{}", r.text());
    // A real photo as the query finds itself first.
    let photo = std::fs::read(fx.images().join(format!("{t}.jpg"))).unwrap();
    let r = api.post("/v1/similar?k=3", Some(READ), &photo);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(result_ids(&r.json())[0], TSHIRT);
    // An error never carries a path of the server's or a stack trace.
    let dir = fx.dir.path().to_string_lossy().into_owned();
    for (method, path, _, _) in &cases {
        let r = api.request(method, path, Some(READ), &[], b"");
        assert!(!r.text().contains(&dir), "{}", r.text());
        assert!(!r.text().contains("panicked"), "{}", r.text());
    }
    assert!(api.alive());
    assert_eq!(api.get("/healthz", None).status, 200);
}

#[test]
fn limits_hold_against_floods_slow_clients_and_idle_connections() {
    let fx = shop();
    let mut api = Api::start(
        &fx,
        &[
            "--rate",
            "20",
            "--max-connections",
            "32",
            "--max-per-address",
            "32",
            "--header-timeout",
            "1",
            "--request-timeout",
            "2",
        ],
    );
    // Over the key's rate: 429 with when to come back; the write key has its own bucket.
    let mut limited = None;
    for _ in 0..60 {
        let r = api.get("/v1/popular?k=1", Some(READ));
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let limited = limited.expect("60 requests at once never hit a rate of 20 a second");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(api.get("/v1/popular?k=1", Some(WRITE)).status, 200);

    // Slowloris: headers sent a byte at a time are cut off at the header timeout (1 s): after
    // 2.5 s of trickling, the connection is closed, not waiting for more.
    let mut slow = api.connect();
    for b in b"GET /v1/popular HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .iter()
        .cycle()
        .take(25)
    {
        if slow.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match slow.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the slow client was never cut off"
        ),
    }

    // A slow body is cut off at the request timeout with a 503.
    let mut body_slow = api.connect();
    body_slow
        .write_all(
            format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE}\r\nContent-Length: 100\r\nConnection: close\r\n\r\n[")
                .as_bytes(),
        )
        .unwrap();
    let started = Instant::now();
    let r = common::api::read_reply(&mut body_slow).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(6));

    // Connections that send nothing: the ones over the cap are answered 503 at once, and all of
    // them are closed at the header timeout, so honest clients get in again.
    let idle: Vec<_> = (0..32).map(|_| api.connect()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = api.connect();
    let r = common::api::read_reply(&mut over).unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("too many connections"));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        api.get("/healthz", None).status,
        200,
        "idle connections still hold every slot"
    );
    drop(idle);

    // A flood of connections at once, bounded: each gets an answer, the server stays up.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let port = api.port;
            std::thread::spawn(move || {
                let mut codes = Vec::new();
                for _ in 0..40 {
                    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                        continue;
                    };
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                    if let Ok(r) = common::api::read_reply(&mut s) {
                        codes.push(r.status);
                    }
                }
                codes
            })
        })
        .collect();
    let codes: Vec<u16> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(codes.len() >= 300, "{} of 320 connections answered", codes.len());
    assert!(codes.iter().all(|c| *c == 200 || *c == 503), "{codes:?}");
    assert!(api.alive());
    assert_eq!(api.get("/healthz", None).status, 200);
}

#[test]
fn browsers_are_let_in_only_from_the_origins_given() {
    let fx = shop();
    let api = Api::start(&fx, &["--cors-origin", "https://shop.example"]);
    let preflight = |origin: &str| {
        api.request(
            "OPTIONS",
            "/v1/popular",
            None,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "GET"),
                ("Access-Control-Request-Headers", "authorization"),
            ],
            b"",
        )
    };
    let ok = preflight("https://shop.example");
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://shop.example"),
        "{ok:?}"
    );
    assert!(
        ok.header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let other = preflight("https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None, "{other:?}");
    let get = api.request(
        "GET",
        "/v1/popular",
        Some(READ),
        &[("Origin", "https://shop.example")],
        b"",
    );
    assert_eq!(get.header("access-control-allow-origin"), Some("https://shop.example"));
    assert_eq!(get.header("x-content-type-options"), Some("nosniff"));
    // A bad origin flag is refused at start with what to write.
    let out = fx
        .cmd(&["http", "--keys", "api-keys", "--cors-origin", "shop.example/"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    assert!(String::from_utf8_lossy(&out).contains("like https://shop.example"));
}

#[test]
fn a_catalogue_changed_by_another_process_is_loaded_again() {
    let fx = shop();
    let api = Api::start(&fx, &[]);
    let before = api.get("/v1/users/ann/feed?k=3", Some(READ)).json();
    assert!(
        before["model"].as_str().unwrap().contains("no `train --feed`"),
        "{before}"
    );
    fx.cmd(&["train", "--feed"]).assert().success();
    assert!(api.wait_log("loaded it again", 20), "{}", api.log());
    let after = api.get("/v1/users/ann/feed?k=3", Some(READ)).json();
    assert!(after["model"].as_str().unwrap().starts_with("feed model"), "{after}");
    assert!(
        api.get("/metrics", Some(READ))
            .text()
            .contains("lookbook_http_reloads_total 1")
    );
}

#[test]
fn a_catalogue_without_vectors_answers_503_until_embedded() {
    let fx = Fixture::mini();
    fx.import();
    let api = Api::start(&fx, &[]);
    let r = api.get("/v1/popular", Some(READ));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("embed"), "{}", r.text());
    assert_eq!(api.get("/healthz", None).status, 503);
    fx.cmd(&["embed", "--batch", "8"]).assert().success();
    assert!(api.wait_log("loaded it again", 20), "{}", api.log());
    assert_eq!(api.get("/healthz", None).status, 200);
}

#[test]
fn a_bad_keys_file_is_refused_at_start_with_the_line() {
    let fx = Fixture::mini();
    fx.import();
    std::fs::write(fx.path("k"), "read short\n").unwrap();
    let out = fx
        .cmd(&["http", "--keys", "k"])
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(err.contains("line 1") && err.contains("openssl rand"), "{err}");
}

/// Debian's chromium, or `None` (the test then says it was skipped) unless CI asks for it.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("LOOKBOOK_TEST_CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/chromium".into());
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("LOOKBOOK_REQUIRE_CHROMIUM").is_none(),
        "LOOKBOOK_REQUIRE_CHROMIUM is set but {} does not exist",
        path.display()
    );
    eprintln!("skipped: no chromium at {} (.ci/run installs Debian's)", path.display());
    None
}

/// Serves `html` for every request on `listener`, at most 50 connections.
fn serve_page(listener: std::net::TcpListener, html: String) {
    std::thread::spawn(move || {
        for conn in listener.incoming().take(50) {
            let Ok(mut c) = conn else { continue };
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = c.write_all(reply.as_bytes());
        }
    });
}

#[test]
fn the_widget_draws_a_strip_in_chromium_with_the_catalogues_text_as_text() {
    let Some(chromium) = chromium() else { return };
    let fx = Fixture::mini();
    // A product name that would run script if a page put it in as HTML.
    let csv = std::fs::read_to_string(fx.csv()).unwrap().replace(
        "Reebok T-shirt White Polo Tshirt",
        "<img src=x onerror=document.title='pwned'>Evil Tee",
    );
    std::fs::write(fx.csv(), csv).unwrap();
    fx.ready();
    let file = history(&fx);
    fx.cmd(&["import", "--interactions", file.to_str().unwrap()])
        .assert()
        .success();
    // The shop's page on one port, the API on another: a cross-origin call, as on a real shop.
    let page = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let page_port = page.local_addr().unwrap().port();
    let api = Api::start(&fx, &["--cors-origin", &format!("http://127.0.0.1:{page_port}")]);
    let html = format!(
        r#"<!doctype html><html><head><title>shop</title></head><body>
<div id="strip"></div>
<script async src="http://127.0.0.1:{}/widget.js" data-key="{READ}" data-product="{JEANS}"
        data-kind="together" data-k="4" data-target="strip" data-title="Bought together"></script>
</body></html>"#,
        api.port
    );
    serve_page(page, html);
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://127.0.0.1:{page_port}/"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("data-lookbook-state"),
        "the widget did not run: {dom}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains(r#"data-lookbook-state="ready""#), "{dom}\n{}", api.log());
    assert!(dom.contains("Bought together"));
    assert!(dom.contains(&format!(r#"data-product="{TSHIRT}""#)), "{dom}");
    assert!(dom.contains("&lt;img src=x onerror"), "the name is text: {dom}");
    assert!(
        dom.contains("<title>shop</title>"),
        "no script ran from the name: {dom}"
    );
    assert!(dom.contains(&format!("/v1/products/{TSHIRT}/photo")), "{dom}");
}
