//! The item side of the feed, learned from everyone's history: which products are bought
//! together (time-decayed co-purchases, normalised for popularity), what sells this week (for
//! everyone and per gender and age band) and this month, which kinds of product people buy
//! again, and a share of their look-alikes' sales for new products that nobody has bought yet.
//!
//! Trained in one pass over the events plus one per shopper; stored as bytes in the catalogue's
//! `feed_models` by `train --feed` ([`ShopModel::to_bytes`], the bought-together lists a row per
//! product), so a one-shot `recommend` reads it, and only its shopper's lists, instead of
//! learning again.

use serde::Serialize;
use std::collections::HashMap;

use super::factors::FACTORS;
use super::history::{DAY_MS, History};
use crate::catalog::{EventKind, Shopper};
use crate::recommend::{Engine, dot};
use crate::{Error, Result};

/// How the model learns; stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct ModelSettings {
    /// Two purchases of one shopper this many days apart or less count as bought together.
    pub pair_window_days: f32,
    /// A co-purchase this many days older than the newest event counts half.
    pub pair_half_life_days: f32,
    /// Look-alikes kept per product.
    pub neighbours: usize,
    /// "This week": the window of the best sellers, in days.
    pub trend_days: f32,
    /// "This month": the longer window, in days.
    pub season_days: f32,
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            pair_window_days: 14.0,
            pair_half_life_days: 60.0,
            neighbours: 40,
            trend_days: 7.0,
            season_days: 28.0,
        }
    }
}

/// A group of shoppers whose best sellers are counted apart: a gender and an age band.
pub fn segment_of(s: &Shopper) -> Option<String> {
    let gender = s.gender.trim().to_lowercase();
    let band = s.age.map(|a| match a {
        0..=24 => "under 25",
        25..=34 => "25-34",
        35..=49 => "35-49",
        _ => "50+",
    });
    match (gender.is_empty(), band) {
        (true, None) => None,
        (false, None) => Some(gender),
        (true, Some(b)) => Some(b.to_string()),
        (false, Some(b)) => Some(format!("{gender} {b}")),
    }
}

/// How much each source's evidence weighs, by the kind of event.
fn strength(kind: EventKind) -> f32 {
    kind.strength()
}

/// Weight of something `age_ms` old with a half-life of `half_life_days`.
pub fn decay(age_ms: i64, half_life_days: f32) -> f32 {
    let days = age_ms.max(0) as f32 / DAY_MS as f32;
    0.5f32.powf(days / half_life_days.max(1e-3))
}

/// Fraction of their look-alikes' monthly sales a product nobody has bought yet is credited with.
const NEW_STOCK_SHARE: f32 = 0.5;
/// Best sellers a new product is compared with, and how many of them it borrows from.
const NEW_STOCK_SELLERS: usize = 200;
const NEW_STOCK_NEAREST: usize = 10;
/// New products looked at per training (the newest ones when there are more).
const NEW_STOCK_MAX: usize = 5_000;
/// Shrinks co-purchase similarity of rarely bought pairs towards 0 (in purchases).
const PAIR_SHRINK: f32 = 0.5;
/// Purchases of one shopper paired with each other (the most recent), bounding heavy shoppers.
const PAIR_ITEMS: usize = 200;
/// Prior strength (purchase pairs) of the shop-wide rebuy rate in each kind's rate.
const REBUY_PRIOR: f32 = 20.0;

/// The trained item side.
#[derive(Debug, Clone, Default)]
pub struct ShopModel {
    /// How it was learned.
    pub settings: ModelSettings,
    /// The newest event it learned from.
    pub reference: i64,
    /// Events and likes it learned from.
    pub events: usize,
    /// Bought together: each product's neighbours with their similarity, best first.
    neighbours: HashMap<i64, Vec<(i64, f32)>>,
    /// Decayed sales of the last week, by product.
    week: HashMap<i64, f32>,
    /// The same per segment ([`segment_of`]).
    segments: HashMap<String, HashMap<i64, f32>>,
    /// Decayed sales of the last month, by product.
    month: HashMap<i64, f32>,
    /// Share of bought products bought again later, by article type.
    rebuy: HashMap<String, f32>,
    /// The shop-wide rebuy share (types with few purchases lean towards it).
    rebuy_all: f32,
    /// New products' credited sales (a share of their look-alikes').
    borrowed: HashMap<i64, f32>,
    /// Derived on load: best sellers of the week, overall and per segment, best first.
    top_week: Vec<(i64, f32)>,
    top_segment: HashMap<String, Vec<(i64, f32)>>,
    /// Derived on load: best sellers of the month per article type, best first.
    top_kind: HashMap<String, Vec<(i64, f32)>>,
    top_borrowed: Vec<(i64, f32)>,
    top_month: f32,
    /// Latent factors of the products (implicit ALS).
    pub factors: super::factors::Factors,
}

/// Sorted best first, ties by id.
fn ranked(m: &HashMap<i64, f32>, n: usize) -> Vec<(i64, f32)> {
    let mut v: Vec<(i64, f32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Best sellers kept per list.
const TOP: usize = 300;
/// Events "this week" must hold before it counts as a trend; fewer widen it back (see
/// `ShopModel::trend_days`).
const MIN_TREND_EVENTS: usize = 50;

impl ShopModel {
    /// Learns from `history`; `engine` tells each product's article type and vector.
    pub fn train(history: &History, engine: &Engine, settings: ModelSettings) -> Self {
        let reference = history.newest().unwrap_or(0);
        let mut m = ShopModel {
            settings,
            reference,
            events: history.events.len() + history.feedback.len(),
            ..Default::default()
        };
        m.count_sales(history);
        m.count_pairs(history);
        m.count_rebuys(history, engine);
        m.borrow_for_new_stock(history, engine);
        m.derive(engine);
        m.factors = super::factors::Factors::train(history, reference);
        m
    }

    /// The days "this week" looks back: `trend_days`, or as far as the newest
    /// [`MIN_TREND_EVENTS`] events when the last days are quiet. A trend needs sales: a shop
    /// whose history stops and starts again (one event today after a year of nothing) would
    /// otherwise show that one event as everything that sells now.
    fn trend_days(&self, history: &History) -> f32 {
        let s = self.settings;
        let k = MIN_TREND_EVENTS.min(history.events.len());
        if k == 0 {
            return s.trend_days;
        }
        let mut times: Vec<i64> = history.events.iter().map(|e| e.at).collect();
        let (_, nth, _) = times.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
        let span = ((self.reference - *nth) / DAY_MS) as f32 + 1.0;
        s.trend_days.max(span)
    }

    /// Week and month sales, overall and per segment.
    fn count_sales(&mut self, history: &History) {
        let s = self.settings;
        let trend_days = self.trend_days(history);
        let week_from = self.reference - (trend_days * DAY_MS as f32) as i64;
        let month_from = self.reference - (s.season_days * DAY_MS as f32) as i64;
        let segments: HashMap<i64, String> = history
            .shoppers
            .iter()
            .filter_map(|(u, sh)| segment_of(sh).map(|g| (*u, g)))
            .collect();
        for e in history.events.iter().filter(|e| e.at >= month_from.min(week_from)) {
            let age = self.reference - e.at;
            let w = strength(e.kind) * e.count as f32;
            if e.at >= month_from {
                *self.month.entry(e.product).or_default() += w * decay(age, s.season_days / 2.0);
            }
            if e.at >= week_from {
                let w = w * decay(age, trend_days / 2.0);
                *self.week.entry(e.product).or_default() += w;
                if let Some(g) = segments.get(&e.user) {
                    *self
                        .segments
                        .entry(g.clone())
                        .or_default()
                        .entry(e.product)
                        .or_default() += w;
                }
            }
        }
    }

    /// Co-purchases: pairs of one shopper's purchases (and likes) close in time, decayed by
    /// age, normalised by both products' popularity (cosine), the best kept per product.
    fn count_pairs(&mut self, history: &History) {
        let s = self.settings;
        let window = (s.pair_window_days * DAY_MS as f32) as i64;
        // Each shopper's (product, time, strength), oldest first.
        let mut by_user: HashMap<i64, Vec<(i64, i64, f32)>> = HashMap::new();
        for e in &history.events {
            by_user
                .entry(e.user)
                .or_default()
                .push((e.product, e.at, strength(e.kind)));
        }
        for (u, f) in history.feedback.iter().filter(|(_, f)| f.is_like()) {
            by_user.entry(*u).or_default().push((f.product_id, f.at, 1.0));
        }
        let mut dense: HashMap<i64, u32> = HashMap::new();
        let mut ids: Vec<i64> = Vec::new();
        let mut pop: Vec<f32> = Vec::new();
        let mut pairs: Vec<Vec<(u32, f32)>> = Vec::new();
        let mut users: Vec<_> = by_user.into_iter().collect();
        users.sort_by_key(|(u, _)| *u);
        for (_, mut items) in users {
            items.sort_by_key(|&(p, at, _)| (at, p));
            if items.len() > PAIR_ITEMS {
                items.drain(..items.len() - PAIR_ITEMS);
            }
            // One shopper counts each product once towards its popularity (their newest time).
            let mut own: HashMap<i64, (i64, f32)> = HashMap::new();
            for &(p, at, w) in &items {
                let e = own.entry(p).or_insert((at, w));
                e.0 = e.0.max(at);
                e.1 = e.1.max(w);
            }
            let mut mine: Vec<(u32, i64, f32)> = Vec::with_capacity(own.len());
            let mut own: Vec<_> = own.into_iter().collect();
            own.sort_by_key(|(p, (at, _))| (*at, *p));
            for (p, (at, w)) in own {
                let d = *dense.entry(p).or_insert_with(|| {
                    ids.push(p);
                    pop.push(0.0);
                    pairs.push(Vec::new());
                    (ids.len() - 1) as u32
                });
                pop[d as usize] += w * decay(self.reference - at, s.pair_half_life_days);
                mine.push((d, at, w));
            }
            for (i, &(a, ta, wa)) in mine.iter().enumerate() {
                for &(b, tb, wb) in &mine[i + 1..] {
                    let gap = (tb - ta).abs();
                    if gap > window {
                        continue;
                    }
                    let close = 1.0 / (1.0 + gap as f32 / DAY_MS as f32);
                    let w = wa * wb * close * decay(self.reference - ta.max(tb), s.pair_half_life_days);
                    pairs[a as usize].push((b, w));
                    pairs[b as usize].push((a, w));
                }
            }
        }
        for (a, mut list) in pairs.into_iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            list.sort_by_key(|&(b, _)| b);
            let mut merged: Vec<(i64, f32)> = Vec::new();
            let mut i = 0;
            while i < list.len() {
                let b = list[i].0;
                let mut c = 0.0;
                while i < list.len() && list[i].0 == b {
                    c += list[i].1;
                    i += 1;
                }
                let norm = (pop[a] * pop[b as usize]).sqrt() + PAIR_SHRINK;
                merged.push((ids[b as usize], c / norm));
            }
            merged.sort_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
            merged.truncate(s.neighbours);
            self.neighbours.insert(ids[a], merged);
        }
    }

    /// Per article type, the share of (shopper, product) purchases that were bought again on a
    /// later day.
    fn count_rebuys(&mut self, history: &History, engine: &Engine) {
        let mut first: HashMap<(i64, i64), (i64, bool)> = HashMap::new();
        for e in history.events.iter().filter(|e| e.kind == EventKind::Purchase) {
            let day = e.at.div_euclid(DAY_MS);
            let entry = first.entry((e.user, e.product)).or_insert((day, false));
            if day > entry.0 {
                entry.1 = true;
            }
        }
        let mut by_kind: HashMap<&str, (f32, f32)> = HashMap::new();
        let (mut again, mut all) = (0.0f32, 0.0f32);
        for ((_, p), (_, rebought)) in &first {
            let Some(kind) = engine.kind_of(*p) else { continue };
            let e = by_kind.entry(kind).or_default();
            e.1 += 1.0;
            all += 1.0;
            if *rebought {
                e.0 += 1.0;
                again += 1.0;
            }
        }
        self.rebuy_all = if all > 0.0 { again / all } else { 0.0 };
        self.rebuy = by_kind
            .into_iter()
            .map(|(k, (a, n))| (k.to_string(), (a + REBUY_PRIOR * self.rebuy_all) / (n + REBUY_PRIOR)))
            .collect();
    }

    /// Products with no event and no like yet get a share of the month's sales of the best
    /// sellers they look most like, so new stock is not buried (content to collaborative).
    fn borrow_for_new_stock(&mut self, history: &History, engine: &Engine) {
        let index = engine.index();
        let mut known: std::collections::HashSet<i64> = history.events.iter().map(|e| e.product).collect();
        known.extend(history.feedback.iter().map(|(_, f)| f.product_id));
        let sellers: Vec<(usize, f32)> = ranked(&self.month, NEW_STOCK_SELLERS)
            .into_iter()
            .filter_map(|(id, s)| index.row(id).map(|r| (r, s)))
            .collect();
        if sellers.is_empty() || known.is_empty() {
            return;
        }
        let seller_vectors: Vec<_> = sellers.iter().map(|&(r, _)| index.vector(r)).collect();
        // The newest products first: the highest ids, as catalogues number them.
        let mut fresh: Vec<usize> = (0..index.len())
            .filter(|&r| engine.is_ranked_row(r) && !known.contains(&index.id(r)))
            .collect();
        fresh.sort_by_key(|&r| std::cmp::Reverse(index.id(r)));
        fresh.truncate(NEW_STOCK_MAX);
        for r in fresh {
            let x = index.vector(r);
            let mut near: Vec<(f32, f32)> = seller_vectors
                .iter()
                .zip(&sellers)
                .map(|(v, &(_, s))| (dot(v, &x), s))
                .collect();
            near.sort_by(|a, b| b.0.total_cmp(&a.0));
            near.truncate(NEW_STOCK_NEAREST);
            let (num, den) = near
                .iter()
                .fold((0.0, 0.0), |(n, d), &(c, s)| (n + c.max(0.0) * s, d + c.max(0.0)));
            if den > 0.0 {
                self.borrowed.insert(index.id(r), NEW_STOCK_SHARE * num / den);
            }
        }
    }

    /// The ranked lists the feed draws candidates from.
    fn derive(&mut self, engine: &Engine) {
        self.top_week = ranked(&self.week, TOP);
        self.top_segment = self.segments.iter().map(|(g, m)| (g.clone(), ranked(m, TOP))).collect();
        let mut kinds: HashMap<String, HashMap<i64, f32>> = HashMap::new();
        for (&p, &s) in &self.month {
            if let Some(k) = engine.kind_of(p) {
                kinds.entry(k.to_string()).or_default().insert(p, s);
            }
        }
        self.top_kind = kinds.into_iter().map(|(k, m)| (k, ranked(&m, 60))).collect();
        self.top_borrowed = ranked(&self.borrowed, TOP);
        self.top_month = self.month.values().copied().fold(0.0, f32::max);
    }

    /// The most any product sold this month (decayed).
    pub fn best_sellers_month_max(&self) -> f32 {
        self.top_month
    }

    /// How many products have co-purchase neighbours.
    pub fn products_with_neighbours(&self) -> usize {
        self.neighbours.len()
    }

    /// Products bought with `id`, best first.
    pub fn bought_with(&self, id: i64) -> &[(i64, f32)] {
        self.neighbours.get(&id).map_or(&[], Vec::as_slice)
    }

    /// This week's decayed sales of a product, overall or in a segment.
    pub fn week_sales(&self, id: i64, segment: Option<&str>) -> f32 {
        match segment {
            Some(g) => self.segments.get(g).and_then(|m| m.get(&id)).copied().unwrap_or(0.0),
            None => self.week.get(&id).copied().unwrap_or(0.0),
        }
    }

    /// This month's decayed sales of a product.
    pub fn month_sales(&self, id: i64) -> f32 {
        self.month.get(&id).copied().unwrap_or(0.0)
    }

    /// A new product's credited sales.
    pub fn borrowed_sales(&self, id: i64) -> f32 {
        self.borrowed.get(&id).copied().unwrap_or(0.0)
    }

    /// The share of purchases of this article type bought again.
    pub fn rebuy_rate(&self, kind: Option<&str>) -> f32 {
        kind.and_then(|k| self.rebuy.get(k)).copied().unwrap_or(self.rebuy_all)
    }

    /// True when products of this kind are bought again by at least `min` of their buyers and
    /// more often than the shop's products on the whole (basics, not everything).
    pub fn is_rebought(&self, kind: Option<&str>, min: f32) -> bool {
        let r = self.rebuy_rate(kind);
        r >= min && r > self.rebuy_all
    }

    /// This week's best sellers, overall or in a segment (empty when it has none).
    pub fn best_sellers(&self, segment: Option<&str>) -> &[(i64, f32)] {
        match segment {
            Some(g) => self.top_segment.get(g).map_or(&[], Vec::as_slice),
            None => &self.top_week,
        }
    }

    /// This month's best sellers of an article type.
    pub fn best_of_kind(&self, kind: &str) -> &[(i64, f32)] {
        self.top_kind.get(kind).map_or(&[], Vec::as_slice)
    }

    /// New products with the most credited sales.
    pub fn new_stock(&self) -> &[(i64, f32)] {
        &self.top_borrowed
    }

    /// The model as bytes, for `feed_models.data`: everything but the bought-together lists
    /// ([`ShopModel::neighbour_bytes`]), with the ranked lists made, so loading sorts nothing.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer(MAGIC.to_vec());
        w.i64(self.reference);
        w.u64(self.events as u64);
        w.map(&self.week);
        w.map(&self.month);
        w.map(&self.borrowed);
        w.named(&self.segments, |w, m| w.map(m));
        w.f32(self.rebuy_all);
        w.named(&self.rebuy, |w, x| w.f32(*x));
        w.pairs(&self.top_week);
        w.named(&self.top_segment, |w, v| w.pairs(v));
        w.named(&self.top_kind, |w, v| w.pairs(v));
        w.pairs(&self.top_borrowed);
        w.f32(self.top_month);
        let f = &self.factors;
        w.u64(f.ids.len() as u64);
        for (r, id) in f.ids.iter().enumerate() {
            w.i64(*id);
            f.y[r * FACTORS..(r + 1) * FACTORS].iter().for_each(|x| w.f32(*x));
        }
        f.gram.iter().for_each(|x| w.f32(*x));
        w.0
    }

    /// True when `bytes` are in the format this lookbook writes (false: another version's).
    pub fn is_this_format(bytes: &[u8]) -> bool {
        bytes.starts_with(MAGIC)
    }

    /// Each product's bought-together list as bytes, for `feed_neighbours`.
    pub fn neighbour_bytes(&self) -> Vec<(i64, Vec<u8>)> {
        let mut out: Vec<(i64, Vec<u8>)> = self
            .neighbours
            .iter()
            .map(|(id, list)| {
                let mut w = Writer(Vec::with_capacity(8 + list.len() * 12));
                w.pairs(list);
                (*id, w.0)
            })
            .collect();
        out.sort_by_key(|x| x.0);
        out
    }

    /// Reads a model written by [`ShopModel::to_bytes`] with the bought-together lists read
    /// (all, or only those a query needs); `what` names it in errors.
    pub fn from_bytes(
        bytes: &[u8],
        neighbours: &[(i64, Vec<u8>)],
        settings: ModelSettings,
        what: &str,
    ) -> Result<Self> {
        let mut r = Reader { b: bytes, at: 0, what };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(r.damaged("not a lookbook feed model"));
        }
        let mut m = ShopModel {
            settings,
            reference: r.i64()?,
            events: r.u64()? as usize,
            ..Default::default()
        };
        m.week = r.map()?;
        m.month = r.map()?;
        m.borrowed = r.map()?;
        m.segments = r.named(|r| r.map())?;
        m.rebuy_all = r.f32()?;
        m.rebuy = r.named(|r| r.f32())?;
        m.top_week = r.pairs()?;
        m.top_segment = r.named(|r| r.pairs())?;
        m.top_kind = r.named(|r| r.pairs())?;
        m.top_borrowed = r.pairs()?;
        m.top_month = r.f32()?;
        let n = r.len(8 + 4 * FACTORS)?;
        let (mut ids, mut y) = (Vec::with_capacity(n), Vec::with_capacity(n * FACTORS));
        for _ in 0..n {
            ids.push(r.i64()?);
            for _ in 0..FACTORS {
                y.push(r.f32()?);
            }
        }
        // An empty model (no history) has no Gram matrix either.
        let gram_len = if n > 0 { FACTORS * FACTORS } else { 0 };
        let gram = (0..gram_len).map(|_| r.f32()).collect::<Result<Vec<f32>>>()?;
        m.factors = super::factors::Factors {
            rows: ids.iter().enumerate().map(|(r, id)| (*id, r)).collect(),
            ids,
            y,
            gram,
        };
        if r.at != bytes.len() {
            return Err(r.damaged("trailing bytes"));
        }
        for (id, b) in neighbours {
            let what = format!("{what}, bought-together list of product {id}");
            let mut r = Reader { b, at: 0, what: &what };
            let list = r.pairs()?;
            if r.at != b.len() {
                return Err(r.damaged("trailing bytes"));
            }
            m.neighbours.insert(*id, list);
        }
        Ok(m)
    }
}

/// The format's name and version: a model written in another version is learned again, not read.
const MAGIC: &[u8] = b"lookbook-feed-2\n";

/// Little-endian bytes.
struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn pairs(&mut self, v: &[(i64, f32)]) {
        self.u64(v.len() as u64);
        for &(id, x) in v {
            self.i64(id);
            self.f32(x);
        }
    }
    fn map(&mut self, m: &HashMap<i64, f32>) {
        let mut v: Vec<(i64, f32)> = m.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_by_key(|p| p.0);
        self.pairs(&v);
    }
    /// Named values, by name.
    fn named<T>(&mut self, m: &HashMap<String, T>, mut each: impl FnMut(&mut Self, &T)) {
        let mut names: Vec<&String> = m.keys().collect();
        names.sort();
        self.u64(names.len() as u64);
        for n in names {
            self.str(n);
            each(self, &m[n]);
        }
    }
}

/// Reads what [`Writer`] wrote, every length checked against the bytes left.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    what: &'a str,
}

impl Reader<'_> {
    fn damaged(&self, why: &str) -> Error {
        Error::Invalid(format!(
            "{}: damaged at byte {} ({why}); train it again with `lookbook train --feed`",
            self.what, self.at
        ))
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.b.len() - self.at < n {
            return Err(self.damaged("cut short"));
        }
        self.at += n;
        Ok(&self.b[self.at - n..self.at])
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
    fn f32(&mut self) -> Result<f32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        let v = f32::from_le_bytes(a);
        if v.is_finite() {
            Ok(v)
        } else {
            Err(self.damaged("a value that is not a number"))
        }
    }
    /// A count of items of at least `each` bytes, checked against what is left.
    fn len(&mut self, each: usize) -> Result<usize> {
        let n = self.u64()?;
        if n > ((self.b.len() - self.at) / each.max(1)) as u64 {
            return Err(self.damaged("a count longer than the data"));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| self.damaged("text that is not UTF-8"))
    }
    fn pairs(&mut self) -> Result<Vec<(i64, f32)>> {
        let n = self.len(12)?;
        (0..n).map(|_| Ok((self.i64()?, self.f32()?))).collect()
    }
    fn map(&mut self) -> Result<HashMap<i64, f32>> {
        Ok(self.pairs()?.into_iter().collect())
    }
    fn named<T>(&mut self, mut each: impl FnMut(&mut Self) -> Result<T>) -> Result<HashMap<String, T>> {
        let n = self.len(12)?;
        let mut out = HashMap::with_capacity(n);
        for _ in 0..n {
            let name = self.str()?;
            out.insert(name, each(self)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Event, Feedback};
    use crate::recommend::FlatIndex;

    fn model() -> (Engine, ShopModel) {
        let engine = Engine::new(
            crate::synthetic::synthetic_products(60),
            FlatIndex::new(crate::synthetic::synthetic_matrix(60, 8, 3)),
        );
        let mut h = History::default();
        for u in 0..20i64 {
            for (d, p) in [(0, 1 + u % 5), (1, 10 + u % 3), (9, 1 + u % 5)] {
                h.events.push(Event {
                    user: u,
                    product: p,
                    kind: EventKind::Purchase,
                    at: (u + d) * DAY_MS,
                    count: 1,
                    price: None,
                });
            }
        }
        h.events.sort_by_key(|e| e.at);
        h.feedback.push((
            3,
            Feedback {
                product_id: 30,
                weight: 1.0,
                at: 5 * DAY_MS,
            },
        ));
        // The last shopper bought in the last week (days 19, 20 and 28 of 28).
        h.shoppers.insert(
            19,
            Shopper {
                age: Some(30),
                gender: "Women".into(),
            },
        );
        let m = ShopModel::train(&h, &engine, ModelSettings::default());
        (engine, m)
    }

    #[test]
    fn one_sale_after_a_quiet_year_is_not_all_that_sells_now() {
        let engine = Engine::new(
            crate::synthetic::synthetic_products(60),
            FlatIndex::new(crate::synthetic::synthetic_matrix(60, 8, 3)),
        );
        let buy = |user: i64, product: i64, day: i64| Event {
            user,
            product,
            kind: EventKind::Purchase,
            at: day * DAY_MS,
            count: 1,
            price: None,
        };
        let mut h = History::default();
        // Two hundred sales in a busy month: product 1 most, then 2.
        for i in 0..200i64 {
            h.events.push(buy(i, if i % 3 == 0 { 2 } else { 1 }, i / 7));
        }
        // A year later, one sale of product 40 (a website event arriving "now").
        h.events.push(buy(999, 40, 400));
        let m = ShopModel::train(&h, &engine, ModelSettings::default());
        let top: Vec<i64> = m.best_sellers(None).iter().map(|(id, _)| *id).collect();
        assert_eq!(top[..2], [1, 2], "{top:?}");
        assert!(top.contains(&40), "the new sale still counts: {top:?}");
        // A busy last week is left as it is: seven days.
        let mut busy = History::default();
        for i in 0..300i64 {
            busy.events.push(buy(i, 1 + i % 4, 100 + i % 7));
        }
        busy.events.push(buy(1, 50, 10));
        busy.events.sort_by_key(|e| e.at);
        let m = ShopModel::train(&busy, &engine, ModelSettings::default());
        assert!(
            !m.best_sellers(None).iter().any(|(id, _)| *id == 50),
            "a sale 90 days before a busy week is not this week's: {:?}",
            m.best_sellers(None)
        );
    }

    #[test]
    fn a_stored_model_reads_back_as_it_was_and_damage_is_named() {
        let (_engine, m) = model();
        assert!(!m.bought_with(1).is_empty(), "products bought together have lists");
        let (bytes, lists) = (m.to_bytes(), m.neighbour_bytes());
        let back = ShopModel::from_bytes(&bytes, &lists, m.settings, "test").unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(back.neighbour_bytes(), lists);
        assert_eq!(back.bought_with(1), m.bought_with(1));
        assert_eq!(
            back.best_sellers(Some("women 25-34")),
            m.best_sellers(Some("women 25-34"))
        );
        // Only the lists asked for: the rest of the model is whole.
        let one: Vec<_> = lists.iter().filter(|l| l.0 == 1).cloned().collect();
        let part = ShopModel::from_bytes(&bytes, &one, m.settings, "test").unwrap();
        assert_eq!(part.bought_with(1), m.bought_with(1));
        assert!(part.bought_with(10).is_empty());
        assert_eq!(part.best_sellers(None), m.best_sellers(None));
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            let e = ShopModel::from_bytes(&bytes[..cut], &lists, m.settings, "model 7").unwrap_err();
            assert!(e.to_string().contains("model 7: damaged"), "{e}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(ShopModel::from_bytes(&long, &lists, m.settings, "m").is_err());
        let mut bad = lists.clone();
        bad[0].1.truncate(5);
        let e = ShopModel::from_bytes(&bytes, &bad, m.settings, "m").unwrap_err();
        assert!(e.to_string().contains("bought-together list of product"), "{e}");
    }

    #[test]
    fn rebuys_count_a_later_day_and_segments_get_their_own_best_sellers() {
        let (engine, m) = model();
        // Products 1..=5 were bought again nine days later by every shopper.
        let kind = engine.kind_of(1);
        assert!(m.rebuy_rate(kind) > m.rebuy_rate(engine.kind_of(10)));
        assert!(!m.best_sellers(Some("women 25-34")).is_empty());
        assert!(m.best_sellers(Some("men 50+")).is_empty());
    }
}
