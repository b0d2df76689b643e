//! Ranking: look-alikes, the blended personal feed, MMR diversity, explanations, cold start.
//!
//! Blending is one search: with unit vectors q (query) and p (profile),
//! `alpha * q.x + (1 - alpha) * p.x == (alpha * q + (1 - alpha) * p).x`, so the blended ranking
//! costs exactly one pass over the matrix however many likes a user has.

use serde::Serialize;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::facts::RowFacts;
use super::index::{FlatIndex, VectorIndex, dot, normalize};
use super::ivf::{IVF_MIN_ROWS, IvfIndex};
use super::profile::Profile;
use crate::catalog::{Catalog, Product, ProductFilter};
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

/// Products plus their vectors, ready to rank. Build once per process; cheap to query.
pub struct Engine {
    /// Shared, so a front end can show the same list instead of keeping a second copy.
    products: Arc<Vec<Product>>,
    by_id: HashMap<i64, usize>,
    index: Box<dyn VectorIndex>,
    /// Position in `products` of each index row (`u32::MAX` for a vector without a product), so
    /// filters cost an array read per row, not a hash lookup.
    row_product: Vec<u32>,
    /// What ranking knows of each row's product: listed, group, article type.
    facts: RowFacts,
    /// Whether any rows share a group (a scan of the facts, done once).
    grouped: bool,
    /// True when `products` holds only the products asked for (a one-shot load from a kept
    /// index): ranking needs only `facts`, a metadata filter needs them all.
    partial: bool,
    popularity: HashMap<i64, usize>,
    /// Cosine of each row with the centroid of its article type (cold start), computed on first use.
    centrality: OnceLock<Vec<f32>>,
    /// Products a later feed no longer lists (`import --prune`) or the shop hides: never ranked.
    unlisted: HashSet<i64>,
    /// What the whole shop did, for the feed ([`Engine::load_with_shop`]).
    shop: Option<Arc<super::shop::Trained>>,
}

impl Engine {
    /// Builds an engine from products and an index of one model's vectors.
    pub fn new(products: impl Into<Arc<Vec<Product>>>, index: impl VectorIndex + 'static) -> Self {
        let products = products.into();
        let facts = RowFacts::of(&products, &index);
        Self::from_parts(products, index, facts, false)
    }

    fn from_parts(
        products: Arc<Vec<Product>>,
        index: impl VectorIndex + 'static,
        facts: RowFacts,
        partial: bool,
    ) -> Self {
        let by_id: HashMap<i64, usize> = products.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        let row_product = (0..index.len())
            .map(|r| by_id.get(&index.id(r)).map_or(u32::MAX, |&i| i as u32))
            .collect();
        let unlisted = facts.unlisted_rows().map(|r| index.id(r)).collect();
        let grouped = facts.has_groups();
        Engine {
            products,
            by_id,
            index: Box::new(index),
            row_product,
            facts,
            grouped,
            partial,
            popularity: HashMap::new(),
            centrality: OnceLock::new(),
            unlisted,
            shop: None,
        }
    }

    /// Builds an engine with the index that suits the size: an exact scan up to [`IVF_MIN_ROWS`]
    /// rows, IVF from there on (a few seconds to build at 10^6 rows).
    pub fn with_vectors(
        products: impl Into<Arc<Vec<Product>>>,
        matrix: crate::catalog::EmbeddingMatrix,
    ) -> Result<Self> {
        Ok(if matrix.len() >= IVF_MIN_ROWS {
            Engine::new(products, IvfIndex::auto(matrix)?)
        } else {
            Engine::new(products, FlatIndex::new(matrix))
        })
    }

    /// Loads products, the active model's vectors and like counts from a catalogue.
    pub fn load(catalog: &Catalog) -> Result<Self> {
        Self::load_as(catalog, false)
    }

    /// Loads for one query without a metadata filter, as `similar` and `recommend` run from a
    /// script: from a current kept index, the row facts come from its file and no product is
    /// read until [`Engine::fetch_products`] asks for the ones shown (at 10^6 products reading
    /// them all took seconds). Otherwise the same as [`Engine::load`].
    pub fn load_for_query(catalog: &Catalog) -> Result<Self> {
        Self::load_as(catalog, true)
    }

    fn load_as(catalog: &Catalog, partial: bool) -> Result<Self> {
        let model = catalog
            .active_model()?
            .ok_or_else(|| Error::NoEmbeddings { model: None })?;
        // A SQLite catalogue keeps its IVF index in a file beside it: mapped when it is
        // current, else built from the vectors and saved for the next process.
        let kept = (!catalog.is_postgres()).then(|| super::ivf_file::path_for(catalog.path()));
        let fingerprint = match &kept {
            Some(_) => Some(catalog.vectors_fingerprint(model.id)?),
            None => None,
        };
        if let (Some(path), Some(fp)) = (&kept, &fingerprint)
            && let Some((ivf, facts)) = super::ivf_file::open(path, fp, model.id)
        {
            let mut e = if partial {
                Engine::from_parts(Arc::new(Vec::new()), ivf, facts, true)
            } else {
                Engine::new(catalog.products()?, ivf)
            };
            e.set_popularity(catalog.like_counts()?.into_iter().collect());
            return Ok(e);
        }
        let matrix = catalog.load_embeddings(model.id)?;
        if matrix.is_empty() {
            return Err(Error::NoEmbeddings {
                model: Some(model.spec.name),
            });
        }
        let products = Arc::new(catalog.products()?);
        let mut e = if matrix.len() >= IVF_MIN_ROWS {
            let ivf = IvfIndex::auto(matrix)?;
            let facts = RowFacts::of(&products, &ivf);
            if let (Some(path), Some(fp)) = (&kept, &fingerprint) {
                // Best effort: a read-only folder only means the next process builds again.
                let _ = super::ivf_file::save(&ivf, &facts, path, fp);
            }
            Engine::from_parts(products, ivf, facts, false)
        } else {
            Engine::with_vectors(products, matrix)?
        };
        e.set_popularity(catalog.like_counts()?.into_iter().collect());
        crate::memory::release_freed();
        Ok(e)
    }

    /// [`Engine::load`] with the shop's feed model beside it: the stored one (`train --feed`),
    /// or one learned now from the history. What the app and `serve` rank the feed with.
    /// A stored model that cannot be read (damaged) is learned again from the history instead,
    /// so the app still opens; `recommend` reports the damage.
    pub fn load_with_shop(catalog: &Catalog) -> Result<Self> {
        use super::shop::{History, Trained};
        let mut e = Self::load(catalog)?;
        let t = match Trained::load(catalog, &e) {
            Ok(t) => t,
            Err(Error::Invalid(_)) => Trained::learn(&History::load(catalog)?, &e),
            Err(other) => return Err(other),
        };
        e.shop = Some(Arc::new(t));
        Ok(e)
    }

    /// The shop's feed model, when loaded with [`Engine::load_with_shop`].
    pub fn shop(&self) -> Option<&super::shop::Trained> {
        self.shop.as_deref()
    }

    /// Reads the products `ids` names that a one-shot engine has not read yet (the results
    /// to show, the likes a reason names); nothing for an engine that holds them all.
    pub fn fetch_products(&mut self, catalog: &Catalog, ids: impl IntoIterator<Item = i64>) -> Result<()> {
        if !self.partial {
            return Ok(());
        }
        let mut fresh = Vec::new();
        for id in ids {
            if !self.by_id.contains_key(&id)
                && let Some(p) = catalog.product(id)?
            {
                self.by_id.insert(id, self.products.len() + fresh.len());
                fresh.push(p);
            }
        }
        Arc::make_mut(&mut self.products).extend(fresh);
        Ok(())
    }

    /// True when this engine read only some products ([`Engine::load_for_query`]).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Replaces the like counts used for cold start.
    pub fn set_popularity(&mut self, counts: HashMap<i64, usize>) {
        self.popularity = counts;
    }

    /// Every product, by id.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// The same products, shared (a 50,000-product list is about 30 MB).
    pub fn products_shared(&self) -> Arc<Vec<Product>> {
        Arc::clone(&self.products)
    }

    /// A product by id.
    pub fn product(&self, id: i64) -> Option<&Product> {
        self.by_id.get(&id).map(|&i| &self.products[i])
    }

    /// The vector index: an exact scan, or IVF from [`IVF_MIN_ROWS`] rows on.
    pub fn index(&self) -> &dyn VectorIndex {
        self.index.as_ref()
    }

    /// The stored vector of a product.
    pub fn vector(&self, id: i64) -> Option<Cow<'_, [f32]>> {
        self.index.row(id).map(|r| self.index.vector(r))
    }

    /// A product's article type, from its row's facts (so a one-shot engine knows it too).
    pub fn kind_of(&self, id: i64) -> Option<&str> {
        let row = self.index.row(id)?;
        self.facts.kind(row).map(|k| self.facts.kind_name(k))
    }

    /// A row's article type as a number (equal numbers, equal types).
    pub fn kind_index(&self, row: usize) -> Option<u32> {
        self.facts.kind(row)
    }

    /// True when a row's product may be shown: it has a product and is listed.
    pub fn is_ranked_row(&self, row: usize) -> bool {
        self.facts.ranked(row) && self.facts.has_product(row)
    }

    /// The group of colourways a row is in, if it is in one of several.
    pub fn group_of_row(&self, row: usize) -> Option<u32> {
        self.facts.group(row)
    }

    /// The group of colourways a product's row is in, if it is in one of several.
    fn group_of(&self, id: i64) -> Option<u32> {
        self.index.row(id).and_then(|r| self.facts.group(r))
    }

    /// Candidates (best first) with at most one colourway of each group: its best.
    fn one_per_group(&self, cand: Vec<(usize, f32)>) -> Vec<(usize, f32)> {
        if !self.grouped {
            return cand;
        }
        let mut seen: HashSet<u32> = HashSet::new();
        cand.into_iter()
            .filter(|&(row, _)| self.facts.group(row).is_none_or(|g| seen.insert(g)))
            .collect()
    }

    fn product_of_row(&self, row: usize) -> Option<&Product> {
        self.row_product.get(row).and_then(|&i| self.products.get(i as usize))
    }

    /// Whether a row may be shown: not excluded, and passing the filter (a partial engine is
    /// never asked with one: [`Engine::recommend`] refuses).
    fn allows(&self, row: usize, filter: &ProductFilter, exclude: &HashSet<i64>) -> bool {
        (exclude.is_empty() || !exclude.contains(&self.index.id(row)))
            && (filter.is_empty() || self.product_of_row(row).is_some_and(|p| filter.matches(p)))
    }

    fn allowed(&self, filter: &ProductFilter, exclude: &HashSet<i64>) -> Vec<bool> {
        (0..self.index.len()).map(|r| self.allows(r, filter, exclude)).collect()
    }

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

    /// The blended ranking for a profile and an optional query; cold start when neither has a vector.
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
        let query: Option<Vec<f32>> = match (req.item, &req.vector) {
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
        };
        let mut exclude = profile.seen.clone();
        exclude.extend(&self.unlisted);
        if let Some(id) = req.item {
            exclude.insert(id);
            // Look-alikes never list the query's own colourways.
            if let Some(group) = self.group_of(id) {
                exclude.extend(self.facts.rows_in_group(group).map(|r| self.index.id(r)));
            }
        }
        // A product's look is the product with its closest neighbours (alpha query expansion,
        // see `rerank`): found among everything listed except its own colourways, so a filter
        // narrows the results and never the query.
        let item_look = query.clone();
        let query = match (req.item, query) {
            (Some(item), Some(q)) => {
                let group = self.group_of(item);
                let other = |r: usize| {
                    self.index.id(r) != item
                        && self.facts.ranked(r)
                        && (group.is_none() || self.facts.group(r) != group)
                };
                let how = super::rerank::QUERY_EXPANSION;
                let near = self.index.search(&q, how.n, &other);
                Some(super::rerank::mix(&q, self.index.as_ref(), &near, how))
            }
            (_, q) => q,
        };
        let (qw, pw) = match (&query, &profile.vector) {
            (Some(_), Some(_)) => (alpha, 1.0 - alpha),
            (Some(_), None) => (1.0, 0.0),
            (None, Some(_)) => (0.0, 1.0),
            (None, None) => return Ok(self.cold_start(profile, req, &exclude)),
        };
        let dim = self.index.dim();
        let mut blended = vec![0.0f32; dim];
        for (v, w) in [(&query, qw), (&profile.vector, pw)] {
            if let Some(v) = v {
                blended.iter_mut().zip(v.iter()).for_each(|(b, x)| *b += w * x);
            }
        }
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
        let allow = |r: usize| self.allows(r, &req.filter, &exclude);
        let cand = self.one_per_group(
            self.index
                .search_filtered(&blended, pool, &req.filter, &exclude, &allow)?,
        );
        let mut chosen = if diversity > 0.0 {
            mmr_head(self.index.as_ref(), cand, req.k, head, 1.0 - diversity)
        } else {
            cand
        };
        chosen.truncate(req.k);
        Ok(chosen
            .into_iter()
            .map(|(row, score)| {
                let x = self.index.vector(row);
                // The reason names the likeness to the product itself, not to its expansion.
                let q_part = item_look.as_ref().map(|q| dot(q, &x));
                let reason = match (q_part, self.best_like(profile, &x)) {
                    (Some(qs), Some((lid, ls))) if qw * qs < pw * ls => Reason::YouLiked {
                        id: lid,
                        similarity: ls,
                    },
                    (Some(qs), _) => Reason::LooksLike {
                        id: req.item,
                        similarity: qs,
                    },
                    (None, Some((lid, ls))) => Reason::YouLiked {
                        id: lid,
                        similarity: ls,
                    },
                    (None, None) => Reason::Typical {
                        category: String::new(),
                    },
                };
                Recommendation {
                    id: self.index.id(row),
                    score,
                    reason,
                    interest: None,
                }
            })
            .collect())
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
fn mmr_head(index: &dyn VectorIndex, cand: Vec<(usize, f32)>, k: usize, head: usize, lambda: f32) -> Vec<(usize, f32)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{synthetic_matrix, synthetic_products};
    use crate::catalog::Feedback;
    use crate::recommend::ProfileSettings;
    use proptest::prelude::*;

    fn engine(n: usize) -> Engine {
        Engine::new(synthetic_products(n), FlatIndex::new(synthetic_matrix(n, 16, 9)))
    }

    /// A synthetic SQLite catalogue just large enough for IVF, and where its index is kept.
    fn ivf_catalogue() -> (tempfile::TempDir, Catalog, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        crate::bench::write_synthetic_catalog(&db, IVF_MIN_ROWS + 500, 16, 3).unwrap();
        let cat = Catalog::open_existing(&db).unwrap();
        (dir, cat, crate::recommend::ivf_file::path_for(&db))
    }

    #[test]
    fn a_catalogues_ivf_index_is_kept_beside_it_and_rebuilt_when_a_vector_changes() {
        let (_dir, mut cat, kept) = ivf_catalogue();
        assert!(!kept.exists());
        let first = Engine::load(&cat).unwrap();
        assert!(kept.exists(), "the first load saves the index");
        let built_at = std::fs::metadata(&kept).unwrap().modified().unwrap();
        let ids = |e: &Engine, q: i64| -> Vec<i64> {
            e.similar(q, &ProductFilter::default(), 10)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect()
        };
        let again = Engine::load(&cat).unwrap();
        assert_eq!(
            ids(&first, 42),
            ids(&again, 42),
            "the mapped index answers as the built one"
        );
        assert_eq!(
            std::fs::metadata(&kept).unwrap().modified().unwrap(),
            built_at,
            "not rebuilt"
        );
        // Product 7 gets product 42's vector: the kept index is stale, and the next load sees it.
        let model = cat.active_model().unwrap().unwrap();
        let v = cat.embedding(model.id, 42).unwrap().unwrap();
        cat.put_embeddings(model.id, &[(7, "synthetic".into(), v)]).unwrap();
        let after = Engine::load(&cat).unwrap();
        assert_eq!(ids(&after, 42)[0], 7, "{:?}", ids(&after, 42));
        assert_ne!(ids(&first, 42)[0], 7);
    }

    /// Rewrites a product as an import would, in `group` and hidden or not.
    fn reimport(cat: &mut Catalog, id: i64, group: Option<String>, hidden: bool) {
        let p = cat.product(id).unwrap().unwrap();
        let u = crate::catalog::ProductUpsert {
            id,
            name: p.name,
            category: [p.master_category, p.sub_category, p.article_type],
            gender: p.gender,
            colour: p.colour,
            season: p.season,
            year: p.year,
            usage: p.usage,
            image_path: p.image_path,
            image_hash: p.image_hash,
            shop: crate::catalog::ShopFields {
                group,
                hidden,
                ..Default::default()
            },
            variants: Vec::new(),
        };
        let mut tx = cat.tx().unwrap();
        crate::catalog::products_upsert(&mut tx, &u, 1).unwrap();
        tx.commit().unwrap();
    }

    #[test]
    fn a_one_shot_engine_ranks_as_the_full_one_and_sees_listing_and_group_changes() {
        let (_dir, mut cat, kept) = ivf_catalogue();
        Engine::load(&cat).unwrap();
        assert!(kept.exists());
        // After the index was kept: colourway pairs, and hidden products among 42's look-alikes.
        let before = Engine::load(&cat)
            .unwrap()
            .similar(42, &ProductFilter::default(), 10)
            .unwrap();
        for id in 1..=40 {
            reimport(&mut cat, id, Some(format!("pair{}", (id + 1) / 2)), false);
        }
        for r in &before[..3] {
            reimport(&mut cat, r.id, None, true);
        }
        reimport(&mut cat, 42, Some("pair-with-43".into()), false);
        reimport(&mut cat, 43, Some("pair-with-43".into()), false);
        let full = Engine::load(&cat).unwrap();
        let mut lean = Engine::load_for_query(&cat).unwrap();
        assert!(lean.is_partial() && !full.is_partial());
        assert!(lean.products().is_empty(), "no product read before results are known");
        let any = ProductFilter::default();
        let similar = lean.similar(42, &any, 10).unwrap();
        assert_eq!(similar, full.similar(42, &any, 10).unwrap());
        let shown: Vec<i64> = similar.iter().map(|r| r.id).collect();
        assert!(!shown.contains(&43), "the query's own colourway is never a look-alike");
        assert!(
            before[..3].iter().all(|r| !shown.contains(&r.id)),
            "hidden products are not ranked"
        );
        let v = full.vector(7).unwrap().to_vec();
        assert_eq!(
            lean.similar_to_vector(&v, &any, 15).unwrap(),
            full.similar_to_vector(&v, &any, 15).unwrap()
        );
        for likes in [&[3i64, 9, 300][..], &[]] {
            let req = Request {
                k: 25,
                diversity: 0.3,
                ..Default::default()
            };
            let (pl, pf) = (profile(&lean, likes, &[11]), profile(&full, likes, &[11]));
            let got = lean.recommend(&pl, &req).unwrap();
            assert_eq!(got, full.recommend(&pf, &req).unwrap(), "likes {likes:?}");
            let mut seen = HashSet::new();
            for r in &got {
                if let Some(g) = full.product(r.id).unwrap().group.clone() {
                    assert!(seen.insert(g), "one colourway per group");
                }
            }
        }
        // The products shown are read on demand, and a filter needs them all.
        lean.fetch_products(&cat, shown.iter().copied()).unwrap();
        assert_eq!(
            lean.product(shown[0]).unwrap().name,
            full.product(shown[0]).unwrap().name
        );
        let shirts = ProductFilter {
            category: Some("Shirts".into()),
            ..Default::default()
        };
        assert!(lean.similar(42, &shirts, 10).is_err());
    }

    fn profile(e: &Engine, likes: &[i64], dislikes: &[i64]) -> Profile {
        let fb: Vec<Feedback> = likes
            .iter()
            .map(|&id| (id, 1.0))
            .chain(dislikes.iter().map(|&id| (id, -1.0)))
            .enumerate()
            .map(|(i, (id, w))| Feedback {
                product_id: id,
                weight: w,
                at: i as i64,
            })
            .collect();
        Profile::build(&fb, e.index(), ProfileSettings::default())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn feedback_never_comes_back(likes in prop::collection::vec(1i64..=300, 1..12),
                                     dislikes in prop::collection::vec(1i64..=300, 0..5),
                                     item in prop::option::of(1i64..=300),
                                     alpha in 0f32..=1.0, diversity in 0f32..=1.0) {
            let e = engine(300);
            let p = profile(&e, &likes, &dislikes);
            let req = Request { item, k: 40, alpha, diversity, ..Default::default() };
            let out = e.recommend(&p, &req).unwrap();
            prop_assert!(!out.is_empty());
            for r in &out {
                prop_assert!(!p.seen.contains(&r.id));
                prop_assert!(Some(r.id) != item);
            }
            let ids: std::collections::HashSet<i64> = out.iter().map(|r| r.id).collect();
            prop_assert_eq!(ids.len(), out.len(), "no duplicates");
        }

        #[test]
        fn alpha_one_is_look_alikes(likes in prop::collection::vec(1i64..=200, 1..8), item in 1i64..=200) {
            let e = engine(200);
            let p = profile(&e, &likes, &[]);
            let blended = e.recommend(&p, &Request { item: Some(item), k: 10, alpha: 1.0, ..Default::default() }).unwrap();
            let plain: Vec<i64> = e
                .similar(item, &ProductFilter::default(), 30)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .filter(|id| !p.seen.contains(id))
                .take(10)
                .collect();
            prop_assert_eq!(blended.iter().map(|r| r.id).collect::<Vec<_>>(), plain);
        }
    }

    #[test]
    fn blended_score_is_the_weighted_sum_of_cosines() {
        let e = engine(100);
        let p = profile(&e, &[5, 6], &[]);
        let out = e
            .recommend(
                &p,
                &Request {
                    item: Some(50),
                    k: 5,
                    alpha: 0.3,
                    ..Default::default()
                },
            )
            .unwrap();
        // The item's part is its look: the product moved towards its nearest (query expansion).
        let item = e.vector(50).unwrap();
        let how = crate::recommend::rerank::QUERY_EXPANSION;
        let near = e.index().search(&item, how.n, &|r| e.index().id(r) != 50);
        let q = crate::recommend::rerank::mix(&item, e.index(), &near, how);
        assert!(dot(&q, &item) < 0.9999, "the expansion moved the query");
        let pv = p.vector.as_ref().unwrap();
        for r in out {
            let x = e.vector(r.id).unwrap();
            let expect = 0.3 * dot(&q, &x) + 0.7 * dot(pv, &x);
            assert!((r.score - expect).abs() < 1e-5);
        }
    }

    #[test]
    fn mmr_with_lambda_one_keeps_relevance_order_and_lower_lambda_spreads() {
        let idx = FlatIndex::new(crate::catalog::EmbeddingMatrix {
            model_id: 1,
            dim: 2,
            ids: vec![1, 2, 3],
            data: vec![1.0, 0.0, 0.995, 0.0998, 0.0, 1.0],
        });
        let cand = vec![(0, 0.9), (1, 0.89), (2, 0.5)];
        assert_eq!(
            mmr(&idx, &cand, 2, 1.0).iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![0, 1]
        );
        assert_eq!(
            mmr(&idx, &cand, 2, 0.5).iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![0, 2]
        );
    }

    #[test]
    fn long_lists_diversify_the_head_and_keep_relevance_order_after_it() {
        let e = engine(2000);
        let idx = e.index();
        let cand = idx.search(&idx.vector(0), 400, &|r| r != 0);
        let out = mmr_head(idx, cand.clone(), 200, MMR_DEPTH, 0.5);
        assert_eq!(out.len(), 200);
        assert_eq!(out.iter().map(|c| c.0).collect::<HashSet<_>>().len(), 200, "no repeats");
        let head = mmr(idx, &cand[..MMR_DEPTH * 5], MMR_DEPTH, 0.5);
        assert_eq!(out[..MMR_DEPTH], head[..]);
        assert!(
            out[MMR_DEPTH..].windows(2).all(|w| w[0].1 >= w[1].1),
            "the tail is in relevance order"
        );
        assert_ne!(
            head.iter().map(|c| c.0).collect::<Vec<_>>(),
            cand[..MMR_DEPTH].iter().map(|c| c.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn filters_apply_before_ranking_and_cold_start_fills_k() {
        let e = engine(400);
        let f = ProductFilter {
            colour: Some("red".into()),
            ..Default::default()
        };
        let out = e
            .recommend(
                &Profile::default(),
                &Request {
                    filter: f,
                    k: 12,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(out.len(), 12);
        assert!(out.iter().all(|r| e.product(r.id).unwrap().colour == "Red"));
        assert!(out.iter().all(|r| matches!(r.reason, Reason::Typical { .. })));
    }
}
