//! `lookbook train`: a projection head on the backbone's vectors, or with `--feed` the feed's
//! blend and model on the shop's history.

use anyhow::{Result, bail};
use std::path::Path;
use std::process::ExitCode;

use super::out::outln;
use super::{KdamProgress, print_json};
use lookbook::catalog::Catalog;
use lookbook::eval::shop as shop_eval;
use lookbook::train;

/// Train a projection head on the backbone vectors of this catalogue; with --feed, the
/// feed's blend and model on the shop's history.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Instead: learn the feed from the shop's history (the last --days held out to fit
    /// the blend) and store it; `recommend` and the app use it.
    #[arg(long)]
    pub feed: bool,
    /// With --feed: days held out to fit the blend.
    #[arg(long, default_value_t = 7, requires = "feed")]
    pub days: i64,
    /// Output dimension.
    #[arg(long, default_value_t = 256)]
    pub dim: usize,
    /// Maximum epochs.
    #[arg(long, default_value_t = 80)]
    pub epochs: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Early-stopping patience in epochs.
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Activate the head even if it does not beat the backbone.
    #[arg(long)]
    pub force: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `train` or `train --feed`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    if a.feed {
        return feed(db, a.days, a.seed, a.json);
    }
    let s = train::Settings {
        dim: a.dim,
        epochs: a.epochs,
        lr: a.lr,
        patience: a.patience,
        seed: a.seed,
        ..Default::default()
    };
    head(db, &s, a.force, a.json)
}

fn head(db: &Path, s: &train::Settings, force: bool, json: bool) -> Result<ExitCode> {
    if s.dim < 2 || s.epochs == 0 {
        bail!("--dim must be at least 2 and --epochs at least 1");
    }
    let mut cat = Catalog::open_existing(db)?;
    let out = train::train_catalog(&mut cat, s, force, &KdamProgress::new())?;
    if json {
        print_json(&out)?;
    } else {
        let r = &out.report;
        outln!(
            "trained head {} ({} -> {}) on {} items of {} types, {} epochs (best {})",
            out.head_id,
            r.in_dim,
            s.dim,
            r.train_items,
            r.classes,
            r.epochs,
            r.best_epoch
        );
        outln!(
            "validation P@10: backbone {:.3}, head {:.3} ({} items)",
            r.backbone_val_p10,
            r.head_val_p10,
            r.val_items
        );
        if out.activated {
            outln!(
                "the head is now active: similar, recommend and the app use {}-d vectors",
                s.dim
            );
        } else {
            outln!(
                "the head did not beat the backbone, so the backbone stays active (use --force to activate it anyway)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `train --feed`.
fn feed(db: &Path, days: i64, seed: u64, json: bool) -> Result<ExitCode> {
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
