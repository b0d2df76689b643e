//! Replies from the workers (the engine, encoded images, embedding progress) and what a
//! frame needs before it is drawn (scroll offsets, the strip, image requests).

use ratatui::layout::Rect;
use std::sync::Arc;

use crate::tui::jobs::{ImageJob, ImageKey, Msg};
use crate::tui::layout;

use super::*;

impl App {
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
        let l = layout::layout(size);
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
            if let (Some((root, cache)), Some(p)) = (&root, self.products.get(id))
                && !self.pictures.ready.contains(&key)
                && !self.pictures.errors.contains_key(&key)
            {
                want.push(ImageJob {
                    key,
                    path: root.join(&p.image_path),
                    fallback: Some((p.image_url.clone(), cache.clone())),
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
            .zip(layout::strip_cells(l.strip, self.rankings.strip.len()))
        {
            push(r.id, layout::thumb_area(cell));
        }
        if want != self.pictures.last_want {
            self.pictures.pending = want.iter().map(|j| j.key).collect();
            self.pictures.last_want = want.clone();
            self.jobs.want_images(want);
        }
    }
}
