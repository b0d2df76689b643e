//! `bench feed`: the feed that learns from a shop's history at the size issue 35 names (10^6
//! purchases by 10^5 shoppers over 5 x 10^4 products, 256-d vectors): the history imported and
//! `train --feed` run as child processes (time and peak memory), a one-shot `recommend` timed
//! from spawn to exit beside the one-vector feed of before (`--item --alpha 0`), and a like's
//! re-rank as the app does it (one shopper's candidates and blend, 200 results) beside the
//! one-vector re-rank it replaced. Random data: the times are what they are at this size, the
//! rankings mean nothing.

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

use lookbook::catalog::{Catalog, Feedback};
use lookbook::recommend::shop::{FeedRequest, ShopperHistory};
use lookbook::recommend::{DEFAULT_DIVERSITY, Engine, Profile, ProfileSettings, Request};
use lookbook::synthetic::{Timing, write_synthetic_history};

use super::oneshot::{repeat, spawn};

/// What `bench feed` measured.
#[derive(Debug, Clone, Serialize)]
pub struct FeedBench {
    /// Products (synthetic, 256-d vectors).
    pub products: usize,
    /// Shoppers in the history.
    pub shoppers: usize,
    /// Purchases in the history.
    pub events: usize,
    /// `import --interactions` of the history, seconds.
    pub import_s: f64,
    /// `train --feed`, seconds.
    pub train_s: f64,
    /// Its peak resident memory, MiB.
    pub train_peak_mib: f64,
    /// One-shot `recommend --user` with the trained model, spawn to exit.
    pub recommend: Timing,
    /// Its peak resident memory, MiB.
    pub recommend_peak_mib: f64,
    /// The one-vector feed of before in the same process shape (`--item --alpha 0`).
    pub recommend_before: Timing,
    /// A like's re-rank in the app: the shopper's candidates and blend, 200 results.
    pub like_rerank: Timing,
    /// The one-vector re-rank it replaced (profile rebuilt, MMR 0.3, 200 results).
    pub like_rerank_before: Timing,
}

/// Shoppers whose like is re-ranked.
const SHOPPERS_RERANKED: usize = 30;

/// Runs the benchmark in a temporary folder; `quick` is a tenth of the size.
pub fn run(quick: bool) -> Result<FeedBench> {
    let scale = if quick { 10 } else { 1 };
    let (products, shoppers, events) = (50_000 / scale, 100_000 / scale, 1_000_000 / scale);
    let dir = super::temp_dir("feed")?;
    let r = measure(&dir, products, shoppers, events);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn measure(dir: &Path, products: usize, shoppers: usize, events: usize) -> Result<FeedBench> {
    let db = dir.join("catalog.db");
    let size = format!("{products},256");
    spawn(&db, &["bench", "write-synthetic", size.as_str()])?;
    let csv = dir.join("transactions.csv");
    let events = write_synthetic_history(&csv, products, shoppers, events, 11)?;
    let csv_arg = csv.to_string_lossy().into_owned();
    let t = Instant::now();
    spawn(&db, &["import", "--interactions", csv_arg.as_str()])?;
    let import_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (_, train_peak_mib) = spawn(&db, &["train", "--feed"])?;
    let train_s = t.elapsed().as_secs_f64();

    let shopper = "shopper4242";
    let feed_cmd = ["recommend", "--user", shopper, "-k", "12", "--json"];
    let before_cmd = [
        "recommend",
        "--user",
        shopper,
        "--item",
        "1",
        "--alpha",
        "0",
        "-k",
        "12",
        "--json",
    ];
    // The one-vector feed needs likes: the shopper likes what they bought.
    {
        let mut cat = Catalog::open_existing(&db)?;
        let uid = cat.require_user(shopper)?;
        let bought: Vec<i64> = cat.user_events(uid)?.iter().map(|e| e.product).collect();
        cat.set_feedback(uid, &bought, 1.0)?;
    }
    let (recommend, recommend_peak_mib) = warm_then_repeat(&db, &feed_cmd)?;
    let (recommend_before, _) = warm_then_repeat(&db, &before_cmd)?;

    // A like in the app: the engine and model loaded once, as the app holds them.
    let cat = Catalog::open_existing(&db)?;
    let engine = Engine::load_with_shop(&cat)?;
    let shop = engine.shop().context("the feed model did not load")?;
    let (mut after, mut before) = (Vec::new(), Vec::new());
    for i in 0..SHOPPERS_RERANKED {
        let name = format!("shopper{}", i * (shoppers / SHOPPERS_RERANKED).max(1));
        let Some(uid) = cat.user_id(&name)? else { continue };
        let mut h = ShopperHistory::load(&cat, Some(uid))?;
        h.feedback.push(Feedback {
            product_id: 1 + (i as i64 * 977) % products as i64,
            weight: 1.0,
            at: lookbook::now_ms(),
        });
        let t = Instant::now();
        let req = FeedRequest {
            k: 200,
            ..Default::default()
        };
        std::hint::black_box(shop.feed(&engine).recommend(&h, &req, &shop.blend)?);
        after.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let p = Profile::build(&h.feedback, engine.index(), ProfileSettings::default());
        let req = Request {
            k: 200,
            diversity: DEFAULT_DIVERSITY,
            ..Default::default()
        };
        std::hint::black_box(engine.recommend(&p, &req)?);
        before.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(FeedBench {
        products,
        shoppers,
        events,
        import_s,
        train_s,
        train_peak_mib,
        recommend,
        recommend_peak_mib,
        recommend_before,
        like_rerank: Timing::of(after),
        like_rerank_before: Timing::of(before),
    })
}

/// One run to warm the kept index, then the timed ones.
fn warm_then_repeat(db: &Path, args: &[&str]) -> Result<(Timing, f64)> {
    spawn(db, args)?;
    repeat(db, args)
}
