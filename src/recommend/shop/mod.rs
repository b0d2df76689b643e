//! The feed that learns from the whole shop. A shop's history ([`History`]: purchases, carts,
//! views, likes, shoppers' age and gender) trains the item side ([`ShopModel`]: bought together,
//! best sellers of the week per group and of the month, what is bought again, new stock's share
//! of its look-alikes' sales); one shopper's own history ([`ShopperHistory`]) gives their
//! interests ([`interests`], several tastes, not one mean); [`Feed`] gathers candidates from
//! every source and a [`Blend`] (trained by `train --feed`, or its defaults) weighs them.

mod factors;
mod feed;
mod history;
pub mod interests;
mod model;

pub use factors::{FACTORS, Factors};
pub use feed::{Blend, Candidate, Candidates, Feed, FeedRequest, SOURCE_COUNT, SOURCES};
pub use history::{DAY_MS, History, ShopperHistory};
pub use model::{ModelSettings, ShopModel, decay, segment_of};
pub mod fit;

use serde::{Deserialize, Serialize};

use crate::Result;
use crate::catalog::Catalog;
use crate::recommend::Engine;

/// What `train --feed` stores as a feed model's parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedParams {
    /// The blend's weights.
    pub blend: Blend,
    /// How the item side was learned.
    pub settings: ModelSettings,
}

/// The feed's model as a front end uses it: the item side, the blend, and where they came from.
pub struct Trained {
    /// The item side.
    pub model: ShopModel,
    /// The blend's weights.
    pub blend: Blend,
    /// The stored feed model's id, or `None` when learned just now from the history with the
    /// default blend (no `train --feed` yet).
    pub stored: Option<i64>,
}

impl Trained {
    /// The catalogue's newest trained feed model, or one learned now from its history with the
    /// default blend.
    pub fn load(catalog: &Catalog, engine: &Engine) -> Result<Self> {
        Self::load_for(catalog, engine, None)
    }

    /// [`Trained::load`] with the bought-together lists of `products` only (a one-shot query
    /// needs its shopper's; at 5 x 10^4 products reading all took most of its time).
    pub fn load_for(catalog: &Catalog, engine: &Engine, products: Option<&[i64]>) -> Result<Self> {
        // A model stored by another lookbook version is learned again here (`train --feed` stores
        // it in this one's format); a damaged one in this format is an error that says so.
        if let Some(s) = catalog.feed_model()?.filter(|s| ShopModel::is_this_format(&s.data)) {
            let what = format!("{}: feed model {}", catalog.path().display(), s.id);
            let params: FeedParams = serde_json::from_str(&s.params).map_err(|e| {
                crate::Error::Invalid(format!(
                    "{what}: parameters unreadable ({e}); train it again with `lookbook train --feed`"
                ))
            })?;
            let lists = catalog.feed_neighbours(s.id, products)?;
            let model = ShopModel::from_bytes(&s.data, &lists, params.settings, &what)?;
            return Ok(Trained {
                model,
                blend: params.blend,
                stored: Some(s.id),
            });
        }
        Ok(Self::learn(&History::load(catalog)?, engine))
    }

    /// A model learned from `history` with the default blend.
    pub fn learn(history: &History, engine: &Engine) -> Self {
        Trained {
            model: ShopModel::train(history, engine, ModelSettings::default()),
            blend: Blend::default(),
            stored: None,
        }
    }

    /// The feed over `engine` with this model.
    pub fn feed<'a>(&'a self, engine: &'a Engine) -> Feed<'a> {
        Feed {
            engine,
            model: &self.model,
        }
    }
}
