//! `lookbook serve` in tests: the server on a free loopback port, and russh clients.

use russh::keys::ssh_key::{PrivateKey, private::Ed25519Keypair};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Fixture;

pub struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

pub fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

/// The server, killed when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lookbook serve` on the fixture's catalogue, on a free loopback port; key 1 may log in.
pub fn start(fx: &Fixture) -> Server {
    start_on(fx, fx.db().as_os_str(), "a")
}

/// The same on any `--db` (a PostgreSQL URL too); `name` keeps two servers' files apart.
pub fn start_on(fx: &Fixture, db: &std::ffi::OsStr, name: &str) -> Server {
    let authorized = fx.path(&format!("authorized_keys_{name}"));
    std::fs::write(&authorized, format!("{}\n", key(1).public_key().to_openssh().unwrap())).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lookbook"));
    cmd.arg("--db")
        .arg(db)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--authorized-keys")
        .arg(&authorized)
        .arg("--host-key")
        .arg(fx.path(&format!("host_key_{name}")))
        .env("LOOKBOOK_WEIGHTS", fx.weights())
        .env("XDG_DATA_HOME", fx.path("xdg"))
        .current_dir(fx.dir.path());
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

pub async fn connect(port: u16, user: &str, seed: u8) -> (client::Handle<Client>, bool) {
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
pub async fn read_until(ch: &mut russh::Channel<client::Msg>, secs: u64, pred: impl Fn(&str) -> bool) -> String {
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

pub async fn app_session(handle: &client::Handle<Client>, cols: u32, rows: u32) -> russh::Channel<client::Msg> {
    let ch = handle.channel_open_session().await.unwrap();
    ch.request_pty(true, "xterm-256color", cols, rows, 0, 0, &[])
        .await
        .unwrap();
    ch.request_shell(true).await.unwrap();
    ch
}
