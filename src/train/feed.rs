//! `lookbook train --feed`: the feed's blend learned from the catalogue's own history (the last
//! days held out, see `recommend::shop::fit`), then the item side learned from the whole history
//! and both stored in `feed_models` with what they were learned from and how they scored.

use serde::Serialize;

use crate::catalog::Catalog;
use crate::recommend::Engine;
use crate::recommend::shop::fit::{self, FitReport};
use crate::recommend::shop::{FeedParams, History, ModelSettings, ShopModel};
use crate::{Error, Progress, Result};

/// What `train --feed` did.
#[derive(Debug, Clone, Serialize)]
pub struct FeedTrained {
    /// The stored feed model's id.
    pub id: i64,
    /// Events and likes learned from.
    pub events: usize,
    /// Shoppers with events or likes.
    pub shoppers: usize,
    /// The blend's fit on the held-out days.
    pub fit: FitReport,
    /// Products with co-purchase neighbours.
    pub bought_together: usize,
    /// Bytes stored (the model and its bought-together lists).
    pub bytes: usize,
}

/// Learns and stores a feed model; `days` are held out to fit the blend, `k` its cut-off.
pub fn train_feed(
    catalog: &mut Catalog,
    days: i64,
    k: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<FeedTrained> {
    let engine = Engine::load(catalog)?;
    let history = History::load(catalog)?;
    if history.events.is_empty() && history.feedback.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no purchases, views or likes to learn from; import a shop's history with `lookbook import --interactions FILE`",
            catalog.path().display()
        )));
    }
    let settings = ModelSettings::default();
    let fit = fit::fit(&engine, &history, settings, days, k, seed, progress)?;
    let model = ShopModel::train(&history, &engine, settings);
    let data = model.to_bytes();
    let lists = model.neighbour_bytes();
    let params = serde_json::to_string(&FeedParams {
        blend: fit.blend,
        settings,
    })
    .map_err(|e| Error::Invalid(format!("feed parameters: {e}")))?;
    let metrics = serde_json::to_string(&fit).map_err(|e| Error::Invalid(format!("feed metrics: {e}")))?;
    let id = catalog.store_feed_model(&params, &metrics, &data, model.reference, &lists)?;
    let shoppers: std::collections::HashSet<i64> = history
        .events
        .iter()
        .map(|e| e.user)
        .chain(history.feedback.iter().map(|(u, _)| *u))
        .collect();
    Ok(FeedTrained {
        id,
        events: model.events,
        shoppers: shoppers.len(),
        fit,
        bought_together: model.products_with_neighbours(),
        bytes: data.len() + lists.iter().map(|(_, b)| b.len() + 8).sum::<usize>(),
    })
}
