//! Models (with their provenance) and the vectors they produced.
//!
//! A vector is stored as a little-endian f32 BLOB with the hash of the photo it came from; a
//! changed photo or a different model/preprocessing makes it stale, and stale vectors are never
//! loaded.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Catalog, Product};
use crate::{Error, Result, now_ms};

/// Everything that determines what a vector means; two specs with the same key are interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelSpec {
    /// Human name (usually the weights file's stem).
    pub name: String,
    /// Network architecture, e.g. `resnet50`.
    pub architecture: String,
    /// SHA-256 of the weights file.
    pub weights_sha256: String,
    /// Versioned preprocessing description (size, crop, normalisation).
    pub preprocessing: String,
    /// Feature pooling (`avg` or `max`).
    pub pooling: String,
    /// Vector length.
    pub dim: usize,
    /// Projection head applied on top, if any.
    pub head_id: Option<i64>,
}

impl ModelSpec {
    /// Identity string: equal keys mean comparable vectors.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|head={}",
            self.architecture,
            self.weights_sha256,
            self.preprocessing,
            self.pooling,
            self.dim,
            self.head_id.map(|h| h.to_string()).unwrap_or_else(|| "none".into())
        )
    }
}

/// A model registered in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelRecord {
    /// Row id, referenced by embeddings.
    pub id: i64,
    /// The spec it was registered with.
    pub spec: ModelSpec,
}

/// All fresh vectors of one model, contiguous in memory (row `i` belongs to `ids[i]`).
#[derive(Debug, Clone, Default)]
pub struct EmbeddingMatrix {
    /// The model the vectors belong to.
    pub model_id: i64,
    /// Vector length.
    pub dim: usize,
    /// Product ids, ascending.
    pub ids: Vec<i64>,
    /// `ids.len() * dim` floats, row-major.
    pub data: Vec<f32>,
}

impl EmbeddingMatrix {
    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when there are no vectors.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Row index of a product, if it has a vector.
    pub fn position(&self, id: i64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }
}

/// A projection head stored in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredHead {
    /// Row id.
    pub id: i64,
    /// The backbone model whose vectors it projects.
    pub backbone_model_id: i64,
    /// Input length (the backbone's dimension).
    pub in_dim: usize,
    /// Output length.
    pub out_dim: usize,
    /// `out_dim x in_dim` weights, row-major.
    #[serde(skip)]
    pub weight: Vec<f32>,
    /// `out_dim` biases.
    #[serde(skip)]
    pub bias: Vec<f32>,
    /// SHA-256 of weight and bias bytes.
    pub sha256: String,
    /// Training parameters, JSON.
    pub params: String,
    /// Validation metrics at the end of training, JSON.
    pub metrics: String,
}

/// Encodes floats as a little-endian BLOB.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes a little-endian f32 BLOB, appending to `out`; a length not divisible by 4 is an error.
pub fn from_blob(blob: &[u8], out: &mut Vec<f32>) -> Result<()> {
    if !blob.len().is_multiple_of(4) {
        return Err(Error::Invalid(format!("corrupt vector BLOB of {} bytes", blob.len())));
    }
    out.extend(
        blob.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
    Ok(())
}

impl Catalog {
    /// Registers a model (or finds it by key) and returns its record.
    pub fn register_model(&self, spec: &ModelSpec) -> Result<ModelRecord> {
        if let Some(mut c) = self.pg() {
            let id = super::postgres::sql::register_model(&mut c, spec, now_ms())?;
            return Ok(ModelRecord { id, spec: spec.clone() });
        }
        let key = spec.key();
        let found: Option<i64> = self
            .conn()?
            .query_row("SELECT id FROM models WHERE key = ?1", [&key], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                self.conn()?.execute(
                    "INSERT INTO models(key, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![key, spec.name, spec.architecture, spec.weights_sha256, spec.preprocessing, spec.pooling,
                        spec.dim as i64, spec.head_id, now_ms()],
                )?;
                self.conn()?.last_insert_rowid()
            }
        };
        Ok(ModelRecord { id, spec: spec.clone() })
    }

    /// A registered model by id.
    pub fn model(&self, id: i64) -> Result<ModelRecord> {
        let found = match self.pg() {
            Some(mut c) => super::postgres::sql::model(&mut c, id)?,
            None => self.model_sqlite(id)?,
        };
        found.ok_or_else(|| Error::NotFound(format!("model {id} is not registered in {}", self.path().display())))
    }

    fn model_sqlite(&self, id: i64) -> Result<Option<ModelRecord>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT id, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id FROM models WHERE id = ?1",
                [id],
                |r| {
                    Ok(ModelRecord {
                        id: r.get(0)?,
                        spec: ModelSpec {
                            name: r.get(1)?,
                            architecture: r.get(2)?,
                            weights_sha256: r.get(3)?,
                            preprocessing: r.get(4)?,
                            pooling: r.get(5)?,
                            dim: r.get::<_, i64>(6)? as usize,
                            head_id: r.get(7)?,
                        },
                    })
                },
            )
            .optional()?)
    }

    /// The model `similar` and `recommend` use: the last one embedded or trained.
    /// A cheap fingerprint of what rankings are built from (products, vectors, the active
    /// model): it changes when `import`, `embed` or `train` commit, and not when likes do.
    pub fn change_signature(&self) -> Result<(i64, i64, i64, Option<i64>)> {
        if let Some(mut c) = self.pg() {
            let (n, updated, vectors) = super::postgres::sql::signature(&mut c)?;
            drop(c);
            let active = self.setting("active_model")?.and_then(|v| v.parse().ok());
            return Ok((n, updated, vectors, active));
        }
        let (n, updated): (i64, i64) =
            self.conn()?
                .query_row("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM products", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
        let vectors: i64 = self
            .conn()?
            .query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get(0))?;
        let active = self.setting("active_model")?.and_then(|v| v.parse().ok());
        Ok((n, updated, vectors, active))
    }

    pub fn active_model(&self) -> Result<Option<ModelRecord>> {
        match self.setting("active_model")? {
            Some(v) => {
                let id = v
                    .parse()
                    .map_err(|_| Error::Invalid(format!("setting active_model is {v:?}, not an id")))?;
                Ok(Some(self.model(id)?))
            }
            None => Ok(None),
        }
    }

    /// Makes `id` the active model.
    pub fn set_active_model(&self, id: i64) -> Result<()> {
        self.set_setting("active_model", &id.to_string())
    }

    /// Products with no fresh vector for `model_id`, by id.
    pub fn products_missing_embedding(&self, model_id: i64) -> Result<Vec<Product>> {
        let fresh: std::collections::HashSet<i64> = self.fresh_ids(model_id)?.into_iter().collect();
        Ok(self
            .products()?
            .into_iter()
            .filter(|p| !fresh.contains(&p.id))
            .collect())
    }

    fn fresh_ids(&self, model_id: i64) -> Result<Vec<i64>> {
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::fresh_ids(&mut c, model_id);
        }
        let mut st = self.conn()?.prepare(
            "SELECT e.product_id FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
             WHERE e.model_id = ?1",
        )?;
        let rows = st.query_map([model_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// (fresh, stale) vector counts for a model; stale ones came from an older photo.
    pub fn embedding_counts(&self, model_id: i64) -> Result<(usize, usize)> {
        if let Some(mut c) = self.pg() {
            let total = super::postgres::sql::count(
                &mut c,
                "SELECT COUNT(*) FROM embeddings WHERE model_id = $1",
                &[&model_id],
            )?;
            drop(c);
            let fresh = self.fresh_ids(model_id)?.len();
            return Ok((fresh, total as usize - fresh));
        }
        let total: i64 =
            self.conn()?
                .query_row("SELECT COUNT(*) FROM embeddings WHERE model_id = ?1", [model_id], |r| {
                    r.get(0)
                })?;
        let fresh = self.fresh_ids(model_id)?.len();
        Ok((fresh, total as usize - fresh))
    }

    /// Vectors stored under other models (another weights file, preprocessing or head).
    pub fn embeddings_of_other_models(&self, model_id: i64) -> Result<usize> {
        if let Some(mut c) = self.pg() {
            let sql = "SELECT COUNT(*) FROM embeddings WHERE model_id <> $1";
            return Ok(super::postgres::sql::count(&mut c, sql, &[&model_id])? as usize);
        }
        let n: i64 = self.conn()?.query_row(
            "SELECT COUNT(*) FROM embeddings WHERE model_id != ?1",
            [model_id],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Stores vectors (product id, image hash, vector) in one transaction.
    pub fn put_embeddings(&mut self, model_id: i64, rows: &[(i64, String, Vec<f32>)]) -> Result<()> {
        let now = now_ms();
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::put_embeddings(&mut c, model_id, rows, now);
        }
        let tx = self.conn_mut()?.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(model_id, product_id) DO UPDATE SET image_hash = excluded.image_hash,
                    vector = excluded.vector, created_at = excluded.created_at",
            )?;
            for (pid, hash, v) in rows {
                st.execute(params![model_id, pid, hash, to_blob(v), now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The fresh vector of one product, if any.
    pub fn embedding(&self, model_id: i64, product_id: i64) -> Result<Option<Vec<f32>>> {
        if let Some(mut c) = self.pg() {
            return super::postgres::sql::embedding(&mut c, model_id, product_id);
        }
        let blob: Option<Vec<u8>> = self
            .conn()?
            .query_row(
                "SELECT e.vector FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
                 WHERE e.model_id = ?1 AND e.product_id = ?2",
                params![model_id, product_id],
                |r| r.get(0),
            )
            .optional()?;
        blob.map(|b| {
            let mut v = Vec::new();
            from_blob(&b, &mut v).map(|_| v)
        })
        .transpose()
    }

    /// Loads every fresh vector of a model into one contiguous matrix.
    pub fn load_embeddings(&self, model_id: i64) -> Result<EmbeddingMatrix> {
        let model = self.model(model_id)?;
        let dim = model.spec.dim;
        let n = self.product_count()?;
        let mut m = EmbeddingMatrix {
            model_id,
            dim,
            ids: Vec::with_capacity(n),
            data: Vec::with_capacity(n * dim),
        };
        if let Some(mut c) = self.pg() {
            super::postgres::sql::load_embeddings(&mut c, &mut m, &model.spec.name)?;
            return Ok(m);
        }
        let mut st = self.conn()?.prepare(
            "SELECT e.product_id, e.vector FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash
             WHERE e.model_id = ?1 ORDER BY e.product_id",
        )?;
        let mut rows = st.query([model_id])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let blob = r
                .get_ref(1)?
                .as_blob()
                .map_err(|e| Error::Invalid(format!("vector of product {id}: {e}")))?;
            if blob.len() != dim * 4 {
                return Err(Error::Invalid(format!(
                    "vector of product {id} has {} bytes, model {} expects {}",
                    blob.len(),
                    model.spec.name,
                    dim * 4
                )));
            }
            from_blob(blob, &mut m.data)?;
            m.ids.push(id);
        }
        Ok(m)
    }

    /// Stores a trained projection head and returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn store_head(
        &self,
        backbone_model_id: i64,
        in_dim: usize,
        out_dim: usize,
        weight: &[f32],
        bias: &[f32],
        params_json: &str,
        metrics_json: &str,
    ) -> Result<i64> {
        use sha2::{Digest, Sha256};
        let (wb, bb) = (to_blob(weight), to_blob(bias));
        let mut h = Sha256::new();
        h.update(&wb);
        h.update(&bb);
        let sha = format!("{:x}", h.finalize());
        if let Some(mut c) = self.pg() {
            let row = (
                0,
                backbone_model_id,
                in_dim as i64,
                out_dim as i64,
                wb,
                bb,
                sha,
                params_json.to_string(),
                metrics_json.to_string(),
            );
            return super::postgres::sql::store_head(&mut c, &row, now_ms());
        }
        self.conn()?.execute(
            "INSERT INTO heads(backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                backbone_model_id,
                in_dim as i64,
                out_dim as i64,
                wb,
                bb,
                sha,
                params_json,
                metrics_json,
                now_ms()
            ],
        )?;
        Ok(self.conn()?.last_insert_rowid())
    }

    /// A stored head.
    pub fn head(&self, id: i64) -> Result<StoredHead> {
        let found = match self.pg() {
            Some(mut c) => super::postgres::sql::head(&mut c, id)?,
            None => self.head_sqlite(id)?,
        };
        let row =
            found.ok_or_else(|| Error::NotFound(format!("head {id} is not stored in {}", self.path().display())))?;
        let (mut weight, mut bias) = (Vec::new(), Vec::new());
        from_blob(&row.4, &mut weight)?;
        from_blob(&row.5, &mut bias)?;
        let (in_dim, out_dim) = (row.2 as usize, row.3 as usize);
        if weight.len() != in_dim * out_dim || bias.len() != out_dim {
            return Err(Error::Invalid(format!(
                "head {id} is corrupt: {} weights for {out_dim}x{in_dim}",
                weight.len()
            )));
        }
        Ok(StoredHead {
            id: row.0,
            backbone_model_id: row.1,
            in_dim,
            out_dim,
            weight,
            bias,
            sha256: row.6,
            params: row.7,
            metrics: row.8,
        })
    }

    fn head_sqlite(&self, id: i64) -> Result<Option<super::postgres::sql::HeadRow>> {
        Ok(self
            .conn()?
            .query_row(
                "SELECT id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics FROM heads WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                        r.get::<_, Vec<u8>>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                    ))
                },
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ProductUpsert, products::upsert};

    #[test]
    fn vectors_round_trip_and_go_stale_when_the_photo_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let mk = |id: i64, hash: &str| ProductUpsert {
            id,
            name: "x".into(),
            category: ["A".into(), "B".into(), "C".into()],
            gender: "Men".into(),
            colour: "Red".into(),
            season: String::new(),
            year: None,
            usage: String::new(),
            image_path: format!("{id}.jpg"),
            image_hash: hash.into(),
        };
        let tx = cat.conn_mut().unwrap().transaction().unwrap();
        upsert(&tx, &mk(1, "a"), 0).unwrap();
        upsert(&tx, &mk(2, "b"), 0).unwrap();
        tx.commit().unwrap();
        let spec = ModelSpec {
            name: "m".into(),
            architecture: "resnet50".into(),
            weights_sha256: "s".into(),
            preprocessing: "p".into(),
            pooling: "avg".into(),
            dim: 2,
            head_id: None,
        };
        let m = cat.register_model(&spec).unwrap();
        assert_eq!(cat.register_model(&spec).unwrap().id, m.id);
        cat.put_embeddings(
            m.id,
            &[(1, "a".into(), vec![1.0, 0.0]), (2, "b".into(), vec![0.0, -2.5])],
        )
        .unwrap();
        let mat = cat.load_embeddings(m.id).unwrap();
        assert_eq!(mat.ids, vec![1, 2]);
        assert_eq!(mat.row(1), &[0.0, -2.5]);
        let tx = cat.conn_mut().unwrap().transaction().unwrap();
        upsert(&tx, &mk(2, "changed"), 1).unwrap();
        tx.commit().unwrap();
        assert_eq!(cat.embedding_counts(m.id).unwrap(), (1, 1));
        assert_eq!(cat.products_missing_embedding(m.id).unwrap().len(), 1);
        assert!(cat.embedding(m.id, 2).unwrap().is_none());
    }
}
