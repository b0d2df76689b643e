//! The app's state and how actions change it. No terminal I/O here: the event loop feeds
//! actions in, [`super::view`] draws the state out.

use ratatui::layout::Rect;
use ratatui_image::protocol::Protocol;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::action::Action;
use super::components::filters::{self, FilterPicker};
use super::components::help::HelpOverlay;
use super::components::list::ListPane;
use super::components::prompt::{self, Edit};
use super::components::strip::Strip;
use super::jobs::{ImageJob, ImageKey, Jobs, Msg};
use super::keys::KeyMode;
use super::view;
use lookbook::catalog::{Catalog, Feedback, Product, ProductFilter};
use lookbook::recommend::{DEFAULT_DIVERSITY, Engine, Profile, ProfileSettings, Recommendation, Request};

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
const LIST_K: usize = 200;
/// The diversity levels `v` steps through; 0.3 is the default ([`DEFAULT_DIVERSITY`]).
pub const DIVERSITY_STEPS: [f32; 4] = [0.0, DEFAULT_DIVERSITY, 0.5, 0.7];
/// Thumbnails in the look-alike strip.
pub const STRIP_K: usize = 8;
/// Encoded images kept.
const IMAGE_CACHE: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(399);

/// The catalogue's products with an id lookup, built once: a server's sessions all share one.
pub struct ProductList {
    list: Arc<Vec<Product>>,
    by_id: HashMap<i64, usize>,
}

impl ProductList {
    /// Indexes `list` by id.
    pub fn new(list: impl Into<Arc<Vec<Product>>>) -> Self {
        let list = list.into();
        let by_id = list.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        ProductList { list, by_id }
    }

    /// True when `other` lists the same products in the same order (rows stay valid).
    fn same_as(&self, other: &[Product]) -> bool {
        self.list.len() == other.len() && self.list.iter().zip(other).all(|(a, b)| a == b)
    }

    /// A product by id.
    pub fn get(&self, id: i64) -> Option<&Product> {
        self.by_id.get(&id).map(|&i| &self.list[i])
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

/// What a server session shares with every other.
pub struct Remote {
    /// The catalogue's products.
    pub products: Arc<ProductList>,
    /// The server's catalogue connection.
    pub catalog: SharedCatalog,
}

/// The whole app state.
pub struct App {
    /// Catalogue connection for feedback and users.
    catalog: SharedCatalog,
    /// Folder the product photo paths are relative to.
    image_root: Option<PathBuf>,
    /// Every product, by id.
    pub products: Arc<ProductList>,
    /// The ranking engine once loaded; set in `handle` together with `engine_state`, which
    /// is what the view reads.
    engine: Option<Arc<Engine>>,
    /// Loading state of the engine.
    pub engine_state: EngineState,
    /// Active model's display name.
    pub model_name: String,
    /// Current user: catalogue id (none for a guest of `serve --open`) and name.
    pub user: (Option<i64>, String),
    /// The user's feedback, newest first.
    pub feedback: Vec<Feedback>,
    profile: Profile,
    /// Current tab.
    pub tab: Tab,
    /// Current focus.
    pub focus: Focus,
    /// Current input mode.
    pub mode: Mode,
    /// Name search text.
    pub search: String,
    /// Active filters.
    pub filter: ProductFilter,
    /// The products shown in Browse.
    pub browse: BrowseRows,
    /// The Similar tab's anchor.
    pub anchor: Option<Anchor>,
    /// What the engine ranked for this session.
    pub rankings: Rankings,
    /// The product list (selection and scroll per tab).
    pub list: ListPane,
    /// The look-alike strip (the picked thumbnail).
    pub strip: Strip,
    /// The help overlay (the mode it goes back to).
    pub help: HelpOverlay,
    /// Query vs profile weight.
    pub alpha: f32,
    /// MMR diversity.
    pub diversity: f32,
    /// Last message for the status bar.
    pub status: String,
    /// Background work in progress.
    pub work: Option<Work>,
    /// Whether images are drawn at all.
    pub images_on: bool,
    /// A session of `lookbook serve`: no photo paths from the server's disk, no embedding runs.
    pub remote: bool,
    /// Photos encoded for the terminal, and those on their way.
    pub pictures: Pictures,
    /// Set to leave the loop.
    pub quit: bool,
    /// The last feedback refresh failed: the catalogue's database is away.
    catalog_away: bool,
    /// Terminal size at the last `prepare`.
    pub size: Rect,
    jobs: Jobs,
}

/// The session's ranked lists, recomputed on every like, alpha or filter change.
#[derive(Default)]
pub struct Rankings {
    /// Ranked look-alikes for the Similar tab.
    pub similar: Vec<Recommendation>,
    /// The For you feed.
    pub feed: Vec<Recommendation>,
    /// Look-alikes of the selected product (the strip).
    pub strip: Vec<Recommendation>,
    /// Which product and generation the strip was ranked for.
    strip_for: Option<(i64, u64)>,
    /// Bumped on every re-rank, so the strip knows it is stale.
    generation: u64,
}

/// Photos for the terminal: encoded ones (a bounded LRU cache), failures, and what the image
/// worker was last asked for.
pub struct Pictures {
    /// Encoded images ready to draw.
    pub ready: lru::LruCache<ImageKey, Protocol>,
    /// Images that could not be made (drawn as a note).
    pub errors: HashMap<ImageKey, String>,
    pending: HashSet<ImageKey>,
    last_want: Vec<ImageJob>,
}

impl Pictures {
    fn new() -> Self {
        Pictures {
            ready: lru::LruCache::new(IMAGE_CACHE),
            errors: HashMap::new(),
            pending: HashSet::new(),
            last_want: Vec::new(),
        }
    }
}

impl App {
    /// Opens the app on a catalogue: products now (for the first frame), vectors in the background.
    pub fn new(db: PathBuf, user: &str, jobs: Jobs, images_on: bool) -> anyhow::Result<Self> {
        let catalog = Arc::new(std::sync::Mutex::new(Catalog::open_existing(&db)?));
        Self::new_session(catalog, None, Some(user), jobs, images_on)
    }

    /// A session of `lookbook serve`: `products` is the server's one copy of the catalogue, and
    /// the app neither reads photo paths typed by its user nor starts embedding runs.
    /// A guest (`serve --open`) has no row in the catalogue: their likes live in this app only.
    pub fn new_remote(user: &str, guest: bool, jobs: Jobs, images_on: bool, shared: &Remote) -> anyhow::Result<Self> {
        let mut app = Self::new_session(
            Arc::clone(&shared.catalog),
            Some(Arc::clone(&shared.products)),
            if guest { None } else { Some(user) },
            jobs,
            images_on,
        )?;
        app.user.1 = user.trim().to_string();
        Ok(app)
    }

    /// `user` is `None` for a guest, who gets no row in the catalogue.
    fn new_session(
        catalog: SharedCatalog,
        shared_products: Option<Arc<ProductList>>,
        user: Option<&str>,
        jobs: Jobs,
        images_on: bool,
    ) -> anyhow::Result<Self> {
        let remote = shared_products.is_some();
        let (products, uid, feedback, model_name, image_root) = {
            let cat = lock(&catalog)?;
            let products = match shared_products {
                Some(p) => p,
                None => Arc::new(ProductList::new(cat.products()?)),
            };
            let (uid, feedback) = match user {
                Some(name) => {
                    let uid = cat.ensure_user(name)?;
                    (Some(uid), cat.feedback(uid)?)
                }
                None => (None, Vec::new()),
            };
            let model_name = match cat.active_model()? {
                Some(m) => format!("{} ({}-d)", m.spec.name, m.spec.dim),
                None => "no model yet".into(),
            };
            (products, uid, feedback, model_name, cat.image_root().ok())
        };
        jobs.load_engine();
        let mut app = App {
            image_root,
            catalog,
            browse: BrowseRows::All(products.len()),
            products,
            engine: None,
            engine_state: EngineState::Loading,
            model_name,
            user: (uid, user.unwrap_or_default().trim().to_string()),
            feedback,
            profile: Profile::default(),
            tab: Tab::Browse,
            focus: Focus::List,
            mode: Mode::Normal,
            search: String::new(),
            filter: ProductFilter::default(),
            anchor: None,
            rankings: Rankings::default(),
            list: ListPane::default(),
            strip: Strip::default(),
            help: HelpOverlay::default(),
            alpha: lookbook::recommend::DEFAULT_ALPHA,
            diversity: DEFAULT_DIVERSITY,
            status: "loading vectors…".into(),
            work: None,
            images_on,
            remote,
            pictures: Pictures::new(),
            quit: false,
            catalog_away: false,
            size: Rect::new(0, 0, 80, 24),
            jobs,
        };
        app.profile = Profile {
            seen: app.feedback.iter().map(|f| f.product_id).collect(),
            ..Default::default()
        };
        Ok(app)
    }

    /// A product by id.
    pub fn product(&self, id: i64) -> Option<&Product> {
        self.products.get(id)
    }

    /// Whether the user likes (Some(true)) or dislikes (Some(false)) a product.
    pub fn opinion(&self, id: i64) -> Option<bool> {
        self.feedback.iter().find(|f| f.product_id == id).map(|f| f.is_like())
    }

    /// Ids shown in a tab's list, in order.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn rows(&self, tab: Tab) -> Vec<i64> {
        match tab {
            Tab::Browse => (0..self.browse.len())
                .filter_map(|r| self.browse.get(r).map(|i| self.products[i].id))
                .collect(),
            Tab::Similar => self.rankings.similar.iter().map(|r| r.id).collect(),
            Tab::ForYou => self.rankings.feed.iter().map(|r| r.id).collect(),
            Tab::Liked => self.feedback.iter().map(|f| f.product_id).collect(),
        }
    }

    /// Number of rows in a tab (without building the id list).
    pub fn row_count(&self, tab: Tab) -> usize {
        match tab {
            Tab::Browse => self.browse.len(),
            Tab::Similar => self.rankings.similar.len(),
            Tab::ForYou => self.rankings.feed.len(),
            Tab::Liked => self.feedback.len(),
        }
    }

    /// The id at a row of a tab.
    pub fn row_id(&self, tab: Tab, row: usize) -> Option<i64> {
        match tab {
            Tab::Browse => self.browse.get(row).map(|i| self.products[i].id),
            Tab::Similar => self.rankings.similar.get(row).map(|r| r.id),
            Tab::ForYou => self.rankings.feed.get(row).map(|r| r.id),
            Tab::Liked => self.feedback.get(row).map(|f| f.product_id),
        }
    }

    /// The ranked entry (score and reason) behind a row, in ranked tabs.
    pub fn ranked(&self, tab: Tab, row: usize) -> Option<&Recommendation> {
        match tab {
            Tab::Similar => self.rankings.similar.get(row),
            Tab::ForYou => self.rankings.feed.get(row),
            _ => None,
        }
    }

    /// The product in focus: the strip's pick when the strip has focus, else the list's.
    pub fn current_id(&self) -> Option<i64> {
        if self.focus == Focus::Strip
            && let Some(r) = self.rankings.strip.get(self.strip.sel)
        {
            return Some(r.id);
        }
        self.row_id(self.tab, self.list.selected[self.tab.index()])
    }

    /// The list's selected product (the strip is always about it).
    pub fn list_id(&self) -> Option<i64> {
        self.row_id(self.tab, self.list.selected[self.tab.index()])
    }

    /// Selected row of the current tab.
    pub fn selected_row(&self) -> usize {
        self.list.selected[self.tab.index()]
    }

    /// First visible row of the current tab.
    pub fn offset_row(&self) -> usize {
        self.list.offset[self.tab.index()]
    }

    fn select(&mut self, row: isize) {
        self.list.select(self.tab, row, self.row_count(self.tab));
        self.strip.sel = 0;
    }

    fn move_by(&mut self, delta: isize) {
        if self.focus == Focus::Strip {
            let n = self.rankings.strip.len();
            if n > 0 {
                self.strip.sel = (self.strip.sel as isize + delta).clamp(0, n as isize - 1) as usize;
            }
            return;
        }
        let cur = self.selected_row() as isize;
        self.select(cur + delta);
    }

    fn page(&self) -> isize {
        view::layout(self.size).list.height.saturating_sub(3).max(1) as isize
    }

    /// Applies one action: the open help, filter picker, search or prompt takes it first.
    pub fn update(&mut self, action: Action) {
        if !matches!(action, Action::ClickAt(..)) && self.update_mode(&action) {
            return;
        }
        match action {
            Action::Down => self.move_by(1),
            Action::Up => self.move_by(-1),
            Action::PageDown => self.move_by(self.page()),
            Action::PageUp => self.move_by(-self.page()),
            Action::Top => {
                if self.focus == Focus::Strip {
                    self.strip.sel = 0
                } else {
                    self.select(0)
                }
            }
            Action::Bottom => {
                if self.focus == Focus::Strip {
                    self.strip.sel = self.rankings.strip.len().saturating_sub(1)
                } else {
                    self.select(isize::MAX / 2)
                }
            }
            Action::OpenSimilar => {
                if let Some(id) = self.current_id() {
                    self.anchor = Some(Anchor::Item(id));
                    self.tab = Tab::Similar;
                    self.focus = Focus::List;
                    self.list.selected[Tab::Similar.index()] = 0;
                    self.rerank();
                }
            }
            Action::ToggleLike => self.toggle_feedback(1.0),
            Action::ToggleDislike => self.toggle_feedback(-1.0),
            Action::StartSearch => {
                self.tab = Tab::Browse;
                self.focus = Focus::List;
                self.mode = Mode::Search;
            }
            Action::OpenFilters => self.mode = Mode::Filters(Box::new(FilterPicker::new(&self.products, &self.filter))),
            Action::SwitchUser if self.remote => {
                self.status = format!("over SSH you are {}, the name you logged in as", self.user.1)
            }
            Action::SwitchUser => self.mode = Mode::Prompt(PromptKind::User, String::new()),
            // Text actions mean something only while typing (`update_mode`).
            Action::Type(_) | Action::Erase | Action::Submit | Action::Cancel => {}
            Action::PhotoQuery if self.remote => {
                self.status = "photo queries read files on this machine, so they are off over SSH".into()
            }
            Action::PhotoQuery => self.mode = Mode::Prompt(PromptKind::Photo, String::new()),
            Action::AlphaUp => self.set_alpha(self.alpha + 0.1),
            Action::AlphaDown => self.set_alpha(self.alpha - 0.1),
            Action::CycleDiversity => {
                self.diversity = DIVERSITY_STEPS
                    .iter()
                    .copied()
                    .find(|d| *d > self.diversity + 1e-3)
                    .unwrap_or(0.0);
                self.status = format!("diversity {:.2}", self.diversity);
                self.rerank();
            }
            Action::EmbedMissing if self.remote => {
                self.status = "embedding runs on the server (`lookbook embed`); sessions pick it up".into()
            }
            Action::EmbedMissing => {
                if self.work.is_none() {
                    self.work = Some(Work {
                        label: "embedding".into(),
                        done: 0,
                        total: 0,
                    });
                    self.status = "embedding photos in the background…".into();
                    self.jobs.embed();
                }
            }
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::List if !self.rankings.strip.is_empty() => Focus::Strip,
                    _ => Focus::List,
                };
            }
            Action::Right => match self.focus {
                Focus::List if !self.rankings.strip.is_empty() => {
                    self.focus = Focus::Strip;
                    self.strip.sel = 0;
                }
                Focus::Strip => self.move_by(1),
                Focus::List => {}
            },
            Action::Left => {
                if self.focus == Focus::Strip {
                    if self.strip.sel == 0 {
                        self.focus = Focus::List
                    } else {
                        self.move_by(-1)
                    }
                }
            }
            Action::Tab(i) => {
                if let Some(t) = Tab::ALL.get(i) {
                    self.tab = *t;
                    self.focus = Focus::List;
                    self.clamp_selection();
                }
            }
            Action::NextTab => {
                self.tab = Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()];
                self.focus = Focus::List;
                self.clamp_selection();
            }
            Action::Back => match (&self.mode, self.focus, self.tab) {
                (Mode::Normal, Focus::Strip, _) => self.focus = Focus::List,
                (Mode::Normal, _, Tab::Browse) if !self.search.is_empty() || !self.filter.is_empty() => {
                    self.search.clear();
                    self.filter = ProductFilter::default();
                    self.refilter();
                    self.rerank();
                }
                (Mode::Normal, _, Tab::Browse) => {}
                (Mode::Normal, _, _) => self.tab = Tab::Browse,
                _ => self.mode = Mode::Normal,
            },
            Action::Help => self.help.back = std::mem::replace(&mut self.mode, Mode::Help),
            Action::Quit => self.quit = true,
            Action::ClickAt(x, y) => self.click(x, y),
            // The filter picker's own actions; they reach it through `update_mode`.
            Action::NextColumn | Action::PrevColumn | Action::ClearChoices => {}
        }
    }

    /// Gives the action to the component that has the keys (help, filter picker, a search or
    /// prompt); true when it took it. Everything else is the normal view's.
    fn update_mode(&mut self, action: &Action) -> bool {
        match &mut self.mode {
            Mode::Normal => false,
            // Any key closes the help, back to where it was opened.
            Mode::Help if *action == Action::Quit => {
                self.quit = true;
                true
            }
            Mode::Help => {
                self.mode = std::mem::replace(&mut self.help.back, Mode::Normal);
                true
            }
            Mode::Filters(_) if *action == Action::Help => {
                self.help.back = std::mem::replace(&mut self.mode, Mode::Help);
                true
            }
            Mode::Filters(_) if *action == Action::Quit => {
                self.quit = true;
                true
            }
            Mode::Filters(picker) => {
                match picker.handle(action) {
                    filters::Outcome::Stay => {}
                    filters::Outcome::Close => self.mode = Mode::Normal,
                    filters::Outcome::Apply(filter) => {
                        self.filter = filter;
                        self.mode = Mode::Normal;
                        self.refilter();
                        self.rerank();
                        self.status = if self.filter.is_empty() {
                            "filters cleared".into()
                        } else {
                            "filters applied".into()
                        };
                    }
                }
                true
            }
            // Arrows leave a search and move the list, as if it had been accepted.
            Mode::Search if matches!(action, Action::Down | Action::Up) => {
                self.mode = Mode::Normal;
                false
            }
            Mode::Search | Mode::Prompt(..) if *action == Action::Quit => {
                self.quit = true;
                true
            }
            Mode::Search | Mode::Prompt(..) => {
                self.edit_text(action);
                true
            }
        }
    }

    /// Applies a text action to the open search or prompt.
    fn edit_text(&mut self, action: &Action) {
        match &mut self.mode {
            Mode::Search => match prompt::edit(&mut self.search, action, 80) {
                Edit::Changed => self.refilter(),
                Edit::Submit => self.mode = Mode::Normal,
                Edit::Cancel => {
                    self.search.clear();
                    self.mode = Mode::Normal;
                    self.refilter();
                }
                Edit::Other => {}
            },
            Mode::Prompt(kind, text) => match prompt::edit(text, action, 1024) {
                Edit::Submit => {
                    let (kind, text) = (*kind, text.trim().to_string());
                    self.mode = Mode::Normal;
                    self.submit_prompt(kind, text);
                }
                Edit::Cancel => self.mode = Mode::Normal,
                Edit::Changed | Edit::Other => {}
            },
            _ => {}
        }
    }

    fn submit_prompt(&mut self, kind: PromptKind, text: String) {
        if text.is_empty() {
            return;
        }
        match kind {
            // Never reached over SSH (the action is refused); checked again since who a
            // session acts as is the one thing serve must never get wrong.
            PromptKind::User if self.remote => {}
            PromptKind::User => match lock(&self.catalog).and_then(|c| Ok(c.ensure_user(&text)?)) {
                Ok(uid) => {
                    self.user = (Some(uid), text.clone());
                    self.reload_feedback();
                    self.status = format!("now {text}");
                }
                Err(e) => self.status = e.to_string(),
            },
            PromptKind::Photo => {
                let path = PathBuf::from(&text);
                if !path.is_file() {
                    self.status = format!("{text}: no such file");
                    return;
                }
                self.status = format!("embedding {text}…");
                self.work = Some(Work {
                    label: "photo query".into(),
                    done: 0,
                    total: 1,
                });
                self.jobs.photo(path);
            }
        }
    }

    fn set_alpha(&mut self, a: f32) {
        self.alpha = (a * 10.0).round().clamp(0.0, 10.0) / 10.0;
        self.status = format!(
            "alpha {:.1}: {:.0}% query, {:.0}% your taste",
            self.alpha,
            self.alpha * 100.0,
            (1.0 - self.alpha) * 100.0
        );
        // The feed has no query, so alpha cannot change it: re-rank only what blends.
        self.rerank_similar();
    }

    fn toggle_feedback(&mut self, weight: f32) {
        let Some(id) = self.current_id() else { return };
        let same = self.opinion(id) == Some(weight > 0.0);
        let result = match self.user.0 {
            Some(uid) => lock(&self.catalog).and_then(|mut c| {
                if same {
                    c.clear_feedback(uid, &[id])?;
                } else {
                    c.set_feedback(uid, &[id], weight)?;
                }
                Ok(())
            }),
            None => {
                // A guest: the likes live here only.
                self.feedback.retain(|f| f.product_id != id);
                if !same {
                    // Newest first, as the catalogue lists feedback.
                    self.feedback.insert(
                        0,
                        Feedback {
                            product_id: id,
                            weight,
                            at: lookbook::now_ms(),
                        },
                    );
                }
                Ok(())
            }
        };
        match result {
            Ok(()) => {
                let name = self.product(id).map(|p| p.name.clone()).unwrap_or_default();
                self.status = match (same, weight > 0.0) {
                    (true, true) => format!("unliked {name}"),
                    (true, false) => format!("no longer disliked: {name}"),
                    (false, true) => format!("liked {name}"),
                    (false, false) => format!("disliked {name}"),
                };
                self.reload_feedback();
            }
            Err(e) => self.status = e.to_string(),
        }
    }

    fn reload_feedback(&mut self) {
        if let Some(uid) = self.user.0 {
            match lock(&self.catalog).and_then(|c| Ok(c.feedback(uid)?)) {
                Ok(f) => self.feedback = f,
                Err(e) => self.status = e.to_string(),
            }
        }
        self.clamp_selection();
        self.rerank();
    }

    /// Recomputes the Browse rows from search and filters.
    fn refilter(&mut self) {
        let q = self.search.to_lowercase();
        let words: Vec<&str> = q.split_whitespace().collect();
        self.browse = if words.is_empty() && self.filter.is_empty() {
            BrowseRows::All(self.products.len())
        } else {
            BrowseRows::Some(
                self.products
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| self.filter.matches(p))
                    .filter(|(_, p)| {
                        if words.is_empty() {
                            return true;
                        }
                        let hay = format!("{} {} {} {}", p.id, p.name, p.article_type, p.colour).to_lowercase();
                        words.iter().all(|w| hay.contains(w))
                    })
                    .map(|(i, _)| i)
                    .collect(),
            )
        };
        self.list.selected[Tab::Browse.index()] = 0;
        self.list.offset[Tab::Browse.index()] = 0;
    }

    fn clamp_selection(&mut self) {
        self.list.clamp(Tab::ALL.map(|t| self.row_count(t)));
        self.strip.sel = self.strip.sel.min(self.rankings.strip.len().saturating_sub(1));
    }

    /// Rebuilds the profile and re-ranks the feed and the Similar list (cheap: one pass each).
    pub fn rerank(&mut self) {
        if let Some(engine) = self.engine.clone() {
            self.profile = Profile::build(&self.feedback, engine.index(), ProfileSettings::default());
            match engine.recommend(&self.profile, &self.request(LIST_K)) {
                Ok(f) => self.rankings.feed = f,
                Err(e) => self.status = e.to_string(),
            }
        }
        self.rerank_similar();
    }

    /// The current filters and settings as a request for `k` results, with no query yet.
    fn request(&self, k: usize) -> Request {
        Request {
            filter: self.filter.clone(),
            k,
            alpha: self.alpha,
            diversity: self.diversity,
            ..Default::default()
        }
    }

    /// Re-ranks the Similar list (and, through the generation, the strip) with the current profile.
    fn rerank_similar(&mut self) {
        self.rankings.generation += 1;
        let Some(engine) = self.engine.clone() else { return };
        let req = match &self.anchor {
            Some(Anchor::Item(id)) => Some(Request {
                item: Some(*id),
                ..self.request(LIST_K)
            }),
            Some(Anchor::Photo(_, v)) => Some(Request {
                vector: Some(v.clone()),
                ..self.request(LIST_K)
            }),
            None => None,
        };
        if let Some(req) = req {
            match engine.recommend(&self.profile, &req) {
                Ok(s) => self.rankings.similar = s,
                Err(e) => self.status = e.to_string(),
            }
        }
        self.clamp_selection();
    }

    /// Look-alikes of the list's selected product for the strip, recomputed only when stale.
    fn refresh_strip(&mut self) {
        let Some(engine) = self.engine.clone() else { return };
        let Some(id) = self.list_id() else {
            self.rankings.strip.clear();
            return;
        };
        if self.rankings.strip_for == Some((id, self.rankings.generation)) {
            return;
        }
        self.rankings.strip_for = Some((id, self.rankings.generation));
        if engine.vector(id).is_none() {
            self.rankings.strip.clear();
            return;
        }
        let req = Request {
            item: Some(id),
            ..self.request(STRIP_K)
        };
        self.rankings.strip = engine.recommend(&self.profile, &req).unwrap_or_default();
        self.strip.sel = self.strip.sel.min(self.rankings.strip.len().saturating_sub(1));
    }

    fn click(&mut self, x: u16, y: u16) {
        let l = view::layout(self.size);
        let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        if inside(l.tabs) {
            // The same cells the tab bar is drawn in.
            if let Some(i) = view::tab_cells(l.tabs, &view::tab_titles(self))
                .into_iter()
                .position(inside)
            {
                self.update(Action::Tab(i));
            }
        } else if inside(l.list) && y > l.list.y {
            let row = self.offset_row() + (y - l.list.y - 1) as usize;
            if row < self.row_count(self.tab) {
                self.focus = Focus::List;
                self.select(row as isize);
            }
        } else if inside(l.strip) {
            let cells = view::strip_cells(l.strip, self.rankings.strip.len());
            if let Some(i) = cells.iter().position(|c| inside(*c)) {
                self.focus = Focus::Strip;
                self.strip.sel = i;
            }
        }
    }

    /// Applies a worker reply.
    pub fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Image(key, result) => {
                self.pictures.pending.remove(&key);
                match result {
                    Ok(p) => {
                        self.pictures.ready.put(key, p);
                    }
                    Err(e) => {
                        self.pictures.errors.insert(key, e);
                    }
                }
            }
            Msg::Engine(Ok(engine)) => {
                // The engine loaded the same products: show its list and drop this copy.
                if !self.remote
                    && !Arc::ptr_eq(&self.products.list, &engine.products_shared())
                    && self.products.same_as(engine.products())
                {
                    self.products = Arc::new(ProductList::new(engine.products_shared()));
                }
                self.engine = Some(engine);
                self.engine_state = EngineState::Ready;
                if let Ok(Some(m)) = lock(&self.catalog).and_then(|c| Ok(c.active_model()?)) {
                    self.model_name = format!("{} ({}-d)", m.spec.name, m.spec.dim);
                }
                if self.status.starts_with("loading") {
                    self.status = "ready: Enter shows look-alikes, l likes, ? for help".into();
                }
                self.rerank();
            }
            Msg::Engine(Err(e)) => {
                self.status = match e {
                    lookbook::Error::NoEmbeddings { .. } if self.work.is_some() => {
                        "embedding the photos; look-alikes and the feed appear when it finishes".into()
                    }
                    lookbook::Error::NoEmbeddings { .. } => {
                        "no image vectors yet: press e to embed the catalogue".into()
                    }
                    other => other.to_string(),
                };
                self.engine_state = EngineState::Missing(self.status.clone());
            }
            Msg::Progress { label, done, total } => self.work = Some(Work { label, done, total }),
            Msg::EmbedDone(r) => {
                self.work = None;
                self.status = match r {
                    Ok(report) => format!("embedded {} photos ({} failed)", report.embedded, report.failed.len()),
                    Err(e) => format!("embedding failed: {e}"),
                };
            }
            Msg::Photo(path, r) => {
                self.work = None;
                match r {
                    Ok(v) => {
                        self.anchor = Some(Anchor::Photo(path.clone(), v));
                        self.tab = Tab::Similar;
                        self.focus = Focus::List;
                        self.list.selected[Tab::Similar.index()] = 0;
                        self.status = format!("look-alikes of {}", path.display());
                        self.rerank();
                    }
                    Err(e) => self.status = e.to_string(),
                }
            }
        }
    }

    /// Re-reads the user's feedback and re-ranks if another process changed it (the same user
    /// on another server of one catalogue); true when it did.
    ///
    /// While the catalogue cannot be read (a database server that went away) the status line
    /// says so, and says again when it is back.
    pub fn refresh_feedback(&mut self) -> bool {
        let Some(uid) = self.user.0 else { return false };
        match lock(&self.catalog).and_then(|c| Ok(c.feedback(uid)?)) {
            Ok(f) => {
                let back = std::mem::take(&mut self.catalog_away);
                if back {
                    self.status = "the catalogue is back; likes are saved again".into();
                }
                if f != self.feedback {
                    self.feedback = f;
                    self.clamp_selection();
                    self.rerank();
                    return true;
                }
                back
            }
            Err(e) => {
                let was = std::mem::replace(&mut self.catalog_away, true);
                self.status = format!("cannot reach the catalogue, so likes are not saved: {e}");
                !was
            }
        }
    }

    /// Drains worker replies without blocking; true if anything arrived.
    pub fn poll_jobs(&mut self) -> bool {
        let mut any = false;
        while let Ok(m) = self.jobs.rx.try_recv() {
            self.handle(m);
            any = true;
        }
        any
    }

    /// Blocks until the engine has loaded and every wanted image has arrived (tests, benches).
    pub fn settle(&mut self, timeout: std::time::Duration) {
        let end = std::time::Instant::now() + timeout;
        loop {
            self.prepare(self.size);
            if self.engine_state != EngineState::Loading && self.pictures.pending.is_empty() && self.work.is_none() {
                return;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            if let Ok(m) = self.jobs.rx.recv_timeout(left) {
                self.handle(m);
            }
        }
    }

    /// Everything `draw` needs that is not free: scroll offsets, the strip, image requests.
    pub fn prepare(&mut self, size: Rect) {
        self.size = size;
        self.refresh_strip();
        let l = view::layout(size);
        let visible = l.list.height.saturating_sub(2) as usize;
        if visible > 0 {
            self.list.scroll(self.tab, visible);
        }
        if !self.images_on {
            return;
        }
        let mut want = Vec::new();
        let root = self.image_root.clone();
        let mut push = |id: i64, area: Rect| {
            let key = ImageKey {
                id,
                cols: area.width,
                rows: area.height,
            };
            if area.width < 2 || area.height < 2 {
                return;
            }
            if let (Some(root), Some(p)) = (&root, self.products.get(id))
                && !self.pictures.ready.contains(&key)
                && !self.pictures.errors.contains_key(&key)
            {
                want.push(ImageJob {
                    key,
                    path: root.join(&p.image_path),
                });
            }
        };
        if let Some(id) = self.current_id() {
            push(id, l.image);
        }
        for (r, cell) in self
            .rankings
            .strip
            .iter()
            .zip(view::strip_cells(l.strip, self.rankings.strip.len()))
        {
            push(r.id, view::thumb_area(cell));
        }
        if want != self.pictures.last_want {
            self.pictures.pending = want.iter().map(|j| j.key).collect();
            self.pictures.last_want = want.clone();
            self.jobs.want_images(want);
        }
    }
}

/// The catalogue connection, or an error when a thread panicked while holding it.
fn lock(catalog: &SharedCatalog) -> anyhow::Result<std::sync::MutexGuard<'_, Catalog>> {
    catalog
        .lock()
        .map_err(|_| anyhow::anyhow!("the catalogue connection was lost to an earlier crash; restart lookbook"))
}
