//! Terminal escapes in CSV cells, in database text written by another tool, in user names and
//! in file names: no command's text output carries them to the terminal.

use crate::common::Fixture;

const EVIL: &str = "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J";

fn assert_clean(what: &str, out: &std::process::Output) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && c != '\t' && lookbook::text::is_unsafe(c)),
            "{what}: {stream} carries an escape: {:?}",
            lookbook::text::truncate(&text, 400)
        );
    }
}

#[test]
fn image_column_with_escapes_is_not_echoed_raw_by_import() {
    let fx = Fixture::mini();
    let csv = fx.path("evil.csv");
    std::fs::write(
        &csv,
        format!("id,articleType,productDisplayName,image\n1,Shoes,Shoe,{EVIL}m.jpg\n"),
    )
    .unwrap();
    let out = fx
        .cmd(&[
            "import",
            "--images",
            fx.images().to_str().unwrap(),
            "--metadata",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "the row is skipped: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("\\u{1b}"),
        "the escape is shown, made visible"
    );
    assert_clean("import", &out);
}

#[test]
fn text_written_into_the_database_by_another_tool_is_sanitised_everywhere() {
    let fx = Fixture::mini();
    fx.ready();
    let ids = fx.ids();
    let conn = rusqlite::Connection::open(fx.db()).unwrap();
    conn.execute("UPDATE products SET name = ?1 || name, colour = ?1, usage = ?1", [EVIL])
        .unwrap();
    conn.execute("UPDATE categories SET name = ?1 || name", [EVIL]).unwrap();
    drop(conn);
    fx.cmd(&["users", "add", "ana"]).assert().success();
    let id = ids[0].to_string();
    fx.cmd(&["like", "--user", "ana", &id]).assert().success();
    for args in [
        vec!["similar", id.as_str(), "-k", "5"],
        vec!["recommend", "--user", "ana", "-k", "5"],
        vec!["likes", "--user", "ana"],
        vec!["show", id.as_str()],
        vec!["users"],
        vec!["model", "info"],
        vec!["eval", "-k", "3"],
    ] {
        let out = fx.cmd(&args).env("TERM", "dumb").output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_clean(&format!("{args:?}"), &out);
    }
}

#[test]
fn user_and_file_names_in_errors_and_hints_are_sanitised() {
    let fx = Fixture::mini();
    fx.ready();
    let evil_user = format!("x{EVIL}");
    let out = fx.cmd(&["recommend", "--user", &evil_user]).output().unwrap();
    assert!(!out.status.success());
    assert_clean("unknown user hint", &out);
    let out = fx.cmd(&["users", "add", &evil_user]).output().unwrap();
    assert!(!out.status.success());
    assert_clean("invalid user name", &out);
    let photo = fx.path(&format!("{EVIL}.jpg"));
    let out = fx
        .cmd(&["similar", "--image", photo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_clean("missing photo", &out);
    std::fs::write(&photo, b"not a photo").unwrap();
    let out = fx
        .cmd(&["similar", "--image", photo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_clean("bad photo", &out);
}
