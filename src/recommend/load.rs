//! Building an [`Engine`] from a catalogue: the products, the active model's vectors and the
//! index that suits their number (an exact scan, or IVF kept beside a SQLite catalogue and mapped
//! while nothing lookbook wrote has changed), the like counts, and the shop's feed model. The
//! only part of `recommend` that reads the store.

use std::sync::Arc;

use super::engine::Engine;
use super::facts::RowFacts;
use super::ivf::{IVF_MIN_ROWS, IvfIndex};
use crate::catalog::Catalog;
use crate::{Error, Result};

impl Engine {
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
}
