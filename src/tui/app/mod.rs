//! The app's state and how actions change it. No terminal I/O here: the event loop feeds
//! actions in, [`super::ui`] draws the state out. By job:
//!
//! | module | job |
//! | --- | --- |
//! | this one | [`App`]: what the components share, construction, moving, dispatching actions |
//! | [`state`] | the shared types: tabs, modes, the product list, rankings, pictures |
//! | [`ranking`] | re-ranking the feed, the Similar tab and the strip |
//! | [`feedback`] | likes, dislikes, the user, prompts that act |
//! | [`events`] | worker replies (vectors, images, embedding) and what a frame needs |
//! | `list`, `strip`, [`filters`], `help`, [`prompt`] | each component's state, without drawing (`ui` draws them) |
//!
//! Nothing here imports `tui::ui`: state never sees a widget. Geometry comes from
//! [`crate::tui::layout`].

mod events;
mod feedback;
pub mod filters;
mod help;
mod list;
pub mod prompt;
mod ranking;
mod state;
mod strip;

pub use filters::FilterPicker;
pub use help::HelpOverlay;
pub use list::ListPane;
pub use state::*;
pub use strip::Strip;

use ratatui::layout::Rect;
use std::path::PathBuf;
use std::sync::Arc;

use crate::tui::action::Action;
use crate::tui::jobs::Jobs;
use crate::tui::layout;
use lookbook::catalog::{Catalog, Event, Feedback, Product, ProductFilter, Shopper};
use lookbook::recommend::{DEFAULT_DIVERSITY, Engine, Profile, Recommendation};
use prompt::Edit;

/// The whole app state.
pub struct App {
    /// Catalogue connection for feedback and users.
    catalog: SharedCatalog,
    /// Folder the product photo paths are relative to, and the photo cache that a photo
    /// missing from there is downloaded into (by the image worker).
    image_root: Option<(PathBuf, PathBuf)>,
    /// Every product, by id.
    pub(in crate::tui) products: Arc<ProductList>,
    /// The ranking engine once loaded; set in `handle` together with `engine_state`, which
    /// is what the view reads.
    engine: Option<Arc<Engine>>,
    /// Loading state of the engine.
    pub(in crate::tui) engine_state: EngineState,
    /// Active model's display name.
    pub(in crate::tui) model_name: String,
    /// Current user: catalogue id (none for a guest of `serve --open`) and name.
    pub(in crate::tui) user: (Option<i64>, String),
    /// The user's feedback, newest first.
    pub(in crate::tui) feedback: Vec<Feedback>,
    /// The user's purchases, carts and views from the shop's history, oldest first.
    events: Vec<Event>,
    /// The user's age and gender, where the shop knows them.
    shopper: Shopper,
    profile: Profile,
    /// Current tab.
    pub(in crate::tui) tab: Tab,
    /// Current focus.
    pub(in crate::tui) focus: Focus,
    /// Current input mode.
    pub(in crate::tui) mode: Mode,
    /// Name search text.
    pub(in crate::tui) search: String,
    /// Active filters.
    pub(in crate::tui) filter: ProductFilter,
    /// The products shown in Browse.
    pub(in crate::tui) browse: BrowseRows,
    /// The Similar tab's anchor.
    pub(in crate::tui) anchor: Option<Anchor>,
    /// What the engine ranked for this session.
    pub(in crate::tui) rankings: Rankings,
    /// The product list (selection and scroll per tab).
    pub(in crate::tui) list: ListPane,
    /// The look-alike strip (the picked thumbnail).
    pub(in crate::tui) strip: Strip,
    /// The help overlay (the mode it goes back to).
    pub(in crate::tui) help: HelpOverlay,
    /// Query vs profile weight.
    pub(in crate::tui) alpha: f32,
    /// MMR diversity.
    pub(in crate::tui) diversity: f32,
    /// Last message for the status bar.
    pub(in crate::tui) status: String,
    /// Background work in progress.
    pub(in crate::tui) work: Option<Work>,
    /// Whether images are drawn at all.
    pub(in crate::tui) images_on: bool,
    /// A session of `lookbook serve`: no photo paths from the server's disk, no embedding runs.
    pub(in crate::tui) remote: bool,
    /// Photos encoded for the terminal, and those on their way.
    pub(in crate::tui) pictures: Pictures,
    /// Set to leave the loop.
    pub(in crate::tui) quit: bool,
    /// The last feedback refresh failed: the catalogue's database is away.
    catalog_away: bool,
    /// Terminal size at the last `prepare`.
    pub(in crate::tui) size: Rect,
    jobs: Jobs,
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
    pub fn new_remote(
        user: &str,
        guest: bool,
        jobs: Jobs,
        images_on: bool,
        catalog: &SharedCatalog,
        products: &Arc<ProductList>,
    ) -> anyhow::Result<Self> {
        let mut app = Self::new_session(
            Arc::clone(catalog),
            Some(Arc::clone(products)),
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
        // The engine loads on its worker while this thread reads the product list: on two
        // cores the two reads overlap (at 50,000 products each is about 100 ms).
        jobs.load_engine();
        let (products, uid, feedback, events, shopper, model_name, image_root) = {
            let cat = lock(&catalog)?;
            let products = match shared_products {
                Some(p) => p,
                None => Arc::new(ProductList::new(cat.products()?)),
            };
            let (uid, feedback, events, shopper) = match user {
                Some(name) => {
                    let uid = cat.ensure_user(name)?;
                    (Some(uid), cat.feedback(uid)?, cat.user_events(uid)?, cat.shopper(uid)?)
                }
                None => (None, Vec::new(), Vec::new(), Shopper::default()),
            };
            let model_name = match cat.active_model()? {
                Some(m) => format!("{} ({}-d)", m.spec.name, m.spec.dim),
                None => "no model yet".into(),
            };
            let photo_cache = lookbook::ingest::shop::photo_cache_dir(&cat);
            (
                products,
                uid,
                feedback,
                events,
                shopper,
                model_name,
                cat.image_root().ok().map(|r| (r, photo_cache)),
            )
        };
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
            events,
            shopper,
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

    /// The tab titles as drawn, with their row counts ("Browse 2115"): the tab bar draws them
    /// and a click is tested against the cells they take.
    pub fn tab_titles(&self) -> Vec<String> {
        Tab::ALL
            .iter()
            .map(|t| format!("{} {}", t.title(), self.row_count(*t)))
            .collect()
    }

    /// The tab on screen (a server session keeps it across a catalogue reload).
    pub fn tab(&self) -> Tab {
        self.tab
    }

    /// Shows `tab`, as a fresh session that was on it before a reload.
    pub fn set_tab(&mut self, tab: Tab) {
        self.tab = tab;
    }

    /// Whether the user asked to leave.
    pub fn quitting(&self) -> bool {
        self.quit
    }

    /// How many look-alikes the strip shows for the selected product.
    pub fn look_alike_count(&self) -> usize {
        self.rankings.strip.len()
    }

    /// How many things the user bought, in the shop's history.
    pub fn purchases(&self) -> usize {
        self.events
            .iter()
            .filter(|e| e.kind == lookbook::catalog::EventKind::Purchase)
            .map(|e| e.count as usize)
            .sum()
    }

    /// Whether the shop's history has sales this feed can show a newcomer (what sells now),
    /// rather than the catalogue's typical products.
    pub fn shop_sells(&self) -> bool {
        self.engine
            .as_ref()
            .and_then(|e| e.shop())
            .is_some_and(|t| !t.model.best_sellers(None).is_empty())
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
        layout::layout(self.size).list.height.saturating_sub(3).max(1) as isize
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

    fn click(&mut self, x: u16, y: u16) {
        let l = layout::layout(self.size);
        let inside = |r: Rect| x >= r.x && x < r.x + r.width && y >= r.y && y < r.y + r.height;
        if inside(l.tabs) {
            // The same cells the tab bar is drawn in.
            if let Some(i) = layout::tab_cells(l.tabs, &self.tab_titles())
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
            let cells = layout::strip_cells(l.strip, self.rankings.strip.len());
            if let Some(i) = cells.iter().position(|c| inside(*c)) {
                self.focus = Focus::Strip;
                self.strip.sel = i;
            }
        }
    }
}

/// The catalogue connection, or an error when a thread panicked while holding it.
fn lock(catalog: &SharedCatalog) -> anyhow::Result<std::sync::MutexGuard<'_, Catalog>> {
    catalog
        .lock()
        .map_err(|_| anyhow::anyhow!("the catalogue connection was lost to an earlier crash; restart lookbook"))
}
