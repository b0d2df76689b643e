//! Photos by URL: downloaded once into a cache beside the catalogue, concurrently (bounded),
//! with timeouts, retries with backoff on 429 and 5xx, the photo size limit, and conditional
//! requests on a later import (an unchanged photo is not downloaded again, so its hash and
//! vector stay). A dead link is reported with its HTTP status and does not stop the import.
//!
//! The client is `ureq`: blocking (the import is a batch job, no async runtime needed), with
//! rustls on `ring`, the crypto the SSH server already uses, so no second TLS or crypto stack.

use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::hosts::HostPolicy;
use crate::files::MAX_PHOTO_BYTES;
use crate::{Error, Progress, Result};

/// Downloads at once: network waits, not CPU, bound a download, so more than the cores.
pub const CONCURRENCY: usize = 8;
/// Tries per photo (the first and two retries).
const TRIES: u32 = 3;
/// How long one request may take, whole.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects followed before giving up (a loop ends here).
const MAX_REDIRECTS: u32 = 5;

/// The photo cache: `<hash of the URL>.img` files and `.meta` lines (the URL, its ETag and
/// Last-Modified) beside them.
pub struct Cache {
    dir: PathBuf,
    /// The hosts beyond the public internet this cache's downloads may reach.
    policy: HostPolicy,
}

/// What became of one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The photo is in the cache: downloaded now (`fresh`) or found current (a 304). `check` is
    /// the photo check's verdict (its SHA-256, or why it is unusable), made in the download
    /// worker so decoding overlaps the network, and remembered for an unchanged photo.
    Ok {
        /// The file in the cache.
        path: PathBuf,
        /// Downloaded by this import.
        fresh: bool,
        /// SHA-256 of a usable photo, or why it is not.
        check: std::result::Result<String, String>,
    },
    /// Could not be had: why, with the HTTP status when there was one.
    Failed(String),
}

impl Cache {
    /// The cache in `dir` (made if missing), with the hosts an earlier import allowed.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Cache {
            dir: dir.to_path_buf(),
            policy: HostPolicy::load(dir),
        })
    }

    /// Allows these hosts from now on, in this cache and for everything that opens it later.
    pub fn allow(&mut self, policy: HostPolicy) -> Result<()> {
        policy.save(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        self.policy = policy;
        Ok(())
    }

    /// The folder, which is also the image root of photos imported through it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name a URL's photo is kept under.
    pub fn name(url: &str) -> String {
        let h = Sha256::digest(url.as_bytes());
        format!(
            "{}.img",
            h.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>()
        )
    }

    fn meta_path(&self, url: &str) -> PathBuf {
        self.dir.join(Cache::name(url)).with_extension("meta")
    }

    /// (ETag, Last-Modified, the checked photo's SHA-256) remembered for a URL.
    fn validators(&self, url: &str) -> Option<(String, String, String)> {
        let text = std::fs::read_to_string(self.meta_path(url)).ok()?;
        let mut lines = text.lines();
        (lines.next()? == url).then(|| {
            (
                lines.next().unwrap_or("").to_string(),
                lines.next().unwrap_or("").to_string(),
                lines.next().unwrap_or("").to_string(),
            )
        })
    }

    /// Checks a downloaded photo and remembers a usable one's hash with its validators.
    fn checked(&self, url: &str, path: PathBuf, fresh: bool, etag: &str, modified: &str) -> Fetched {
        let check = super::images::check(&path);
        if let Ok(hash) = &check {
            let _ = std::fs::write(self.meta_path(url), format!("{url}\n{etag}\n{modified}\n{hash}\n"));
        }
        Fetched::Ok { path, fresh, check }
    }

    /// Downloads every URL (or finds it current in the cache), `CONCURRENCY` at a time; after
    /// `timeout` (the import's `--timeout`) no download starts, and those left are reported.
    pub fn fetch_all(&self, urls: &[String], timeout: Option<Duration>, progress: &dyn Progress) -> Vec<Fetched> {
        let agent = agent(&self.policy);
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let next = AtomicUsize::new(0);
        let out: Mutex<Vec<Option<Fetched>>> = Mutex::new(vec![None; urls.len()]);
        progress.start("downloading photos", urls.len());
        std::thread::scope(|s| {
            for _ in 0..CONCURRENCY.min(urls.len()) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(url) = urls.get(i) else { break };
                        let got = match (deadline, timeout) {
                            (Some(d), Some(t)) if std::time::Instant::now() >= d => Fetched::Failed(format!(
                                "not downloaded: the import's --timeout of {} s ran out",
                                t.as_secs()
                            )),
                            _ => self.fetch(&agent, url),
                        };
                        if let Ok(mut o) = out.lock() {
                            o[i] = Some(got);
                        }
                        progress.advance(1);
                    }
                });
            }
        });
        progress.finish();
        out.into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|f| f.unwrap_or_else(|| Fetched::Failed("not downloaded".into())))
            .collect()
    }

    /// The photo of one URL, for a viewer that finds it missing (the app, `serve`): the cached
    /// copy when there is one, else downloaded now and checked. A blocking call: run it off
    /// any UI thread.
    pub fn photo(&self, url: &str) -> std::result::Result<PathBuf, String> {
        let file = self.dir.join(Cache::name(url));
        if file.is_file() {
            return Ok(file);
        }
        match self.fetch(&agent(&self.policy), url) {
            Fetched::Ok { path, check: Ok(_), .. } => Ok(path),
            Fetched::Ok { check: Err(why), .. } | Fetched::Failed(why) => Err(why),
        }
    }

    /// One URL: a conditional request when the cache has it, retried on 429, 5xx and broken
    /// connections with a growing pause.
    fn fetch(&self, agent: &ureq::Agent, url: &str) -> Fetched {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Fetched::Failed("only http and https URLs are downloaded".into());
        }
        let file = self.dir.join(Cache::name(url));
        let cached = file.is_file().then(|| self.validators(url)).flatten();
        let mut last = String::new();
        for attempt in 0..TRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            let mut req = agent.get(url);
            if let Some((etag, modified, _)) = &cached {
                if !etag.is_empty() {
                    req = req.header("If-None-Match", etag);
                }
                if !modified.is_empty() {
                    req = req.header("If-Modified-Since", modified);
                }
            }
            match req.call() {
                Ok(resp) if resp.status().as_u16() == 304 && cached.is_some() => {
                    // Unchanged: the hash checked when it was downloaded still holds.
                    return match cached {
                        Some((_, _, hash)) if !hash.is_empty() => Fetched::Ok {
                            path: file,
                            fresh: false,
                            check: Ok(hash),
                        },
                        Some((etag, modified, _)) => self.checked(url, file, false, &etag, &modified),
                        None => Fetched::Failed("a 304 without a cached copy".into()),
                    };
                }
                Ok(resp) if resp.status().is_success() => return self.store(url, &file, resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    last = format!("HTTP {status}");
                    if !(status == 429 || status >= 500) {
                        break;
                    }
                    if let Some(wait) = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                    {
                        std::thread::sleep(Duration::from_secs(wait.min(5)));
                    }
                }
                Err(ureq::Error::TooManyRedirects) => return Fetched::Failed("too many redirects".into()),
                Err(ureq::Error::Timeout(_)) => last = format!("no answer within {} s", TIMEOUT.as_secs()),
                Err(ureq::Error::BadUri(e)) if e.starts_with("refused:") => return Fetched::Failed(e),
                Err(ureq::Error::BadUri(e)) => return Fetched::Failed(format!("not a URL lookbook can fetch ({e})")),
                Err(e) => last = e.to_string(),
            }
        }
        Fetched::Failed(last)
    }

    /// Writes a response's body (within the photo size limit) and its validators.
    fn store(&self, url: &str, file: &Path, resp: ureq::http::Response<ureq::Body>) -> Fetched {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .replace(['\r', '\n'], "")
        };
        let (etag, modified) = (header("etag"), header("last-modified"));
        let mut body = Vec::new();
        let read = resp
            .into_body()
            .into_reader()
            .take(MAX_PHOTO_BYTES + 1)
            .read_to_end(&mut body);
        if let Err(e) = read {
            return Fetched::Failed(format!("download broke off ({e})"));
        }
        if body.len() as u64 > MAX_PHOTO_BYTES {
            return Fetched::Failed(format!("larger than the {} MB photo limit", MAX_PHOTO_BYTES >> 20));
        }
        let tmp = file.with_extension(format!("part{}", std::process::id()));
        // The old validators go first: a photo replaced but not yet checked is never taken for
        // the one they describe.
        let _ = std::fs::remove_file(self.meta_path(url));
        let written = std::fs::write(&tmp, &body).and_then(|_| std::fs::rename(&tmp, file));
        match written {
            Ok(()) => self.checked(url, file.to_path_buf(), true, &etag, &modified),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Fetched::Failed(format!("cannot write the photo cache {} ({e})", self.dir.display()))
            }
        }
    }
}

fn agent(policy: &HostPolicy) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .timeout_connect(Some(Duration::from_secs(10)))
        .max_redirects(MAX_REDIRECTS)
        // Statuses come back as responses, so each is reported (and 304 is not an error).
        .http_status_as_error(false)
        .user_agent(concat!("lookbook/", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::default(),
        GuardedResolver {
            inner: ureq::unversioned::resolver::DefaultResolver::default(),
            policy: policy.clone(),
        },
    )
}

/// Resolves as ureq does, then keeps only the addresses the policy allows: every connection,
/// the first and each redirect's, is checked on the address it would really reach, so neither a
/// name that resolves to 127.0.0.1 nor a redirect gets around it.
#[derive(Debug)]
struct GuardedResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    policy: HostPolicy,
}

impl ureq::unversioned::resolver::Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> std::result::Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or("");
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
        self.policy.check_host(host, port).map_err(ureq::Error::BadUri)?;
        let found = self.inner.resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        let mut refused = None;
        for a in found.iter() {
            match self.policy.check(host, port, a.ip()) {
                Ok(()) => kept.push(*a),
                Err(why) => refused = Some(why),
            }
        }
        match (kept.is_empty(), refused) {
            (true, Some(why)) => Err(ureq::Error::BadUri(why)),
            _ => Ok(kept),
        }
    }
}
