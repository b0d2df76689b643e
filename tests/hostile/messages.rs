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

#[test]
fn a_postgres_password_is_never_printed() {
    let fx = Fixture::mini();
    fx.ready();
    // Unreachable on purpose: every command fails on its way in, with the URL in the message.
    let secrets = ["s3cretPW!", "s3cretPW%21", "hunter2"];
    let urls = [
        "postgres://lookbook:s3cretPW%21@127.0.0.1:1/shop".to_string(),
        "postgresql://lookbook@127.0.0.1:1/shop?password=hunter2&connect_timeout=2".to_string(),
    ];
    let csv = fx.csv();
    let images = fx.images();
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "import",
            "--images",
            images.to_str().unwrap(),
            "--metadata",
            csv.to_str().unwrap(),
        ],
        vec!["embed"],
        vec!["similar", "1"],
        vec!["recommend", "--user", "ana"],
        vec!["users"],
        vec!["users", "add", "ana"],
        vec!["like", "--user", "ana", "1"],
        vec!["likes", "--user", "ana"],
        vec!["show", "1"],
        vec!["model", "info"],
        vec!["eval"],
        vec!["train"],
        vec!["serve", "--open", "--listen", "127.0.0.1:0"],
    ];
    for url in &urls {
        for args in &commands {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
            c.arg("--db").arg(url).args(args);
            c.env("LOOKBOOK_WEIGHTS", fx.weights())
                .env("XDG_DATA_HOME", fx.path("xdg"));
            let out = assert_cmd::Command::from_std(c)
                .timeout(std::time::Duration::from_secs(60))
                .output()
                .unwrap();
            let all = format!("{}{}", stderr(&out), String::from_utf8_lossy(&out.stdout));
            assert!(!out.status.success(), "{args:?} succeeded on an unreachable server");
            for s in secrets {
                assert!(!all.contains(s), "{args:?} printed the password: {all}");
            }
            assert!(all.contains("127.0.0.1"), "{args:?} names the server: {all}");
        }
    }
}

#[test]
fn files_that_hold_no_rows_say_why_and_exit_3() {
    let fx = Fixture::mini();
    let header = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName";
    let first = std::fs::read_to_string(fx.csv())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("cr.csv", format!("{header}\r{first}\r").into_bytes(), "CR only"),
        (
            "long.csv",
            format!("{header},{}", "x".repeat(50 << 20)).into_bytes(),
            "no line end",
        ),
        ("header.csv", format!("{header}\n").into_bytes(), "a header and no rows"),
    ];
    for (name, bytes, want) in cases {
        let path = fx.path(name);
        std::fs::write(&path, bytes).unwrap();
        let out = fx
            .cmd(&["import", "--images", "images", "--metadata", path.to_str().unwrap()])
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap();
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(3), "{name}: {e}");
        assert!(
            e.contains(name) && e.contains("no rows") && e.contains(want),
            "{name}: {e}"
        );
    }
    // UTF-16, with and without its byte order mark: named as such.
    let text = std::fs::read_to_string(fx.csv()).unwrap();
    for (name, bom) in [("utf16.csv", true), ("utf16-nobom.csv", false)] {
        let mut bytes: Vec<u8> = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let path = fx.path(name);
        std::fs::write(&path, bytes).unwrap();
        let out = fx
            .cmd(&["import", "--images", "images", "--metadata", path.to_str().unwrap()])
            .output()
            .unwrap();
        let e = stderr(&out);
        assert!(!out.status.success(), "{name}");
        assert!(
            e.contains(name) && e.contains("UTF-16") && e.contains("UTF-8"),
            "{name}: {e}"
        );
    }
}
