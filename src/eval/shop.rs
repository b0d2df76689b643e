//! The feed measured the H&M competition's way on a shop's own history: everything before a
//! date is the past, the days after it (the last week by default) are the future, and every
//! shopper who bought in them gets 12 products from what was known at the date. Scored by
//! MAP@12 (with recall, hit rate, nDCG and coverage), overall and per segment (new shoppers,
//! warm, heavy), beside simple baselines computed on the same split: last week's best sellers,
//! the shopper's own purchases then best sellers, co-purchase item-kNN, and the visual feed
//! that ranked by one taste vector before the shop's history counted.
//!
//! The feed's blend is fitted the way `train --feed` would have fitted it on the date: on the
//! past alone, holding out its own last days.

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use crate::catalog::{EventKind, Feedback};
use crate::recommend::shop::fit::{self, HeldOut, average_precision};
use crate::recommend::shop::{Blend, Feed, History, ModelSettings, ShopModel};
use crate::recommend::{DEFAULT_DIVERSITY, Engine, Profile, ProfileSettings, Request};
use crate::{Error, Progress, Result};

/// What to measure.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Cut-off (12 in the competition).
    pub k: usize,
    /// Days held out after the split.
    pub days: i64,
    /// The split, in milliseconds since the epoch; default: `days` days before the end.
    pub split: Option<i64>,
    /// Shoppers measured at most (a seeded sample of those who bought after the split).
    pub users: usize,
    /// Seed of that sample and of the blend's fit.
    pub seed: u64,
    /// Fit the blend on the past (as `train --feed` would) instead of the defaults alone.
    pub fit: bool,
}

/// One method's scores on one group of shoppers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scores {
    /// Shoppers measured.
    pub users: usize,
    /// Mean average precision at k.
    pub map: f64,
    /// Share of what they bought that was in the top k.
    pub recall: f64,
    /// Share of shoppers with at least one purchase in the top k.
    pub hit: f64,
    /// Mean nDCG at k.
    pub ndcg: f64,
}

/// One method on every shopper and per segment.
#[derive(Debug, Clone, Serialize)]
pub struct MethodScores {
    /// Method name.
    pub method: String,
    /// All shoppers measured.
    pub all: Scores,
    /// Share of the rankable products shown to at least one shopper.
    pub coverage: f64,
    /// Per segment: `new` (nothing bought before the split), `warm`, `heavy`.
    pub segments: Vec<(String, Scores)>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The split, milliseconds since the epoch.
    pub split: i64,
    /// The split as a date.
    pub split_date: String,
    /// Days held out.
    pub days: i64,
    /// Cut-off.
    pub k: usize,
    /// Events and likes before the split.
    pub past_events: usize,
    /// Shoppers who bought after the split and were measured.
    pub users: usize,
    /// The blend the feed used, and how it was fitted.
    pub blend: Blend,
    /// The fit, when the blend was fitted.
    pub fit: Option<fit::FitReport>,
    /// Methods side by side, the feed first.
    pub methods: Vec<MethodScores>,
}

/// Past purchases from which a shopper counts as heavy.
pub const HEAVY: usize = 20;

fn segment(past: usize) -> &'static str {
    match past {
        0 => "new",
        n if n < HEAVY => "warm",
        _ => "heavy",
    }
}

pub use crate::dates::date_of;

/// Accumulates one method's scores.
#[derive(Default)]
struct Tally {
    all: Scores,
    segments: HashMap<&'static str, Scores>,
    shown: HashSet<i64>,
}

fn add(s: &mut Scores, ranked: &[i64], truth: &[i64], k: usize) {
    let hits: Vec<usize> = ranked
        .iter()
        .take(k)
        .enumerate()
        .filter(|(_, id)| truth.contains(id))
        .map(|(i, _)| i)
        .collect();
    s.users += 1;
    s.map += average_precision(ranked, truth, k);
    s.recall += hits.len() as f64 / truth.len().max(1) as f64;
    s.hit += f64::from(u8::from(!hits.is_empty()));
    let dcg: f64 = hits.iter().map(|&i| 1.0 / ((i + 2) as f64).log2()).sum();
    let ideal: f64 = (0..truth.len().min(k)).map(|i| 1.0 / ((i + 2) as f64).log2()).sum();
    s.ndcg += if ideal > 0.0 { dcg / ideal } else { 0.0 };
}

fn mean(mut s: Scores) -> Scores {
    let n = s.users.max(1) as f64;
    s.map /= n;
    s.recall /= n;
    s.hit /= n;
    s.ndcg /= n;
    s
}

/// Plain co-purchase counts for the item-kNN baseline: how many shoppers bought both ("who
/// bought this also bought"; no time, no decay, no normalisation, which also favours what
/// sells).
fn co_purchases(past: &History) -> HashMap<i64, Vec<(i64, f32)>> {
    let mut baskets: HashMap<i64, HashSet<i64>> = HashMap::new();
    for e in past.events.iter().filter(|e| e.kind == EventKind::Purchase) {
        baskets.entry(e.user).or_default().insert(e.product);
    }
    let mut pairs: HashMap<(i64, i64), f32> = HashMap::new();
    for items in baskets.values() {
        let items: Vec<i64> = items.iter().copied().collect();
        for (i, &a) in items.iter().enumerate() {
            for &b in &items[i + 1..] {
                *pairs.entry((a.min(b), a.max(b))).or_default() += 1.0;
            }
        }
    }
    let mut out: HashMap<i64, Vec<(i64, f32)>> = HashMap::new();
    for ((a, b), c) in pairs {
        let s = c;
        out.entry(a).or_default().push((b, s));
        out.entry(b).or_default().push((a, s));
    }
    out
}

/// Measures the feed and the baselines on `history` split at `opts.split`.
pub fn evaluate(engine: &Engine, history: &History, opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let split = match opts.split {
        Some(s) => s,
        None => history
            .split_days_before_end(opts.days)
            .ok_or_else(|| Error::Invalid("the catalogue has no events to measure on".into()))?,
    };
    let end = split + fit::days_ms(opts.days);
    let past = history.before(split);
    if past.events.is_empty() {
        return Err(Error::Invalid(format!(
            "no events before {}: nothing to learn from; pick a later --split",
            date_of(split)
        )));
    }
    let settings = ModelSettings::default();
    let fitted = if opts.fit {
        Some(fit::fit(
            engine, &past, settings, opts.days, opts.k, opts.seed, progress,
        )?)
    } else {
        None
    };
    let blend = fitted.as_ref().map_or_else(Blend::default, |f| f.blend);
    let heldout = HeldOut {
        from: split,
        to: end,
        max_users: opts.users,
        seed: opts.seed,
    };
    let (model, users) = fit::held_out_candidates(engine, history, heldout, settings, progress)?;
    if users.is_empty() {
        return Err(Error::Invalid(format!(
            "nobody bought between {} and {}: nothing to measure",
            date_of(split),
            date_of(end)
        )));
    }
    let feed = Feed { engine, model: &model };
    let mut own = past.by_shopper();
    let knn = co_purchases(&past);
    let listed = |id: i64| engine.index().row(id).is_some_and(|r| engine.is_ranked_row(r));
    let best_sellers: Vec<i64> = week_best_sellers(&model, &past, split, &listed);

    let mut methods: Vec<(String, Tally)> = Vec::new();
    let names: Vec<String> = {
        let mut v = vec!["feed".to_string()];
        if opts.fit {
            v.push("feed, default blend".into());
        }
        v.extend(
            [
                "last week's best sellers",
                "own purchases, then best sellers",
                "co-purchase item-kNN",
                "visual taste (one vector)",
            ]
            .map(String::from),
        );
        v
    };
    for n in &names {
        methods.push((n.clone(), Tally::default()));
    }
    progress.start("ranking for held-out shoppers", users.len());
    for (user, cands, truth) in &users {
        let h = own.remove(user).unwrap_or_default();
        let bought_before = h.purchases();
        let seg = segment(bought_before);
        let k = opts.k;
        let mut rankings: Vec<Vec<i64>> = Vec::new();
        let rank = |b: &Blend| -> Vec<i64> {
            feed.rank(cands, b, k)
                .into_iter()
                .map(|(i, _)| cands.items[i].id)
                .collect()
        };
        rankings.push(rank(&blend));
        if opts.fit {
            rankings.push(rank(&Blend::default()));
        }
        // Best sellers (the same twelve for everyone).
        rankings.push(best_sellers.iter().take(k).copied().collect());
        // Own purchases, newest first, then best sellers.
        let mut mine: Vec<i64> = Vec::new();
        for e in h.events.iter().rev().filter(|e| e.kind == EventKind::Purchase) {
            if !mine.contains(&e.product) && listed(e.product) {
                mine.push(e.product);
            }
        }
        fill(&mut mine, &best_sellers, k);
        rankings.push(mine);
        // Item-kNN over past purchases, then best sellers.
        let bought: HashSet<i64> = h.events.iter().map(|e| e.product).collect();
        let mut score: HashMap<i64, f32> = HashMap::new();
        for p in &bought {
            for &(q, s) in knn.get(p).map_or(&[][..], Vec::as_slice) {
                if !bought.contains(&q) && listed(q) {
                    *score.entry(q).or_default() += s;
                }
            }
        }
        let mut knn_ranked: Vec<(i64, f32)> = score.into_iter().collect();
        knn_ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut knn_ids: Vec<i64> = knn_ranked.into_iter().take(k).map(|x| x.0).collect();
        fill(&mut knn_ids, &best_sellers, k);
        rankings.push(knn_ids);
        // The one-vector visual feed, purchases counted as likes.
        let mut fb: Vec<Feedback> = h.feedback.clone();
        fb.extend(h.events.iter().map(|e| Feedback {
            product_id: e.product,
            weight: 1.0,
            at: e.at,
        }));
        let profile = Profile::build(&fb, engine.index(), ProfileSettings::default());
        let req = Request {
            k,
            diversity: DEFAULT_DIVERSITY,
            ..Default::default()
        };
        rankings.push(engine.recommend(&profile, &req)?.into_iter().map(|r| r.id).collect());
        for ((_, tally), ranked) in methods.iter_mut().zip(rankings) {
            add(&mut tally.all, &ranked, truth, k);
            add(tally.segments.entry(seg).or_default(), &ranked, truth, k);
            tally.shown.extend(ranked);
        }
        progress.advance(1);
    }
    progress.finish();
    let rankable = (0..engine.index().len()).filter(|&r| engine.is_ranked_row(r)).count();
    let methods = methods
        .into_iter()
        .map(|(method, t)| {
            let mut segments: Vec<(String, Scores)> =
                t.segments.into_iter().map(|(s, v)| (s.to_string(), mean(v))).collect();
            segments.sort_by_key(|(s, _)| match s.as_str() {
                "new" => 0,
                "warm" => 1,
                _ => 2,
            });
            MethodScores {
                method,
                all: mean(t.all),
                coverage: t.shown.len() as f64 / rankable.max(1) as f64,
                segments,
            }
        })
        .collect();
    Ok(Report {
        split,
        split_date: date_of(split),
        days: opts.days,
        k: opts.k,
        past_events: past.events.len() + past.feedback.len(),
        users: users.len(),
        blend,
        fit: fitted,
        methods,
    })
}

/// Products sold in the week before `split`, most first (the baseline counts plain sales).
fn week_best_sellers(model: &ShopModel, past: &History, split: i64, listed: &dyn Fn(i64) -> bool) -> Vec<i64> {
    let from = split - fit::days_ms(7);
    let mut count: HashMap<i64, u32> = HashMap::new();
    for e in past
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Purchase && e.at >= from)
    {
        *count.entry(e.product).or_default() += e.count;
    }
    let mut v: Vec<(i64, u32)> = count.into_iter().filter(|(id, _)| listed(*id)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<i64> = v.into_iter().map(|x| x.0).collect();
    // A quiet week: the model's month fills the list.
    let month: Vec<i64> = model.best_sellers(None).iter().map(|x| x.0).collect();
    fill(&mut out, &month, 100);
    out
}

/// Appends products from `more` not yet in `list` until it has `k`.
fn fill(list: &mut Vec<i64>, more: &[i64], k: usize) {
    for &id in more {
        if list.len() >= k {
            break;
        }
        if !list.contains(&id) {
            list.push(id);
        }
    }
    list.truncate(k);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_at_nothing_and_heavy() {
        assert_eq!(segment(0), "new");
        assert_eq!(segment(1), "warm");
        assert_eq!(segment(HEAVY), "heavy");
    }
}
