//! One clear line per failure, and the smaller cases: exit codes, damaged weights, long names,
//! bad bytes in the CSV, quoted newlines, a flood of missing photos.

use crate::common::{Fixture, write_weights};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn errors_name_the_database_and_say_each_cause_once() {
    let fx = Fixture::mini();
    fx.ready();
    // A rollback-journal database held by another writer: locked, not "not a catalogue".
    let other = fx.path("held.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch("CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1);")
        .unwrap();
    let out = fx
        .cmd(&["users"])
        .arg("--db")
        .arg(&other)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    let e = stderr(&out);
    assert!(!out.status.success());
    assert!(e.contains("held.db") && e.contains("locked"), "{e}");
    assert!(!e.contains("not a lookbook catalogue"), "{e}");
    drop(conn);
    // A missing photo: the OS error once.
    let out = fx.cmd(&["similar", "--image", "nowhere.jpg"]).output().unwrap();
    let e = stderr(&out);
    assert_eq!(e.matches("os error 2").count(), 1, "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    // A dropped table: said once.
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE feedback;")
        .unwrap();
    drop(conn);
    let out = fx.cmd(&["users"]).output().unwrap();
    let e = stderr(&out);
    assert!(!out.status.success());
    assert_eq!(e.matches("no such table").count(), 1, "{e:?}");
    assert!(e.contains("catalog.db"), "names the database: {e}");
}

#[test]
fn no_embeddings_yet_reads_well() {
    let fx = Fixture::mini();
    fx.cmd(&["import", "--images", "images", "--metadata", "styles.csv"])
        .assert()
        .success();
    let out = fx.cmd(&["similar", &fx.ids()[0].to_string()]).output().unwrap();
    let e = stderr(&out);
    assert!(e.contains("no embeddings yet; run `lookbook embed`"), "{e}");
    assert!(!e.contains("(none yet)"), "{e}");
}

#[test]
fn embed_with_failed_photos_exits_3() {
    let fx = Fixture::mini();
    fx.cmd(&["import", "--images", "images", "--metadata", "styles.csv"])
        .assert()
        .success();
    let victim = fx.images().join(format!("{}.jpg", fx.ids()[0]));
    std::fs::write(&victim, b"changed after import").unwrap();
    let out = fx.cmd(&["embed", "--batch", "8"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains(&victim.file_name().unwrap().to_string_lossy().to_string()));
}

#[test]
fn non_finite_weights_are_refused_at_load() {
    let fx = Fixture::mini();
    fx.cmd(&["import", "--images", "images", "--metadata", "styles.csv"])
        .assert()
        .success();
    let w = fx.path("nan.safetensors");
    write_weights(&w, 3);
    let mut bytes = std::fs::read(&w).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let t = &header["layer1.0.conv1.weight"];
    let start = 8 + header_len + t["data_offsets"][0].as_u64().unwrap() as usize;
    let nan: &[u8] = match t["dtype"].as_str().unwrap() {
        "F32" => &[0x00, 0x00, 0xC0, 0x7F],
        _ => &[0x00, 0x7E],
    };
    bytes[start..start + nan.len()].copy_from_slice(nan);
    std::fs::write(&w, bytes).unwrap();
    let out = fx.cmd(&["embed", "--weights", w.to_str().unwrap()]).output().unwrap();
    let e = stderr(&out);
    assert!(!out.status.success(), "NaN weights were accepted");
    assert!(
        e.contains("nan.safetensors") && e.contains("layer1.0.conv1.weight") && e.contains("NaN"),
        "{e}"
    );
}

#[test]
fn user_names_count_characters_and_long_ones_are_not_echoed_whole() {
    let fx = Fixture::mini();
    fx.cmd(&["import", "--images", "images", "--metadata", "styles.csv"])
        .assert()
        .success();
    let accented = "é".repeat(64); // 64 characters, 128 bytes
    fx.cmd(&["users", "add", &accented]).assert().success();
    let huge = "x".repeat(10_000);
    let out = fx.cmd(&["users", "add", &huge]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stderr.len() < 400, "{} bytes of error", out.stderr.len());
    let out = fx.cmd(&["recommend", "--user", &huge]).output().unwrap();
    assert!(out.stderr.len() < 400, "{} bytes of error", out.stderr.len());
}

#[test]
fn csv_with_bad_bytes_and_quoted_newlines() {
    let fx = Fixture::mini();
    let ids = fx.ids();
    let mut csv = b"id,articleType,productDisplayName\n".to_vec();
    csv.extend_from_slice(format!("{},Shoes,\"Red\nShoe\"\n", ids[0]).as_bytes());
    csv.extend_from_slice(format!("{},Shoes,Blue ", ids[1]).as_bytes());
    csv.extend_from_slice(&[0xFF, 0xFE]);
    csv.extend_from_slice(b" Shoe\n");
    let p = fx.path("bytes.csv");
    std::fs::write(&p, csv).unwrap();
    let out = fx
        .cmd(&["import", "--images", "images", "--metadata", "bytes.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(e.contains("bytes.csv:4") && e.contains("UTF-8"), "{e}");
    let shown = fx.cmd(&["show", &ids[0].to_string()]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("Red Shoe"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
}

#[test]
fn a_flood_of_missing_photos_is_summarised() {
    let fx = Fixture::mini();
    let mut csv = String::from("id,articleType\n");
    for i in 0..5_000 {
        csv.push_str(&format!("{},Shoes\n", 900_000 + i));
    }
    std::fs::write(fx.path("missing.csv"), csv).unwrap();
    let out = fx
        .cmd(&[
            "import",
            "--images",
            "images",
            "--metadata",
            "missing.csv",
            "--skipped",
            "skipped.txt",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let e = stderr(&out);
    assert!(e.lines().count() < 30, "{} lines on the terminal", e.lines().count());
    assert!(e.contains("4980 more"), "{e}");
    assert_eq!(
        std::fs::read_to_string(fx.path("skipped.txt")).unwrap().lines().count(),
        5_000
    );
}
