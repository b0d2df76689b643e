//! `lookbook http`: the same recommendations for a shop's own web pages, over HTTP with JSON.
//!
//! One process serves one catalogue: the engine is loaded once and shared by every request
//! ([`lookbook::live`]), loaded again when another process changes the catalogue, and the feed
//! learned again every `--retrain-minutes` when shoppers did something. Events posted by the
//! site are stored at once, so a shopper's next feed already counts them.
//!
//! | module | job |
//! | --- | --- |
//! | this one | flags, the accept loop (connection caps, header timeout), shared state, blocking work |
//! | [`routes`] | the endpoints |
//! | [`keys`] | `read` and `write` API keys |
//! | [`limits`] | request rates per key and per address |
//! | [`metrics`] | counters for `/metrics` |
//! | [`reply`] | errors as JSON, photo files |
//!
//! Work that reads the catalogue or ranks runs on tokio's blocking threads; the async side only
//! moves bytes. Nothing here is shared with `serve` or the CLI but library calls.

mod keys;
mod limits;
mod metrics;
mod reply;
mod routes;

use anyhow::{Context, Result, bail};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

use keys::{Access, KeyId, Keys};
use limits::RateLimiter;
use lookbook::catalog::{Catalog, Product};
use lookbook::embedding::PhotoEncoder;
use lookbook::live::{LiveEngine, Loaded};
use lookbook::recommend::Engine;
use metrics::Metrics;
use reply::{ApiError, Peer};

/// What `lookbook http` was asked to do (its command-line flags).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Address and port to listen on (port 0 picks a free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// API keys: lines `read KEY` (look-alikes, feeds) or `write KEY` (also events in).
    #[arg(long)]
    pub keys: PathBuf,
    /// A web page origin allowed to call from a browser (CORS), e.g. https://shop.example;
    /// repeat for several. None: browsers on other origins are refused.
    #[arg(long = "cors-origin")]
    pub cors_origins: Vec<String>,
    /// Connections at once; more are answered 503 and closed.
    #[arg(long, default_value_t = 512)]
    pub max_connections: usize,
    /// Connections at once from one address (a reverse proxy is one address: raise it there).
    #[arg(long, default_value_t = 128)]
    pub max_per_address: usize,
    /// Requests a second per key (bursts of as many); 0 for no limit.
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Photo requests a second per address (photos need no key).
    #[arg(long, default_value_t = 50)]
    pub photo_rate: u32,
    /// Results a request may ask for (`k`).
    #[arg(long, default_value_t = 100)]
    pub max_k: usize,
    /// Largest events body, KiB.
    #[arg(long = "max-body-kb", default_value_t = 1024)]
    pub max_body_kb: usize,
    /// Largest uploaded photo, KiB.
    #[arg(long = "max-upload-kb", default_value_t = 10240)]
    pub max_upload_kb: usize,
    /// Events in one request.
    #[arg(long, default_value_t = 1000)]
    pub max_events: usize,
    /// Seconds a client may take to send a request's headers (also how long an idle
    /// keep-alive connection stays open).
    #[arg(long = "header-timeout", default_value_t = 10)]
    pub header_timeout_s: u64,
    /// Seconds a request may take in all, body included, before a 503.
    #[arg(long = "request-timeout", default_value_t = 30)]
    pub request_timeout_s: u64,
    /// Photo uploads embedded at once (each is a forward pass of the network).
    #[arg(long, default_value_t = 2)]
    pub photo_workers: usize,
    /// Answers of the product routes (similar, together, popular) kept in memory until the
    /// catalogue changes: a product page asks the same question for every visitor. 0 keeps none.
    #[arg(long, default_value_t = 5000)]
    pub cache_entries: usize,
    /// Every this many minutes, when shoppers did anything since, learn the feed again in the
    /// background (`train --feed`); 0 never does. A shopper's own events count at once anyway.
    #[arg(long = "retrain-minutes", default_value_t = 30.0)]
    pub retrain_minutes: f64,
}

/// Read connections kept open between requests.
const KEPT_READERS: usize = 16;

/// State shared by every request.
pub(crate) struct Shared {
    db: PathBuf,
    live: LiveEngine,
    /// Open catalogue connections for reads, taken and given back per request.
    readers: Mutex<Vec<Catalog>>,
    /// The one connection that writes events: writes queue here rather than on SQLite's lock.
    writer: Mutex<Option<Catalog>>,
    encoder: Mutex<Option<PhotoEncoder>>,
    photo_slots: Arc<tokio::sync::Semaphore>,
    keys: Keys,
    key_rate: RateLimiter<KeyId>,
    address_rate: RateLimiter<IpAddr>,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    /// Answers kept, and the engine generation they were computed on.
    answers: Mutex<(u64, lru::LruCache<String, axum::body::Bytes>)>,
    metrics: Metrics,
    opts: Options,
}

/// What a request's blocking work may use.
pub(crate) struct Work<'a> {
    shared: &'a Shared,
}

impl Work<'_> {
    /// The engine now, or 503 with why there is none.
    fn engine(&self) -> Result<Arc<Engine>, ApiError> {
        match self.shared.live.get() {
            Loaded::Ready(e) => Ok(e),
            Loaded::Missing(why) => Err(ApiError::unavailable(format!(
                "the catalogue cannot rank yet: {}",
                self.shared.scrub(&why)
            ))),
        }
    }

    /// A library result as an answer (see [`ApiError::from_library`]).
    fn ok<T>(&self, r: lookbook::Result<T>) -> Result<T, ApiError> {
        r.map_err(|e| self.shared.library(e))
    }

    /// Runs `f` on a read connection from the pool.
    fn read<T>(&self, f: impl FnOnce(&Catalog) -> lookbook::Result<T>) -> Result<T, ApiError> {
        let s = self.shared;
        let taken = s.readers.lock().ok().and_then(|mut r| r.pop());
        let cat = match taken {
            Some(c) => c,
            None => Catalog::open_existing(&s.db).map_err(|e| s.library(e))?,
        };
        let out = f(&cat).map_err(|e| s.library(e));
        if let Ok(mut r) = s.readers.lock()
            && r.len() < KEPT_READERS
        {
            r.push(cat);
        }
        out
    }

    /// Runs `f` on the writing connection.
    fn write<T>(&self, f: impl FnOnce(&mut Catalog) -> lookbook::Result<T>) -> Result<T, ApiError> {
        let s = self.shared;
        let mut slot = s
            .writer
            .lock()
            .map_err(|_| ApiError::unavailable("the writer's lock was poisoned"))?;
        if slot.is_none() {
            *slot = Some(Catalog::open_existing(&s.db).map_err(|e| s.library(e))?);
        }
        let Some(cat) = slot.as_mut() else {
            return Err(ApiError::unavailable("no catalogue connection for writing"));
        };
        let out = f(cat).map_err(|e| s.library(e));
        if out.is_err() {
            // A failed connection is opened afresh next time.
            *slot = None;
        }
        out
    }

    /// The product a reference (shop id, SKU or number) names, or 404.
    fn product(&self, reference: &str) -> Result<Product, ApiError> {
        self.read(|cat| cat.find_product(reference))?.ok_or_else(|| {
            ApiError::not_found(format!(
                "no product {:?} (looked for it as a shop id, a SKU and a number)",
                lookbook::text::clip(reference.trim(), 80)
            ))
        })
    }

    /// The query vector of an uploaded photo, with the network loaded on first use and again
    /// when the catalogue's model changes.
    fn photo_vector(&self, bytes: &[u8]) -> Result<Vec<f32>, ApiError> {
        let s = self.shared;
        let mut enc = s
            .encoder
            .lock()
            .map_err(|_| ApiError::unavailable("the photo encoder's lock was poisoned"))?;
        let current = match enc.as_ref() {
            Some(e) => self.read(|cat| e.is_current(cat))?,
            None => false,
        };
        if !current {
            *enc = Some(self.read(|cat| PhotoEncoder::for_catalog(cat, None))?);
        }
        let Some(e) = enc.as_ref() else {
            return Err(ApiError::unavailable("the photo encoder is not loaded"));
        };
        e.vector_of_bytes(bytes, "the uploaded photo").map_err(|e| s.library(e))
    }
}

impl Shared {
    /// Whether a request may go on to its route: its key (or its address's rate) and the body
    /// size it declares.
    fn admit(&self, req: &Request, route: &str, gate: routes::Gate) -> Result<(), ApiError> {
        match gate {
            routes::Gate::Open => {}
            routes::Gate::PerAddress => {
                if let Some(Peer(addr)) = req.extensions().get::<Peer>() {
                    self.address_rate
                        .take(addr.ip(), Instant::now())
                        .map_err(ApiError::too_many)?;
                }
            }
            routes::Gate::Key(need) => self.authorize(req.headers(), need)?,
        }
        let limit_kb = match route {
            "events" => self.opts.max_body_kb,
            "similar_photo" => self.opts.max_upload_kb,
            _ => return Ok(()),
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit_kb as u64 * 1024) {
            return Err(ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over this route's limit of {limit_kb} KiB"),
            ));
        }
        Ok(())
    }

    /// The key in the request's headers, allowed `need` and within its rate; 401, 403 or 429.
    fn authorize(&self, headers: &HeaderMap, need: Access) -> Result<(), ApiError> {
        let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some((id, access)) = self.keys.check(given) else {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                if given.is_some() {
                    "unknown key".into()
                } else {
                    "send a key: Authorization: Bearer KEY".into()
                },
            ));
        };
        if access < need {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "this key may only read; events need a write key".into(),
            ));
        }
        self.key_rate.take(id, Instant::now()).map_err(ApiError::too_many)
    }

    /// Text with the catalogue's address (and any password in it) removed.
    fn scrub(&self, text: &str) -> String {
        lookbook::catalog::postgres::scrub(text, &self.db.to_string_lossy())
    }

    fn library(&self, e: lookbook::Error) -> ApiError {
        ApiError::from_library(e, |t| self.scrub(t))
    }

    fn count_events(&self, accepted: usize, rejected: usize) {
        self.metrics
            .events_accepted
            .fetch_add(accepted as u64, Ordering::Relaxed);
        self.metrics
            .events_rejected
            .fetch_add(rejected as u64, Ordering::Relaxed);
    }

    /// [`Shared::work`] for an answer that depends only on the request and the catalogue: kept
    /// under `key` until the engine is loaded again.
    async fn work_cached(
        self: &Arc<Self>,
        key: String,
        f: impl FnOnce(&Work) -> Result<serde_json::Value, ApiError> + Send + 'static,
    ) -> Result<Response, ApiError> {
        let json = |b: axum::body::Bytes| ([(header::CONTENT_TYPE, "application/json")], b).into_response();
        if self.opts.cache_entries == 0 {
            return self.work(f).await;
        }
        // The generation is read before the work reads the engine (see LiveEngine::generation).
        let generation = self.live.generation();
        if let Ok(mut a) = self.answers.lock() {
            if a.0 != generation {
                a.1.clear();
                a.0 = generation;
            }
            if let Some(b) = a.1.get(&key) {
                self.metrics.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(json(b.clone()));
            }
        }
        self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        let value = self.work_raw(f).await?;
        let bytes = axum::body::Bytes::from(
            serde_json::to_vec(&value).map_err(|e| ApiError::unavailable(format!("cannot write the answer: {e}")))?,
        );
        if let Ok(mut a) = self.answers.lock()
            && a.0 == generation
        {
            a.1.put(key, bytes.clone());
        }
        Ok(json(bytes))
    }

    /// Runs `f` on a blocking thread and answers its JSON.
    async fn work(
        self: &Arc<Self>,
        f: impl FnOnce(&Work) -> Result<serde_json::Value, ApiError> + Send + 'static,
    ) -> Result<Response, ApiError> {
        Ok(axum::Json(self.work_raw(f).await?).into_response())
    }

    /// Runs `f` on a blocking thread.
    async fn work_raw<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Work) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let s = Arc::clone(self);
        tokio::task::spawn_blocking(move || f(&Work { shared: &s }))
            .await
            .map_err(|_| ApiError::unavailable("the request's worker stopped"))?
    }
}

/// Runs the server until SIGTERM or SIGINT.
pub fn run(db: &Path, opts: Options) -> Result<()> {
    let _ = DB.set(db.to_string_lossy().into_owned());
    if !opts.retrain_minutes.is_finite() || !(0.0..=1e6).contains(&opts.retrain_minutes) {
        bail!(
            "--retrain-minutes must be a number of minutes from 0 (never) to 1000000, got {}",
            opts.retrain_minutes
        );
    }
    if opts.max_k == 0 || opts.max_connections == 0 || opts.max_per_address == 0 || opts.photo_workers == 0 {
        bail!("--max-k, --max-connections, --max-per-address and --photo-workers must be at least 1");
    }
    for o in &opts.cors_origins {
        if !(o.starts_with("http://") || o.starts_with("https://"))
            || o.ends_with('/')
            || HeaderValue::from_str(o).is_err()
        {
            bail!(
                "--cors-origin {o:?}: give an origin as a browser sends it, like https://shop.example (no path, no trailing slash)"
            );
        }
    }
    let keys = Keys::read(&opts.keys)?;
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(&opts.keys)
            && m.permissions().mode() & 0o077 != 0
        {
            log(format_args!(
                "the keys file {} can be read by other users of this machine; chmod 600 it",
                opts.keys.display()
            ));
        }
    }
    let live = LiveEngine::load(db)?;
    if let Loaded::Missing(why) = live.get() {
        log(format_args!(
            "the catalogue cannot rank yet ({why}); serving 503 until it can"
        ));
    }
    let shared = Arc::new(Shared {
        db: db.to_path_buf(),
        live,
        readers: Mutex::new(Vec::new()),
        writer: Mutex::new(None),
        encoder: Mutex::new(None),
        photo_slots: Arc::new(tokio::sync::Semaphore::new(opts.photo_workers)),
        keys,
        key_rate: RateLimiter::new(opts.rate),
        address_rate: RateLimiter::new(opts.photo_rate),
        per_address: Mutex::new(HashMap::new()),
        answers: Mutex::new((
            0,
            lru::LruCache::new(std::num::NonZeroUsize::new(opts.cache_entries).unwrap_or(std::num::NonZeroUsize::MIN)),
        )),
        metrics: Metrics::default(),
        opts: opts.clone(),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(64)
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(shared))
}

async fn serve(shared: Arc<Shared>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&shared.opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", shared.opts.listen))?;
    let addr = listener.local_addr()?;
    // Scripts and tests read this line for the port.
    log(format_args!("listening on http://{addr}"));
    let app = with_layers(routes::router(Arc::clone(&shared)), &shared);
    tokio::spawn(watch_catalogue(Arc::clone(&shared)));
    if shared.opts.retrain_minutes > 0.0 {
        tokio::spawn(retrain_feed(Arc::clone(&shared)));
    }
    let stop = stop_signal();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait rather than spin.
                    log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(guard) = ConnGuard::admit(&shared, peer.ip()) else {
            shared.metrics.refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(turn_away(stream));
            continue;
        };
        let app = app.clone();
        let header_timeout = Duration::from_secs(shared.opts.header_timeout_s.max(1));
        tokio::spawn(async move {
            let _guard = guard;
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut app = app.clone();
                async move { tower_call(&mut app, req.map(axum::body::Body::new)).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(stream), svc);
            let _ = conn.await;
        });
    }
    log(format_args!("stopping: letting requests in flight finish"));
    let until = Instant::now() + Duration::from_secs(5);
    while shared.metrics.open.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn tower_call(app: &mut axum::Router, req: Request) -> Result<Response, std::convert::Infallible> {
    use tower_service::Service;
    app.call(req).await
}

/// The layers around every route: CORS for the origins given, the request timeout, metrics and
/// headers that keep a browser from guessing content types.
fn with_layers(router: axum::Router, shared: &Arc<Shared>) -> axum::Router {
    let state = Arc::clone(shared);
    let router = router.layer(axum::middleware::from_fn(move |req: Request, next: Next| {
        let state = Arc::clone(&state);
        async move { around(state, req, next).await }
    }));
    if shared.opts.cors_origins.is_empty() {
        return router;
    }
    let origins: Vec<HeaderValue> = shared
        .opts
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    router.layer(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}

/// Times and counts each request and cuts it off at `--request-timeout`.
async fn around(state: Arc<Shared>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let (route, gate) = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|m| routes::ROUTES.iter().find(|(p, _, _)| *p == m.as_str()))
        .map_or(("unmatched", routes::Gate::Open), |(_, name, gate)| (*name, *gate));
    let limit = Duration::from_secs(state.opts.request_timeout_s.max(1));
    // Keys, rates and the declared body size are checked before anything reads the body, so
    // a client without a key cannot make the server read (or send `100 Continue` for) one.
    let mut resp = match state.admit(&req, route, gate) {
        Err(e) => e.into_response(),
        Ok(()) => match tokio::time::timeout(limit, next.run(req)).await {
            Ok(r) => r,
            Err(_) => ApiError::unavailable(format!(
                "the request took over {} s (--request-timeout)",
                limit.as_secs()
            ))
            .into_response(),
        },
    };
    resp.headers_mut()
        .insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    state.metrics.record(route, resp.status().as_u16(), started.elapsed());
    resp
}

/// A connection admitted under the caps; counted out when dropped.
struct ConnGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl ConnGuard {
    fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<Self> {
        let mut per = shared.per_address.lock().ok()?;
        let open = shared.metrics.open.load(Ordering::Relaxed) as usize;
        let here = per.get(&ip).copied().unwrap_or(0);
        if open >= shared.opts.max_connections || here >= shared.opts.max_per_address {
            return None;
        }
        per.insert(ip, here + 1);
        shared.metrics.open.fetch_add(1, Ordering::Relaxed);
        Some(ConnGuard {
            shared: Arc::clone(shared),
            ip,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Ok(mut per) = self.shared.per_address.lock()
            && let Some(n) = per.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per.remove(&self.ip);
            }
        }
        self.shared.metrics.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers a connection over the caps with a 503 and closes it, without reading its request.
async fn turn_away(mut stream: tokio::net::TcpStream) {
    const BODY: &str = "{\"error\":\"too many connections; try again shortly\"}";
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Loads the engine again when another process changed the catalogue.
async fn watch_catalogue(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = Arc::clone(&shared);
        match tokio::task::spawn_blocking(move || s.live.refresh()).await {
            Ok(Ok(true)) => {
                shared.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                log(format_args!("the catalogue changed; loaded it again"));
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => log(format_args!(
                "reloading the catalogue failed: {}",
                shared.scrub(&e.to_string())
            )),
            Err(e) => log(format_args!("reloading the catalogue failed: {e}")),
        }
    }
}

/// Learns the feed again every `--retrain-minutes` when shoppers did something since.
async fn retrain_feed(shared: Arc<Shared>) {
    let every = Duration::from_secs_f64(shared.opts.retrain_minutes * 60.0);
    let db = shared.db.clone();
    let mut retrainer = match tokio::task::spawn_blocking(move || lookbook::live::Retrainer::new(&db)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return log(format_args!(
                "learning the feed again is off: {}",
                shared.scrub(&e.to_string())
            ));
        }
        Err(e) => return log(format_args!("learning the feed again is off: {e}")),
    };
    loop {
        tokio::time::sleep(every).await;
        let done = tokio::task::spawn_blocking(move || {
            let r = retrainer.step();
            (retrainer, r)
        })
        .await;
        let Ok((r, result)) = done else {
            return log(format_args!("learning the feed again stopped"));
        };
        retrainer = r;
        match result {
            Ok(Some(t)) => {
                shared.metrics.retrains.fetch_add(1, Ordering::Relaxed);
                log(format_args!(
                    "learned the feed again from {} events and likes (feed model {})",
                    t.events, t.id
                ));
            }
            Ok(None) => {}
            Err(e) => log(format_args!(
                "learning the feed again failed: {}",
                shared.scrub(&e.to_string())
            )),
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The `--db` this server runs on, so that [`log`] can keep its password out of every line.
static DB: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// One line to stderr with a timestamp: addresses, counts and ids, never keys or passwords.
fn log(args: std::fmt::Arguments) {
    let line = lookbook::live::log_line("lookbook http", args, DB.get().map(String::as_str));
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}
