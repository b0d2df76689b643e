//! The engine: products and one model's vectors in memory, ready to rank. Building it from a
//! catalogue is [`load`](super::load); ranking with it is [`rank`](super::rank); this file holds
//! what both share: the products, the index, and what ranking knows of each row.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use super::facts::RowFacts;
use super::index::{FlatIndex, VectorIndex};
use super::ivf::{IVF_MIN_ROWS, IvfIndex};
use crate::Result;
use crate::catalog::{Product, ProductFilter};

/// One engine for many readers (the sessions of `lookbook serve`): loaded once, replaced when
/// the catalogue changes, read by every session's worker.
pub type SharedEngine = std::sync::Arc<std::sync::RwLock<Option<std::sync::Arc<Engine>>>>;

/// Products plus their vectors, ready to rank. Build once per process; cheap to query.
pub struct Engine {
    /// Shared, so a front end can show the same list instead of keeping a second copy.
    pub(super) products: Arc<Vec<Product>>,
    pub(super) by_id: HashMap<i64, usize>,
    pub(super) index: Box<dyn VectorIndex>,
    /// Position in `products` of each index row (`u32::MAX` for a vector without a product), so
    /// filters cost an array read per row, not a hash lookup.
    pub(super) row_product: Vec<u32>,
    /// What ranking knows of each row's product: listed, group, article type.
    pub(super) facts: RowFacts,
    /// Whether any rows share a group (a scan of the facts, done once).
    pub(super) grouped: bool,
    /// True when `products` holds only the products asked for (a one-shot load from a kept
    /// index): ranking needs only `facts`, a metadata filter needs them all.
    pub(super) partial: bool,
    pub(super) popularity: HashMap<i64, usize>,
    /// Cosine of each row with the centroid of its article type (cold start), computed on first use.
    pub(super) centrality: OnceLock<Vec<f32>>,
    /// Products a later feed no longer lists (`import --prune`) or the shop hides: never ranked.
    pub(super) unlisted: HashSet<i64>,
    /// What the whole shop did, for the feed ([`Engine::load_with_shop`]).
    pub(super) shop: Option<Arc<super::shop::Trained>>,
}

impl Engine {
    /// Builds an engine from products and an index of one model's vectors.
    pub fn new(products: impl Into<Arc<Vec<Product>>>, index: impl VectorIndex + 'static) -> Self {
        let products = products.into();
        let facts = RowFacts::of(&products, &index);
        Self::from_parts(products, index, facts, false)
    }

    pub(super) fn from_parts(
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

    /// The shop's feed model, when loaded with [`Engine::load_with_shop`].
    pub fn shop(&self) -> Option<&super::shop::Trained> {
        self.shop.as_deref()
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
    pub(super) fn group_of(&self, id: i64) -> Option<u32> {
        self.index.row(id).and_then(|r| self.facts.group(r))
    }

    /// Candidates (best first) with at most one colourway of each group: its best.
    pub(super) fn one_per_group(&self, cand: Vec<(usize, f32)>) -> Vec<(usize, f32)> {
        if !self.grouped {
            return cand;
        }
        let mut seen: HashSet<u32> = HashSet::new();
        cand.into_iter()
            .filter(|&(row, _)| self.facts.group(row).is_none_or(|g| seen.insert(g)))
            .collect()
    }

    pub(super) fn product_of_row(&self, row: usize) -> Option<&Product> {
        self.row_product.get(row).and_then(|&i| self.products.get(i as usize))
    }

    /// Whether a row may be shown: not excluded, and passing the filter (a partial engine is
    /// never asked with one: [`Engine::recommend`] refuses).
    pub(super) fn allows(&self, row: usize, filter: &ProductFilter, exclude: &HashSet<i64>) -> bool {
        (exclude.is_empty() || !exclude.contains(&self.index.id(row)))
            && (filter.is_empty() || self.product_of_row(row).is_some_and(|p| filter.matches(p)))
    }

    pub(super) fn allowed(&self, filter: &ProductFilter, exclude: &HashSet<i64>) -> Vec<bool> {
        (0..self.index.len()).map(|r| self.allows(r, filter, exclude)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::catalog::Feedback;
    use crate::recommend::ProfileSettings;
    use crate::recommend::index::dot;
    use crate::recommend::rank::{MMR_DEPTH, mmr_head};
    use crate::recommend::{Profile, Reason, Request, mmr};
    use crate::synthetic::{synthetic_matrix, synthetic_products};
    use proptest::prelude::*;

    fn engine(n: usize) -> Engine {
        Engine::new(synthetic_products(n), FlatIndex::new(synthetic_matrix(n, 16, 9)))
    }

    /// A synthetic SQLite catalogue just large enough for IVF, and where its index is kept.
    fn ivf_catalogue() -> (tempfile::TempDir, Catalog, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        crate::synthetic::write_synthetic_catalog(&db, IVF_MIN_ROWS + 500, 16, 3).unwrap();
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
