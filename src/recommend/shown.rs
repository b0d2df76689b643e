//! Recommendations as a page shows them: each with its product's name, categories, shop fields
//! and a sentence of explanation. One shape for every front end that writes JSON (the CLI's
//! `--json`, `lookbook http`), so a script and a web page read the same fields.

use serde::Serialize;

use super::{Engine, Reason, Recommendation};
use crate::Result;
use crate::catalog::{Catalog, Product, VariantRow};
use crate::text::truncate;

/// One ranked product, ready to print or send.
#[derive(Debug, Serialize)]
pub struct ShownRow<'a> {
    /// Its place in the list, from 1.
    pub rank: usize,
    /// The catalogue's number of the product.
    pub id: i64,
    /// The ranking's score (falls down the list).
    pub score: f32,
    /// Product name.
    pub name: &'a str,
    /// Finest category.
    #[serde(rename = "articleType")]
    pub article_type: &'a str,
    /// Middle category.
    #[serde(rename = "subCategory")]
    pub sub_category: &'a str,
    /// Top category.
    #[serde(rename = "masterCategory")]
    pub master_category: &'a str,
    /// Gender.
    pub gender: &'a str,
    /// Colour.
    pub colour: &'a str,
    /// Why it is here, as data.
    pub reason: &'a Reason,
    /// Why it is here, as a sentence.
    pub because: String,
    /// The shop's id, group, price, stock, link and photo, so a page can show the result.
    #[serde(flatten)]
    pub shop: ShopView<'a>,
}

/// What a shop's page needs of a product, beside its id and name.
#[derive(Debug, Serialize)]
pub struct ShopView<'a> {
    /// The shop's own id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<&'a str>,
    /// The group of colourways it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
    /// Brand.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub brand: &'a str,
    /// Price in `currency`.
    pub price: Option<f64>,
    /// ISO currency code, when the shop gave one.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub currency: &'a str,
    /// `in_stock`, `out_of_stock`, ... as the shop wrote it.
    pub availability: &'a str,
    /// The product's page.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub link: &'a str,
    /// The photo's URL or path.
    pub image: &'a str,
    /// Sizes and SKUs.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub variants: &'a [VariantRow],
}

impl<'a> ShopView<'a> {
    /// The shop's fields of `p`.
    pub fn of(p: &'a Product) -> Self {
        ShopView {
            shop_id: p.shop_id.as_deref(),
            group: p.group.as_deref(),
            brand: &p.brand,
            price: p.price,
            currency: &p.currency,
            availability: &p.availability,
            link: &p.link,
            image: &p.image_url,
            variants: &p.variants,
        }
    }
}

/// One sentence of explanation (the wording lives with [`Reason`]), naming products by name.
pub fn explain(engine: &Engine, r: &Reason) -> String {
    r.describe(|id| {
        engine
            .product(id)
            .map(|p| truncate(&p.name, 40))
            .unwrap_or_else(|| id.to_string())
    })
}

/// The products a list shows and its reasons name.
pub fn named_products(recs: &[Recommendation]) -> Vec<i64> {
    let named = recs.iter().filter_map(|r| match r.reason {
        Reason::LooksLike { id, .. } => id,
        Reason::YouLiked { id, .. } | Reason::LooksLikeYours { id, .. } | Reason::BoughtWith { id } => Some(id),
        _ => None,
    });
    recs.iter().map(|r| r.id).chain(named).collect()
}

/// Reads the products results and their reasons name, for an engine that has not yet (one
/// loaded for a single query reads only those).
pub fn fetch_shown(engine: &mut Engine, cat: &Catalog, recs: &[Recommendation]) -> Result<()> {
    engine.fetch_products(cat, named_products(recs))
}

/// The rows of `recs`, skipping any product the engine does not hold.
pub fn rows<'a>(engine: &'a Engine, recs: &'a [Recommendation]) -> Vec<ShownRow<'a>> {
    recs.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let p = engine.product(r.id)?;
            Some(ShownRow {
                rank: i + 1,
                id: r.id,
                score: r.score,
                name: &p.name,
                article_type: &p.article_type,
                sub_category: &p.sub_category,
                master_category: &p.master_category,
                gender: &p.gender,
                colour: &p.colour,
                reason: &r.reason,
                because: explain(engine, &r.reason),
                shop: ShopView::of(p),
            })
        })
        .collect()
}

/// A shopper's feed as the CLI's `recommend --user --json` and `lookbook http` send it: who,
/// what their history holds, which model ranked it, and the rows.
#[derive(Debug, Serialize)]
pub struct FeedPage<'a> {
    /// The shopper's name.
    pub user: &'a str,
    /// Whether the catalogue knows the shopper.
    pub known: bool,
    /// Things bought, in the history.
    pub purchases: usize,
    /// Products liked.
    pub likes: usize,
    /// Nothing bought or liked yet: the feed is what sells now.
    pub cold_start: bool,
    /// Which feed model ranked it, in words.
    pub model: String,
    /// The blend's weights and diversity.
    pub blend: &'a super::shop::Blend,
    /// The filter applied.
    pub filter: &'a crate::catalog::ProductFilter,
    /// The ranked rows.
    pub results: Vec<ShownRow<'a>>,
}

impl<'a> FeedPage<'a> {
    /// The page of `history`'s feed: `known` when the shopper has a user row, `results` ranked
    /// by `trained` with `blend`.
    pub fn new(
        user: &'a str,
        known: bool,
        history: &super::shop::ShopperHistory,
        trained: &super::shop::Trained,
        blend: &'a super::shop::Blend,
        filter: &'a crate::catalog::ProductFilter,
        results: Vec<ShownRow<'a>>,
    ) -> Self {
        FeedPage {
            user,
            known,
            purchases: history.purchases(),
            likes: history.feedback.iter().filter(|f| f.is_like()).count(),
            cold_start: history.is_empty(),
            model: match trained.stored {
                Some(id) => format!("feed model {id}"),
                None => "learned now from the history (no `train --feed` yet)".to_string(),
            },
            blend,
            filter,
            results,
        }
    }
}
