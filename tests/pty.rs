//! The real binary in a pseudo-terminal: it draws, takes keys, quits, and leaves the terminal as
//! it found it (alternate screen left, cursor shown, mouse reporting off).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use expectrl::{Eof, Expect, Session};
use std::time::Duration;

fn run_keys(keys: &[&str]) -> String {
    let fx = common::Fixture::mini();
    fx.ready();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
    cmd.arg("--db")
        .arg(fx.db())
        .args(["--images", "halfblocks", "--user", "pty"]);
    cmd.env("TERM", "xterm-256color").env("LOOKBOOK_WEIGHTS", fx.weights());
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    let first = s.expect("Catalogue").expect("first frame");
    let mut out = String::from_utf8_lossy(first.before()).into_owned();
    out.push_str("Catalogue");
    for k in keys {
        s.send(k).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    let rest = s.expect(Eof).expect("the app exits");
    out.push_str(&String::from_utf8_lossy(rest.as_bytes()));
    out
}

#[test]
fn keys_work_and_quit_restores_the_terminal() {
    let out = run_keys(&["j", "l", "3", "?", "x", "1", "/", "shoe", "\r", "q"]);
    assert!(out.contains("\x1b[?1049h"), "entered the alternate screen");
    assert!(out.contains("Similar"), "drew the tabs");
    assert!(out.contains("liked"), "the like reached the status line");
    let tail = &out[out.rfind("\x1b[?1049h").unwrap_or(0)..];
    assert!(tail.contains("\x1b[?1049l"), "left the alternate screen");
    assert!(tail.contains("\x1b[?25h"), "showed the cursor again");
    assert!(tail.contains("\x1b[?1000l"), "turned mouse reporting off");
}

#[test]
fn ctrl_c_quits_cleanly_too() {
    let out = run_keys(&["j", "\x03"]);
    assert!(out.contains("\x1b[?1049l"), "left the alternate screen after Ctrl-C");
}

/// A first run on a new database: the app opens at once on the imported demo and embeds the
/// photos in the background, then ranks (a simulated bundled source tree with the mini photos).
#[test]
fn first_run_opens_the_app_and_embeds_in_the_background() {
    let fx = common::Fixture::mini();
    let src = fx.path("src");
    std::fs::create_dir_all(src.join("demo/images")).unwrap();
    std::fs::create_dir_all(src.join("models")).unwrap();
    for e in std::fs::read_dir(fx.images()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), src.join("demo/images").join(e.file_name())).unwrap();
    }
    std::fs::copy(fx.csv(), src.join("demo/styles.csv")).unwrap();
    common::write_weights(&src.join("models/lookbook-fashion-resnet50.safetensors"), 5);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
    cmd.arg("--db").arg(fx.path("new.db")).args(["--images", "none"]);
    cmd.env("TERM", "xterm-256color")
        .env("LOOKBOOK_BUNDLED_DIR", &src)
        .env("XDG_DATA_HOME", fx.path("xdg"));
    cmd.env_remove("LOOKBOOK_WEIGHTS");
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(120)));
    s.expect("Catalogue").expect("the app opens before embedding finishes");
    // Only changed cells are redrawn (blank ones are skipped with cursor moves), so match one
    // word of "embedded 48 photos (0 failed)".
    s.expect("failed)").expect("the photos are embedded in the background");
    s.send("q").unwrap();
    s.expect(Eof).expect("the app exits");
}
