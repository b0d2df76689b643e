//! The commands of the feed that learns from the shop's history: `recommend --user` (without
//! `--item`), `together`, `train --feed`, `import --customers` and `eval --personal
//! --histories`, each with its arguments beside it where the command is new.

use anyhow::{Result, bail};
use clap::Args;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

use super::out::{errln, out, outln};
use super::table::render;
use super::{KdamProgress, describe, print_json, print_results};
use lookbook::catalog::{Catalog, ProductFilter};
use lookbook::eval::shop::{self as shop_eval, Report};
use lookbook::recommend::Engine;
use lookbook::recommend::shop::{FeedRequest, History, ShopperHistory, Trained};
use lookbook::recommend::shown::{FeedPage, fetch_shown, rows};

/// `together ID`: what shoppers bought with a product.
#[derive(Args, Debug)]
pub struct TogetherArgs {
    /// The product: the shop's id or a SKU, or the catalogue's number.
    pub id: String,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// The feed from a shop's history for `user`: a user the catalogue does not know yet gets the
/// cold-start feed (this week's best sellers), not an error.
pub(crate) fn recommend(
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
            outln!("For {user}: nothing bought or liked yet, so what sells now ({model})");
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

/// `together ID`.
pub(crate) fn together(db: &Path, a: TogetherArgs) -> Result<ExitCode> {
    if a.k == 0 {
        bail!("-k must be at least 1 (the number of products to show)");
    }
    let cat = Catalog::open_existing(db)?;
    let p = cat.require_product_ref(&a.id)?;
    let mut engine = Engine::load_for_query(&cat)?;
    let trained = Trained::load_for(&cat, &engine, Some(&[p.id]))?;
    let recs = trained.feed(&engine).bought_together(p.id, a.k);
    fetch_shown(&mut engine, &cat, &recs)?;
    let rows = rows(&engine, &recs);
    if a.json {
        print_json(&json!({ "query": p, "results": rows }))?;
    } else {
        outln!("Bought with {}", describe(&p));
        if rows.is_empty() {
            outln!("(nobody bought it with anything yet; import a history with `lookbook import --interactions FILE`)");
        } else {
            print_results(&rows, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `train --feed`.
pub(crate) fn train(db: &Path, days: i64, seed: u64, json: bool) -> Result<ExitCode> {
    if days < 1 {
        bail!("--days must be at least 1");
    }
    let mut cat = Catalog::open_existing(db)?;
    let t = lookbook::train::feed::train_feed(&mut cat, days, 12, seed, &KdamProgress::new())?;
    if json {
        print_json(&t)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "trained feed model {} on {} events and likes of {} shoppers ({} products with bought-together lists, {} KiB)",
        t.id,
        t.events,
        t.shoppers,
        t.bought_together,
        t.bytes / 1024
    );
    let f = &t.fit;
    if f.users < lookbook::recommend::shop::fit::MIN_FIT_USERS {
        outln!(
            "too few shoppers bought in the last {days} days ({}) to fit the blend: the defaults are kept",
            f.users
        );
    } else {
        outln!(
            "blend fitted on {} shoppers who bought from {}: MAP@{} {:.4} (defaults {:.4})",
            f.users,
            shop_eval::date_of(f.held_out_from),
            f.k,
            f.fitted_map,
            f.default_map
        );
    }
    let names = lookbook::recommend::shop::SOURCES;
    let weights: Vec<String> = names
        .iter()
        .zip(f.blend.weights)
        .map(|(n, w)| format!("{n} {w:.2}"))
        .collect();
    outln!("weights: {}; diversity {:.2}", weights.join(", "), f.blend.diversity);
    Ok(ExitCode::SUCCESS)
}

/// `import --customers FILE`.
pub(crate) fn import_customers(db: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    let r = lookbook::ingest::interactions::import_shoppers(&mut cat, file, &KdamProgress::new())?;
    if json {
        print_json(&json!({ "customers": r }))?;
    } else {
        outln!(
            "imported {}: {} rows, {} shoppers' age and gender, {} new users, {} bad rows",
            file.display(),
            r.rows,
            r.shoppers,
            r.new_users,
            r.bad_row_count
        );
        for (line, why) in &r.bad_rows {
            errln!("  {}:{line}: {why}", file.display());
        }
    }
    Ok(if r.bad_row_count > 0 {
        ExitCode::from(super::EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `eval --personal --histories` on a catalogue with events: the date split.
pub(crate) fn evaluate(cat: &Catalog, opts: &shop_eval::Options, json: bool) -> Result<ExitCode> {
    let engine = Engine::load(cat)?;
    let history = History::load(cat)?;
    let r = shop_eval::evaluate(&engine, &history, opts, &KdamProgress::new())?;
    if json {
        print_json(&r)?;
    } else {
        print_report(&r);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Report) {
    outln!(
        "the feed on the shop's history: {} events before {}, then {} days; {} shoppers who bought in them, k = {}",
        r.past_events,
        r.split_date,
        r.days,
        r.users,
        r.k
    );
    if let Some(f) = &r.fit {
        outln!(
            "blend fitted on the past alone ({} shoppers from {}): MAP {:.4} against the defaults' {:.4}",
            f.users,
            shop_eval::date_of(f.held_out_from),
            f.fitted_map,
            f.default_map
        );
    }
    let segments: Vec<String> = r
        .methods
        .first()
        .map(|m| m.segments.iter().map(|(s, v)| format!("{s} ({})", v.users)).collect())
        .unwrap_or_default();
    let mut header: Vec<String> = ["method", "MAP@k", "recall@k", "hit@k", "nDCG@k", "coverage"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    header.extend(segments.iter().map(|s| format!("MAP {s}")));
    let body: Vec<Vec<String>> = r
        .methods
        .iter()
        .map(|m| {
            let mut v = vec![
                m.method.clone(),
                format!("{:.4}", m.all.map),
                format!("{:.4}", m.all.recall),
                format!("{:.3}", m.all.hit),
                format!("{:.4}", m.all.ndcg),
                format!("{:.3}", m.coverage),
            ];
            v.extend(m.segments.iter().map(|(_, s)| format!("{:.4}", s.map)));
            v
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    out!("{}", render(&header, &body));
}
