//! The feed that learns from a shop's whole history, through the real binary: events kept row
//! by row, bought-together lists, best sellers for a shopper nobody knows, buying again, the
//! trained blend, and the competition's measurement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, json};

use common::shop_history::{BASIC_TEE, JEANS, SUNGLASSES, TSHIRT, WATCH, history};

fn import(fx: &Fixture, file: &std::path::Path) -> serde_json::Value {
    let out = fx
        .cmd(&["import", "--interactions", file.to_str().unwrap(), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)["interactions"].clone()
}

fn feed(fx: &Fixture, user: &str, k: usize) -> serde_json::Value {
    let out = fx
        .cmd(&["recommend", "--user", user, "-k", &k.to_string(), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    json(&out)
}

use common::result_ids as ids;

fn reason_of(v: &serde_json::Value, id: i64) -> String {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["reason"]["kind"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn every_row_is_an_event_and_importing_again_adds_nothing() {
    let fx = Fixture::mini();
    fx.ready();
    let file = history(&fx);
    let rows = std::fs::read_to_string(&file).unwrap().lines().count() - 1;
    let first = import(&fx, &file);
    assert_eq!(first["rows"], rows);
    assert_eq!(first["events"], rows, "identical rows are two purchases: {first}");
    let again = import(&fx, &file);
    assert_eq!(again["events"], 0, "{again}");
    assert_eq!(again["already_stored"], rows);
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    let n: i64 = c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(n as usize, rows);
    let bob: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM events e JOIN users u ON u.id = e.user_id WHERE u.name = 'bob' AND e.product_id = ?1",
            [BASIC_TEE],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(bob, 2, "both of bob's tees are kept");
    let likes: i64 = c.query_row("SELECT COUNT(*) FROM feedback", [], |r| r.get(0)).unwrap();
    assert_eq!(likes, 0, "purchases are events, not likes");
}

#[test]
fn the_feed_learns_from_everyone_and_an_unknown_shopper_gets_what_sells_now() {
    let fx = Fixture::mini();
    fx.ready();
    import(&fx, &history(&fx));
    // What others bought with hers.
    let ann = feed(&fx, "ann", 10);
    assert!(ids(&ann).contains(&JEANS), "{ann}");
    assert_eq!(reason_of(&ann, JEANS), "bought_with", "{ann}");
    let scores: Vec<f64> = ann["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "shown in score order: {scores:?}"
    );
    // Basics come back, a watch does not.
    let bob = feed(&fx, "bob", 10);
    assert!(ids(&bob).contains(&BASIC_TEE), "{bob}");
    assert_eq!(reason_of(&bob, BASIC_TEE), "buy_again");
    assert!(!ids(&bob).contains(&WATCH));
    // Nobody knows this shopper: a feed of what sells now, never an error. A like stamped
    // today does not move the shop's week away from its history's last one.
    fx.cmd(&["like", "--user", "cy", &WATCH.to_string()]).assert().success();
    let new = feed(&fx, "walk-in", 8);
    assert_eq!(new["known"], false);
    assert_eq!(new["cold_start"], true);
    assert_eq!(ids(&new).len(), 8);
    assert_eq!(ids(&new)[0], SUNGLASSES, "{new}");
    assert_eq!(new["results"][0]["reason"]["kind"], "selling_fast");
    // Bought together, as a list.
    let out = fx
        .cmd(&["together", &TSHIRT.to_string(), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(ids(&json(&out))[0], JEANS);
}

#[test]
fn a_trained_blend_is_stored_used_and_measured_against_baselines() {
    let fx = Fixture::mini();
    fx.ready();
    import(&fx, &history(&fx));
    let out = fx
        .cmd(&["train", "--feed", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let t = json(&out);
    assert_eq!(t["id"], 1);
    assert!(t["bought_together"].as_u64().unwrap() >= 2, "{t}");
    assert_eq!(feed(&fx, "ann", 5)["model"], "feed model 1");
    let out = fx
        .cmd(&["eval", "--personal", "--histories", "--days", "5", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r = json(&out);
    assert_eq!(r["k"], 12);
    assert_eq!(r["split_date"], "2024-01-15");
    let names: Vec<&str> = r["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["method"].as_str().unwrap())
        .collect();
    assert_eq!(names[0], "feed");
    for b in [
        "last week's best sellers",
        "own purchases, then best sellers",
        "co-purchase item-kNN",
        "visual taste (one vector)",
    ] {
        assert!(names.contains(&b), "{names:?}");
    }
    let feed_map = r["methods"][0]["all"]["map"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&feed_map));
    assert!(feed_map > 0.0, "the sunglasses everyone bought last are found: {r}");
    assert_eq!(r["users"], 13, "twelve shoppers and bob bought after the split");
}

#[test]
fn a_damaged_feed_model_is_named_and_the_app_still_opens() {
    let fx = Fixture::mini();
    fx.ready();
    import(&fx, &history(&fx));
    fx.cmd(&["train", "--feed"]).assert().success();
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.execute("UPDATE feed_models SET data = substr(data, 1, 40)", [])
        .unwrap();
    drop(c);
    let out = fx.cmd(&["recommend", "--user", "ann"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("feed model 1") && err.contains("train --feed"), "{err}");
    // The app's engine learns the feed from the history instead.
    let cat = lookbook::catalog::Catalog::open_existing(fx.db()).unwrap();
    let e = lookbook::recommend::Engine::load_with_shop(&cat).unwrap();
    assert!(e.shop().unwrap().stored.is_none());
    drop((e, cat));
    // A model another lookbook version stored is learned again, not an error.
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.execute("UPDATE feed_models SET data = CAST('lookbook-feed-0' AS BLOB)", [])
        .unwrap();
    drop(c);
    let v = feed(&fx, "ann", 5);
    assert!(v["model"].as_str().unwrap().starts_with("learned now"), "{v}");
    assert!(!ids(&v).is_empty());
}
