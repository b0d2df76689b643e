//! Work that must not block the UI thread: decoding and encoding images, loading vectors,
//! embedding, photo queries. Each kind has one worker; the UI posts requests and polls replies.
//! Image requests are replaced wholesale by each frame's want-list, so the latest screen wins.

use image::DynamicImage;
use lru::LruCache;
use ratatui::layout::Size;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;
use ratatui_image::{FilterType, Resize};
use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use lookbook::catalog::Catalog;
use lookbook::embedding::PhotoEncoder;
use lookbook::recommend::{Engine, SharedEngine};

/// An image at a size in terminal cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageKey {
    /// Product id.
    pub id: i64,
    /// Width in cells.
    pub cols: u16,
    /// Height in cells.
    pub rows: u16,
}

/// A request for one encoded image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    /// What to produce.
    pub key: ImageKey,
    /// The photo file.
    pub path: PathBuf,
    /// Where to get it when the file is missing: the feed's photo URL and the catalogue's
    /// photo cache (empty URL or no cache: nowhere).
    pub fallback: Option<(String, PathBuf)>,
}

/// Replies from the workers.
pub enum Msg {
    /// An encoded image (or why there is none).
    Image(ImageKey, Result<Protocol, String>),
    /// The engine finished loading (shared with other sessions under `lookbook serve`).
    Engine(Result<Arc<Engine>, lookbook::Error>),
    /// Progress of a long job.
    Progress { label: String, done: usize, total: usize },
    /// Embedding finished.
    EmbedDone(Result<lookbook::vision::EmbedReport, lookbook::Error>),
    /// A photo query's vector.
    Photo(PathBuf, Result<Vec<f32>, lookbook::Error>),
}

/// Heavy jobs, one at a time, in order.
enum Heavy {
    LoadEngine,
    Embed,
    Photo(PathBuf),
}

/// Handles to the worker threads.
pub struct Jobs {
    want: Arc<(Mutex<VecDeque<ImageJob>>, Condvar)>,
    /// The worker for slow jobs, started on first use: a server session whose engine is
    /// already loaded never needs one, and fifty idle threads are memory for nothing.
    heavy: std::sync::OnceLock<Sender<Heavy>>,
    db: PathBuf,
    tx: Sender<Msg>,
    shared: Option<SharedEngine>,
    /// Replies, polled by the event loop.
    pub rx: Receiver<Msg>,
}

/// Photos are decoded once and kept this large (pixels, longest side) for re-encoding.
const DECODED_SIDE: u32 = 480;
/// Decoded photos kept in memory.
const DECODED_CACHE: NonZeroUsize = NonZeroUsize::MIN.saturating_add(255);

impl Jobs {
    /// Starts the workers. `picker` is `None` when images are off.
    pub fn start(db: PathBuf, picker: Option<Picker>) -> Self {
        Self::start_with(db, picker, None)
    }

    /// Starts the workers of one session among many: engine loads come from `shared` (loaded
    /// into it by the first session that asks, if empty).
    pub fn start_with(db: PathBuf, picker: Option<Picker>, shared: Option<SharedEngine>) -> Self {
        let (tx, rx) = channel();
        let want: Arc<(Mutex<VecDeque<ImageJob>>, Condvar)> = Arc::new((Mutex::new(VecDeque::new()), Condvar::new()));
        if let Some(picker) = picker {
            let want = Arc::clone(&want);
            let tx = tx.clone();
            thread::Builder::new()
                .name("lookbook-images".into())
                .spawn(move || image_worker(picker, want, tx))
                .ok();
        }
        Jobs {
            want,
            heavy: std::sync::OnceLock::new(),
            db,
            tx,
            shared,
            rx,
        }
    }

    /// Queues a slow job, starting the worker if this is the first.
    fn send_heavy(&self, job: Heavy) {
        let heavy = self.heavy.get_or_init(|| {
            let (htx, hrx) = channel::<Heavy>();
            let (db, tx, shared) = (self.db.clone(), self.tx.clone(), self.shared.clone());
            thread::Builder::new()
                .name("lookbook-work".into())
                .spawn(move || heavy_worker(db, hrx, tx, shared))
                .ok();
            htx
        });
        let _ = heavy.send(job);
    }

    /// Replaces the pending image requests with this frame's.
    pub fn want_images(&self, jobs: Vec<ImageJob>) {
        let (lock, cv) = &*self.want;
        if let Ok(mut q) = lock.lock() {
            *q = jobs.into();
            cv.notify_one();
        }
    }

    /// Loads (or reloads) the engine.
    pub fn load_engine(&self) {
        // A server's engine, once loaded, is one pointer away: no worker needed.
        if let Some(e) = self.shared.as_ref().and_then(|s| s.read().ok().and_then(|g| g.clone())) {
            let _ = self.tx.send(Msg::Engine(Ok(e)));
            return;
        }
        self.send_heavy(Heavy::LoadEngine);
    }

    /// Embeds missing products, then reloads the engine.
    pub fn embed(&self) {
        self.send_heavy(Heavy::Embed);
    }

    /// Embeds a photo for a query.
    pub fn photo(&self, path: PathBuf) {
        self.send_heavy(Heavy::Photo(path));
    }
}

fn image_worker(picker: Picker, want: Arc<(Mutex<VecDeque<ImageJob>>, Condvar)>, tx: Sender<Msg>) {
    let mut decoded: LruCache<i64, Arc<DynamicImage>> = LruCache::new(DECODED_CACHE);
    loop {
        let job = {
            let (lock, cv) = &*want;
            let Ok(mut q) = lock.lock() else { return };
            loop {
                if let Some(j) = q.pop_front() {
                    break j;
                }
                // When the app's `Jobs` is gone (a server session ended or reloaded), this
                // worker holds the only handle left: stop instead of waiting forever.
                if Arc::strong_count(&want) == 1 {
                    return;
                }
                q = match cv.wait_timeout(q, std::time::Duration::from_secs(1)) {
                    Ok((q, _)) => q,
                    Err(_) => return,
                };
            }
        };
        let img = match decoded.get(&job.key.id) {
            Some(i) => Ok(Arc::clone(i)),
            None => photo_file(&job)
                .and_then(|path| lookbook::vision::load(&path).map_err(|e| e.to_string()))
                .map(|rgb| {
                    let img = DynamicImage::ImageRgb8(rgb);
                    let img = if img.width().max(img.height()) > DECODED_SIDE {
                        img.thumbnail(DECODED_SIDE, DECODED_SIDE)
                    } else {
                        img
                    };
                    let img = Arc::new(img);
                    decoded.put(job.key.id, Arc::clone(&img));
                    img
                }),
        };
        let result = img.and_then(|img| {
            picker
                .new_protocol(
                    (*img).clone(),
                    Size::new(job.key.cols, job.key.rows),
                    Resize::Scale(Some(FilterType::Triangle)),
                )
                .map_err(|e| e.to_string())
        });
        if tx.send(Msg::Image(job.key, result)).is_err() {
            return;
        }
    }
}

/// The file to decode: the photo where the catalogue says it is, or, when it is gone from
/// there (a cache cleared, a catalogue copied to another machine), the cached or freshly
/// downloaded copy of its URL. This worker is off the UI thread, so a download only delays
/// this photo; the next frame's requests replace the queue meanwhile.
fn photo_file(job: &ImageJob) -> Result<PathBuf, String> {
    match &job.fallback {
        Some((url, cache)) if !url.is_empty() && !job.path.is_file() => lookbook::ingest::fetch::Cache::open(cache)
            .map_err(|e| e.to_string())?
            .photo(url),
        _ => Ok(job.path.clone()),
    }
}

/// Sends progress of a heavy job to the UI.
struct ChannelProgress {
    tx: Mutex<Sender<Msg>>,
    state: Mutex<(String, usize, usize)>,
}

impl lookbook::Progress for ChannelProgress {
    fn start(&self, what: &str, total: usize) {
        if let Ok(mut s) = self.state.lock() {
            *s = (what.to_string(), 0, total);
        }
        self.send();
    }
    fn advance(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.1 += n;
        }
        self.send();
    }
}

impl ChannelProgress {
    fn send(&self) {
        let (label, done, total) = match self.state.lock() {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(Msg::Progress { label, done, total });
        }
    }
}

fn heavy_worker(db: PathBuf, rx: Receiver<Heavy>, tx: Sender<Msg>, shared: Option<SharedEngine>) {
    // Kept between photo queries: loading the network is most of a query's cost.
    let mut encoder: Option<PhotoEncoder> = None;
    while let Ok(mut job) = rx.recv() {
        // Latest photo request wins: skip photo queries superseded by newer ones.
        while let Ok(next) = rx.try_recv() {
            match (&job, &next) {
                (Heavy::Photo(_), Heavy::Photo(_)) => job = next,
                _ => {
                    run_heavy(&db, job, &tx, shared.as_ref(), &mut encoder);
                    job = next;
                }
            }
        }
        run_heavy(&db, job, &tx, shared.as_ref(), &mut encoder);
    }
}

fn run_heavy(
    db: &std::path::Path,
    job: Heavy,
    tx: &Sender<Msg>,
    shared: Option<&SharedEngine>,
    encoder: &mut Option<PhotoEncoder>,
) {
    let load = || -> Result<Arc<Engine>, lookbook::Error> {
        let Some(shared) = shared else {
            return Ok(Arc::new(Engine::load_with_shop(&Catalog::open_existing(db)?)?));
        };
        if let Some(e) = shared.read().ok().and_then(|g| g.clone()) {
            return Ok(e);
        }
        let mut slot = shared
            .write()
            .map_err(|_| lookbook::Error::Invalid("the shared engine lock was poisoned".into()))?;
        if let Some(e) = slot.clone() {
            return Ok(e); // another session loaded it while this one waited
        }
        let e = Arc::new(Engine::load_with_shop(&Catalog::open_existing(db)?)?);
        *slot = Some(Arc::clone(&e));
        Ok(e)
    };
    let msg = match job {
        Heavy::LoadEngine => Msg::Engine(load()),
        Heavy::Embed => {
            let progress = ChannelProgress {
                tx: Mutex::new(tx.clone()),
                state: Mutex::new((String::new(), 0, 0)),
            };
            let result = Catalog::open_existing(db)
                .and_then(|mut cat| lookbook::embedding::embed_with_located_weights(&mut cat, None, &progress));
            let _ = tx.send(Msg::EmbedDone(result));
            Msg::Engine(load())
        }
        Heavy::Photo(path) => {
            let r = Catalog::open_existing(db).and_then(|cat| {
                if !encoder.as_ref().is_some_and(|e| e.is_current(&cat).unwrap_or(false)) {
                    *encoder = Some(PhotoEncoder::for_catalog(&cat, None)?);
                }
                match encoder.as_ref() {
                    Some(e) => e.vector(&path),
                    None => Err(lookbook::Error::NoEmbeddings { model: None }),
                }
            });
            Msg::Photo(path, r)
        }
    };
    let _ = tx.send(msg);
}
