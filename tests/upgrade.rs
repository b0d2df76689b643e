//! A catalogue made by the release before shop catalogues (schema version 1) keeps working:
//! opened by this lookbook it moves to the new schema, products, likes and vectors kept, and the
//! new fields read as empty. The old schema is the previous release's own SQL
//! (`tests/fixtures/schema-v1*.sql`), filled the way that release filled it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use lookbook::catalog::{Catalog, SCHEMA_VERSION};

/// A version-1 catalogue file: the fixture imported and embedded by this release, then its rows
/// copied into a file made with the old schema, stamped as version 1.
fn old_catalogue(fx: &Fixture) -> std::path::PathBuf {
    fx.ready();
    fx.cmd(&["like", "--user", "ana", &fx.ids()[0].to_string()])
        .assert()
        .success();
    let old = fx.path("v1.db");
    let conn = rusqlite::Connection::open(&old).unwrap();
    conn.execute_batch(include_str!("fixtures/schema-v1.sql")).unwrap();
    conn.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS new;
         INSERT INTO settings SELECT key, value FROM new.settings;
         INSERT INTO categories SELECT id, parent_id, name, level FROM new.categories;
         INSERT INTO products SELECT id, name, category_id, gender, colour, season, year, usage, image_path,
             image_hash, added_at, updated_at FROM new.products;
         INSERT INTO users SELECT id, name, created_at FROM new.users;
         INSERT INTO models SELECT id, key, name, architecture, weights_sha256, preprocessing, pooling, dim,
             head_id, created_at FROM new.models;
         INSERT INTO feedback SELECT user_id, product_id, weight, at FROM new.feedback;
         INSERT INTO embeddings SELECT model_id, product_id, image_hash, vector, created_at FROM new.embeddings;
         DETACH DATABASE new;
         PRAGMA user_version = 1;
         PRAGMA application_id = {};",
        fx.db().display(),
        lookbook::catalog::APPLICATION_ID
    ))
    .unwrap();
    drop(conn);
    // The old file sits beside the photos, as the original did.
    std::fs::remove_file(fx.db()).unwrap();
    std::fs::rename(&old, fx.db()).unwrap();
    fx.db()
}

#[test]
fn a_version_1_catalogue_is_upgraded_and_keeps_its_products_likes_and_vectors() {
    let fx = Fixture::mini();
    let db = old_catalogue(&fx);
    let version = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&db), 1);
    let ids = fx.ids();
    // Every command works on it; the first one upgrades it.
    let out = fx
        .cmd(&["similar", &ids[1].to_string(), "-k", "3", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(version(&db), SCHEMA_VERSION);
    let v = common::json(&out.stdout);
    assert_eq!(v["results"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["results"][0]["availability"], "unknown",
        "new fields read as empty: {v}"
    );
    let cat = Catalog::open(&db).unwrap();
    assert_eq!(cat.product_count().unwrap(), ids.len());
    let ana = cat.user_id("ana").unwrap().unwrap();
    assert_eq!(cat.feedback(ana).unwrap()[0].product_id, ids[0], "the like is kept");
    let p = cat.require_product(ids[0]).unwrap();
    assert_eq!((p.shop_id.as_deref(), p.brand.as_str(), p.price), (None, "", None));
    assert!(p.listed);
    // Importing the same styles.csv again into the upgraded file changes nothing.
    let out = fx
        .cmd(&[
            "import",
            "--images",
            fx.images().to_str().unwrap(),
            "--metadata",
            fx.csv().to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let r = common::json(&out.stdout);
    assert_eq!(
        (r["inserted"].as_u64(), r["updated"].as_u64()),
        (Some(0), Some(0)),
        "{r}"
    );
}
