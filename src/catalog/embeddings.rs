//! Models (with their provenance) and the vectors they produced.
//!
//! A vector is stored as a little-endian f32 BLOB with the hash of the photo it came from; a
//! changed photo or a different model/preprocessing makes it stale, and stale vectors are never
//! loaded.

use serde::Serialize;

use super::sql::{Db, Row, Value, params};
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

/// A model record from `SELECT id, name, architecture, weights_sha256, preprocessing, pooling,
/// dim, head_id`.
fn model_from(r: &Row) -> Result<ModelRecord> {
    Ok(ModelRecord {
        id: r.get(0)?,
        spec: ModelSpec {
            name: r.get(1)?,
            architecture: r.get(2)?,
            weights_sha256: r.get(3)?,
            preprocessing: r.get(4)?,
            pooling: r.get(5)?,
            dim: r.get(6)?,
            head_id: r.get(7)?,
        },
    })
}

/// Fresh vectors: the photo a vector came from is the product's photo now.
const FRESH: &str = "FROM embeddings e JOIN products p ON p.id = e.product_id AND p.image_hash = e.image_hash";

impl Catalog {
    /// Registers a model (or finds it by key) and returns its record.
    pub fn register_model(&self, spec: &ModelSpec) -> Result<ModelRecord> {
        let key = spec.key();
        let id: i64 = {
            let mut db = self.db()?;
            // Looked up first: registering a known model writes nothing (a read command stays
            // a read, also on a full disk).
            let select = "SELECT id FROM models WHERE key = ?1";
            if let Some(r) = db.row(select, params![&key])? {
                r.get(0)?
            } else {
                db.execute(
                "INSERT INTO models(key, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(key) DO NOTHING",
                params![
                    &key,
                    &spec.name,
                    &spec.architecture,
                    &spec.weights_sha256,
                    &spec.preprocessing,
                    &spec.pooling,
                    spec.dim,
                    spec.head_id,
                    now_ms()
                ],
            )?;
                db.scalar(select, params![&key])?
            }
        };
        // Vectors embedded straight into PostgreSQL get an index as a migrated model has; one
        // it already has stays.
        if let Some(mut c) = self.pg() {
            super::postgres::index_model(&mut *c, id, spec.dim as i64, super::postgres::IndexChoice::Auto)?;
        }
        Ok(ModelRecord { id, spec: spec.clone() })
    }

    /// A registered model by id.
    pub fn model(&self, id: i64) -> Result<ModelRecord> {
        self.db()?
            .row(
                "SELECT id, name, architecture, weights_sha256, preprocessing, pooling, dim, head_id FROM models WHERE id = ?1",
                params![id],
            )?
            .map(|r| model_from(&r))
            .transpose()?
            .ok_or_else(|| Error::NotFound(format!("model {id} is not registered in {}", self.path().display())))
    }

    /// A cheap fingerprint of what rankings are built from (products, vectors, the active
    /// model, the newest feed model): it changes when `import`, `embed` or `train` commit, and
    /// not when likes do. In
    /// SQLite it is the write generation (one row; counting products scanned them all, 70 ms
    /// a second at 50,000 for a server that polls it); PostgreSQL's embed workers do not move
    /// one, so there it counts.
    pub fn change_signature(&self) -> Result<String> {
        let active = self.setting("active_model")?.unwrap_or_default();
        // A new `train --feed` changes the feed (one index lookup).
        let feed: i64 = self.db()?.scalar("SELECT COALESCE(MAX(id), 0) FROM feed_models", &[])?;
        let active = format!("{active}|feed={feed}");
        if !self.is_postgres() {
            let generation = self.setting(GENERATION)?.unwrap_or_default();
            return Ok(format!("generation={generation}|active={active}"));
        }
        let r = self.db()?.row(
            "SELECT (SELECT COUNT(*) FROM products), (SELECT COALESCE(MAX(updated_at), 0) FROM products),
                    (SELECT COUNT(*) FROM embeddings)",
            &[],
        )?;
        let r = r.ok_or_else(|| Error::Invalid("the change signature query returned no row".into()))?;
        let (products, changed, vectors): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(format!(
            "products={products},{changed}|vectors={vectors}|active={active}"
        ))
    }

    /// What a model's fresh vectors are, as a string that changes whenever they do or the
    /// products they rank do: the model's identity and the catalogue's write generation (moved
    /// on by every vector, product or listing lookbook writes, see `bump_generation`). An
    /// index kept on disk is used only while this is what it was built from. One settings row,
    /// so a one-shot query at 10^6 products does not scan them (that took 380 ms).
    pub fn vectors_fingerprint(&self, model_id: i64) -> Result<String> {
        let model = self.model(model_id)?;
        let generation = self.setting(GENERATION)?.unwrap_or_default();
        Ok(format!(
            "model={}|{}|generation={generation}",
            model.id,
            model.spec.key()
        ))
    }

    /// The model `similar` and `recommend` use: the last one embedded or trained.
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
        self.db()?
            .rows(
                &format!("SELECT e.product_id {FRESH} WHERE e.model_id = ?1"),
                params![model_id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// (fresh, stale) vector counts for a model; stale ones came from an older photo.
    pub fn embedding_counts(&self, model_id: i64) -> Result<(usize, usize)> {
        let total: usize = self
            .db()?
            .scalar("SELECT COUNT(*) FROM embeddings WHERE model_id = ?1", params![model_id])?;
        let fresh = self.fresh_ids(model_id)?.len();
        Ok((fresh, total - fresh))
    }

    /// Vectors stored under other models (another weights file, preprocessing or head).
    pub fn embeddings_of_other_models(&self, model_id: i64) -> Result<usize> {
        self.db()?.scalar(
            "SELECT COUNT(*) FROM embeddings WHERE model_id <> ?1",
            params![model_id],
        )
    }

    /// Stores vectors (product id, image hash, vector) in one transaction.
    pub fn put_embeddings(&mut self, model_id: i64, rows: &[(i64, String, Vec<f32>)]) -> Result<()> {
        let now = now_ms();
        let mut tx = self.tx()?;
        put_embeddings_in(&mut tx, model_id, rows, now)?;
        tx.commit()
    }

    /// The fresh vector of one product, if any.
    pub fn embedding(&self, model_id: i64, product_id: i64) -> Result<Option<Vec<f32>>> {
        self.db()?
            .row(
                &format!("SELECT e.vector {FRESH} WHERE e.model_id = ?1 AND e.product_id = ?2"),
                params![model_id, product_id],
            )?
            .map(|r| r.get(0))
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
        let sql = format!("SELECT e.product_id, e.vector {FRESH} WHERE e.model_id = ?1 ORDER BY e.product_id");
        self.db()?.each(&sql, params![model_id], &mut |r| {
            let id: i64 = r.get(0)?;
            let got = r
                .vector_into(1, &mut m.data)
                .map_err(|e| Error::Invalid(format!("vector of product {id}: {e}")))?;
            if got != dim {
                return Err(Error::Invalid(format!(
                    "vector of product {id} has {got} values, model {} expects {dim}",
                    model.spec.name
                )));
            }
            m.ids.push(id);
            Ok(())
        })?;
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
        self.db()?.scalar(
            "INSERT INTO heads(backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
            params![
                backbone_model_id,
                in_dim,
                out_dim,
                wb,
                bb,
                sha,
                params_json,
                metrics_json,
                now_ms()
            ],
        )
    }

    /// A stored head.
    pub fn head(&self, id: i64) -> Result<StoredHead> {
        let row = self
            .db()?
            .row(
                "SELECT id, backbone_model_id, in_dim, out_dim, weight, bias, sha256, params, metrics FROM heads WHERE id = ?1",
                params![id],
            )?
            .ok_or_else(|| Error::NotFound(format!("head {id} is not stored in {}", self.path().display())))?;
        let (mut weight, mut bias) = (Vec::new(), Vec::new());
        from_blob(&row.get::<Vec<u8>>(4)?, &mut weight)?;
        from_blob(&row.get::<Vec<u8>>(5)?, &mut bias)?;
        let (in_dim, out_dim): (usize, usize) = (row.get(2)?, row.get(3)?);
        if weight.len() != in_dim * out_dim || bias.len() != out_dim {
            return Err(Error::Invalid(format!(
                "head {id} is corrupt: {} weights for {out_dim}x{in_dim}",
                weight.len()
            )));
        }
        Ok(StoredHead {
            id: row.get(0)?,
            backbone_model_id: row.get(1)?,
            in_dim,
            out_dim,
            weight,
            bias,
            sha256: row.get(6)?,
            params: row.get(7)?,
            metrics: row.get(8)?,
        })
    }
}

/// Rows per `INSERT` in [`put_embeddings_in`]: five parameters each, well inside both stores'
/// limits (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_INSERT: usize = 500;

/// Stores vectors (product id, image hash, vector) of one model in the caller's transaction,
/// replacing older ones, with one statement per [`ROWS_PER_INSERT`] rows: an embed worker's
/// batch costs one round trip to a database across the network, not one per vector.
pub(crate) fn put_embeddings_in(
    db: &mut impl Db,
    model_id: i64,
    rows: &[(i64, String, Vec<f32>)],
    now: i64,
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = 5 * i;
                format!("(?{}, ?{}, ?{}, ?{}, ?{})", p + 1, p + 2, p + 3, p + 4, p + 5)
            })
            .collect();
        let mut params = Vec::with_capacity(5 * chunk.len());
        for (pid, hash, v) in chunk {
            params.extend([
                Value::from(model_id),
                Value::from(*pid),
                Value::from(hash.as_str()),
                Value::from(v.as_slice()),
                Value::from(now),
            ]);
        }
        db.execute(
            &format!(
                "INSERT INTO embeddings(model_id, product_id, image_hash, vector, created_at) VALUES {}
                 ON CONFLICT(model_id, product_id) DO UPDATE SET image_hash = excluded.image_hash,
                    vector = excluded.vector, created_at = excluded.created_at",
                values.join(", ")
            ),
            &params,
        )?;
    }
    if rows.is_empty() {
        return Ok(());
    }
    bump_generation(db)
}

/// The settings key of the catalogue's write generation.
const GENERATION: &str = "catalog_generation";

/// Moves the catalogue's write generation on, in the caller's transaction: every vector,
/// product and listing write calls it, so an index kept on disk (see `recommend::ivf_file`)
/// knows it is stale whoever wrote. Only SQLite catalogues keep one; in PostgreSQL the row
/// would serialise the embed workers.
pub(crate) fn bump_generation(db: &mut impl Db) -> Result<()> {
    if db.dialect() != super::tables::Dialect::Sqlite {
        return Ok(());
    }
    db.execute(
        "INSERT INTO settings(key, value) VALUES (?1, '1')
         ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(settings.value AS INTEGER) + 1 AS TEXT)",
        params![GENERATION],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ProductUpsert, products::upsert};

    /// A model of 2-d vectors.
    fn two_d_model() -> ModelSpec {
        ModelSpec {
            name: "m".into(),
            architecture: "resnet50".into(),
            weights_sha256: "s".into(),
            preprocessing: "p".into(),
            pooling: "avg".into(),
            dim: 2,
            head_id: None,
        }
    }

    #[test]
    fn the_change_signature_moves_with_products_vectors_and_the_model_not_with_likes() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let put = |cat: &mut Catalog, id: i64, name: &str| {
            let p = ProductUpsert {
                id,
                name: name.into(),
                category: ["A".into(), "B".into(), "C".into()],
                image_path: format!("{id}.jpg"),
                image_hash: "h".into(),
                ..Default::default()
            };
            let mut tx = cat.tx().unwrap();
            upsert(&mut tx, &p, 0).unwrap();
            tx.commit().unwrap();
        };
        put(&mut cat, 1, "x");
        let mut seen = vec![cat.change_signature().unwrap()];
        let mut moved = |cat: &Catalog, what: &str, expect: bool| {
            let now = cat.change_signature().unwrap();
            assert_eq!(!seen.contains(&now), expect, "{what}: {now}");
            seen.push(now);
        };
        put(&mut cat, 1, "x");
        moved(&cat, "the same product again", false);
        put(&mut cat, 1, "renamed");
        moved(&cat, "a product changed", true);
        put(&mut cat, 2, "new");
        moved(&cat, "a product added", true);
        let spec = two_d_model();
        let m = cat.register_model(&spec).unwrap();
        cat.put_embeddings(m.id, &[(1, "h".into(), vec![1.0, 0.0])]).unwrap();
        moved(&cat, "a vector", true);
        cat.set_active_model(m.id).unwrap();
        moved(&cat, "the active model", true);
        let u = cat.ensure_user("ann").unwrap();
        cat.set_feedback(u, &[1], 1.0).unwrap();
        moved(&cat, "a like", false);
    }

    #[test]
    fn many_vectors_go_in_a_few_statements_and_replace_older_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut cat = Catalog::open(dir.path().join("c.db")).unwrap();
        let n = 2 * ROWS_PER_INSERT as i64 + 3; // two full statements and a short one
        let mut tx = cat.tx().unwrap();
        for id in 1..=n {
            let p = ProductUpsert {
                id,
                name: "x".into(),
                category: ["A".into(), "B".into(), "C".into()],
                image_path: format!("{id}.jpg"),
                image_hash: format!("h{id}"),
                ..Default::default()
            };
            upsert(&mut tx, &p, 0).unwrap();
        }
        tx.commit().unwrap();
        let m = cat.register_model(&two_d_model()).unwrap();
        let rows = |scale: f32| -> Vec<(i64, String, Vec<f32>)> {
            (1..=n)
                .map(|id| (id, format!("h{id}"), vec![id as f32 * scale, -1.0]))
                .collect()
        };
        cat.put_embeddings(m.id, &rows(1.0)).unwrap();
        let before = cat.change_signature().unwrap();
        cat.put_embeddings(m.id, &rows(2.0)[..ROWS_PER_INSERT + 1]).unwrap();
        assert_ne!(cat.change_signature().unwrap(), before);
        let got = cat.load_embeddings(m.id).unwrap();
        assert_eq!(got.ids, (1..=n).collect::<Vec<_>>());
        for (i, id) in got.ids.iter().enumerate() {
            let scale = if *id as usize <= ROWS_PER_INSERT + 1 { 2.0 } else { 1.0 };
            assert_eq!(&got.data[2 * i..2 * i + 2], &[*id as f32 * scale, -1.0], "product {id}");
        }
        let stored: i64 = cat
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM embeddings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, n);
    }

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
            ..Default::default()
        };
        let mut tx = cat.tx().unwrap();
        upsert(&mut tx, &mk(1, "a"), 0).unwrap();
        upsert(&mut tx, &mk(2, "b"), 0).unwrap();
        tx.commit().unwrap();
        let spec = two_d_model();
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
        let mut tx = cat.tx().unwrap();
        upsert(&mut tx, &mk(2, "changed"), 1).unwrap();
        tx.commit().unwrap();
        assert_eq!(cat.embedding_counts(m.id).unwrap(), (1, 1));
        assert_eq!(cat.products_missing_embedding(m.id).unwrap().len(), 1);
        assert!(cat.embedding(m.id, 2).unwrap().is_none());
    }
}
