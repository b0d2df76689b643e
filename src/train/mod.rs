//! `lookbook train`: a projection head learned on frozen backbone vectors; with `--feed`, the
//! feed's blend and model learned from the shop's history ([`feed`]).
//!
//! A linear map (2048 -> 256 by default) is trained with a normalised-softmax loss (cosine
//! logits against one learned proxy per label, scaled), so that products of one articleType
//! gather in the projected space. Training never sees the evaluation's held-out split; its own
//! early-stopping split is carved from the rest. A head that does not beat the bare backbone on
//! that split is reported and not activated.

pub mod feed;

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::Serialize;
use std::collections::HashMap;

use crate::catalog::{Catalog, EmbeddingMatrix, ModelRecord, ModelSpec, StoredHead};
use crate::recommend::{FlatIndex, normalize, top_k};
use crate::sample::{Rng, is_held_out, splitmix64};
use crate::{Error, Progress, Result};

/// Training settings.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Output dimension.
    pub dim: usize,
    /// Maximum passes over the training items.
    pub epochs: usize,
    /// Items per step.
    pub batch: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Logit scale of the normalised softmax.
    pub scale: f64,
    /// Stop after this many epochs without a better validation P@10.
    pub patience: usize,
    /// Seed for initialisation and batching.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dim: 256,
            epochs: 80,
            batch: 256,
            lr: 2e-3,
            weight_decay: 1e-4,
            scale: 16.0,
            patience: 10,
            seed: 7,
        }
    }
}

/// A trained linear projection; outputs are L2-normalised.
#[derive(Debug, Clone)]
pub struct Head {
    /// Input length.
    pub in_dim: usize,
    /// Output length.
    pub out_dim: usize,
    /// `out_dim x in_dim`, row-major.
    pub weight: Vec<f32>,
    /// `out_dim`.
    pub bias: Vec<f32>,
}

impl Head {
    /// From a stored head.
    pub fn from_stored(h: &StoredHead) -> Self {
        Head {
            in_dim: h.in_dim,
            out_dim: h.out_dim,
            weight: h.weight.clone(),
            bias: h.bias.clone(),
        }
    }

    /// Projects one backbone vector.
    pub fn project(&self, v: &[f32]) -> Vec<f32> {
        let mut out: Vec<f32> = (0..self.out_dim)
            .map(|o| crate::recommend::dot(&self.weight[o * self.in_dim..(o + 1) * self.in_dim], v) + self.bias[o])
            .collect();
        normalize(&mut out);
        out
    }

    /// Projects every row of a matrix.
    pub fn project_matrix(&self, m: &EmbeddingMatrix, model_id: i64) -> EmbeddingMatrix {
        use rayon::prelude::*;
        let data: Vec<f32> = (0..m.len())
            .into_par_iter()
            .flat_map_iter(|i| self.project(m.row(i)))
            .collect();
        EmbeddingMatrix {
            model_id,
            dim: self.out_dim,
            ids: m.ids.clone(),
            data,
        }
    }
}

/// What training did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Input dimension (the backbone's).
    pub in_dim: usize,
    /// Items trained on.
    pub train_items: usize,
    /// Items used for early stopping.
    pub val_items: usize,
    /// Labels learned.
    pub classes: usize,
    /// Epochs run.
    pub epochs: usize,
    /// Training loss per epoch.
    pub losses: Vec<f64>,
    /// Validation P@10 of the bare backbone.
    pub backbone_val_p10: f64,
    /// Best validation P@10 of the head.
    pub head_val_p10: f64,
    /// Epoch of the best head.
    pub best_epoch: usize,
}

/// The early-stopping split inside the non-held-out items (about 15%).
fn is_val(id: i64) -> bool {
    splitmix64((id as u64) ^ 0x005E_ED0F_4EAD) % 100 < 15
}

/// kNN P@10 of `queries` rows against all rows of `m`, by label.
fn knn_p10(m: &EmbeddingMatrix, labels: &[usize], queries: &[usize]) -> f64 {
    let index = FlatIndex::new(m.clone());
    let mut sum = 0.0;
    for &q in queries {
        let s = index.scores(index.vector(q));
        let top = top_k(&s, 10, |r| r != q);
        sum += top.iter().filter(|(r, _)| labels[*r] == labels[q]).count() as f64 / 10.0;
    }
    sum / queries.len().max(1) as f64
}

/// Trains a head on `features` (unit rows) with integer `labels`; rows in `val` steer early stopping.
pub fn fit(
    features: &EmbeddingMatrix,
    labels: &[usize],
    val: &[bool],
    s: &Settings,
    progress: &dyn Progress,
) -> Result<(Head, Report)> {
    let n = features.len();
    if n != labels.len() || n != val.len() {
        return Err(Error::Invalid("features, labels and split differ in length".into()));
    }
    let train_rows: Vec<usize> = (0..n).filter(|&i| !val[i]).collect();
    let val_rows: Vec<usize> = (0..n).filter(|&i| val[i]).collect();
    if train_rows.len() < 2 {
        return Err(Error::Invalid(format!(
            "only {} training items; a head needs more",
            train_rows.len()
        )));
    }
    let classes = labels.iter().max().map(|m| m + 1).unwrap_or(0);
    let (din, dout) = (features.dim, s.dim.clamp(2, 4096));
    let dev = Device::Cpu;
    let mut rng = Rng::new(s.seed);
    let mut gauss = |scale: f32| -> f32 {
        // Irwin-Hall approximation of a normal: plenty for initialisation.
        ((0..4).map(|_| rng.unit()).sum::<f32>() - 2.0) * 1.732 * scale
    };
    let w0: Vec<f32> = (0..dout * din).map(|_| gauss(1.0 / (din as f32).sqrt())).collect();
    let p0: Vec<f32> = (0..classes * dout).map(|_| gauss(1.0)).collect();
    let w = Var::from_tensor(&Tensor::from_vec(w0, (dout, din), &dev)?)?;
    let b = Var::from_tensor(&Tensor::zeros(dout, DType::F32, &dev)?)?;
    let proxies = Var::from_tensor(&Tensor::from_vec(p0, (classes, dout), &dev)?)?;
    let mut opt = AdamW::new(
        vec![w.clone(), b.clone(), proxies.clone()],
        ParamsAdamW {
            lr: s.lr,
            weight_decay: s.weight_decay,
            ..Default::default()
        },
    )?;
    let x_all = Tensor::from_slice(&features.data, (n, din), &dev)?;
    let y_all = Tensor::from_vec(labels.iter().map(|&l| l as u32).collect::<Vec<u32>>(), n, &dev)?;
    let l2 = |t: &Tensor| -> candle_core::Result<Tensor> {
        t.broadcast_div(&t.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?)
    };
    let current_head = |w: &Var, b: &Var| -> Result<Head> {
        Ok(Head {
            in_dim: din,
            out_dim: dout,
            weight: w.as_tensor().flatten_all()?.to_vec1()?,
            bias: b.as_tensor().to_vec1()?,
        })
    };
    let backbone_p10 = knn_p10(features, labels, &val_rows);
    let mut best = (f64::NEG_INFINITY, 0usize, current_head(&w, &b)?);
    let mut losses = Vec::new();
    let mut order = train_rows.clone();
    let mut since_best = 0;
    progress.start("training head", s.epochs);
    let mut epochs_run = 0;
    for epoch in 1..=s.epochs {
        rng.shuffle(&mut order);
        let mut loss_sum = 0.0;
        let mut steps = 0;
        for chunk in order.chunks(s.batch.max(2)) {
            let idx = Tensor::from_vec(chunk.iter().map(|&i| i as u32).collect::<Vec<u32>>(), chunk.len(), &dev)?;
            let x = x_all.index_select(&idx, 0)?;
            let y = y_all.index_select(&idx, 0)?;
            let z = l2(&x.matmul(&w.as_tensor().t()?)?.broadcast_add(b.as_tensor())?)?;
            let logits = (z.matmul(&l2(proxies.as_tensor())?.t()?)? * s.scale)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            opt.backward_step(&loss)?;
            loss_sum += loss.to_scalar::<f32>()? as f64;
            steps += 1;
        }
        epochs_run = epoch;
        let loss = loss_sum / steps.max(1) as f64;
        losses.push(loss);
        let head = current_head(&w, &b)?;
        let p10 = if val_rows.is_empty() {
            -loss
        } else {
            knn_p10(&head.project_matrix(features, 0), labels, &val_rows)
        };
        progress.message(&format!(
            "epoch {epoch}: loss {loss:.4}, val P@10 {p10:.4} (backbone {backbone_p10:.4})"
        ));
        progress.advance(1);
        if p10 > best.0 {
            best = (p10, epoch, head);
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= s.patience {
                break;
            }
        }
    }
    progress.finish();
    let report = Report {
        in_dim: din,
        train_items: train_rows.len(),
        val_items: val_rows.len(),
        classes,
        epochs: epochs_run,
        losses,
        backbone_val_p10: backbone_p10,
        head_val_p10: best.0,
        best_epoch: best.1,
    };
    Ok((best.2, report))
}

/// Outcome of [`train_catalog`].
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Training details.
    pub report: Report,
    /// Stored head id.
    pub head_id: i64,
    /// The model registered for projected vectors.
    pub model: ModelRecord,
    /// Whether it became the active model (only when it beat the backbone, or when forced).
    pub activated: bool,
}

/// Trains a head on the catalogue's backbone vectors (never on held-out items), stores it,
/// projects every vector and activates it when it beats the backbone on validation.
pub fn train_catalog(catalog: &mut Catalog, s: &Settings, force: bool, progress: &dyn Progress) -> Result<Outcome> {
    let active = catalog
        .active_model()?
        .ok_or_else(|| Error::NoEmbeddings { model: None })?;
    // Always train on the backbone, even if a head is active now.
    let backbone = match active.spec.head_id {
        Some(h) => catalog.model(catalog.head(h)?.backbone_model_id)?,
        None => active,
    };
    let all = catalog.load_embeddings(backbone.id)?;
    if all.is_empty() {
        return Err(Error::NoEmbeddings {
            model: Some(backbone.spec.name),
        });
    }
    let products: HashMap<i64, String> = catalog
        .products()?
        .into_iter()
        .map(|p| (p.id, p.article_type))
        .collect();
    let mut train = EmbeddingMatrix {
        model_id: backbone.id,
        dim: all.dim,
        ..Default::default()
    };
    for (i, id) in all.ids.iter().enumerate() {
        if !is_held_out(*id) && products.contains_key(id) {
            train.ids.push(*id);
            train.data.extend_from_slice(all.row(i));
        }
    }
    let mut names: Vec<&String> = train.ids.iter().map(|id| &products[id]).collect();
    names.sort();
    names.dedup();
    let class_of: HashMap<&String, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let labels: Vec<usize> = train.ids.iter().map(|id| class_of[&products[id]]).collect();
    let val: Vec<bool> = train.ids.iter().map(|id| is_val(*id)).collect();
    let (head, report) = fit(&train, &labels, &val, s, progress)?;
    let params = serde_json::to_string(s).unwrap_or_default();
    let metrics = serde_json::to_string(&report).unwrap_or_default();
    let head_id = catalog.store_head(
        backbone.id,
        head.in_dim,
        head.out_dim,
        &head.weight,
        &head.bias,
        &params,
        &metrics,
    )?;
    let spec = ModelSpec {
        dim: head.out_dim,
        head_id: Some(head_id),
        ..backbone.spec.clone()
    };
    let model = catalog.register_model(&spec)?;
    let projected = head.project_matrix(&all, model.id);
    let rows: Vec<(i64, String, Vec<f32>)> = {
        let hashes: HashMap<i64, String> = catalog.products()?.into_iter().map(|p| (p.id, p.image_hash)).collect();
        projected
            .ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| hashes.get(id).map(|h| (*id, h.clone(), projected.row(i).to_vec())))
            .collect()
    };
    catalog.put_embeddings(model.id, &rows)?;
    let activated = force || report.head_val_p10 > report.backbone_val_p10;
    catalog.set_active_model(if activated { model.id } else { backbone.id })?;
    Ok(Outcome {
        report,
        head_id,
        model,
        activated,
    })
}

/// Brings a head model's vectors up to date from its backbone's (after `embed` added products).
pub fn project_missing(catalog: &mut Catalog, model: &ModelRecord) -> Result<usize> {
    let Some(head_id) = model.spec.head_id else {
        return Ok(0);
    };
    let stored = catalog.head(head_id)?;
    let head = Head::from_stored(&stored);
    let missing: std::collections::HashSet<i64> = catalog
        .products_missing_embedding(model.id)?
        .into_iter()
        .map(|p| p.id)
        .collect();
    if missing.is_empty() {
        return Ok(0);
    }
    let hashes: HashMap<i64, String> = catalog.products()?.into_iter().map(|p| (p.id, p.image_hash)).collect();
    let mut rows = Vec::new();
    for id in missing {
        if let Some(v) = catalog.embedding(stored.backbone_model_id, id)? {
            rows.push((id, hashes[&id].clone(), head.project(&v)));
        }
    }
    catalog.put_embeddings(model.id, &rows)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three noisy clusters in 16-d: the head should learn them and the loss should fall.
    #[test]
    fn loss_goes_down_and_head_separates_clusters() {
        let mut rng = Rng::new(3);
        let (n, d) = (150, 16);
        let mut m = EmbeddingMatrix {
            model_id: 1,
            dim: d,
            ..Default::default()
        };
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 3;
            let mut v: Vec<f32> = (0..d)
                .map(|j| if j == c { 1.0 } else { 0.0 } + (rng.unit() - 0.5) * 0.5)
                .collect();
            normalize(&mut v);
            m.ids.push(i as i64);
            m.data.extend(v);
            labels.push(c);
        }
        let val: Vec<bool> = (0..n).map(|i| i % 5 == 0).collect();
        let s = Settings {
            dim: 8,
            epochs: 30,
            batch: 32,
            patience: 30,
            ..Default::default()
        };
        let (head, report) = fit(&m, &labels, &val, &s, &crate::NoProgress).unwrap();
        assert!(
            report.losses.last().unwrap() < &(report.losses[0] * 0.8),
            "{:?}",
            report.losses
        );
        assert_eq!(head.project(m.row(0)).len(), 8);
        assert!(report.head_val_p10 >= 0.9, "{report:?}");
    }
}
