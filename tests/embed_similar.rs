//! embed, similar, show and model info through the real binary on real photos.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, json};
use predicates::prelude::*;

#[test]
fn similar_lists_k_ranked_products_without_the_query() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[0];
    let out = fx
        .cmd(&["similar", &id.to_string(), "-k", "5", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["query"]["id"], id);
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    let scores: Vec<f64> = results.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(results.iter().all(|r| r["id"] != id));
    for key in ["name", "articleType", "colour", "gender"] {
        assert!(results[0][key].is_string(), "{key}");
    }
    fx.cmd(&["similar", &id.to_string(), "-k", "3"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Look-alikes of"));
}

#[test]
fn filters_apply_before_ranking() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[0];
    let out = fx
        .cmd(&[
            "similar",
            &id.to_string(),
            "-k",
            "20",
            "--category",
            "watches",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let r = v["results"].as_array().unwrap();
    assert_eq!(r.len(), 6, "all six watches, nothing else");
    assert!(r.iter().all(|x| x["articleType"] == "Watches"));
    let out = fx
        .cmd(&["similar", &id.to_string(), "--category", "Footwear", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        json(&out)["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["masterCategory"] == "Footwear")
    );
}

#[test]
fn photo_query_finds_the_product_itself_first() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[10];
    let photo = fx.images().join(format!("{id}.jpg"));
    let out = fx
        .cmd(&["similar", "--image", photo.to_str().unwrap(), "-k", "3", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["results"][0]["id"], id);
    assert!(v["results"][0]["score"].as_f64().unwrap() > 0.999);
}

#[test]
fn unknown_product_and_missing_photo_are_clear_errors() {
    let fx = Fixture::mini();
    fx.ready();
    fx.cmd(&["similar", "999999999"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("product 999999999 is not in the catalogue"));
    fx.cmd(&["similar", "--image", "nope.jpg"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope.jpg"));
    fx.cmd(&["show", "999999999"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("999999999"));
}

#[test]
fn embed_resumes_and_skips_what_is_done() {
    let fx = Fixture::mini();
    fx.ready();
    // Forget half of the vectors, as if the first run had been killed halfway.
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.execute("DELETE FROM embeddings WHERE product_id % 2 = 0", [])
        .unwrap();
    let missing: i64 = 48
        - c.query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get::<_, i64>(0))
            .unwrap();
    drop(c);
    let out = fx
        .cmd(&["embed", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["embedded"].as_i64().unwrap(), missing);
    assert_eq!(v["up_to_date"].as_i64().unwrap(), 48 - missing);
    let out = fx
        .cmd(&["embed", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["embedded"], 0);
}

#[test]
fn unreadable_photo_is_reported_not_fatal() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    // The photo changes on disk after import: embed must say so and carry on.
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.execute("DELETE FROM embeddings WHERE product_id = ?1", [ids[5]])
        .unwrap();
    drop(c);
    std::fs::write(fx.images().join(format!("{}.jpg", ids[5])), b"garbage").unwrap();
    // Exit 3, as `import` does when it skips something: the run finished, one photo did not.
    fx.cmd(&["embed"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("product {}", ids[5])));
}

#[test]
fn model_info_names_weights_and_counts() {
    let fx = Fixture::mini();
    fx.ready();
    let out = fx
        .cmd(&["model", "info", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["active_model"]["architecture"], "resnet50-bf16");
    assert_eq!(v["active_model"]["dim"], 2048);
    assert_eq!(v["embedded"], 48);
    assert_eq!(v["stale"], 0);
    assert_eq!(v["weights_file"]["input"], "64x48");
    assert_eq!(v["weights_file"]["sha256"], v["active_model"]["weights_sha256"]);
    fx.cmd(&["model", "info"])
        .assert()
        .success()
        .stdout(predicate::str::contains("pooling         avg"));
}

#[test]
fn other_weights_never_mix_with_existing_vectors() {
    let fx = Fixture::mini();
    fx.ready();
    let other = fx.path("other.safetensors");
    common::write_weights(&other, 99);
    let out = fx
        .cmd(&["embed", "--weights", other.to_str().unwrap(), "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["embedded"], 48, "a new model embeds everything again");
    let out = fx
        .cmd(&["model", "info", "--json"])
        .arg("--weights")
        .arg(&other)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&out)["other_models_vectors"], 48);
    // A photo query with weights that do not match the active model is refused.
    let photo = fx.images().join(format!("{}.jpg", fx.ids()[0]));
    fx.cmd(&["similar", "--image", photo.to_str().unwrap()])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "not the model this catalogue was embedded with",
        ));
}

#[test]
fn missing_weights_say_how_to_get_them() {
    let fx = Fixture::mini();
    fx.import();
    fx.cmd(&["embed", "--weights", "absent.safetensors"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("absent.safetensors"));
}

#[test]
fn show_prints_metadata() {
    let fx = Fixture::mini();
    fx.ready();
    let id = fx.ids()[0];
    fx.cmd(&["show", &id.to_string(), "--width", "20"])
        .assert()
        .success()
        .stdout(predicate::str::contains(id.to_string()));
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_message() {
    let fx = Fixture::mini();
    fx.ready();
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.pragma_update(None, "user_version", 42).unwrap();
    drop(c);
    fx.cmd(&["similar", &fx.ids()[0].to_string()])
        .assert()
        .failure()
        .stderr(predicate::str::contains("schema version 42 is newer"));
}
