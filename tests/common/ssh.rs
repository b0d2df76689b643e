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

/// The server, killed when dropped; its log lines are kept.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (bounded) until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// CPU time the server used so far (user + system), in seconds.
    pub fn cpu_s(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which may hold spaces) closed by ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
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
    let keys = format!("{}\n", key(1).public_key().to_openssh().unwrap());
    start_with(fx, db, name, &keys, &[])
}

/// The server with this authorized_keys text and these extra `serve` flags.
pub fn start_with(fx: &Fixture, db: &std::ffi::OsStr, name: &str, authorized_keys: &str, extra: &[&str]) -> Server {
    try_start(fx, db, name, authorized_keys, extra).unwrap_or_else(|log| panic!("the server did not start: {log}"))
}

/// The server, or everything it logged before it gave up.
pub fn try_start(
    fx: &Fixture,
    db: &std::ffi::OsStr,
    name: &str,
    authorized_keys: &str,
    extra: &[&str],
) -> Result<Server, String> {
    let authorized = fx.path(&format!("authorized_keys_{name}"));
    std::fs::write(&authorized, authorized_keys).unwrap();
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
        .args(extra)
        .env("LOOKBOOK_WEIGHTS", fx.weights())
        .env("XDG_DATA_HOME", fx.path("xdg"))
        .current_dir(fx.dir.path());
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("listening on") => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(log.lock().unwrap().join("\n"));
            }
        }
    }
    Ok(Server { child, port, log })
}

/// A TCP stream whose reading can be stopped, to play a client that stops reading its output.
pub struct Pausable {
    inner: tokio::net::TcpStream,
    pub paused: Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for Pausable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.paused.load(std::sync::atomic::Ordering::SeqCst) {
            let waker = cx.waker().clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                waker.wake();
            });
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Pausable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A logged-in client whose socket reading can be paused (`paused`).
pub async fn connect_pausable(
    port: u16,
    user: &str,
    seed: u8,
) -> (client::Handle<Client>, Arc<std::sync::atomic::AtomicBool>) {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = Pausable {
        inner: tcp,
        paused: Arc::clone(&paused),
    };
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    });
    let mut handle = client::connect_stream(config, stream, Client).await.unwrap();
    let ok = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key(seed)), None))
        .await
        .unwrap()
        .success();
    assert!(ok, "{user} logs in");
    (handle, paused)
}

/// Logs in as `user` with key `seed`, or with no key at all (`None`: a guest of `--open`).
pub async fn connect_as(port: u16, user: &str, seed: Option<u8>) -> (client::Handle<Client>, bool) {
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(30)),
        ..Default::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", port), Client).await.unwrap();
    let ok = match seed {
        Some(seed) => handle
            .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key(seed)), None))
            .await
            .unwrap()
            .success(),
        None => handle.authenticate_none(user).await.unwrap().success(),
    };
    (handle, ok)
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
