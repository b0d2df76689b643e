//! `lookbook import` on a real mini catalogue plus deliberately broken inputs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Fixture, json};
use predicates::prelude::*;

fn import(fx: &Fixture, csv: &std::path::Path) -> assert_cmd::assert::Assert {
    fx.cmd(&[
        "import",
        "--images",
        fx.images().to_str().unwrap(),
        "--metadata",
        csv.to_str().unwrap(),
    ])
    .assert()
}

fn count(fx: &Fixture) -> i64 {
    let c = rusqlite::Connection::open(fx.db()).unwrap();
    c.query_row("SELECT COUNT(*) FROM products", [], |r| r.get(0)).unwrap()
}

#[test]
fn clean_import_then_reimport_changes_nothing() {
    let fx = Fixture::mini();
    import(&fx, &fx.csv())
        .success()
        .stdout(predicate::str::contains("48 new, 0 updated, 0 unchanged, 0 skipped"));
    import(&fx, &fx.csv())
        .success()
        .stdout(predicate::str::contains("0 new, 0 updated, 48 unchanged"));
    assert_eq!(count(&fx), 48);
}

#[test]
fn changed_row_and_changed_photo_update_that_product() {
    let fx = Fixture::mini();
    import(&fx, &fx.csv()).success();
    let ids = fx.ids();
    let text = std::fs::read_to_string(fx.csv()).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[1] = lines[1].replacen(",Men,", ",Women,", 1);
    std::fs::write(fx.csv(), lines.join("\n") + "\n").unwrap();
    // swap two photos: both products change
    let (a, b) = (
        fx.images().join(format!("{}.jpg", ids[2])),
        fx.images().join(format!("{}.jpg", ids[3])),
    );
    let tmp = fx.path("swap.jpg");
    std::fs::rename(&a, &tmp).unwrap();
    std::fs::rename(&b, &a).unwrap();
    std::fs::rename(&tmp, &b).unwrap();
    let out = import(&fx, &fx.csv()).success().get_output().stdout.clone();
    let s = String::from_utf8_lossy(&out);
    assert!(
        s.contains("0 new") && s.contains("updated") && !s.contains("0 updated"),
        "{s}"
    );
}

#[test]
fn bad_rows_and_bad_images_are_skipped_and_named() {
    let fx = Fixture::mini();
    let ids = fx.ids();
    let header = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName";
    let good = std::fs::read_to_string(fx.csv())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    // A truncated JPEG and a text file named .jpg.
    let real = std::fs::read(fx.images().join(format!("{}.jpg", ids[0]))).unwrap();
    std::fs::write(fx.images().join("900001.jpg"), &real[..real.len() / 2]).unwrap();
    std::fs::write(fx.images().join("900002.jpg"), b"this is not a photo").unwrap();
    let csv = format!(
        "{header}\n{good}\n\
         900001,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Truncated Tee\n\
         900002,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Text Tee\n\
         900003,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual\n\
         ,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,No Id\n\
         900004,Men,Apparel,Topwear,Tshirts,Red,Fall,twenty,Casual,Bad Year\n\
         900005,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Bad \"quote\n\
         {good}\n\
         900006,Men,Apparel,Topwear,Tshirts,Red,Fall,2012,Casual,Missing Photo\n"
    );
    let bad = fx.path("bad.csv");
    std::fs::write(&bad, csv).unwrap();
    let out = import(&fx, &bad).code(3).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "bad.csv:3 (id 900001)",
        "truncated",
        "900002.jpg",
        "not an image",
        "bad.csv:5: expected 10 fields, found 9",
        "bad.csv:6: missing id",
        "bad.csv:7 (id 900004): year \"twenty\" is not a number",
        "bad.csv:8: stray quote",
        &format!("bad.csv:9 (id {}): duplicate id {} (first on line 2)", ids[0], ids[0]),
        "900006.jpg",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert_eq!(count(&fx), 1, "only the one good row lands");
}

#[test]
fn image_paths_cannot_escape_the_images_folder() {
    let fx = Fixture::mini();
    let ids = fx.ids();
    std::fs::write(
        fx.path("secret.jpg"),
        std::fs::read(fx.images().join(format!("{}.jpg", ids[0]))).unwrap(),
    )
    .unwrap();
    let csv = format!(
        "id,articleType,productDisplayName,image\n\
         1,Tshirts,Escape,../secret.jpg\n\
         2,Tshirts,Absolute,/etc/passwd\n\
         3,Tshirts,Fine,{}.jpg\n",
        ids[0]
    );
    let f = fx.path("escape.csv");
    std::fs::write(&f, csv).unwrap();
    let out = import(&fx, &f).code(3).get_output().clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("escape.csv:2 (id 1): image path \"../secret.jpg\" leaves the images folder"),
        "{err}"
    );
    assert!(
        err.contains("escape.csv:3 (id 2): image path \"/etc/passwd\" is absolute"),
        "{err}"
    );
    assert_eq!(count(&fx), 1);
}

#[test]
fn unusable_metadata_fails_and_leaves_the_database_as_it_was() {
    let fx = Fixture::mini();
    import(&fx, &fx.csv()).success();
    let f = fx.path("noid.csv");
    std::fs::write(&f, "name,colour\nx,Red\n").unwrap();
    import(&fx, &f)
        .failure()
        .stderr(predicate::str::contains("noid.csv: no `id` column"));
    import(&fx, &fx.path("missing.csv"))
        .failure()
        .stderr(predicate::str::contains("missing.csv"));
    assert_eq!(count(&fx), 48);
}

#[test]
fn json_report_lists_skips() {
    let fx = Fixture::mini();
    let f = fx.path("one.csv");
    std::fs::write(&f, "id,articleType\n424242,Tshirts\n").unwrap();
    let out = fx
        .cmd(&[
            "import",
            "--images",
            fx.images().to_str().unwrap(),
            "--metadata",
            f.to_str().unwrap(),
            "--json",
        ])
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["inserted"], 0);
    assert_eq!(v["skipped"][0]["id"], 424242);
    assert!(v["skipped"][0]["reason"].as_str().unwrap().contains("image missing"));
}

#[test]
fn a_refused_first_import_leaves_no_empty_catalogue_behind() {
    let fx = Fixture::mini();
    import(&fx, &fx.path("missing.csv"))
        .failure()
        .stderr(predicate::str::contains("missing.csv"));
    assert!(!fx.db().exists(), "an empty catalogue was left behind");
    // A catalogue that existed stays, whatever the import did.
    import(&fx, &fx.csv()).success();
    import(&fx, &fx.path("missing.csv")).failure();
    assert_eq!(count(&fx), 48);
}
