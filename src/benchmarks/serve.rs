//! `lookbook bench serve`: the server under load. It starts `lookbook serve` as a child process
//! on a copy of a catalogue (or a synthetic one), connects real SSH clients, and measures the
//! server's resident memory with one and with all connections, key-press-to-frame latency with
//! every connection pressing a key every 200 ms, and that concurrent likes all land.

use anyhow::{Context, Result, bail};
use russh::keys::ssh_key::{PrivateKey, private::Ed25519Keypair};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lookbook::catalog::Catalog;

/// What the load run measured.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Products in the catalogue served.
    pub products: usize,
    /// Connections at once.
    pub connections: usize,
    /// Server resident memory with one connection, MiB.
    pub rss_one_mib: f64,
    /// With all connections, MiB.
    pub rss_all_mib: f64,
    /// Key press to the end of the next frame at the client, ms.
    pub key_to_frame_p50_ms: f64,
    /// Same, 95th percentile.
    pub key_to_frame_p95_ms: f64,
    /// Key presses timed.
    pub presses: usize,
    /// Likes sent, and stored under the right user.
    pub likes_sent: usize,
    /// Likes found in the catalogue afterwards, each under its own user.
    pub likes_stored: usize,
}

struct Client;

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(&mut self, _key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// The server process, stopped when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_mib(pid: u32) -> f64 {
    lookbook::memory::status_mib(Some(pid), "VmRSS").unwrap_or(0.0)
}

/// Runs the load: `connections` clients on `db` (copied) or on `synthetic` products.
pub fn run(db: &Path, synthetic: Option<usize>, connections: usize, seconds: u64) -> Result<Report> {
    let dir = tempfile_dir()?;
    let served = dir.join("served.db");
    match synthetic {
        Some(n) => lookbook::synthetic::write_synthetic_catalog(&served, n, 2048, 5)?,
        None => Catalog::open_existing(db)?.copy_to(&served)?,
    }
    let products = Catalog::open_existing(&served)?.product_count()?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&[42; 32]));
    let authorized = dir.join("authorized_keys");
    std::fs::write(&authorized, format!("{}\n", key.public_key().to_openssh()?))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--db")
        .arg(&served)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--max-per-address",
            "1000",
            // The clients connect all at once, from one address.
            "--max-new-per-second",
            "1000",
            "--max-startups",
            "1000:100:1000",
            "--max-startups-per-address",
            "1000",
        ])
        .args(["--max-connections", "1000", "--max-input-rate", "100000"])
        .arg("--authorized-keys")
        .arg(&authorized)
        .arg("--host-key")
        .arg(dir.join("host_key"))
        .stderr(Stdio::piped())
        .spawn()
        .context("starting lookbook serve")?;
    let stderr = child.stderr.take().context("the server's stderr")?;
    let server = ServerProcess(child);
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("listening on") => break,
            Some(Ok(_)) => continue,
            _ => bail!("lookbook serve did not start"),
        }
    }
    // Keep draining the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let pid = server.0.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(load(port, key, connections, seconds, pid, products))?;
    // Sessions work through their queued keys after the clients hang up: count the likes once
    // the count stops moving (bounded), not the moment the clients are gone.
    let cat = Catalog::open_existing(&served)?;
    let count = || -> Result<usize> {
        let mut stored = 0;
        for i in 0..connections {
            if let Some(u) = cat.user_id(&format!("bench{i}"))? {
                stored += cat.feedback(u)?.iter().filter(|f| f.is_like()).count();
            }
        }
        Ok(stored)
    };
    let (mut stored, mut still) = (count()?, Instant::now());
    let give_up = Instant::now() + Duration::from_secs(300);
    while stored < connections * 20 && still.elapsed() < Duration::from_secs(20) && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(250));
        let now = count()?;
        if now != stored {
            (stored, still) = (now, Instant::now());
        }
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        likes_stored: stored,
        ..report
    })
}

type Session = (client::Handle<Client>, russh::Channel<client::Msg>);

async fn open(port: u16, key: &PrivateKey, user: &str) -> Result<Session> {
    let config = Arc::new(client::Config {
        inactivity_timeout: Some(Duration::from_secs(120)),
        ..Default::default()
    });
    let mut handle = client::connect(config, ("127.0.0.1", port), Client).await?;
    let ok = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(Arc::new(key.clone()), None))
        .await?;
    if !ok.success() {
        bail!("the bench key was refused");
    }
    let ch = handle.channel_open_session().await?;
    ch.set_env(true, "LOOKBOOK_IMAGES", "none").await?;
    ch.request_pty(true, "xterm-256color", 120, 40, 0, 0, &[]).await?;
    ch.request_shell(true).await?;
    Ok((handle, ch))
}

/// Waits for the end of a frame (the synchronized-update end marker).
async fn frame(ch: &mut russh::Channel<client::Msg>, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, ch.wait()).await {
            Ok(Some(ChannelMsg::Data { data })) => {
                seen.extend_from_slice(&data);
                if seen.windows(8).any(|w| w == b"\x1b[?2026l") {
                    return true;
                }
            }
            Ok(Some(_)) => {}
            _ => return false,
        }
    }
}

async fn load(
    port: u16,
    key: PrivateKey,
    connections: usize,
    seconds: u64,
    pid: u32,
    products: usize,
) -> Result<Report> {
    let mut sessions = Vec::new();
    let mut first = open(port, &key, "bench0").await?;
    frame(&mut first.1, Duration::from_secs(120)).await;
    // Let the first session's engine load settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while frame(&mut first.1, Duration::from_millis(300)).await {}
    let rss_one_mib = rss_mib(pid);
    sessions.push(first);
    for i in 1..connections {
        let mut s = open(port, &key, &format!("bench{i}")).await?;
        frame(&mut s.1, Duration::from_secs(60)).await;
        sessions.push(s);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for s in &mut sessions {
        while frame(&mut s.1, Duration::from_millis(50)).await {}
    }
    let rss_all_mib = rss_mib(pid);

    // Every connection presses j every 200 ms; each press is timed to the end of its frame.
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (handle, mut ch) in sessions {
        tasks.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            while Instant::now() < until {
                tick.tick().await;
                let t = Instant::now();
                if ch.data_bytes(b"j".to_vec()).await.is_err() {
                    break;
                }
                if frame(&mut ch, Duration::from_secs(5)).await {
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            // Then 20 likes, one product each: l, then down to the next.
            for _ in 0..20 {
                let _ = ch.data_bytes(b"lj".to_vec()).await;
                frame(&mut ch, Duration::from_secs(5)).await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = ch.data_bytes(b"q".to_vec()).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(handle);
            ms
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let presses = all.len();
    let t = lookbook::synthetic::Timing::of(all);
    Ok(Report {
        products,
        connections,
        rss_one_mib,
        rss_all_mib,
        key_to_frame_p50_ms: t.p50_ms,
        key_to_frame_p95_ms: t.p95_ms,
        presses,
        likes_sent: connections * 20,
        likes_stored: 0,
    })
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    super::temp_dir("serve")
}
