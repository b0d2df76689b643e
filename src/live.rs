//! The engine of a long-running front end (`lookbook serve`, `lookbook http`): loaded once and
//! shared, loaded again when another process changes the catalogue (`import`, `embed`, `train`),
//! and the shop's feed learned again when shoppers did something since it was last learned.
//! Blocking calls; the front end decides which thread and how often.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::catalog::Catalog;
use crate::recommend::Engine;
use crate::train::feed::{FeedTrained, train_feed};
use crate::{NoProgress, Result};

/// One catalogue's engine (with its feed model), replaced whole when the catalogue changes:
/// readers hold an `Arc` to the one they started with.
pub struct LiveEngine {
    db: PathBuf,
    current: RwLock<Loaded>,
    /// The catalogue's change signature when `current` was loaded.
    signature: Mutex<Option<String>>,
    /// Counts loads: answers remembered under an older generation are stale.
    generation: AtomicU64,
}

/// The engine, or why there is none (no embeddings yet, say).
#[derive(Clone)]
pub enum Loaded {
    /// Ready.
    Ready(Arc<Engine>),
    /// Could not load; the message says what to do.
    Missing(String),
}

impl LiveEngine {
    /// Loads the engine of the catalogue at `db`; a catalogue that cannot rank yet (no
    /// embeddings) is [`Loaded::Missing`], not an error, so a server can start before `embed`.
    pub fn load(db: &Path) -> Result<Self> {
        let cat = Catalog::open_existing(db)?;
        let signature = cat.change_signature().ok();
        let current = load(&cat);
        Ok(LiveEngine {
            db: db.to_path_buf(),
            current: RwLock::new(current),
            signature: Mutex::new(signature),
            generation: AtomicU64::new(0),
        })
    }

    /// The engine now.
    pub fn get(&self) -> Loaded {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// How many times the engine was loaded again. Read it before [`LiveEngine::get`]: an answer
    /// kept under this number is then never from an older engine.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Loads the engine again when the catalogue changed since the last load; true when it did.
    pub fn refresh(&self) -> Result<bool> {
        let cat = Catalog::open_existing(&self.db)?;
        let now = cat.change_signature()?;
        {
            let seen = self.signature.lock().map_err(|_| poisoned())?;
            if seen.as_deref() == Some(now.as_str()) {
                return Ok(false);
            }
        }
        let loaded = load(&cat);
        *self.current.write().map_err(|_| poisoned())? = loaded;
        *self.signature.lock().map_err(|_| poisoned())? = Some(now);
        self.generation.fetch_add(1, Ordering::AcqRel);
        crate::memory::release_freed();
        Ok(true)
    }
}

fn load(cat: &Catalog) -> Loaded {
    match Engine::load_with_shop(cat) {
        Ok(e) => Loaded::Ready(Arc::new(e)),
        Err(e) => Loaded::Missing(e.to_string()),
    }
}

fn poisoned() -> crate::Error {
    crate::Error::Invalid("a thread panicked while holding the live engine's lock".into())
}

/// Learns the feed again when the shop's history (events and likes) changed since the last
/// time it looked; what was there when it was made does not count.
pub struct Retrainer {
    db: PathBuf,
    last: Option<String>,
}

impl Retrainer {
    /// Remembers the history as it is now.
    pub fn new(db: &Path) -> Result<Self> {
        let last = Catalog::open_existing(db)?.history_signature().ok();
        Ok(Retrainer {
            db: db.to_path_buf(),
            last,
        })
    }

    /// Learns and stores the feed (`train --feed`'s defaults) if anything happened since the
    /// last step; `None` when nothing did. The stored model changes the catalogue's signature,
    /// so a [`LiveEngine::refresh`] afterwards picks it up.
    pub fn step(&mut self) -> Result<Option<FeedTrained>> {
        let mut cat = Catalog::open_existing(&self.db)?;
        let now = cat.history_signature()?;
        if self.last.as_deref() == Some(now.as_str()) || cat.event_count()? == 0 {
            self.last = Some(now);
            return Ok(None);
        }
        self.last = Some(now);
        Ok(Some(train_feed(&mut cat, 7, 12, 42, &NoProgress)?))
    }
}

/// One log line of a long-running front end (`lookbook serve`, `lookbook http`): seconds since
/// the epoch, the program, the message; the catalogue's address (a PostgreSQL URL may carry a
/// password) removed and every unsafe character made visible. The caller writes it.
pub fn log_line(program: &str, args: std::fmt::Arguments, db: Option<&str>) -> String {
    let line = format!("{} {program}: {args}\n", crate::now_ms() / 1000);
    let line = match db {
        Some(db) => crate::catalog::postgres::scrub(&line, db),
        None => line,
    };
    crate::text::sanitize_lines(&line).into_owned()
}
