//! Ranking with an [`Engine`]: look-alikes, the blended personal feed, MMR diversity,
//! explanations, cold start. Pure computation over the vectors in memory.
//!
//! Blending is one search: with unit vectors q (query) and p (profile),
//! `alpha * q.x + (1 - alpha) * p.x == (alpha * q + (1 - alpha) * p).x`, so the blended ranking
//! costs exactly one pass over the matrix however many likes a user has.

use serde::Serialize;
use std::collections::{HashMap, HashSet};

use super::engine::Engine;
use super::index::{VectorIndex, dot, normalize};
use super::profile::Profile;
use crate::catalog::ProductFilter;
use crate::{Error, Result};

/// Why a result is there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// It looks like the query item.
    LooksLike {
        /// The query product (None for a photo query).
        id: Option<i64>,
        /// Cosine with the query.
        similarity: f32,
    },
    /// It looks like something the user liked.
    YouLiked {
        /// The liked product that contributed most.
        id: i64,
        /// Cosine with that product.
        similarity: f32,
    },
    /// Cold start: liked by many users in its category.
    Popular {
        /// Its article type.
        category: String,
        /// Number of users who liked it.
        likes: usize,
    },
    /// Cold start: a typical item of a common category.
    Typical {
        /// Its article type.
        category: String,
    },
    /// It looks like one of the shopper's interests, named by a product they bought there.
    LooksLikeYours {
        /// The bought product most like the rest of that interest.
        id: i64,
        /// Cosine with the interest.
        similarity: f32,
    },
    /// The shopper bought it before, and things of its kind are bought again.
    BuyAgain {
        /// Times they bought it.
        times: u32,
    },
    /// Shoppers who bought one of the shopper's products bought this too.
    BoughtWith {
        /// The shopper's product it was most bought with.
        id: i64,
    },
    /// One of this week's best sellers, in the shopper's group where known.
    SellingFast {
        /// The group (gender and age band), or none for everyone.
        group: Option<String>,
    },
    /// A best seller of a kind of product the shopper buys.
    KindYouBuy {
        /// Its article type.
        category: String,
    },
    /// One of this month's best sellers.
    BestSeller {
        /// Its article type.
        category: String,
    },
    /// Shoppers who buy what this shopper buys bought it (latent factors).
    ShoppersLikeYou,
    /// New stock nobody has bought yet that looks like the best sellers.
    NewIn {
        /// Its article type.
        category: String,
    },
}

impl Reason {
    /// One line for people, naming products through `name` ("because you liked ...").
    pub fn describe(&self, name: impl Fn(i64) -> String) -> String {
        match self {
            Reason::LooksLike {
                id: Some(id),
                similarity,
            } => format!("looks like {} ({similarity:.2})", name(*id)),
            Reason::LooksLike { id: None, similarity } => format!("looks like your photo ({similarity:.2})"),
            Reason::YouLiked { id, similarity } => format!("because you liked {} ({similarity:.2})", name(*id)),
            Reason::Popular { category, likes } => format!("popular in {category} ({likes} likes)"),
            Reason::Typical { category } => format!("a typical {category}"),
            Reason::LooksLikeYours { id, similarity } => {
                format!("looks like the {} you bought ({similarity:.2})", name(*id))
            }
            Reason::BuyAgain { times: 1 } => "you buy these again (bought once)".to_string(),
            Reason::BuyAgain { times } => format!("you buy these again (bought {times} times)"),
            Reason::BoughtWith { id } => format!("bought with {}", name(*id)),
            Reason::SellingFast { group: Some(g) } => format!("selling fast this week among {g}"),
            Reason::SellingFast { group: None } => "selling fast this week".to_string(),
            Reason::KindYouBuy { category } => format!("a best seller among the {category} you buy"),
            Reason::BestSeller { category } => format!("a best seller in {category} this month"),
            Reason::ShoppersLikeYou => "shoppers who buy what you buy bought this".to_string(),
            Reason::NewIn { category } => format!("new in {category}, like this month's best sellers"),
        }
    }
}

/// One ranked result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// Product id.
    pub id: i64,
    /// The ranking score (blended cosine; centrality for cold start).
    pub score: f32,
    /// Why it is here.
    pub reason: Reason,
    /// The shopper's interest it serves (the feed from a shop's history), named by its most
    /// common article type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interest: Option<String>,
}

/// What to rank.
#[derive(Debug, Clone, Serialize)]
pub struct Request {
    /// Blend towards this product's look (the Similar tab, `--item`).
    pub item: Option<i64>,
    /// Or towards this vector (a photo query).
    #[serde(skip)]
    pub vector: Option<Vec<f32>>,
    /// Only products passing this.
    pub filter: ProductFilter,
    /// How many results.
    pub k: usize,
    /// Weight of the query against the profile, 0..=1.
    pub alpha: f32,
    /// MMR diversity, 0 (off) ..= 1.
    pub diversity: f32,
}

/// The diversity the feed starts with in the app and `recommend`: in `eval --personal` sweeps
/// (0 to 0.7) on the demo and the full catalogue, 0.3 raised hit@10 and nDCG@10 over no MMR on
/// both without lowering taste precision; 0.5 and above cost accuracy.
pub const DEFAULT_DIVERSITY: f32 = 0.3;

/// How much a query item counts against the user's taste when both are given (`recommend
/// --item`, the app's Similar tab): 1.0 is the item alone, 0.0 the taste alone.
pub const DEFAULT_ALPHA: f32 = 0.5;

impl Default for Request {
    fn default() -> Self {
        Request {
            item: None,
            vector: None,
            filter: ProductFilter::default(),
            k: 10,
            alpha: DEFAULT_ALPHA,
            diversity: 0.0,
        }
    }
}

impl Engine {
    /// Look-alikes of a product (itself excluded).
    pub fn similar(&self, id: i64, filter: &ProductFilter, k: usize) -> Result<Vec<Recommendation>> {
        let req = Request {
            item: Some(id),
            filter: filter.clone(),
            k,
            alpha: 1.0,
            ..Default::default()
        };
        self.recommend(&Profile::default(), &req)
    }

    /// Look-alikes of a vector (a photo query).
    pub fn similar_to_vector(&self, v: &[f32], filter: &ProductFilter, k: usize) -> Result<Vec<Recommendation>> {
        let req = Request {
            vector: Some(v.to_vec()),
            filter: filter.clone(),
            k,
            alpha: 1.0,
            ..Default::default()
        };
        self.recommend(&Profile::default(), &req)
    }

    /// The blended ranking for a profile and an optional query; cold start when neither has a
    /// vector. In steps: the query's vector, what may not be shown, the product's look (its
    /// expansion), the blend of query and taste, the candidates (filtered, one colourway per
    /// group, MMR at the head), and a reason for each.
    pub fn recommend(&self, profile: &Profile, req: &Request) -> Result<Vec<Recommendation>> {
        if self.index.is_empty() || req.k == 0 {
            return Ok(Vec::new());
        }
        if self.partial && !req.filter.is_empty() {
            return Err(Error::Invalid(
                "a one-shot engine holds no products to filter; load it with Engine::load".into(),
            ));
        }
        let alpha = if req.alpha.is_finite() {
            req.alpha.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let query = self.query_vector(req)?;
        let exclude = self.excluded(profile, req);
        // The reason names the likeness to the product itself, not to its expansion.
        let item_look = query.clone();
        let query = match (req.item, query) {
            (Some(item), Some(q)) => Some(self.look_of(item, &q)),
            (_, q) => q,
        };
        let (qw, pw) = match (&query, &profile.vector) {
            (Some(_), Some(_)) => (alpha, 1.0 - alpha),
            (Some(_), None) => (1.0, 0.0),
            (None, Some(_)) => (0.0, 1.0),
            (None, None) => return Ok(self.cold_start(profile, req, &exclude)),
        };
        let mut blended = vec![0.0f32; self.index.dim()];
        for (v, w) in [(&query, qw), (&profile.vector, pw)] {
            if let Some(v) = v {
                blended.iter_mut().zip(v.iter()).for_each(|(b, x)| *b += w * x);
            }
        }
        let chosen = self.candidates(&blended, req, &exclude)?;
        Ok(chosen
            .into_iter()
            .map(|(row, score)| Recommendation {
                id: self.index.id(row),
                score,
                reason: self.reason(row, item_look.as_deref(), profile, req.item, (qw, pw)),
                interest: None,
            })
            .collect())
    }

    /// The query's vector: the item's, or the given one checked and normalised.
    fn query_vector(&self, req: &Request) -> Result<Option<Vec<f32>>> {
        Ok(match (req.item, &req.vector) {
            (Some(id), _) => {
                if !self.partial && self.product(id).is_none() {
                    return Err(Error::NotFound(format!("product {id} is not in the catalogue")));
                }
                Some(
                    self.vector(id)
                        .ok_or_else(|| {
                            Error::NotFound(format!("product {id} has no embedding yet; run `lookbook embed`"))
                        })?
                        .to_vec(),
                )
            }
            (None, Some(v)) => {
                let mut v = v.clone();
                if v.len() != self.index.dim() || !normalize(&mut v) {
                    return Err(Error::Invalid(format!(
                        "query vector has {} values, the index {}; is it from another model?",
                        v.len(),
                        self.index.dim()
                    )));
                }
                Some(v)
            }
            (None, None) => None,
        })
    }

    /// What may not be shown: what the user has seen, what the shop unlisted, and the query
    /// item with its own colourways (look-alikes never list them).
    fn excluded(&self, profile: &Profile, req: &Request) -> HashSet<i64> {
        let mut exclude = profile.seen.clone();
        exclude.extend(&self.unlisted);
        if let Some(id) = req.item {
            exclude.insert(id);
            if let Some(group) = self.group_of(id) {
                exclude.extend(self.facts.rows_in_group(group).map(|r| self.index.id(r)));
            }
        }
        exclude
    }

    /// A product's look: the product with its closest neighbours (alpha query expansion, see
    /// `rerank`), found among everything listed, so a filter narrows the results and never the
    /// query. Its own colourways count here (the same garment in another colour is the best
    /// evidence of what it is, issue 40) though they are never among the results.
    fn look_of(&self, item: i64, q: &[f32]) -> Vec<f32> {
        let other = |r: usize| self.index.id(r) != item && self.facts.ranked(r);
        let how = super::rerank::QUERY_EXPANSION;
        let near = self.index.search(q, how.n, &other);
        super::rerank::mix(q, self.index.as_ref(), &near, how)
    }

    /// The best rows for `blended`: allowed by the filter and exclusions, one colourway per
    /// group, MMR over the head when the request asks for diversity.
    fn candidates(&self, blended: &[f32], req: &Request, exclude: &HashSet<i64>) -> Result<Vec<(usize, f32)>> {
        let diversity = if req.diversity.is_finite() {
            req.diversity.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let head = req.k.min(MMR_DEPTH);
        let pool = if diversity > 0.0 {
            req.k.max(head * 5).max(50)
        } else {
            req.k
        };
        // One colourway per group: ask for more, keep each group's best.
        let pool = if self.grouped { pool * 3 } else { pool };
        let allow = |r: usize| self.allows(r, &req.filter, exclude);
        let cand = self.one_per_group(
            self.index
                .search_filtered(blended, pool, &req.filter, exclude, &allow)?,
        );
        let mut chosen = if diversity > 0.0 {
            mmr_head(self.index.as_ref(), cand, req.k, head, 1.0 - diversity)
        } else {
            cand
        };
        chosen.truncate(req.k);
        Ok(chosen)
    }

    /// Why a row is here: like the query item, or like something the user liked, whichever
    /// weighs more in its score (`weights` are the query's and the taste's).
    fn reason(
        &self,
        row: usize,
        item_look: Option<&[f32]>,
        profile: &Profile,
        item: Option<i64>,
        weights: (f32, f32),
    ) -> Reason {
        let (qw, pw) = weights;
        let x = self.index.vector(row);
        let q_part = item_look.map(|q| dot(q, &x));
        match (q_part, self.best_like(profile, &x)) {
            (Some(qs), Some((lid, ls))) if qw * qs < pw * ls => Reason::YouLiked {
                id: lid,
                similarity: ls,
            },
            (Some(qs), _) => Reason::LooksLike {
                id: item,
                similarity: qs,
            },
            (None, Some((lid, ls))) => Reason::YouLiked {
                id: lid,
                similarity: ls,
            },
            (None, None) => Reason::Typical {
                category: String::new(),
            },
        }
    }

    /// The liked product most responsible for `x`, weighted by recency.
    fn best_like(&self, profile: &Profile, x: &[f32]) -> Option<(i64, f32)> {
        profile
            .likes
            .iter()
            .map(|&(r, w)| (r, w, dot(&self.index.vector(r), x)))
            .max_by(|a, b| (a.1 * a.2).total_cmp(&(b.1 * b.2)))
            .map(|(r, _, s)| (self.index.id(r), s))
    }

    fn centrality(&self) -> &[f32] {
        self.centrality.get_or_init(|| {
            let dim = self.index.dim();
            let mut sums: HashMap<u32, Vec<f32>> = HashMap::new();
            for r in 0..self.index.len() {
                if let Some(kind) = self.facts.kind(r) {
                    let s = sums.entry(kind).or_insert_with(|| vec![0.0; dim]);
                    s.iter_mut().zip(self.index.vector(r).iter()).for_each(|(a, b)| *a += b);
                }
            }
            sums.values_mut().for_each(|v| {
                normalize(v);
            });
            (0..self.index.len())
                .map(|r| {
                    self.facts
                        .kind(r)
                        .and_then(|kind| sums.get(&kind))
                        .map(|c| dot(c, &self.index.vector(r)))
                        .unwrap_or(0.0)
                })
                .collect()
        })
    }

    /// The starter feed (typical products of the common kinds, popular ones first), leaving
    /// out `exclude`: what a feed falls back on when it has too little to go on.
    pub fn starter(&self, filter: &ProductFilter, exclude: &HashSet<i64>, k: usize) -> Vec<Recommendation> {
        let mut exclude = exclude.clone();
        exclude.extend(&self.unlisted);
        let req = Request {
            filter: filter.clone(),
            k,
            ..Default::default()
        };
        self.cold_start(&Profile::default(), &req, &exclude)
    }

    /// A feed with no taste to go on: popular, then typical items of the most common categories,
    /// taken round-robin so the first screen shows many kinds of thing.
    fn cold_start(&self, profile: &Profile, req: &Request, exclude: &HashSet<i64>) -> Vec<Recommendation> {
        let central = self.centrality();
        let allow = self.allowed(&req.filter, exclude);
        let mut groups: HashMap<&str, Vec<ColdPick>> = HashMap::new();
        for r in (0..self.index.len()).filter(|&r| allow[r]) {
            let Some(kind) = self.facts.kind(r) else { continue };
            let pop = self.popularity.get(&self.index.id(r)).copied().unwrap_or(0);
            let penalty = profile
                .dislike
                .as_ref()
                .map(|d| 0.5 * dot(d, &self.index.vector(r)).max(0.0))
                .unwrap_or(0.0);
            groups
                .entry(self.facts.kind_name(kind))
                .or_default()
                .push((r, central[r] - penalty, pop));
        }
        let mut groups: Vec<(&str, Vec<ColdPick>)> = groups.into_iter().collect();
        groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
        for (_, g) in &mut groups {
            g.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0)));
        }
        let mut out = Vec::with_capacity(req.k);
        let mut depth = 0;
        while out.len() < req.k {
            let mut any = false;
            for (cat, g) in &groups {
                if let Some(&(r, score, pop)) = g.get(depth) {
                    any = true;
                    let category = cat.to_string();
                    let reason = if pop > 0 {
                        Reason::Popular { category, likes: pop }
                    } else {
                        Reason::Typical { category }
                    };
                    out.push(Recommendation {
                        id: self.index.id(r),
                        score,
                        reason,
                        interest: None,
                    });
                    if out.len() == req.k {
                        break;
                    }
                }
            }
            if !any {
                break;
            }
            depth += 1;
        }
        out
    }
}

/// MMR re-ranks only this many leading results: a screenful or two is where repeats show, and
/// MMR's cost grows with its depth times its pool (the app's 200-long lists would cost ~40x more).
pub const MMR_DEPTH: usize = 50;

/// A cold-start candidate: (index row, typicality score, likes).
type ColdPick = (usize, f32, usize);

/// MMR for the first `head` of `k` results, picked from the best `head * 5` candidates; the rest
/// follow in relevance order. `cand` is sorted by relevance, best first.
pub(super) fn mmr_head(
    index: &dyn VectorIndex,
    cand: Vec<(usize, f32)>,
    k: usize,
    head: usize,
    lambda: f32,
) -> Vec<(usize, f32)> {
    let mut chosen = mmr(index, &cand[..cand.len().min(head * 5)], head, lambda);
    let taken: HashSet<usize> = chosen.iter().map(|c| c.0).collect();
    chosen.extend(
        cand.into_iter()
            .filter(|c| !taken.contains(&c.0))
            .take(k.saturating_sub(chosen.len())),
    );
    chosen
}

/// Maximal marginal relevance: greedily trade relevance against similarity to what is already
/// chosen. `lambda` = 1 is plain relevance order.
pub fn mmr(index: &dyn VectorIndex, cand: &[(usize, f32)], k: usize, lambda: f32) -> Vec<(usize, f32)> {
    let mut chosen: Vec<(usize, f32)> = Vec::with_capacity(k);
    let mut max_sim = vec![f32::NEG_INFINITY; cand.len()];
    let mut used = vec![false; cand.len()];
    // Each candidate's vector once: an int8 index rebuilds a row on every `vector` call.
    let vectors: Vec<_> = cand.iter().map(|&(r, _)| index.vector(r)).collect();
    while chosen.len() < k.min(cand.len()) {
        let mut best: Option<(usize, f32)> = None;
        for (i, &(_, rel)) in cand.iter().enumerate() {
            if used[i] {
                continue;
            }
            let penalty = if chosen.is_empty() { 0.0 } else { max_sim[i] };
            let v = lambda * rel - (1.0 - lambda) * penalty;
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
        let Some((i, _)) = best else { break };
        used[i] = true;
        chosen.push(cand[i]);
        for j in 0..cand.len() {
            if !used[j] {
                max_sim[j] = max_sim[j].max(dot(&vectors[i], &vectors[j]));
            }
        }
    }
    chosen
}
