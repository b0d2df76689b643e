//! SIGTERM, SIGHUP (an SSH disconnect) and SIGINT sent to the running app: the terminal is put
//! back as on `q`: alternate screen left, mouse reporting off, cursor shown.

use crate::common::Fixture;
use expectrl::{Eof, Expect, Session};
use std::time::Duration;

fn signal_app(signal: &str) -> String {
    let fx = Fixture::mini();
    fx.ready();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lookbook"));
    cmd.arg("--db")
        .arg(fx.db())
        .args(["--images", "halfblocks", "--user", "sig"]);
    cmd.env("TERM", "xterm-256color").env("LOOKBOOK_WEIGHTS", fx.weights());
    let mut s = Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    let first = s.expect("Catalogue").expect("first frame");
    let mut out = String::from_utf8_lossy(first.before()).into_owned();
    let pid = s.get_process().pid().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid])
        .status()
        .unwrap();
    assert!(status.success());
    s.set_expect_timeout(Some(Duration::from_secs(20)));
    let rest = s.expect(Eof).expect("the app exits on the signal");
    out.push_str(&String::from_utf8_lossy(rest.as_bytes()));
    out
}

fn assert_restored(out: &str, signal: &str) {
    let tail = &out[out.rfind("\x1b[?1049h").unwrap_or(0)..];
    assert!(tail.contains("\x1b[?1049l"), "{signal}: left the alternate screen");
    assert!(tail.contains("\x1b[?25h"), "{signal}: showed the cursor");
    assert!(tail.contains("\x1b[?1000l"), "{signal}: turned mouse reporting off");
}

#[test]
fn sigterm_restores_the_terminal() {
    assert_restored(&signal_app("TERM"), "SIGTERM");
}

#[test]
fn sighup_restores_the_terminal() {
    assert_restored(&signal_app("HUP"), "SIGHUP");
}

#[test]
fn sigint_restores_the_terminal() {
    assert_restored(&signal_app("INT"), "SIGINT");
}
