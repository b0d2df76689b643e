//! Users, likes and the personal feed through the real binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, json};
use predicates::prelude::*;

use common::result_ids as ids_of;

#[test]
fn users_are_added_listed_and_removed_with_their_likes() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[0].to_string();
    fx.cmd(&["users", "add", "ana"]).assert().success();
    fx.cmd(&["users", "add", "ana"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
    fx.cmd(&["like", "--user", "ana", &id]).assert().success();
    fx.cmd(&["like", "--user", "ana", &id]).assert().success();
    let out = fx
        .cmd(&["users", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)[0]["likes"], 1, "liking twice is harmless");
    fx.cmd(&["users", "remove", "ana"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 likes"));
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    let n: i64 = c.query_row("SELECT COUNT(*) FROM feedback", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
    fx.cmd(&["likes", "--user", "ana"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("user \"ana\" does not exist"));
}

#[test]
fn unknown_products_are_refused_and_nothing_is_written() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[0].to_string();
    fx.cmd(&["like", "--user", "bo", &id, "123456789"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("product 123456789"));
    let out = fx
        .cmd(&["likes", "--user", "bo", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["feedback"].as_array().unwrap().len(), 0);
}

#[test]
fn feed_excludes_feedback_explains_and_moves_toward_likes() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    // ids 0..6 are T-shirts, 6..12 casual shoes in the fixture.
    let shoes: Vec<String> = ids[6..9].iter().map(|i| i.to_string()).collect();
    let mut args = vec!["like", "--user", "cy"];
    args.extend(shoes.iter().map(|s| s.as_str()));
    fx.cmd(&args).assert().success();
    fx.cmd(&["dislike", "--user", "cy", &ids[0].to_string()])
        .assert()
        .success();
    let out = fx
        .cmd(&["recommend", "--user", "cy", "-k", "10", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let got = ids_of(&v);
    assert_eq!(got.len(), 10);
    for s in ids[6..9].iter().chain([&ids[0]]) {
        assert!(!got.contains(s), "feedback item {s} came back");
    }
    assert_eq!(v["results"][0]["reason"]["kind"], "you_liked");
    assert!(
        v["results"][0]["because"]
            .as_str()
            .unwrap()
            .starts_with("because you liked")
    );
    fx.cmd(&["unlike", "--user", "cy", &ids[6].to_string()])
        .assert()
        .success()
        .stdout(predicate::str::contains("forgot 1"));
}

#[test]
fn alpha_one_equals_look_alikes() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    fx.cmd(&["like", "--user", "dee", &ids[20].to_string()])
        .assert()
        .success();
    let item = ids[30].to_string();
    let a = fx
        .cmd(&[
            "recommend",
            "--user",
            "dee",
            "--item",
            &item,
            "--alpha",
            "1",
            "--diversity",
            "0",
            "-k",
            "8",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let s = fx
        .cmd(&["similar", &item, "-k", "9", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let liked = ids[20];
    let sim: Vec<i64> = ids_of(&json(&s)).into_iter().filter(|i| *i != liked).take(8).collect();
    assert_eq!(ids_of(&json(&a)), sim);
}

#[test]
fn cold_start_gives_a_full_varied_feed() {
    let fx = Fixture::mini();
    fx.ready();
    fx.cmd(&["users", "add", "new"]).assert().success();
    let out = fx
        .cmd(&["recommend", "--user", "new", "-k", "8", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["cold_start"], true);
    let types: std::collections::HashSet<String> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["articleType"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(v["results"].as_array().unwrap().len(), 8);
    assert!(types.len() >= 6, "starter feed should span categories: {types:?}");
}

#[test]
fn bad_settings_are_refused() {
    let fx = Fixture::mini();
    fx.ready();
    fx.cmd(&["users", "add", "e"]).assert().success();
    fx.cmd(&["recommend", "--user", "e", "--alpha", "1.5"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--alpha"));
    fx.cmd(&["recommend", "--user", "e", "--diversity", "-1"])
        .assert()
        .failure();
    // -k 0 says so, not "no products match the filters" (issue 37).
    let id = fx.ids()[0].to_string();
    for args in [
        &["similar", id.as_str(), "-k", "0"][..],
        &["recommend", "--user", "e", "-k", "0"],
        &["together", id.as_str(), "-k", "0"],
    ] {
        fx.cmd(args)
            .assert()
            .failure()
            .stderr(predicate::str::contains("-k must be at least 1"));
    }
    // A shopper the catalogue does not know gets the starter feed, not an error (issue 35);
    // a name no user could have is still refused.
    fx.cmd(&["recommend", "--user", "nobody", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"known\": false"));
    fx.cmd(&["recommend", "--user", "bad\u{7}name"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("user name"));
}
