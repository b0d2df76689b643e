//! The index contract answered by PostgreSQL with pgvector: searches run in the database (an
//! HNSW or IVFFlat index, or an exact scan, with the filter and the excluded products in SQL), while the
//! vectors the engine builds profiles and MMR from stay in memory, as with every index.

use std::collections::HashSet;
use std::sync::Mutex;

use super::index::{FlatIndex, VectorIndex};
use crate::catalog::postgres::{self as pg, Method};
use crate::catalog::{EmbeddingMatrix, ProductFilter};
use crate::{Error, Result};

/// Search through pgvector for one model's vectors.
pub struct PgIndex {
    flat: FlatIndex,
    client: Mutex<pg::Link>,
    model_id: i64,
    method: Method,
}

impl PgIndex {
    /// Searches the model of `matrix` (its vectors, loaded from the same catalogue) in the
    /// PostgreSQL database at `url`.
    pub fn connect(url: &str, matrix: EmbeddingMatrix, method: Method) -> Result<Self> {
        let client = pg::Link::open(url, false)?;
        Ok(PgIndex {
            model_id: matrix.model_id,
            flat: FlatIndex::new(matrix),
            client: Mutex::new(client),
            method,
        })
    }

    fn query(
        &self,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        exclude: &HashSet<i64>,
    ) -> Result<Vec<(usize, f32)>> {
        let exclude: Vec<i64> = exclude.iter().copied().collect();
        let search = pg::Search {
            model_id: self.model_id,
            dim: self.flat.dim() as i64,
            k,
            exclude: &exclude,
            filter: (!filter.is_empty()).then_some(filter),
            method: self.method,
        };
        let mut client = self
            .client
            .lock()
            .map_err(|_| Error::Invalid("the PostgreSQL connection was lost to an earlier crash".into()))?;
        Ok(pg::search(client.client(), query, &search)?
            .into_iter()
            .filter_map(|(id, score)| self.flat.row(id).map(|r| (r, score)))
            .collect())
    }
}

impl VectorIndex for PgIndex {
    fn dim(&self) -> usize {
        self.flat.dim()
    }
    fn len(&self) -> usize {
        self.flat.len()
    }
    fn id(&self, row: usize) -> i64 {
        self.flat.id(row)
    }
    fn row(&self, id: i64) -> Option<usize> {
        self.flat.row(id)
    }
    fn vector(&self, row: usize) -> std::borrow::Cow<'_, [f32]> {
        std::borrow::Cow::Borrowed(self.flat.vector(row))
    }
    /// Without the filter as data, the database returns its best rows and `allow` picks from
    /// them, asking again for more while too few pass; the exact scan answers past that.
    fn search(&self, query: &[f32], k: usize, allow: &(dyn Fn(usize) -> bool + Sync)) -> Vec<(usize, f32)> {
        let none = (ProductFilter::default(), HashSet::new());
        let mut want = k.max(1) * 2;
        while want <= self.len().max(1) * 2 {
            match self.query(query, want, &none.0, &none.1) {
                Ok(rows) => {
                    let short = rows.len() < want;
                    let kept: Vec<(usize, f32)> = rows.into_iter().filter(|&(r, _)| allow(r)).take(k).collect();
                    if kept.len() == k || short {
                        return kept;
                    }
                }
                Err(_) => break,
            }
            want *= 4;
        }
        self.flat.search(query, k, allow)
    }
    fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        filter: &ProductFilter,
        exclude: &HashSet<i64>,
        _allow: &(dyn Fn(usize) -> bool + Sync),
    ) -> Result<Vec<(usize, f32)>> {
        self.query(query, k, filter, exclude)
    }
    fn describe(&self) -> String {
        match self.method {
            Method::Exact => "PostgreSQL, exact scan".into(),
            Method::Hnsw { ef_search } => format!("PostgreSQL, pgvector HNSW (ef_search {ef_search})"),
            Method::IvfFlat { probes } => format!("PostgreSQL, pgvector IVFFlat ({probes} probes)"),
        }
    }
}
