//! The "for you" feed from a shopper's history and the shop's model, in three steps a reader can
//! follow: [`Feed::candidates`] gathers products from every source (buy again, bought together,
//! best sellers of the shopper's group and of everyone, best sellers of the kinds they buy,
//! look-alikes of each of their interests, new stock) and describes each with one number per
//! source; [`Blend::score`] weighs those numbers; [`Feed::rank`] takes the best, one colourway per
//! group, each further product of a kind already shown discounted (so the feed covers the
//! interests), and the score shown is that discounted score, so it falls down the list.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

use super::history::ShopperHistory;
use super::interests::{Interest, interests};
use super::model::{ShopModel, decay, segment_of};
use crate::catalog::{EventKind, ProductFilter};
use crate::recommend::{Engine, Reason, Recommendation, dot};
use crate::{Error, Result};

/// The sources, in the order of a candidate's numbers and a blend's weights.
pub const SOURCES: [&str; SOURCE_COUNT] = [
    "buy_again",
    "bought_together",
    "group_best_sellers",
    "best_sellers",
    "looks",
    "kinds_you_buy",
    "month_best_sellers",
    "new_stock",
    "looks_while_new",
    "taste_factors",
];
/// How many sources.
pub const SOURCE_COUNT: usize = 10;
const REBUY: usize = 0;
const TOGETHER: usize = 1;
const GROUP_TREND: usize = 2;
const TREND: usize = 3;
const LOOKS: usize = 4;
const KIND: usize = 5;
const MONTH: usize = 6;
const NEW: usize = 7;
/// Looks, for a shopper who has bought little (falling with the square of their purchases):
/// their likes in a session are all there is.
const LOOKS_NEW: usize = 8;
/// What shoppers who buy alike bought (latent factors, implicit ALS), the shopper folded in.
const FACTORS: usize = 9;

/// How the sources are weighed, and how strongly repeats of a kind are discounted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    /// One weight per source, in [`SOURCES`] order. A blend stored before a source existed
    /// reads with that source at its default weight.
    #[serde(deserialize_with = "weights_or_defaults")]
    pub weights: [f32; SOURCE_COUNT],
    /// Each further product of a kind already in the feed counts `1 - diversity` times as much.
    pub diversity: f32,
}

/// Stored weights, the sources added since at their default weights; more weights than
/// sources is a blend from a newer lookbook, refused.
fn weights_or_defaults<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<[f32; SOURCE_COUNT], D::Error> {
    let stored: Vec<f32> = Vec::deserialize(d)?;
    if stored.len() > SOURCE_COUNT || stored.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return Err(serde::de::Error::custom(format!(
            "{} weights, some not a number from 0; this lookbook weighs {SOURCE_COUNT} sources",
            stored.len()
        )));
    }
    let mut w = Blend::default().weights;
    w[..stored.len()].copy_from_slice(&stored);
    Ok(w)
}

impl Default for Blend {
    /// Close to what `train --feed` found on the simulated shop history of `shoppers/` (buying
    /// again first, then kinds the shopper buys, best sellers and bought-together), rounded,
    /// with look-alikes kept for shoppers who have bought little: used until a catalogue
    /// trains its own.
    fn default() -> Self {
        Blend {
            weights: [8.0, 0.25, 0.25, 0.25, 0.1, 0.4, 0.1, 0.05, 0.5, 0.25],
            diversity: 0.1,
        }
    }
}

impl Blend {
    /// A candidate's score.
    pub fn score(&self, f: &[f32; SOURCE_COUNT]) -> f32 {
        self.weights.iter().zip(f).map(|(w, x)| w * x).sum()
    }

    /// The source that brought the most to a candidate's score, for its reason. "A kind you
    /// buy" only supports the others (it says nothing of this product), so it is named only
    /// when nothing else counted.
    fn main_source(&self, f: &[f32; SOURCE_COUNT]) -> usize {
        (0..SOURCE_COUNT)
            .filter(|&s| s != KIND && self.weights[s] * f[s] > 0.0)
            .max_by(|&a, &b| {
                (self.weights[a] * f[a])
                    .total_cmp(&(self.weights[b] * f[b]))
                    .then(b.cmp(&a))
            })
            .unwrap_or(KIND)
    }
}

/// One candidate: a product and what each source says of it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Product id.
    pub id: i64,
    /// Its index row.
    row: usize,
    /// One number per source, each about 0..1.
    pub features: [f32; SOURCE_COUNT],
    /// The shopper's product it was most bought with.
    with: Option<i64>,
    /// The interest it looks most like, and how much.
    interest: Option<(usize, f32)>,
    /// Times the shopper bought it.
    times: u32,
}

/// Every candidate for one shopper, with their interests.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// The candidates, in no order.
    pub items: Vec<Candidate>,
    /// The shopper's interests, heaviest first.
    pub interests: Vec<Interest>,
    /// The shopper's group for best sellers, if known.
    segment: Option<String>,
    /// What the shopper liked (a look-alike of a liked product says so; of a bought one, that).
    liked: HashSet<i64>,
}

/// Interests per shopper, and when two clusters of products are one interest.
const MAX_INTERESTS: usize = 4;
const INTEREST_THRESHOLD: f32 = 0.7;
/// Candidates taken from each source.
const PER_INTEREST: usize = 30;
const FROM_TOGETHER: usize = 100;
const FROM_SELLERS: usize = 60;
const FROM_KIND: usize = 25;
const KINDS: usize = 4;
const FROM_NEW: usize = 20;
const FROM_FACTORS: usize = 50;
/// History products whose co-purchases are gathered (the most weighted).
const TOGETHER_SEEDS: usize = 40;
/// A bought product may come back when at least this share of its kind is bought again, and
/// more than of most kinds (or the shopper bought it on two days).
const REBUY_MIN: f32 = 0.1;
/// Half-lives, in days: of a purchase's pull towards what was bought with it, of a taste.
const TOGETHER_HALF_LIFE: f32 = 30.0;
const TASTE_HALF_LIFE: f32 = 60.0;
const REBUY_HALF_LIFE: f32 = 45.0;

/// What to rank.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    /// How many results.
    pub k: usize,
    /// Only products passing this.
    pub filter: ProductFilter,
}

/// The feed: an engine (vectors, products, listing) and the shop's model.
pub struct Feed<'a> {
    /// Vectors, products and what may be shown.
    pub engine: &'a Engine,
    /// What the whole shop did.
    pub model: &'a ShopModel,
}

fn squash(x: f32, max: f32) -> f32 {
    if max <= 0.0 || x <= 0.0 {
        0.0
    } else {
        ((1.0 + x).ln() / (1.0 + max).ln()).min(1.0)
    }
}

impl Feed<'_> {
    /// Every candidate for a shopper, described by each source. Excluded: everything they liked
    /// or disliked, what they bought unless it is bought again, unlisted products and what the
    /// filter rejects.
    pub fn candidates(&self, h: &ShopperHistory, filter: &ProductFilter) -> Result<Candidates> {
        let engine = self.engine;
        let model = self.model;
        if engine.is_partial() && !filter.is_empty() {
            return Err(Error::Invalid(
                "a one-shot engine holds no products to filter; load it with Engine::load".into(),
            ));
        }
        let index = engine.index();
        let now = model.reference.max(h.newest().unwrap_or(i64::MIN));
        let feedback: HashSet<i64> = h.feedback.iter().map(|f| f.product_id).collect();
        // Purchases per product: how many, on which days, and how recently (summed decay).
        let mut bought: HashMap<i64, (u32, HashSet<i64>, f32)> = HashMap::new();
        for e in h.events.iter().filter(|e| e.kind == EventKind::Purchase) {
            let b = bought.entry(e.product).or_default();
            b.0 += e.count;
            b.1.insert(e.at.div_euclid(super::history::DAY_MS));
            b.2 += decay(now - e.at, REBUY_HALF_LIFE);
        }
        // The taste: every event and like, by recency.
        let mut taste: Vec<(i64, f32, f32)> = Vec::new(); // (product, taste weight, together weight)
        for e in &h.events {
            let s = e.kind.strength();
            taste.push((
                e.product,
                s * decay(now - e.at, TASTE_HALF_LIFE),
                s * decay(now - e.at, TOGETHER_HALF_LIFE),
            ));
        }
        for f in h.feedback.iter().filter(|f| f.is_like()) {
            taste.push((
                f.product_id,
                decay(now - f.at, TASTE_HALF_LIFE),
                decay(now - f.at, TOGETHER_HALF_LIFE),
            ));
        }
        let purchases = h.purchases() as f32;
        let mut kinds: HashMap<&str, f32> = HashMap::new();
        let total: f32 = taste.iter().map(|t| t.1).sum();
        for (p, w, _) in &taste {
            if let Some(k) = engine.kind_of(*p) {
                *kinds.entry(k).or_default() += w / total.max(1e-9);
            }
        }
        let rows: Vec<(usize, f32)> = taste
            .iter()
            .filter_map(|&(p, w, _)| index.row(p).map(|r| (r, w)))
            .collect();
        let interests = interests(index, &rows, MAX_INTERESTS, INTEREST_THRESHOLD);
        let segment = segment_of(&h.shopper);
        let segment = segment.filter(|g| !model.best_sellers(Some(g)).is_empty());

        let rebuys = |id: i64| -> bool {
            bought
                .get(&id)
                .is_some_and(|(_, days, _)| days.len() > 1 || model.is_rebought(engine.kind_of(id), REBUY_MIN))
        };
        let allowed = |row: usize| -> bool {
            let id = index.id(row);
            engine.is_ranked_row(row)
                && !feedback.contains(&id)
                && (!bought.contains_key(&id) || rebuys(id))
                && (filter.is_empty() || engine.product(id).is_some_and(|p| filter.matches(p)))
        };
        let mut pool: Vec<i64> = Vec::new();
        // Buy again.
        pool.extend(bought.keys().copied());
        // Bought together, from the most weighted history products.
        let mut seeds: HashMap<i64, f32> = HashMap::new();
        for (p, _, w) in &taste {
            *seeds.entry(*p).or_default() += w;
        }
        let mut seeds: Vec<(i64, f32)> = seeds.into_iter().collect();
        seeds.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        seeds.truncate(TOGETHER_SEEDS);
        let mut together: HashMap<i64, (f32, i64, f32)> = HashMap::new(); // sum, best seed, its part
        for &(seed, w) in &seeds {
            for &(other, sim) in model.bought_with(seed) {
                let e = together.entry(other).or_insert((0.0, seed, 0.0));
                e.0 += w * sim;
                if w * sim > e.2 {
                    e.1 = seed;
                    e.2 = w * sim;
                }
            }
        }
        let mut t: Vec<(i64, f32)> = together.iter().map(|(k, v)| (*k, v.0)).collect();
        t.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        pool.extend(t.iter().take(FROM_TOGETHER).map(|x| x.0));
        // Best sellers, of the shopper's group and of everyone, and of the kinds they buy.
        if let Some(g) = &segment {
            pool.extend(model.best_sellers(Some(g)).iter().take(FROM_SELLERS).map(|x| x.0));
        }
        pool.extend(model.best_sellers(None).iter().take(FROM_SELLERS).map(|x| x.0));
        let mut top_kinds: Vec<(&str, f32)> = kinds.iter().map(|(k, v)| (*k, *v)).collect();
        top_kinds.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        for (k, _) in top_kinds.iter().take(KINDS) {
            pool.extend(model.best_of_kind(k).iter().take(FROM_KIND).map(|x| x.0));
        }
        pool.extend(model.new_stock().iter().take(FROM_NEW).map(|x| x.0));
        // What shoppers who buy alike bought: the shopper folded into the factors.
        let folded: Vec<(i64, f32)> = taste.iter().map(|&(p, w, _)| (p, w)).collect();
        let me = model.factors.fold_in(&folded);
        if let Some(me) = &me {
            pool.extend(model.factors.top(me, FROM_FACTORS).into_iter().map(|x| x.0));
        }
        // Look-alikes of each interest.
        for i in &interests {
            pool.extend(
                index
                    .search(&i.centroid, PER_INTEREST, &allowed)
                    .into_iter()
                    .map(|(r, _)| index.id(r)),
            );
        }

        let max_together = t.first().map_or(0.0, |x| x.1);
        let max_group = segment
            .as_deref()
            .and_then(|g| model.best_sellers(Some(g)).first())
            .map_or(0.0, |x| x.1);
        let max_week = model.best_sellers(None).first().map_or(0.0, |x| x.1);
        let max_month = model.best_sellers_month_max();
        let max_new = model.new_stock().first().map_or(0.0, |x| x.1);
        let top_weight = interests.first().map_or(1.0, |i| i.weight.max(1e-9));
        let mut seen: HashSet<i64> = HashSet::new();
        let mut items = Vec::new();
        for id in pool {
            if !seen.insert(id) {
                continue;
            }
            let Some(row) = index.row(id) else { continue };
            if !allowed(row) {
                continue;
            }
            let mut f = [0.0f32; SOURCE_COUNT];
            let kind = engine.kind_of(id);
            let mut times = 0;
            if let Some((n, _, recency)) = bought.get(&id) {
                times = *n;
                // Recency orders the rebuys; it does not decide whether a basic comes back.
                f[REBUY] = model.rebuy_rate(kind).sqrt() * (1.0 + recency.min(1.0)) / 2.0;
            }
            let tog = together.get(&id);
            f[TOGETHER] = squash(tog.map_or(0.0, |x| x.0), max_together);
            f[GROUP_TREND] = squash(model.week_sales(id, segment.as_deref()), max_group);
            f[TREND] = squash(model.week_sales(id, None), max_week);
            f[KIND] = kind.and_then(|k| kinds.get(k)).copied().unwrap_or(0.0).sqrt();
            f[MONTH] = squash(model.month_sales(id), max_month);
            f[NEW] = squash(model.borrowed_sales(id), max_new);
            let x = index.vector(row);
            let interest = interests
                .iter()
                .enumerate()
                .map(|(n, i)| (n, (i.weight / top_weight).sqrt() * dot(&i.centroid, &x)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            f[LOOKS] = interest.map_or(0.0, |i| i.1.max(0.0));
            f[FACTORS] = me.as_ref().map_or(0.0, |me| model.factors.score(me, id));
            items.push(Candidate {
                id,
                row,
                features: f,
                with: tog.map(|x| x.1),
                interest,
                times,
            });
        }
        // A model's cosines sit in a narrow band (all shoes look alike to it), so the shopper's
        // own spread is what tells: looks run from 0 (the least like them) to 1 (the most).
        let (lo, hi) = items
            .iter()
            .map(|c| c.features[LOOKS])
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let new_shopper = 1.0 / (1.0 + purchases).powi(2);
        // Predicted preferences are on no fixed scale either: the shopper's range, 0 to 1.
        let (flo, fhi) = items
            .iter()
            .map(|c| c.features[FACTORS])
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        for c in &mut items {
            let x = c.features[FACTORS];
            c.features[FACTORS] = if fhi > flo { (x - flo) / (fhi - flo) } else { 0.0 };
        }
        for c in &mut items {
            let x = c.features[LOOKS];
            c.features[LOOKS] = if hi > lo {
                (x - lo) / (hi - lo)
            } else {
                f32::from(u8::from(x > 0.0))
            };
            c.features[LOOKS_NEW] = c.features[LOOKS] * new_shopper;
        }
        Ok(Candidates {
            items,
            interests,
            segment,
            liked: h
                .feedback
                .iter()
                .filter(|f| f.is_like())
                .map(|f| f.product_id)
                .collect(),
        })
    }

    /// The best `k` candidates under `blend`: (position in `c.items`, shown score), one
    /// colourway per group, repeats of a kind discounted; scores fall down the list.
    pub fn rank(&self, c: &Candidates, blend: &Blend, k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = c
            .items
            .iter()
            .enumerate()
            .map(|(i, x)| (i, blend.score(&x.features)))
            .collect();
        let order =
            |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(c.items[a.0].id.cmp(&c.items[b.0].id));
        // Only the head needs sorting (fitting a blend ranks thousands of shoppers hundreds of
        // times): the best few times k first, the rest sorted only if a pick reaches past them.
        let mut sorted = scored.len().min(4 * k + 32);
        if sorted < scored.len() && sorted > 0 {
            scored.select_nth_unstable_by(sorted - 1, order);
        }
        scored[..sorted].sort_by(order);
        let keep = 1.0 - blend.diversity.clamp(0.0, 1.0);
        let mut per_kind: HashMap<Option<u32>, i32> = HashMap::new();
        let mut groups: HashSet<u32> = HashSet::new();
        let mut out: Vec<(usize, f32)> = Vec::with_capacity(k);
        let mut used = vec![false; scored.len()];
        while out.len() < k {
            // The best discounted score; the list is sorted, so the scan stops once no later
            // candidate can beat the best found.
            let mut best: Option<(usize, f32)> = None;
            let mut stopped = false;
            for (pos, &(i, s)) in scored[..sorted].iter().enumerate() {
                if used[pos] {
                    continue;
                }
                if best.is_some_and(|(_, b)| s <= b) {
                    stopped = true;
                    break;
                }
                let row = c.items[i].row;
                if self.engine.group_of_row(row).is_some_and(|g| groups.contains(&g)) {
                    used[pos] = true;
                    continue;
                }
                let n = per_kind.get(&self.engine.kind_index(row)).copied().unwrap_or(0);
                let d = s * keep.powi(n);
                if best.is_none_or(|(_, b)| d > b) {
                    best = Some((pos, d));
                }
            }
            if !stopped && sorted < scored.len() {
                // Everything sorted was scanned and an unsorted one might beat the best.
                scored[sorted..].sort_by(order);
                sorted = scored.len();
                continue;
            }
            let Some((pos, d)) = best else { break };
            used[pos] = true;
            let (i, _) = scored[pos];
            let row = c.items[i].row;
            *per_kind.entry(self.engine.kind_index(row)).or_default() += 1;
            if let Some(g) = self.engine.group_of_row(row) {
                groups.insert(g);
            }
            out.push((i, d));
        }
        out
    }

    /// The feed for one shopper: candidates, blend, ranking, and a reason and interest per row.
    pub fn recommend(&self, h: &ShopperHistory, req: &FeedRequest, blend: &Blend) -> Result<Vec<Recommendation>> {
        if req.k == 0 {
            return Ok(Vec::new());
        }
        let c = self.candidates(h, &req.filter)?;
        let mut out: Vec<Recommendation> = self
            .rank(&c, blend, req.k)
            .into_iter()
            .map(|(i, score)| {
                let x = &c.items[i];
                Recommendation {
                    id: x.id,
                    score,
                    reason: self.reason(&c, x, blend),
                    interest: x
                        .interest
                        .filter(|(_, s)| *s > 0.0)
                        .and_then(|(n, _)| c.interests.get(n))
                        .map(|i| self.interest_name(i)),
                }
            })
            .collect();
        if out.len() < req.k {
            // Too little history in the shop to fill the feed: typical products of the common
            // kinds follow, scored no higher than the row before, so the list stays in order.
            let mut exclude: HashSet<i64> = out.iter().map(|r| r.id).collect();
            exclude.extend(h.feedback.iter().map(|f| f.product_id));
            exclude.extend(
                h.events
                    .iter()
                    .filter(|e| e.kind == EventKind::Purchase)
                    .map(|e| e.product),
            );
            let mut last = out.last().map_or(f32::INFINITY, |r| r.score);
            for mut r in self.engine.starter(&req.filter, &exclude, req.k - out.len()) {
                r.score = r.score.min(last);
                last = r.score;
                out.push(r);
            }
        }
        Ok(out)
    }

    /// What shoppers bought with a product, best first: listed products with vectors, one
    /// colourway per group, never the product's own colourways.
    pub fn bought_together(&self, id: i64, k: usize) -> Vec<Recommendation> {
        let index = self.engine.index();
        let own_group = index.row(id).and_then(|r| self.engine.group_of_row(r));
        let mut groups: HashSet<u32> = own_group.into_iter().collect();
        let mut out = Vec::new();
        for &(other, score) in self.model.bought_with(id) {
            if out.len() >= k {
                break;
            }
            let Some(row) = index.row(other) else { continue };
            if other == id || !self.engine.is_ranked_row(row) {
                continue;
            }
            if let Some(g) = self.engine.group_of_row(row)
                && !groups.insert(g)
            {
                continue;
            }
            out.push(Recommendation {
                id: other,
                score,
                reason: Reason::BoughtWith { id },
                interest: None,
            });
        }
        out
    }

    /// The article type most of an interest's products have.
    pub fn interest_name(&self, i: &Interest) -> String {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for &r in &i.rows {
            if let Some(k) = self.engine.kind_of(self.engine.index().id(r)) {
                *count.entry(k).or_default() += 1;
            }
        }
        count
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(k, _)| k.to_string())
            .unwrap_or_default()
    }

    fn reason(&self, c: &Candidates, x: &Candidate, blend: &Blend) -> Reason {
        let kind = || self.engine.kind_of(x.id).unwrap_or("").to_string();
        match blend.main_source(&x.features) {
            REBUY => Reason::BuyAgain { times: x.times },
            TOGETHER if let Some(id) = x.with => Reason::BoughtWith { id },
            GROUP_TREND => Reason::SellingFast {
                group: c.segment.clone(),
            },
            LOOKS | LOOKS_NEW if let Some((n, sim)) = x.interest => {
                let medoid = c.interests.get(n).map_or(x.row, |i| i.medoid);
                let id = self.engine.index().id(medoid);
                if c.liked.contains(&id) {
                    Reason::YouLiked { id, similarity: sim }
                } else {
                    Reason::LooksLikeYours { id, similarity: sim }
                }
            }
            KIND if x.features[KIND] > 0.0 => Reason::KindYouBuy { category: kind() },
            KIND => Reason::Typical { category: kind() },
            MONTH => Reason::BestSeller { category: kind() },
            NEW => Reason::NewIn { category: kind() },
            FACTORS => Reason::ShoppersLikeYou,
            _ => Reason::SellingFast { group: None },
        }
    }
}
