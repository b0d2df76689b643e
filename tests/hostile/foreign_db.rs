//! Another program's SQLite file given as --db is refused, and not a byte of it changes.

use crate::common::Fixture;
use sha2::{Digest, Sha256};

fn digest(path: &std::path::Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn foreign(fx: &Fixture, sql: &str) -> std::path::PathBuf {
    let p = fx.path("other.sqlite");
    let conn = rusqlite::Connection::open(&p).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    p
}

fn assert_untouched(fx: &Fixture, db: &std::path::Path, args: &[&str]) {
    let before = digest(db);
    let mut cmd = fx.cmd(args);
    cmd.arg("--db").arg(db);
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} accepted another program's database");
    assert!(
        err.contains("other.sqlite") && err.contains("another program"),
        "{args:?}: {err}"
    );
    assert_eq!(digest(db), before, "{args:?} changed the file");
    assert!(!fx.path("other.sqlite-wal").exists(), "{args:?} switched it to WAL");
}

#[test]
fn a_database_with_other_tables_is_left_alone() {
    let fx = Fixture::mini();
    let db = foreign(
        &fx,
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me');",
    );
    for args in [
        &["users"][..],
        &["import", "--images", "images", "--metadata", "styles.csv"],
        &["users", "add", "ana"],
    ] {
        assert_untouched(&fx, &db, args);
    }
}

#[test]
fn a_database_that_happens_to_have_a_products_table_is_left_alone() {
    let fx = Fixture::mini();
    let db = foreign(
        &fx,
        "CREATE TABLE products(sku TEXT PRIMARY KEY, price REAL); PRAGMA user_version = 4;",
    );
    assert_untouched(&fx, &db, &["users"]);
    assert_untouched(&fx, &db, &["import", "--images", "images", "--metadata", "styles.csv"]);
}

#[test]
fn a_database_with_another_application_id_is_left_alone() {
    let fx = Fixture::mini();
    let db = foreign(&fx, "PRAGMA application_id = 1234;");
    assert_untouched(&fx, &db, &["users"]);
}

#[test]
fn an_empty_file_becomes_a_catalogue() {
    let fx = Fixture::mini();
    std::fs::write(fx.db(), b"").unwrap();
    fx.cmd(&["users", "add", "ana"]).assert().success();
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    let app: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(app, lookbook::catalog::APPLICATION_ID);
}
