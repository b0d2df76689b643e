//! `lookbook serve`: the app over SSH for many people at once, from one process.
//!
//! One catalogue, one engine (vectors and index) and one product list in memory, shared by
//! every connection; each connection gets its own [`App`](crate::tui::app::App), user and image
//! worker, drawn into its SSH channel by the same view code as the local app. The SSH side is
//! russh: public-key logins against an authorized_keys file (or `--open` guests), a pty and a
//! shell request start the app, and nothing else gets in (exec, subsystems, forwarding, agent
//! and X11 are refused). [`session`] runs one app; [`keys`] handles host and client keys.

mod input;
mod keys;
mod session;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_drop_rises_from_start_to_full() {
        let s = parse_startups("10:30:60").unwrap();
        assert_eq!(s.drop_chance(0), 0.0);
        assert_eq!(s.drop_chance(9), 0.0);
        assert!((s.drop_chance(10) - 0.3).abs() < 1e-9);
        assert!((s.drop_chance(35) - 0.65).abs() < 1e-9);
        assert_eq!(s.drop_chance(60), 1.0);
        assert_eq!(s.drop_chance(600), 1.0);
        for bad in ["10:30", "60:30:10", "1:101:5", "a:b:c", "0:0:0"] {
            assert!(parse_startups(bad).is_err(), "{bad}");
        }
        let draws: Vec<f64> = (0..1000).map(|_| chance()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = draws.iter().sum::<f64>() / 1000.0;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}

use anyhow::{Context, Result};
use russh::server::{Auth, Handler, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure, Pty};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lookbook::catalog::Catalog;

use crate::tui::app::{ProductList, SharedCatalog};
use lookbook::recommend::SharedEngine;
use session::Input;

/// What `lookbook serve` was asked to do (its command-line flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:2222")]
    pub listen: String,
    /// The server's host key (an ed25519 key is made there on first start, mode 0600;
    /// default: lookbook-host-key beside the database).
    #[arg(long)]
    pub host_key: Option<PathBuf>,
    /// Public keys allowed in (OpenSSH authorized_keys; the SSH user name is the lookbook
    /// user, or `NAME ssh-ed25519 AAAA...` pins a key to a user).
    #[arg(long)]
    pub authorized_keys: Option<PathBuf>,
    /// What a key without a name in --authorized-keys logs in as: `guest` (default: any name
    /// but a pinned key's, which then logs in as a guest) or `any` (any name at all).
    #[arg(long, value_enum, default_value = "guest")]
    pub unnamed_keys: keys::UnnamedKeys,
    /// Let anyone in as a guest whose likes last only for the connection.
    #[arg(long)]
    pub open: bool,
    /// Connections at once.
    #[arg(long, default_value_t = 100)]
    pub max_connections: usize,
    /// Connections at once from one address.
    #[arg(long, default_value_t = 10)]
    pub max_per_address: usize,
    /// Connections that have not logged in yet, as OpenSSH's MaxStartups `start:rate:full`:
    /// from `start` waiting, a new one is dropped with `rate`% chance, rising to 100% at `full`,
    /// so connections that never log in cannot take every slot from honest logins.
    #[arg(long, default_value = "10:30:60", value_parser = parse_startups)]
    pub max_startups: Startups,
    /// Connections from one address that have not logged in yet.
    #[arg(long, default_value_t = 3)]
    pub max_startups_per_address: usize,
    /// Seconds a connection may take to log in.
    #[arg(long = "login-timeout", default_value_t = 20)]
    pub login_timeout_s: u64,
    /// Seconds without traffic before a connection is closed.
    #[arg(long = "idle-timeout", default_value_t = 1800)]
    pub idle_timeout_s: u64,
    /// Input bytes per second a connection may send; more is dropped.
    #[arg(long, default_value_t = 2048)]
    pub max_input_rate: usize,
    /// New connections a second from one address (bursts of as many); more are closed before
    /// key exchange, so nobody can make the server do key exchanges for them (DHEat).
    #[arg(long, default_value_t = 10)]
    pub max_new_per_second: u32,
    /// Every this many minutes, when shoppers did anything since (sessions' likes included),
    /// learn the feed again in the background (`train --feed`) and hand sessions the new one;
    /// 0 never does. Sessions see their own likes at once either way.
    #[arg(long = "retrain-minutes", default_value_t = 30.0)]
    pub retrain_minutes: f64,
}

/// The `--max-startups` triple: early drop from `start` connections waiting to log in, with
/// `rate`% chance there, every new one refused at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Startups {
    /// Waiting connections before any is dropped.
    pub start: usize,
    /// Percent dropped at `start`.
    pub rate: u32,
    /// Waiting connections at which every new one is refused.
    pub full: usize,
}

fn parse_startups(s: &str) -> std::result::Result<Startups, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || {
        format!(
            "{s:?}: give start:rate:full, like 10:30:60 (OpenSSH's MaxStartups), with start <= full and rate <= 100"
        )
    };
    let [start, rate, full] = parts[..] else {
        return Err(bad());
    };
    let (start, rate, full) = (
        start.parse::<usize>().map_err(|_| bad())?,
        rate.parse::<u32>().map_err(|_| bad())?,
        full.parse::<usize>().map_err(|_| bad())?,
    );
    if start > full || rate > 100 || full == 0 {
        return Err(bad());
    }
    Ok(Startups { start, rate, full })
}

impl Startups {
    /// The chance (0 to 1) that a new connection is dropped while `waiting` have not logged in.
    fn drop_chance(&self, waiting: usize) -> f64 {
        if waiting >= self.full {
            1.0
        } else if waiting < self.start {
            0.0
        } else {
            let r = f64::from(self.rate) / 100.0;
            r + (1.0 - r) * (waiting - self.start) as f64 / (self.full - self.start).max(1) as f64
        }
    }
}

/// A small random number source for early drop: unpredictable enough that a client cannot time
/// its connections to the drops, no crate needed.
fn chance() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = (lookbook::now_ms() as u64 ^ (u64::from(std::process::id()) << 32)) | 1;
    }
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// The only algorithms offered: hybrid post-quantum ML-KEM and curve25519 key exchange (kept
/// for clients older than OpenSSH 9.9), ed25519 host keys, AEAD ciphers and encrypt-then-MAC
/// MACs. Finite-field groups, NIST curves, CBC and encrypt-and-MAC are never offered.
fn algorithms() -> russh::Preferred {
    use russh::{cipher, compression, kex, mac};
    use std::borrow::Cow;
    russh::Preferred {
        kex: Cow::Borrowed(&[
            kex::MLKEM768X25519_SHA256,
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::EXTENSION_SUPPORT_AS_SERVER,
            // Strict key exchange (the Terrapin fix) is on only when it is listed.
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Borrowed(&[russh::keys::Algorithm::Ed25519]),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Borrowed(&[cipher::CHACHA20_POLY1305, cipher::AES_256_GCM, cipher::AES_128_GCM]),
        mac: Cow::Borrowed(&[mac::HMAC_SHA256_ETM, mac::HMAC_SHA512_ETM]),
        compression: Cow::Borrowed(&[compression::NONE]),
    }
}

/// New connections per address: a token bucket that refills at `max_new_per_second` and holds
/// as many. Addresses whose bucket is full again are forgotten, so the map stays small.
#[derive(Default)]
struct Arrivals {
    buckets: HashMap<IpAddr, (Instant, f64)>,
}

impl Arrivals {
    /// Takes a token for `ip`; false when its bucket is empty.
    fn admit(&mut self, ip: IpAddr, rate: u32, now: Instant) -> bool {
        let cap = f64::from(rate.max(1));
        if self.buckets.len() > 4096 {
            self.buckets
                .retain(|_, (at, tokens)| *tokens + now.duration_since(*at).as_secs_f64() * cap < cap);
        }
        let (at, tokens) = self.buckets.entry(ip).or_insert((now, cap));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * cap).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// State shared by every connection.
pub(crate) struct Shared {
    db: PathBuf,
    /// The catalogue's products, replaced when the catalogue changes.
    products: Mutex<Arc<ProductList>>,
    /// One connection for every session's likes and users: writes queue on its lock in this
    /// process rather than retrying against SQLite's, and fifty sessions hold one page cache.
    catalog: SharedCatalog,
    /// The engine, loaded by the first session that needs it, replaced on changes.
    engine: SharedEngine,
    keys: keys::Authorized,
    open: bool,
    opts: Options,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Connections not logged in yet, per address (the sum is the total waiting).
    waiting: Mutex<HashMap<IpAddr, usize>>,
    arrivals: Mutex<Arrivals>,
    total: AtomicUsize,
    next_id: AtomicU64,
    /// Every running session's input, to tell it about catalogue changes and shutdown.
    sessions: Mutex<HashMap<u64, std::sync::mpsc::Sender<Input>>>,
    stopping: AtomicBool,
}

/// What a server session shares with every other: the products and the one catalogue
/// connection (an app of its own per session is built from them).
pub struct Remote {
    /// The catalogue's products.
    pub products: Arc<ProductList>,
    /// The server's catalogue connection.
    pub catalog: SharedCatalog,
}

impl Shared {
    /// What a new session shares: the current products and the one connection.
    fn remote(&self) -> Remote {
        let products = self
            .products
            .lock()
            .map(|p| Arc::clone(&p))
            .unwrap_or_else(|_| Arc::new(ProductList::new(Vec::new())));
        Remote {
            products,
            catalog: Arc::clone(&self.catalog),
        }
    }

    fn broadcast(&self, make: impl Fn() -> Input) {
        if let Ok(s) = self.sessions.lock() {
            for tx in s.values() {
                let _ = tx.send(make());
            }
        }
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(db: &Path, opts: Options) -> Result<()> {
    let _ = DB.set(db.to_string_lossy().into_owned());
    if !opts.retrain_minutes.is_finite() || !(0.0..=1e6).contains(&opts.retrain_minutes) {
        anyhow::bail!(
            "--retrain-minutes must be a number of minutes from 0 (never) to 1000000, got {}",
            opts.retrain_minutes
        );
    }
    let mut cat = Catalog::open_existing(db)?;
    remove_stale_guests(&mut cat)?;
    let products = Arc::new(ProductList::new(cat.products()?));
    let dir = cat.dir();
    let host_key_path = opts.host_key.clone().unwrap_or_else(|| dir.join("lookbook-host-key"));
    let host_key = keys::load_or_create_host_key(&host_key_path)?;
    let authorized = match &opts.authorized_keys {
        Some(p) => keys::Authorized::read(p)?.with_unnamed(opts.unnamed_keys),
        None if opts.open => keys::Authorized::default(),
        None => anyhow::bail!(
            "give --authorized-keys FILE (OpenSSH format) to let people in by key, or --open to let anyone in as a guest"
        ),
    };
    let shared = Arc::new(Shared {
        db: db.to_path_buf(),
        products: Mutex::new(products),
        catalog: Arc::new(Mutex::new(cat)),
        engine: Arc::new(std::sync::RwLock::new(None)),
        keys: authorized,
        open: opts.open,
        opts: opts.clone(),
        per_address: Mutex::new(HashMap::new()),
        waiting: Mutex::new(HashMap::new()),
        arrivals: Mutex::new(Arrivals::default()),
        total: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        sessions: Mutex::new(HashMap::new()),
        stopping: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(shared, host_key))
}

/// Removes the guests that servers before this version stored (`guest-N-M`, with their likes)
/// and left behind when they were killed. Guests are no longer stored at all.
fn remove_stale_guests(cat: &mut Catalog) -> Result<()> {
    let stale = |name: &str| {
        let mut parts = name.strip_prefix("guest-").unwrap_or("").split('-');
        let digits = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
    };
    let names: Vec<String> = cat.users()?.into_iter().map(|u| u.name).filter(|n| stale(n)).collect();
    for name in &names {
        cat.remove_user(name)?;
    }
    if !names.is_empty() {
        log(format_args!(
            "removed {} guest(s) left by an earlier server",
            names.len()
        ));
    }
    Ok(())
}

async fn serve(shared: Arc<Shared>, host_key: russh::keys::PrivateKey) -> Result<()> {
    let mut methods = vec![russh::MethodKind::PublicKey];
    if shared.open {
        methods.push(russh::MethodKind::None);
    }
    let config = Arc::new(russh::server::Config {
        methods: russh::MethodSet::from(&methods[..]),
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(shared.opts.idle_timeout_s)),
        keepalive_interval: Some(Duration::from_secs(30)),
        max_auth_attempts: 6,
        keys: vec![host_key],
        preferred: algorithms(),
        nodelay: true,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(&shared.opts.listen)
        .await
        .with_context(|| format!("listening on {}", shared.opts.listen))?;
    let local = listener.local_addr()?;
    log(format_args!(
        "listening on {local} for {}",
        lookbook::catalog::postgres::display_db(&shared.db)
    ));
    let watcher = tokio::spawn(watch_catalogue(Arc::clone(&shared)));
    let retrainer = (shared.opts.retrain_minutes > 0.0).then(|| tokio::spawn(retrain_feed(Arc::clone(&shared))));
    let mut refused_log = (0i64, 0u64);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(v) => v,
                    Err(e) => { log(format_args!("accept failed: {e}")); continue; }
                };
                if let Some(why) = admit(&shared, peer) {
                    // At most one line a second, so a flood of connections is no flood of logs.
                    let now = lookbook::now_ms() / 1000;
                    if refused_log.0 == now {
                        refused_log.1 += 1;
                    } else {
                        let more = std::mem::replace(&mut refused_log, (now, 0)).1;
                        let more = if more > 0 { format!(" ({more} more refused since the last such line)") } else { String::new() };
                        log(format_args!("refused {peer}: {why}{more}"));
                    }
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection(Arc::clone(&shared), Arc::clone(&config), stream, peer));
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    log(format_args!(
        "shutting down: telling {} connection(s)",
        shared.total.load(Ordering::SeqCst)
    ));
    shared.stopping.store(true, Ordering::SeqCst);
    shared.broadcast(|| Input::Shutdown);
    watcher.abort();
    if let Some(r) = retrainer {
        r.abort();
    }
    // Give the sessions a moment to say goodbye and restore the clients' terminals.
    let deadline = Instant::now() + Duration::from_secs(3);
    while shared.total.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Why a new connection is turned away, if it is.
fn admit(shared: &Shared, peer: SocketAddr) -> Option<&'static str> {
    let Ok(mut arrivals) = shared.arrivals.lock() else {
        return Some("internal lock poisoned");
    };
    if !arrivals.admit(peer.ip(), shared.opts.max_new_per_second, Instant::now()) {
        return Some("too many new connections a second from this address");
    }
    drop(arrivals);
    if shared.total.load(Ordering::SeqCst) >= shared.opts.max_connections {
        return Some("too many connections");
    }
    let Ok(mut per) = shared.per_address.lock() else {
        return Some("internal lock poisoned");
    };
    let n = per.entry(peer.ip()).or_insert(0);
    if *n >= shared.opts.max_per_address {
        return Some("too many connections from this address");
    }
    // Connections that have not logged in have caps of their own, so they cannot hold every
    // slot: per address, and in all with random early drop (OpenSSH's MaxStartups).
    let Ok(mut waiting) = shared.waiting.lock() else {
        return Some("internal lock poisoned");
    };
    let all: usize = waiting.values().sum();
    let here = waiting.get(&peer.ip()).copied().unwrap_or(0);
    if here >= shared.opts.max_startups_per_address {
        return Some("too many connections waiting to log in from this address");
    }
    if shared.opts.max_startups.drop_chance(all) > chance() {
        return Some("too many connections waiting to log in (dropped early, as OpenSSH's MaxStartups)");
    }
    waiting.insert(peer.ip(), here + 1);
    *n += 1;
    shared.total.fetch_add(1, Ordering::SeqCst);
    None
}

/// A connection no longer waiting to log in (it logged in, or it ended).
fn done_waiting(shared: &Shared, ip: IpAddr) {
    if let Ok(mut w) = shared.waiting.lock()
        && let Some(n) = w.get_mut(&ip)
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            w.remove(&ip);
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let logged_in = Arc::new(AtomicBool::new(false));
    let conn = Conn {
        shared: Arc::clone(&shared),
        id,
        peer,
        user: None,
        guest: false,
        logged_in: Arc::clone(&logged_in),
        channel: None,
        term: String::from("xterm"),
        size: (80, 24),
        env: HashMap::new(),
        input: None,
        rate: (Instant::now(), 0),
    };
    log(format_args!("#{id} connected from {peer}"));
    // A second handle on the socket: russh's session task outlives a dropped future and stops
    // taking orders while a client's output is stuck, so a connection that must end is shut
    // down here, under it.
    let (stream, killer) = match split_killer(stream) {
        Ok(v) => v,
        Err(e) => {
            log(format_args!("#{id}: {e}"));
            forget(&shared, id, peer, &logged_in);
            return;
        }
    };
    // The login timeout runs from accept: it covers the banner, key exchange and
    // authentication, so a socket that sends nothing (or only a banner) is closed as soon as
    // one that fails to log in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(shared.opts.login_timeout_s);
    match tokio::time::timeout_at(deadline, russh::server::run_stream(config, stream, conn)).await {
        Err(_) => log(format_args!("#{id}: no SSH handshake within the login timeout; closed")),
        Ok(Err(e)) => log(format_args!("#{id} handshake failed: {e}")),
        Ok(Ok(running)) => {
            let handle = running.handle();
            tokio::pin!(running);
            let mut watching = true;
            loop {
                tokio::select! {
                    ended = &mut running => {
                        if let Err(e) = ended {
                            log(format_args!("#{id} ended with an error: {e}"));
                        }
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline), if watching => {
                        watching = false;
                        if !logged_in.load(Ordering::SeqCst) {
                            log(format_args!("#{id}: not logged in within the login timeout; closed"));
                            // Say why if the client still listens; the socket closes either way
                            // when `running` is dropped.
                            let bye = handle.disconnect(
                                russh::Disconnect::ByApplication,
                                "login took too long".into(),
                                String::new(),
                            );
                            let _ = tokio::time::timeout(Duration::from_millis(500), bye).await;
                            let _ = killer.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                }
            }
        }
    }
    let _ = killer.shutdown(std::net::Shutdown::Both);
    forget(&shared, id, peer, &logged_in);
}

/// The socket, and a clone of it that can shut it down from outside the SSH session.
fn split_killer(stream: tokio::net::TcpStream) -> std::io::Result<(tokio::net::TcpStream, std::net::TcpStream)> {
    let std_stream = stream.into_std()?;
    let killer = std_stream.try_clone()?;
    Ok((tokio::net::TcpStream::from_std(std_stream)?, killer))
}

/// Forgets a connection that ended: its session, its address's count, the total.
fn forget(shared: &Shared, id: u64, peer: SocketAddr, logged_in: &AtomicBool) {
    if !logged_in.swap(true, Ordering::SeqCst) {
        done_waiting(shared, peer.ip());
    }
    if let Ok(mut s) = shared.sessions.lock()
        && let Some(tx) = s.remove(&id)
    {
        let _ = tx.send(Input::Close);
    }
    if let Ok(mut per) = shared.per_address.lock()
        && let Some(n) = per.get_mut(&peer.ip())
    {
        *n = n.saturating_sub(1);
        if *n == 0 {
            per.remove(&peer.ip());
        }
    }
    shared.total.fetch_sub(1, Ordering::SeqCst);
    lookbook::memory::release_freed();
    log(format_args!("#{id} disconnected"));
}

/// Polls the catalogue for changes made by other processes (`import`, `embed`, `train`) and
/// hands every session the new products and engine. Likes do not count as a change: sessions
/// read their own user's likes.
async fn watch_catalogue(shared: Arc<Shared>) {
    let signature = |db: &Path| -> Option<String> {
        let cat = Catalog::open_existing(db).ok()?;
        cat.change_signature().ok()
    };
    let db = shared.db.clone();
    let mut last = tokio::task::spawn_blocking(move || signature(&db)).await.ok().flatten();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let db = shared.db.clone();
        let now = tokio::task::spawn_blocking(move || signature(&db)).await.ok().flatten();
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        let shared2 = Arc::clone(&shared);
        let reloaded = tokio::task::spawn_blocking(move || -> lookbook::Result<()> {
            let cat = Catalog::open_existing(&shared2.db)?;
            let engine = lookbook::recommend::Engine::load_with_shop(&cat).ok().map(Arc::new);
            // The engine's own list when it loaded (read once, shared), else a fresh read.
            let list = match &engine {
                Some(e) => e.products_shared(),
                None => Arc::new(cat.products()?),
            };
            let products = Arc::new(ProductList::new(list));
            if let Ok(mut p) = shared2.products.lock() {
                *p = products;
            }
            if let Ok(mut e) = shared2.engine.write() {
                *e = engine;
            }
            Ok(())
        })
        .await;
        match reloaded {
            Ok(Ok(())) => {
                log(format_args!("the catalogue changed; sessions reload it"));
                shared.broadcast(|| Input::Reload);
            }
            Ok(Err(e)) => log(format_args!("reloading the catalogue failed: {e}")),
            Err(e) => log(format_args!("reloading the catalogue failed: {e}")),
        }
    }
}

/// Learns the feed again every `--retrain-minutes` when the shop's history or anyone's likes
/// changed since, on a blocking thread (sessions go on); the stored model changes the
/// catalogue's signature, so [`watch_catalogue`] hands it to every session.
async fn retrain_feed(shared: Arc<Shared>) {
    let every = Duration::from_secs_f64(shared.opts.retrain_minutes * 60.0);
    // What there was when the server started: only what happens while it serves retrains.
    let db = shared.db.clone();
    let retrainer = tokio::task::spawn_blocking(move || lookbook::live::Retrainer::new(&db)).await;
    let mut retrainer = match retrainer {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return log(format_args!("learning the feed again is off: {e}")),
        Err(e) => return log(format_args!("learning the feed again is off: {e}")),
    };
    loop {
        tokio::time::sleep(every).await;
        let done = tokio::task::spawn_blocking(move || {
            let r = retrainer.step();
            (retrainer, r)
        })
        .await;
        match done {
            Ok((r, result)) => {
                retrainer = r;
                match result {
                    Ok(Some(t)) => log(format_args!(
                        "learned the feed again from {} events and likes (feed model {})",
                        t.events, t.id
                    )),
                    Ok(None) => {}
                    Err(e) => log(format_args!("learning the feed again failed: {e}")),
                }
            }
            Err(e) => return log(format_args!("learning the feed again stopped: {e}")),
        }
    }
}

/// The `--db` this server runs on, so that [`log`] can keep its password out of every line.
static DB: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// One line to stderr with a timestamp. Never product names, keys or passwords: addresses, ids,
/// users.
pub(crate) fn log(args: std::fmt::Arguments) {
    let line = lookbook::live::log_line("lookbook serve", args, DB.get().map(String::as_str));
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// One SSH connection.
struct Conn {
    shared: Arc<Shared>,
    id: u64,
    peer: SocketAddr,
    /// The lookbook user, once logged in.
    user: Option<String>,
    guest: bool,
    logged_in: Arc<AtomicBool>,
    channel: Option<ChannelId>,
    term: String,
    size: (u16, u16),
    env: HashMap<String, String>,
    input: Option<std::sync::mpsc::Sender<Input>>,
    /// Input rate window: when it started, bytes in it.
    rate: (Instant, usize),
}

impl Conn {
    fn accept_user(&mut self, user: String, guest: bool, how: &str) -> Auth {
        log(format_args!(
            "#{} logged in as {} ({how})",
            self.id,
            lookbook::text::sanitize(&user)
        ));
        self.user = Some(user);
        self.guest = guest;
        if !self.logged_in.swap(true, Ordering::SeqCst) {
            done_waiting(&self.shared, self.peer.ip());
        }
        Auth::Accept
    }

    /// A guest's name is only shown: guests have no row in the catalogue.
    fn guest(&mut self) -> Auth {
        let name = format!("guest-{}", self.id);
        self.accept_user(name, true, "guest")
    }

    /// Whether a login name could be a lookbook user; logs why not. Checked before any key, so a
    /// name that would fail later (when the session creates its user) never gets a session.
    fn valid_login_name(&self, user: &str) -> bool {
        match lookbook::catalog::check_user_name(user) {
            Ok(_) => true,
            Err(e) => {
                log(format_args!(
                    "#{} from {}: refused login name {:?}: {e}",
                    self.id,
                    self.peer,
                    lookbook::text::clip(&lookbook::text::sanitize(user), 80)
                ));
                false
            }
        }
    }

    fn send(&self, input: Input) {
        if let Some(tx) = &self.input {
            let _ = tx.send(input);
        }
    }
}

/// Environment variables a client may send that choose how pictures are drawn.
const IMAGE_ENV: [&str; 4] = ["LOOKBOOK_IMAGES", "TERM_PROGRAM", "LC_TERMINAL", "COLORTERM"];

impl Handler for Conn {
    type Error = anyhow::Error;

    async fn auth_none(&mut self, user: &str) -> Result<Auth, Self::Error> {
        if !self.valid_login_name(user) {
            return Ok(Auth::reject());
        }
        Ok(if self.shared.open { self.guest() } else { Auth::reject() })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.valid_login_name(user) {
            return Ok(Auth::reject());
        }
        match self.shared.keys.user_for(key.public_key, user) {
            Ok(name) => Ok(self.accept_user(name, false, "public key")),
            Err(keys::Refusal::PinnedTo(pinned)) => {
                // A known key used under another name is refused, never downgraded to a guest.
                log(format_args!(
                    "#{} from {}: refused login name {:?}: the key is pinned to {:?}",
                    self.id,
                    self.peer,
                    lookbook::text::sanitize(user),
                    lookbook::text::sanitize(&pinned)
                ));
                Ok(Auth::reject())
            }
            Err(keys::Refusal::NameOwned(name)) => {
                log(format_args!(
                    "#{} from {}: an unnamed key asked for {:?}, whose name a pinned key owns; logged in as a guest (--unnamed-keys any allows it)",
                    self.id,
                    self.peer,
                    lookbook::text::sanitize(&name)
                ));
                Ok(self.guest())
            }
            Err(keys::Refusal::Unknown) if self.shared.open => Ok(self.guest()),
            Err(keys::Refusal::Unknown) => {
                log(format_args!("#{} from {}: refused an unknown key", self.id, self.peer));
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channel.is_some() {
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
        } else {
            self.channel = Some(channel.id());
            reply.accept().await;
        }
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.term = term.chars().take(64).collect();
        self.size = clamp_size(col_width, row_height);
        session.channel_success(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if IMAGE_ENV.contains(&name) && value.len() <= 64 {
            self.env.insert(name.to_string(), value.to_string());
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        let (Some(user), Some(ch), None) = (self.user.clone(), self.channel, self.input.as_ref()) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        if ch != channel || self.shared.stopping.load(Ordering::SeqCst) {
            session.channel_failure(channel)?;
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        if let Ok(mut s) = self.shared.sessions.lock() {
            s.insert(self.id, tx.clone());
        }
        self.input = Some(tx);
        session.channel_success(channel)?;
        let start = session::Start {
            shared: Arc::clone(&self.shared),
            id: self.id,
            user,
            guest: self.guest,
            handle: session.handle(),
            channel,
            size: self.size,
            picker: session::picker_for(&self.term, &self.env),
            runtime: tokio::runtime::Handle::current(),
        };
        std::thread::Builder::new()
            .name(format!("lookbook-session-{}", self.id))
            .spawn(move || session::run(start, rx))?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        log(format_args!("#{}: refused an exec request", self.id));
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        log(format_args!(
            "#{}: refused subsystem {}",
            self.id,
            lookbook::text::sanitize(&name.chars().take(32).collect::<String>())
        ));
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _protocol: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn agent_request(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        log(format_args!("#{}: refused remote port forwarding", self.id));
        Ok(false)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host: &str,
        _port: u32,
        _originator: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        log(format_args!("#{}: refused local port forwarding", self.id));
        reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
        Ok(())
    }

    async fn data(&mut self, _channel: ChannelId, data: &[u8], _session: &mut Session) -> Result<(), Self::Error> {
        // A window of one second: input past the rate is dropped, so a paste flood or a
        // script cannot make the server re-rank thousands of times a second.
        if self.rate.0.elapsed() >= Duration::from_secs(1) {
            self.rate = (Instant::now(), 0);
        }
        let room = self.shared.opts.max_input_rate.saturating_sub(self.rate.1);
        let take = data.len().min(room);
        self.rate.1 += take;
        if take > 0 {
            self.send(Input::Bytes(data[..take].to_vec()));
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        _channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.size = clamp_size(col_width, row_height);
        self.send(Input::Resize(self.size.0, self.size.1));
        Ok(())
    }

    async fn channel_eof(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.send(Input::Close);
        Ok(())
    }

    async fn channel_close(&mut self, _channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.send(Input::Close);
        Ok(())
    }
}

/// The widest window a session draws (columns): wider than a 5K screen full of 10-pixel
/// characters. A larger window shows the app at this size in its top-left corner.
pub const MAX_COLUMNS: u16 = 512;
/// The tallest window a session draws (rows).
pub const MAX_ROWS: u16 = 256;

/// A window size from the client, within [`MAX_COLUMNS`] x [`MAX_ROWS`]: the cells a session
/// holds (two frames of them) are bounded whatever the client claims.
fn clamp_size(cols: u32, rows: u32) -> (u16, u16) {
    (
        cols.clamp(1, u32::from(MAX_COLUMNS)) as u16,
        rows.clamp(1, u32::from(MAX_ROWS)) as u16,
    )
}
