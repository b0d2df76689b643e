//! `lookbook serve` for real: the binary on a free loopback port with a temporary host key and an
//! authorized_keys file, driven by russh clients. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use russh::keys::ssh_key::{PrivateKey, private::Ed25519Keypair};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

/// The server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(fx: &common::Fixture) -> Server {
    let authorized = fx.path("authorized_keys");
    std::fs::write(&authorized, format!("{}\n", key(1).public_key().to_openssh().unwrap())).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd: Command = fx.std_cmd(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
    cmd.arg("--authorized-keys")
        .arg(&authorized)
        .arg("--host-key")
        .arg(fx.path("host_key"));
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server starts");
        if line.contains("listening on") {
            break;
        }
    }
    Server { child, port }
}

async fn connect(port: u16, user: &str, seed: u8) -> (client::Handle<Client>, bool) {
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", port), Client).await.unwrap();
    let ok = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key(seed)), None))
        .await
        .unwrap()
        .success();
    (handle, ok)
}

/// Reads channel data until `pred` holds for everything read so far, or the time runs out.
async fn read_until(ch: &mut russh::Channel<client::Msg>, secs: u64, pred: impl Fn(&str) -> bool) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !pred(&seen) {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => seen.push_str(&String::from_utf8_lossy(&data)),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    seen
}

async fn app_session(handle: &client::Handle<Client>, cols: u32, rows: u32) -> russh::Channel<client::Msg> {
    let ch = handle.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm-256color", cols, rows, 0, 0, &[])
        .await
        .unwrap();
    ch.request_shell(true).await.unwrap();
    ch
}

fn likes(fx: &common::Fixture, user: &str) -> usize {
    let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
    cat.user_id(user)
        .unwrap()
        .map(|u| cat.feedback(u).unwrap().len())
        .unwrap_or(0)
}

#[test]
fn serves_the_app_over_ssh_and_lets_nothing_else_in() {
    let fx = common::Fixture::mini();
    fx.ready();
    let first_name = {
        let cat = lookbook::catalog::Catalog::open(fx.db()).unwrap();
        cat.products().unwrap()[0].name.chars().take(12).collect::<String>()
    };
    let server = start(&fx);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The first frame, with products from the catalogue on it; then j, Enter, l.
        let (ana, ok) = connect(server.port, "ana", 1).await;
        assert!(ok, "the authorized key logs in");
        let mut ch = app_session(&ana, 100, 30).await;
        let frame = read_until(&mut ch, 30, |s| s.contains(&first_name)).await;
        assert!(frame.contains(&first_name), "first frame: {frame:?}");
        assert!(frame.contains("\x1b[?1049h"), "the alternate screen");
        for k in ["j", "\r", "l"] {
            ch.data_bytes(k.as_bytes().to_vec()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let after = read_until(&mut ch, 10, |s| s.contains("liked")).await;
        assert!(after.contains("liked"), "the like reached the status line");
        let deadline = Instant::now() + Duration::from_secs(10);
        while likes(&fx, "ana") != 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(likes(&fx, "ana"), 1, "the like is stored under ana");

        // A resize redraws at the new size: the status line moves to the new last rows.
        ch.window_change(60, 20, 0, 0).await.unwrap();
        let redrawn = read_until(&mut ch, 10, |s| s.contains("\x1b[19;1H") && s.contains("ana ♥1")).await;
        assert!(
            redrawn.contains("\x1b[19;1H") && redrawn.contains("ana ♥1"),
            "redrawn after resize: {redrawn:?}"
        );

        // A second connection; closing it leaves the first one working.
        let (bob, ok) = connect(server.port, "bob", 1).await;
        assert!(ok);
        let mut ch2 = app_session(&bob, 80, 24).await;
        let _ = read_until(&mut ch2, 30, |s| s.contains(&first_name)).await;
        ch2.data_bytes(b"q".to_vec()).await.unwrap();
        let end = read_until(&mut ch2, 10, |s| s.contains("\x1b[?1049l")).await;
        assert!(end.contains("\x1b[?1049l"), "q restores bob's terminal");
        ch.data_bytes(b"1".to_vec()).await.unwrap(); // from Similar (Enter went there) to Browse
        let still = read_until(&mut ch, 10, |s| s.contains("Browse")).await;
        assert!(
            still.contains("Browse"),
            "ana's session still answers: {:?}",
            lookbook::text::truncate(&still, 600)
        );
        assert_eq!(likes(&fx, "bob"), 0, "bob cannot see or change ana's likes");

        // exec is refused: no command output, a failure reply.
        let (carol, ok) = connect(server.port, "carol", 1).await;
        assert!(ok);
        let exec = carol.channel_open_session().await.unwrap();
        exec.exec(true, "echo hacked").await.unwrap();
        let mut exec = exec;
        let reply = tokio::time::timeout(Duration::from_secs(10), exec.wait())
            .await
            .unwrap();
        assert!(matches!(reply, Some(ChannelMsg::Failure)), "exec: {reply:?}");

        // Port forwarding is refused.
        let fwd = ana
            .channel_open_direct_tcpip("127.0.0.1", u32::from(server.port), "127.0.0.1", 5555)
            .await;
        assert!(fwd.is_err(), "direct-tcpip was opened");

        // An unknown key is refused.
        let (_mallory, ok) = connect(server.port, "ana", 2).await;
        assert!(!ok, "an unknown key got in");
    });
}
