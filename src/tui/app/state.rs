//! The types the app's parts share: tabs, focus, modes, the engine's state, the product list
//! and the rankings and pictures a session holds.

use ratatui_image::protocol::Protocol;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::filters::FilterPicker;
use crate::tui::jobs::{ImageJob, ImageKey};
use crate::tui::keys::KeyMode;
use lookbook::catalog::{Catalog, Product};
use lookbook::recommend::{DEFAULT_DIVERSITY, Recommendation};

/// The four tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// The whole catalogue, searchable and filterable.
    Browse,
    /// Look-alikes of one product or photo, blended with the profile by alpha.
    Similar,
    /// The personal feed.
    ForYou,
    /// What the user liked and disliked.
    Liked,
}

impl Tab {
    /// All tabs in order.
    pub const ALL: [Tab; 4] = [Tab::Browse, Tab::Similar, Tab::ForYou, Tab::Liked];

    /// Title in the tab bar.
    pub fn title(self) -> &'static str {
        match self {
            Tab::Browse => "Browse",
            Tab::Similar => "Similar",
            Tab::ForYou => "For you",
            Tab::Liked => "Liked",
        }
    }

    /// Position in [`Tab::ALL`].
    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Which pane receives movement keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The product list.
    List,
    /// The look-alike strip.
    Strip,
}

/// What the single-line prompt is asking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    /// A user name.
    User,
    /// A photo path.
    Photo,
}

/// Input mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Keys are actions.
    Normal,
    /// Typing a name search.
    Search,
    /// Typing into a prompt.
    Prompt(PromptKind, String),
    /// Choosing filters.
    Filters(Box<FilterPicker>),
    /// The help overlay.
    Help,
}

impl Mode {
    /// Which bindings of the key map apply in this mode.
    pub fn key_mode(&self) -> KeyMode {
        match self {
            Mode::Normal => KeyMode::Normal,
            Mode::Search | Mode::Prompt(..) => KeyMode::Text,
            Mode::Filters(_) => KeyMode::Filters,
            Mode::Help => KeyMode::Help,
        }
    }
}

/// Where the vectors stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineState {
    /// Loading in the background.
    Loading,
    /// Ready to rank.
    Ready,
    /// No vectors yet (press e).
    Missing(String),
}

/// What the Similar tab is anchored on.
#[derive(Debug, Clone, PartialEq)]
pub enum Anchor {
    /// A catalogue product.
    Item(i64),
    /// A photo file and its vector.
    Photo(PathBuf, Vec<f32>),
}

/// Background work shown in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    /// What is running.
    pub label: String,
    /// Units done.
    pub done: usize,
    /// Units in all.
    pub total: usize,
}

/// Results kept per ranked list.
pub(super) const LIST_K: usize = 200;
/// The diversity levels `v` steps through; 0.3 is the default ([`DEFAULT_DIVERSITY`]).
pub const DIVERSITY_STEPS: [f32; 4] = [0.0, DEFAULT_DIVERSITY, 0.5, 0.7];
pub use crate::tui::layout::STRIP_K;
/// Encoded images kept.
pub(super) const IMAGE_CACHE: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(399);

/// The catalogue's products with an id lookup, built once: a server's sessions all share one.
pub struct ProductList {
    pub(super) list: Arc<Vec<Product>>,
    pub(super) by_id: HashMap<i64, usize>,
    /// Positions of each group's colourways (groups of one are left out).
    pub(super) groups: HashMap<String, Vec<usize>>,
}

impl ProductList {
    /// Indexes `list` by id.
    pub fn new(list: impl Into<Arc<Vec<Product>>>) -> Self {
        let list = list.into();
        let by_id = list.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let mut groups: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in list.iter().enumerate() {
            if let Some(g) = &p.group {
                groups.entry(g.clone()).or_default().push(i);
            }
        }
        groups.retain(|_, v| v.len() > 1);
        ProductList { list, by_id, groups }
    }

    /// True when `other` lists the same products in the same order (rows stay valid).
    pub(super) fn same_as(&self, other: &[Product]) -> bool {
        self.list.len() == other.len() && self.list.iter().zip(other).all(|(a, b)| a == b)
    }

    /// A product by id.
    pub fn get(&self, id: i64) -> Option<&Product> {
        self.by_id.get(&id).map(|&i| &self.list[i])
    }

    /// The colourways of `p`'s group, itself included (none when it has no group).
    pub fn colourways<'a>(&'a self, p: &Product) -> impl Iterator<Item = &'a Product> + 'a {
        p.group
            .as_ref()
            .and_then(|g| self.groups.get(g))
            .into_iter()
            .flatten()
            .map(|&i| &self.list[i])
    }
}

impl std::ops::Deref for ProductList {
    type Target = [Product];
    fn deref(&self) -> &[Product] {
        &self.list
    }
}

/// The rows of the Browse tab: every product (no search or filter, so nothing to store), or
/// the positions in the product list of those that pass.
#[derive(Debug, Clone, PartialEq)]
pub enum BrowseRows {
    /// All of the first `n` products, in order.
    All(usize),
    /// These positions.
    Some(Vec<usize>),
}

impl BrowseRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            BrowseRows::All(n) => *n,
            BrowseRows::Some(v) => v.len(),
        }
    }
    /// True when no product passes.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The product position at a row.
    pub fn get(&self, row: usize) -> Option<usize> {
        match self {
            BrowseRows::All(n) => (row < *n).then_some(row),
            BrowseRows::Some(v) => v.get(row).copied(),
        }
    }
}

/// A catalogue connection: the app's own, or a server's one connection that every session
/// shares (sessions' writes then queue on its lock instead of contending for SQLite's).
pub type SharedCatalog = Arc<std::sync::Mutex<Catalog>>;

/// The session's ranked lists, recomputed on every like, alpha or filter change.
#[derive(Default)]
pub struct Rankings {
    /// Ranked look-alikes for the Similar tab.
    pub similar: Vec<Recommendation>,
    /// The For you feed.
    pub feed: Vec<Recommendation>,
    /// Look-alikes of the selected product (the strip).
    pub strip: Vec<Recommendation>,
    /// What shoppers bought with the selected product (the detail pane), ranked with the strip.
    pub together: Vec<Recommendation>,
    /// Which product and generation the strip was ranked for.
    pub(super) strip_for: Option<(i64, u64)>,
    /// Bumped on every re-rank, so the strip knows it is stale.
    pub(super) generation: u64,
}

/// Photos for the terminal: encoded ones (a bounded LRU cache), failures, and what the image
/// worker was last asked for.
pub struct Pictures {
    /// Encoded images ready to draw.
    pub ready: lru::LruCache<ImageKey, Protocol>,
    /// Images that could not be made (drawn as a note).
    pub errors: HashMap<ImageKey, String>,
    pub(super) pending: HashSet<ImageKey>,
    pub(super) last_want: Vec<ImageJob>,
}

impl Pictures {
    pub(super) fn new() -> Self {
        Pictures {
            ready: lru::LruCache::new(IMAGE_CACHE),
            errors: HashMap::new(),
            pending: HashSet::new(),
            last_want: Vec::new(),
        }
    }
}
