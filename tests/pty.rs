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
