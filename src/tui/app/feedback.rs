//! Likes and dislikes (stored, or kept in memory for a guest), the user, and the prompts
//! that act (switch user, a photo query).

use std::path::PathBuf;

use lookbook::catalog::Feedback;

use super::*;

impl App {
    pub(super) fn submit_prompt(&mut self, kind: PromptKind, text: String) {
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

    pub(super) fn toggle_feedback(&mut self, weight: f32) {
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

    pub(super) fn reload_feedback(&mut self) {
        if let Some(uid) = self.user.0 {
            match lock(&self.catalog).and_then(|c| Ok(c.feedback(uid)?)) {
                Ok(f) => self.feedback = f,
                Err(e) => self.status = e.to_string(),
            }
        }
        self.clamp_selection();
        self.rerank();
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
}
