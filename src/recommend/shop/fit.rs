//! Learning a [`Blend`] from the shop's own history: hold out the latest days, train the model
//! on what came before, gather each held-out shopper's candidates once, then climb one weight
//! at a time (and the diversity) to the best mean average precision of what they bought in the
//! held-out days. The candidates' numbers are computed once, so each try is only a re-ranking.

use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;

use super::feed::{Blend, Candidates, Feed, SOURCE_COUNT};
use super::history::{DAY_MS, History, ShopperHistory};
use super::model::{ModelSettings, ShopModel};
use crate::catalog::ProductFilter;
use crate::recommend::Engine;
use crate::sample::Rng;
use crate::{Progress, Result};

/// Average precision at `k` of a ranking against the products bought (the H&M competition's
/// AP@12: each hit's precision, summed, over the fewer of `k` and the number bought).
pub fn average_precision(ranked: &[i64], truth: &[i64], k: usize) -> f64 {
    if truth.is_empty() || k == 0 {
        return 0.0;
    }
    let (mut hits, mut sum) = (0usize, 0.0f64);
    for (i, id) in ranked.iter().take(k).enumerate() {
        if truth.contains(id) {
            hits += 1;
            sum += hits as f64 / (i + 1) as f64;
        }
    }
    sum / truth.len().min(k) as f64
}

/// How a blend was fitted, stored beside it.
#[derive(Debug, Clone, Serialize)]
pub struct FitReport {
    /// The blend found.
    pub blend: Blend,
    /// Mean AP@k of the default blend on the held-out days.
    pub default_map: f64,
    /// Mean AP@k of the blend found on the same days.
    pub fitted_map: f64,
    /// Shoppers who bought in the held-out days (measured on).
    pub users: usize,
    /// Start of the held-out days, milliseconds since the epoch.
    pub held_out_from: i64,
    /// Cut-off.
    pub k: usize,
}

/// Shoppers measured per fit at most (a seeded sample of those who bought in the held-out days).
pub const MAX_FIT_USERS: usize = 3_000;
/// Fewer held-out shoppers than this and the defaults are kept (too little to learn from).
pub const MIN_FIT_USERS: usize = 20;

/// Which days are held out, and which of their shoppers are measured.
#[derive(Debug, Clone, Copy)]
pub struct HeldOut {
    /// First held-out millisecond.
    pub from: i64,
    /// End of the held-out days (exclusive).
    pub to: i64,
    /// Shoppers measured at most (a seeded sample).
    pub max_users: usize,
    /// Seed of that sample.
    pub seed: u64,
}

/// A held-out shopper: id, candidates as of the split, what they bought from then on.
pub type HeldOutShopper = (i64, Candidates, Vec<i64>);

/// The model trained on what came before the held-out days, and each held-out shopper's
/// candidates from it with what they bought in those days.
pub fn held_out_candidates(
    engine: &Engine,
    history: &History,
    split: HeldOut,
    settings: ModelSettings,
    progress: &dyn Progress,
) -> Result<(ShopModel, Vec<HeldOutShopper>)> {
    let HeldOut {
        from,
        to,
        max_users,
        seed,
    } = split;
    let before = history.before(from);
    let model = ShopModel::train(&before, engine, settings);
    let mut truth: Vec<(i64, Vec<i64>)> = history.purchases_between(from, to).into_iter().collect();
    truth.sort_by_key(|t| t.0);
    if truth.len() > max_users {
        Rng::new(seed).shuffle(&mut truth);
        truth.truncate(max_users);
        truth.sort_by_key(|t| t.0);
    }
    let mut own = before.by_shopper();
    let feed = Feed { engine, model: &model };
    progress.start("gathering candidates", truth.len());
    let shoppers: Vec<(i64, ShopperHistory, Vec<i64>)> = truth
        .into_iter()
        .map(|(user, bought)| {
            let mut h = own.remove(&user).unwrap_or_default();
            if h.events.is_empty() && h.feedback.is_empty() {
                h.shopper = history.shoppers.get(&user).cloned().unwrap_or_default();
            }
            (user, h, bought)
        })
        .collect();
    // Each shopper's candidates are their own: gathered on every core.
    let out = shoppers
        .into_par_iter()
        .map(|(user, h, bought)| {
            let c = feed.candidates(&h, &ProductFilter::default())?;
            progress.advance(1);
            Ok((user, c, bought))
        })
        .collect::<Result<Vec<_>>>()?;
    progress.finish();
    Ok((model, out))
}

/// Mean AP@k of `blend` over prepared shoppers.
pub fn mean_ap(feed: &Feed, users: &[HeldOutShopper], blend: &Blend, k: usize) -> f64 {
    if users.is_empty() {
        return 0.0;
    }
    // Ranked on every core, summed in order: the same blend always scores the same.
    let each: Vec<f64> = users
        .par_iter()
        .map(|(_, c, truth)| {
            let ids: Vec<i64> = feed.rank(c, blend, k).into_iter().map(|(i, _)| c.items[i].id).collect();
            average_precision(&ids, truth, k)
        })
        .collect();
    let total: f64 = each.iter().sum();
    total / users.len() as f64
}

/// Fits a blend on `history` by holding out its last `days` days (see the module doc); with
/// too few shoppers in those days, the defaults come back with their score.
pub fn fit(
    engine: &Engine,
    history: &History,
    settings: ModelSettings,
    days: i64,
    k: usize,
    seed: u64,
    progress: &dyn Progress,
) -> Result<FitReport> {
    let start = Blend::default();
    let Some(from) = history.split_days_before_end(days) else {
        return Ok(FitReport {
            blend: start,
            default_map: 0.0,
            fitted_map: 0.0,
            users: 0,
            held_out_from: 0,
            k,
        });
    };
    let split = HeldOut {
        from,
        to: i64::MAX,
        max_users: MAX_FIT_USERS,
        seed,
    };
    let (model, users) = held_out_candidates(engine, history, split, settings, progress)?;
    let feed = Feed { engine, model: &model };
    let default_map = mean_ap(&feed, &users, &start, k);
    let mut report = FitReport {
        blend: start,
        default_map,
        fitted_map: default_map,
        users: users.len(),
        held_out_from: from,
        k,
    };
    if users.len() < MIN_FIT_USERS {
        return Ok(report);
    }
    let (blend, map) = climb(&feed, &users, start, default_map, k);
    report.blend = blend;
    report.fitted_map = map;
    Ok(report)
}

/// The largest weight tried: past it one source only orders what it brings among itself, and
/// scores of hundreds read badly in a feed.
const MAX_WEIGHT: f32 = 16.0;

/// Coordinate ascent: each weight in turn scaled (or zeroed, or given a start), then the
/// diversity, kept when the mean AP rises; a few rounds, stopping early when nothing moves.
fn climb(feed: &Feed, users: &[HeldOutShopper], mut blend: Blend, mut best: f64, k: usize) -> (Blend, f64) {
    let mut cache: HashMap<Vec<u32>, f64> = HashMap::new();
    let key = |b: &Blend| -> Vec<u32> {
        b.weights
            .iter()
            .chain(std::iter::once(&b.diversity))
            .map(|x| x.to_bits())
            .collect()
    };
    let mut score = |b: &Blend| -> f64 { *cache.entry(key(b)).or_insert_with(|| mean_ap(feed, users, b, k)) };
    for _round in 0..8 {
        let mut moved = false;
        for j in 0..SOURCE_COUNT {
            let w = blend.weights[j];
            let tries = if w == 0.0 {
                vec![0.25, 1.0]
            } else {
                vec![0.0, w * 0.25, w * 0.5, w * 0.75, w * 1.5, w * 2.0, w * 4.0]
            };
            for t in tries.into_iter().filter(|t| *t <= MAX_WEIGHT) {
                let mut b = blend;
                b.weights[j] = t;
                let s = score(&b);
                if s > best + 1e-9 {
                    best = s;
                    blend = b;
                    moved = true;
                }
            }
        }
        for d in [0.0, 0.1, 0.2, 0.3, 0.5] {
            let mut b = blend;
            b.diversity = d;
            let s = score(&b);
            if s > best + 1e-9 {
                best = s;
                blend = b;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    (blend, best)
}

/// `days` in milliseconds.
pub fn days_ms(days: i64) -> i64 {
    days * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blend_stored_before_a_source_existed_reads_with_its_default_weight() {
        use super::super::feed::{Blend, SOURCE_COUNT};
        let old = serde_json::json!({ "weights": [2.0, 1.0], "diversity": 0.3 });
        let b: Blend = serde_json::from_value(old).unwrap();
        assert_eq!(&b.weights[..2], &[2.0, 1.0]);
        assert_eq!(&b.weights[2..], &Blend::default().weights[2..]);
        let newer = serde_json::json!({ "weights": vec![1.0; SOURCE_COUNT + 1], "diversity": 0.0 });
        assert!(serde_json::from_value::<Blend>(newer).is_err());
        let negative = serde_json::json!({ "weights": [-1.0], "diversity": 0.0 });
        assert!(serde_json::from_value::<Blend>(negative).is_err());
        let back: Blend = serde_json::from_value(serde_json::to_value(b).unwrap()).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn average_precision_is_the_competitions() {
        assert_eq!(average_precision(&[1, 2, 3], &[1], 12), 1.0);
        assert_eq!(average_precision(&[9, 1], &[1], 12), 0.5);
        // Hits at 1 and 3 of two bought: (1/1 + 2/3) / 2.
        assert!((average_precision(&[1, 9, 2], &[1, 2], 12) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // More bought than k: divided by k.
        assert!((average_precision(&[1], &[1, 2, 3], 2) - 0.5).abs() < 1e-12);
        assert_eq!(average_precision(&[], &[1], 12), 0.0);
        assert_eq!(average_precision(&[1], &[], 12), 0.0);
    }
}
