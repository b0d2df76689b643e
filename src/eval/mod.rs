//! Evaluation: how good are the look-alikes and the personal feed, in numbers.
//!
//! Retrieval ([`retrieval`]): each held-out product queries the whole catalogue; a result is
//! relevant when it shares the query's label (articleType by default). The active model, its
//! backbone without the head, and two baselines are scored the same way.
//! Personalisation ([`personal`]): simulated users like items of one or two tastes; one like is
//! held out and must come back in the feed. A shop's history ([`shop`]): the feed measured the
//! H&M competition's way (a date split, MAP@12) beside simple baselines.

pub mod baselines;
pub mod metrics;
pub mod personal;
pub mod plot;
pub mod prototypes;
pub mod retrieval;
pub mod shop;

pub use crate::sample::{Rng, is_held_out, splitmix64};
pub use metrics::{Metrics, query_metrics};

use crate::catalog::Product;
use crate::{Error, Result};

/// Which product field decides relevance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    /// `articleType` (Tshirts, Casual Shoes, ...): the default.
    ArticleType,
    /// `subCategory` (Topwear, Shoes, ...).
    SubCategory,
    /// `masterCategory` (Apparel, Footwear, ...).
    MasterCategory,
    /// Base colour.
    Colour,
    /// Gender.
    Gender,
}

impl Level {
    /// The label of `p` at this level.
    pub fn label<'a>(&self, p: &'a Product) -> &'a str {
        match self {
            Level::ArticleType => &p.article_type,
            Level::SubCategory => &p.sub_category,
            Level::MasterCategory => &p.master_category,
            Level::Colour => &p.colour,
            Level::Gender => &p.gender,
        }
    }
}

impl std::str::FromStr for Level {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "articletype" | "article_type" | "type" => Ok(Level::ArticleType),
            "subcategory" | "sub_category" => Ok(Level::SubCategory),
            "mastercategory" | "master_category" => Ok(Level::MasterCategory),
            "colour" | "color" | "basecolour" => Ok(Level::Colour),
            "gender" => Ok(Level::Gender),
            _ => Err(Error::Invalid(format!(
                "level {s:?}: expected articleType, subCategory, masterCategory, colour or gender"
            ))),
        }
    }
}
