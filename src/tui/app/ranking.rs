//! Re-ranking: the feed, the Similar tab and the look-alike strip, from the engine, the
//! profile, alpha, diversity and the filters.

use lookbook::recommend::shop::{FeedRequest, ShopperHistory};
use lookbook::recommend::{Profile, ProfileSettings, Request};

use super::*;

/// Products named in the detail pane's "bought with" line.
const TOGETHER_K: usize = 3;

impl App {
    pub(super) fn set_alpha(&mut self, a: f32) {
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

    /// Recomputes the Browse rows from search and filters.
    pub(super) fn refilter(&mut self) {
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

    pub(super) fn clamp_selection(&mut self) {
        self.list.clamp(Tab::ALL.map(|t| self.row_count(t)));
        self.strip.sel = self.strip.sel.min(self.rankings.strip.len().saturating_sub(1));
    }

    /// Rebuilds the profile and re-ranks the feed and the Similar list (cheap: the feed's
    /// candidates for one shopper, and one pass for Similar).
    pub fn rerank(&mut self) {
        if let Some(engine) = self.engine.clone() {
            self.profile = Profile::build(&self.feedback, engine.index(), ProfileSettings::default());
            let feed = match engine.shop() {
                // The feed from the shop's whole history, this session's likes counted at once.
                Some(shop) => {
                    let history = ShopperHistory {
                        events: self.events.clone(),
                        feedback: self.feedback.clone(),
                        shopper: self.shopper.clone(),
                    };
                    let mut blend = shop.blend;
                    blend.diversity = self.diversity;
                    let req = FeedRequest {
                        k: LIST_K,
                        filter: self.filter.clone(),
                    };
                    shop.feed(&engine).recommend(&history, &req, &blend)
                }
                None => engine.recommend(&self.profile, &self.request(LIST_K)),
            };
            match feed {
                Ok(f) => self.rankings.feed = f,
                Err(e) => self.status = e.to_string(),
            }
        }
        self.rerank_similar();
    }

    /// The current filters and settings as a request for `k` results, with no query yet.
    pub(super) fn request(&self, k: usize) -> Request {
        Request {
            filter: self.filter.clone(),
            k,
            alpha: self.alpha,
            diversity: self.diversity,
            ..Default::default()
        }
    }

    /// Re-ranks the Similar list (and, through the generation, the strip) with the current profile.
    pub(super) fn rerank_similar(&mut self) {
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
    pub(super) fn refresh_strip(&mut self) {
        let Some(engine) = self.engine.clone() else { return };
        let Some(id) = self.list_id() else {
            self.rankings.strip.clear();
            return;
        };
        if self.rankings.strip_for == Some((id, self.rankings.generation)) {
            return;
        }
        self.rankings.strip_for = Some((id, self.rankings.generation));
        self.rankings.together = engine
            .shop()
            .map(|shop| shop.feed(&engine).bought_together(id, TOGETHER_K))
            .unwrap_or_default();
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
}
