//! `lookbook recommend`: a user's feed from the shop's whole history, or with `--item` their
//! taste blended with a product's look-alikes.

use anyhow::{Result, bail};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

use super::filters::FilterArgs;
use super::out::outln;
use super::{describe, engine_for, print_json, print_results};
use lookbook::catalog::{Catalog, ProductFilter};
use lookbook::recommend::shop::{FeedRequest, ShopperHistory, Trained};
use lookbook::recommend::shown::{FeedPage, fetch_shown, rows};
use lookbook::recommend::{Engine, Profile, ProfileSettings, Request};

/// A personal feed from the shop's whole history (what the user bought and liked, what
/// others bought with it, what sells now); with --item, blended with its look-alikes.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The user (one the catalogue does not know gets what sells now).
    #[arg(long)]
    pub user: String,
    /// Blend with look-alikes of this product (shop id, SKU or number).
    #[arg(long)]
    pub item: Option<String>,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Weight of the item against the taste profile (0..1).
    #[arg(long, default_value_t = lookbook::recommend::DEFAULT_ALPHA)]
    pub alpha: f32,
    /// Diversity (0 = off .. 1): the feed discounts each further product of a kind already
    /// shown (default: the trained blend's); with --item, MMR (default 0.3).
    #[arg(long)]
    pub diversity: Option<f32>,
    /// Days after which a like counts half.
    #[arg(long, default_value_t = lookbook::recommend::DEFAULT_HALF_LIFE_DAYS)]
    pub half_life: f32,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `recommend`: the shop feed, or with `--item` the blend with its look-alikes.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let Args {
        user,
        item,
        k,
        alpha,
        diversity,
        half_life,
        filter,
        json,
    } = a;
    if k == 0 {
        bail!("-k must be at least 1 (the number of products to show)");
    }
    if !(0.0..=1.0).contains(&alpha) {
        bail!("--alpha must be between 0 and 1, got {alpha}");
    }
    if let Some(d) = diversity
        && !(0.0..=1.0).contains(&d)
    {
        bail!("--diversity must be between 0 and 1, got {d}");
    }
    if half_life.is_nan() || half_life <= 0.0 {
        bail!("--half-life must be a positive number of days");
    }
    let filter = filter.to_filter();
    let Some(item) = item else {
        return shop_feed(db, &user, k, diversity, filter, json);
    };
    let diversity = diversity.unwrap_or(lookbook::recommend::DEFAULT_DIVERSITY);
    let cat = Catalog::open_existing(db)?;
    let uid = cat.require_user(&user)?;
    let item = Some(cat.require_product_ref(&item)?.id);
    let mut engine = engine_for(&cat, &filter)?;
    let fb = cat.feedback(uid)?;
    let profile = Profile::build(
        &fb,
        engine.index(),
        ProfileSettings {
            half_life_days: half_life,
            ..Default::default()
        },
    );
    let req = Request {
        item,
        vector: None,
        filter,
        k,
        alpha,
        diversity,
    };
    let recs = engine.recommend(&profile, &req)?;
    fetch_shown(&mut engine, &cat, &recs)?;
    let rows = rows(&engine, &recs);
    if json {
        print_json(
            &json!({ "user": user, "item": item, "alpha": alpha, "diversity": diversity,
            "likes": fb.iter().filter(|f| f.is_like()).count(), "cold_start": profile.is_cold() && item.is_none(),
            "results": rows }),
        )?;
    } else {
        let likes = fb.iter().filter(|f| f.is_like()).count();
        match item {
            Some(i) => outln!(
                "For {user} ({likes} likes), blended with {} at alpha {alpha}",
                describe(&cat.require_product(i)?)
            ),
            None if profile.is_cold() => outln!("For {user}: no likes yet, so a starter feed of typical items"),
            None => outln!("For {user} ({likes} likes)"),
        }
        print_results(&rows, true);
    }
    Ok(ExitCode::SUCCESS)
}

/// The feed from a shop's history for `user`: a user the catalogue does not know yet gets the
/// cold-start feed (this week's best sellers), not an error.
fn shop_feed(
    db: &Path,
    user: &str,
    k: usize,
    diversity: Option<f32>,
    filter: ProductFilter,
    json: bool,
) -> Result<ExitCode> {
    let user = lookbook::catalog::check_user_name(user)?;
    let cat = Catalog::open_existing(db)?;
    let mut engine = if filter.is_empty() {
        Engine::load_for_query(&cat)?
    } else {
        Engine::load(&cat)?
    };
    let uid = cat.user_id(user)?;
    let history = ShopperHistory::load(&cat, uid)?;
    // Only the bought-together lists of the shopper's own products are read.
    let own: Vec<i64> = history
        .events
        .iter()
        .map(|e| e.product)
        .chain(history.feedback.iter().map(|f| f.product_id))
        .collect();
    let trained = Trained::load_for(&cat, &engine, Some(&own))?;
    let mut blend = trained.blend;
    if let Some(d) = diversity {
        blend.diversity = d;
    }
    let recs = trained.feed(&engine).recommend(
        &history,
        &FeedRequest {
            k,
            filter: filter.clone(),
        },
        &blend,
    )?;
    fetch_shown(&mut engine, &cat, &recs)?;
    let page = FeedPage::new(
        user,
        uid.is_some(),
        &history,
        &trained,
        &blend,
        &filter,
        rows(&engine, &recs),
    );
    let model = &page.model;
    if json {
        print_json(&page)?;
    } else {
        if page.cold_start {
            outln!("For {user}: nothing bought or liked yet, so what sells now; {model}");
        } else {
            outln!(
                "For {user} ({} purchases, {} likes; {model})",
                page.purchases,
                page.likes
            );
        }
        let rows = &page.results;
        if rows.is_empty() {
            outln!("(no products match the filters)");
        } else {
            print_results(rows, true);
        }
    }
    Ok(ExitCode::SUCCESS)
}
