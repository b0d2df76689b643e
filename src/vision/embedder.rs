//! The batched embedder: photos of a catalogue in, vectors with provenance out.
//!
//! Decoding runs on a producer thread (rayon inside) one batch ahead of the network, and each
//! batch is committed on its own, so an interrupted run resumes where it stopped.

use image::RgbImage;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use rayon::prelude::*;

use super::resnet::FEATURE_DIM;
use super::{Pooling, Precision, Preprocess, ResNet50, weights};
use crate::catalog::{Catalog, ModelRecord, ModelSpec, Product};
use crate::{Error, Progress, Result};

/// What an embedding run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmbedReport {
    /// Products that got a vector in this run.
    pub embedded: usize,
    /// Products that already had a fresh vector.
    pub up_to_date: usize,
    /// Photos that could not be used: product id, file, reason.
    pub failed: Vec<(i64, PathBuf, String)>,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Peak resident memory of the process so far, in MiB (Linux only).
    pub peak_memory_mib: Option<f64>,
}

/// A loaded network plus everything needed to reproduce its vectors.
pub struct Embedder {
    /// The NHWC fast path, built from the folded candle network at load.
    net: super::nhwc::Net,
    /// The weights file's metadata (input size, class names, recipe).
    metadata: std::collections::HashMap<String, String>,
    /// Input preparation (from the weights' metadata, ImageNet's otherwise).
    pub preprocess: Preprocess,
    /// Feature pooling.
    pub pooling: Pooling,
    /// Provenance stored with every vector.
    pub spec: ModelSpec,
    /// The weights file.
    pub weights_path: PathBuf,
}

fn meta_f32(meta: &std::collections::HashMap<String, String>, key: &str) -> Option<f32> {
    meta.get(key).and_then(|v| v.trim().parse().ok())
}

fn meta_triplet(meta: &std::collections::HashMap<String, String>, key: &str) -> Option<[f32; 3]> {
    let v: Vec<f32> = serde_json::from_str(meta.get(key)?).ok()?;
    v.try_into().ok()
}

/// A photo read for embedding: product id, file, and its hash and network input or why not.
type Loaded = (i64, PathBuf, std::result::Result<(String, Vec<f32>), String>);

/// Reads a product's photo (capped), checks it is the one imported, and prepares the input.
fn load_photo(pre: &Preprocess, root: &Path, p: &Product) -> Loaded {
    let path = root.join(&p.image_path);
    let r = crate::files::read_capped(&path, crate::files::MAX_PHOTO_BYTES, "photo")
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let hash = format!("{:x}", Sha256::digest(&bytes));
            if hash != p.image_hash {
                return Err("photo changed since import; run `lookbook import` again".into());
            }
            Ok((hash, super::decode_with(&bytes, |img| pre.apply(&img))?))
        });
    (p.id, path, r)
}

impl Embedder {
    /// Loads weights from `path` for the default precision; input size and normalisation come
    /// from the file's metadata.
    pub fn load(path: &Path, pooling: Pooling) -> Result<Self> {
        Self::load_with(path, pooling, Precision::default())
    }

    /// Loads weights from `path` to run in `precision`, on this CPU's best kernels (or those
    /// `LOOKBOOK_CPU` caps them to).
    pub fn load_with(path: &Path, pooling: Pooling, precision: Precision) -> Result<Self> {
        Self::load_on(path, pooling, precision, super::cpu::Kernels::chosen()?)
    }

    /// Loads weights from `path` to run in `precision` on `kernels` (at most the CPU's).
    pub fn load_on(path: &Path, pooling: Pooling, precision: Precision, kernels: super::cpu::Kernels) -> Result<Self> {
        let weights_sha256 = weights::sha256_weights(path)?;
        let metadata = weights::WeightFile::metadata_of(path)?;
        // A one-shot command maps the network kept from an earlier load of the same weights
        // instead of converting, folding and packing them again.
        let m = &metadata;
        let mut pre = Preprocess::imagenet();
        if let (Some(h), Some(w)) = (
            meta_f32(m, "lookbook.input_height"),
            meta_f32(m, "lookbook.input_width"),
        ) {
            if !(16.0..=1024.0).contains(&h) || !(16.0..=1024.0).contains(&w) {
                return Err(Error::Weights {
                    path: path.into(),
                    message: format!("input size {h}x{w} in metadata is out of range"),
                });
            }
            pre.height = h as usize;
            pre.width = w as usize;
            pre.crop_fraction = meta_f32(m, "lookbook.crop_fraction").unwrap_or(1.0).clamp(0.1, 1.0);
        }
        if let Some(mean) = meta_triplet(m, "lookbook.mean") {
            pre.mean = mean;
        }
        if let Some(std) = meta_triplet(m, "lookbook.std") {
            if std.iter().any(|s| *s <= 0.0) {
                return Err(Error::Weights {
                    path: path.into(),
                    message: "std in metadata must be positive".into(),
                });
            }
            pre.std = std;
        }
        // At the `avx512bf16` level each convolution's product is measured at this input size
        // (kept with the network, so only the first load measures).
        let measured_at = super::tune::wanted(precision, kernels)?.then_some((pre.height, pre.width));
        let dir = super::network_file::dir();
        let net = super::network_file::load_or_build(
            dir.as_deref(),
            &weights_sha256,
            precision,
            kernels,
            measured_at,
            || {
                let reference = ResNet50::load(path)?;
                match measured_at {
                    Some((h, w)) => Ok(super::tune::build(&reference, kernels, h, w)?.0),
                    None => reference.to_nhwc(precision, kernels),
                }
            },
        )?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "resnet50".into());
        let spec = ModelSpec {
            name,
            architecture: precision.architecture().into(),
            weights_sha256,
            preprocessing: pre.describe(),
            pooling: pooling.name().into(),
            dim: FEATURE_DIM,
            head_id: None,
        };
        Ok(Embedder {
            net,
            metadata,
            preprocess: pre,
            pooling,
            spec,
            weights_path: path.to_path_buf(),
        })
    }

    /// Class names stored with lookbook's own model (index = `fc` row).
    pub fn classes(&self) -> Vec<String> {
        self.metadata
            .get("lookbook.classes")
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default()
    }

    /// Vectors for preprocessed inputs (one forward pass).
    pub fn embed_inputs(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        self.net
            .photo_features(inputs, self.preprocess.height, self.preprocess.width, self.pooling)
    }

    /// How many of the network's convolutions multiply on bf16 weights (AMX tiles or
    /// AVX512_BF16 dot products; the rest run the f32 kernel), and how many there are.
    pub fn bf16_products(&self) -> (usize, usize) {
        let convs = self.net.convs();
        (convs.iter().filter(|c| c.bf16_products()).count(), convs.len())
    }

    /// Vectors for decoded images.
    pub fn embed_images(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let inputs: Vec<Vec<f32>> = images.par_iter().map(|i| self.preprocess.apply(i)).collect();
        self.embed_inputs(&inputs)
    }

    /// The vector of one photo file.
    pub fn embed_file(&self, path: &Path) -> Result<Vec<f32>> {
        let img = super::load(path)?;
        Ok(self.embed_images(std::slice::from_ref(&img))?.remove(0))
    }

    /// Embeds every product of the catalogue that lacks a fresh vector for this model, committing
    /// per batch. Registers the model and makes it active.
    pub fn embed_catalog(
        &self,
        catalog: &mut Catalog,
        batch: usize,
        progress: &dyn Progress,
    ) -> Result<(ModelRecord, EmbedReport)> {
        let start = Instant::now();
        let batch = batch.clamp(1, 256);
        let model = catalog.register_model(&self.spec)?;
        if catalog.is_postgres() {
            return self.embed_shared(catalog, model, batch, progress, start);
        }
        let todo = catalog.products_missing_embedding(model.id)?;
        let mut report = EmbedReport {
            up_to_date: catalog.product_count()? - todo.len(),
            ..Default::default()
        };
        let root = catalog.image_root()?;
        progress.start("embedding", todo.len());
        let (tx, rx) = sync_channel::<Vec<Loaded>>(2);
        let pre = &self.preprocess;
        let todo_ref = &todo;
        let root_ref = &root;
        let result: Result<()> = std::thread::scope(|s| {
            s.spawn(move || {
                for chunk in todo_ref.chunks(batch) {
                    let items: Vec<Loaded> = chunk.par_iter().map(|p| load_photo(pre, root_ref, p)).collect();
                    if tx.send(items).is_err() {
                        break;
                    }
                }
            });
            for items in rx {
                let n = items.len();
                let mut ok = Vec::new();
                for (id, path, r) in items {
                    match r {
                        Ok((hash, input)) => ok.push((id, hash, input)),
                        Err(reason) => report.failed.push((id, path, reason)),
                    }
                }
                let inputs: Vec<Vec<f32>> = ok.iter_mut().map(|(_, _, i)| std::mem::take(i)).collect();
                let vectors = self.embed_inputs(&inputs)?;
                let rows: Vec<(i64, String, Vec<f32>)> = ok
                    .into_iter()
                    .zip(vectors)
                    .map(|((id, hash, _), v)| (id, hash, v))
                    .collect();
                report.embedded += rows.len();
                catalog.put_embeddings(model.id, &rows)?;
                progress.advance(n);
            }
            Ok(())
        });
        progress.finish();
        result?;
        catalog.set_active_model(model.id)?;
        report.seconds = start.elapsed().as_secs_f64();
        report.peak_memory_mib = crate::memory::peak_rss_mib();
        Ok((model, report))
    }

    /// Embedding a catalogue in PostgreSQL, where several processes may be doing the same: the
    /// work is claimed a batch at a time (see `catalog::postgres::claims::embed_claims`).
    fn embed_shared(
        &self,
        catalog: &mut Catalog,
        model: ModelRecord,
        batch: usize,
        progress: &dyn Progress,
        start: Instant,
    ) -> Result<(ModelRecord, EmbedReport)> {
        let root = catalog.image_root()?;
        let missing = catalog.products_missing_embedding(model.id)?.len();
        let mut report = EmbedReport {
            up_to_date: catalog.product_count()? - missing,
            ..Default::default()
        };
        progress.start("embedding (shared with other workers)", missing);
        let pre = &self.preprocess;
        let failed = &mut report.failed;
        let result = {
            let Some(mut client) = catalog.pg() else {
                return Err(crate::Error::Invalid("not a PostgreSQL catalogue".into()));
            };
            crate::catalog::postgres::claims::embed_claims(
                &mut client,
                model.id,
                batch,
                |products| {
                    let loaded: Vec<Loaded> = products.par_iter().map(|p| load_photo(pre, &root, p)).collect();
                    let mut ok = Vec::new();
                    for (id, path, r) in loaded {
                        match r {
                            Ok((hash, input)) => ok.push((id, hash, input)),
                            Err(reason) => failed.push((id, path, reason)),
                        }
                    }
                    let inputs: Vec<Vec<f32>> = ok.iter_mut().map(|(_, _, i)| std::mem::take(i)).collect();
                    let vectors = self.embed_inputs(&inputs)?;
                    Ok(ok
                        .into_iter()
                        .zip(vectors)
                        .map(|((id, hash, _), v)| (id, hash, v))
                        .collect())
                },
                |n| {
                    progress.advance(n);
                    progress.log(&format!("committed {n} vectors"));
                },
            )
        };
        progress.finish();
        report.embedded = result?;
        catalog.set_active_model(model.id)?;
        report.seconds = start.elapsed().as_secs_f64();
        report.peak_memory_mib = crate::memory::peak_rss_mib();
        Ok((model, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gem_lies_between_average_and_max_and_names_its_power() {
        let xs = [0.0f32, 1.0, 2.0, 5.0];
        let (avg, max) = (Pooling::Avg.pool(xs.into_iter()), Pooling::Max.pool(xs.into_iter()));
        let mut last = avg;
        for p in 2..=8 {
            let g = Pooling::Gem(p).pool(xs.into_iter());
            assert!(g > last && g < max, "p = {p}: {g} not in ({last}, {max})");
            last = g;
            assert_eq!(Pooling::Gem(p).name().parse::<Pooling>().unwrap(), Pooling::Gem(p));
        }
        assert_eq!("gem".parse::<Pooling>().unwrap(), Pooling::Gem(3));
        for bad in ["gem1", "gem9", "gemx", "median"] {
            assert!(bad.parse::<Pooling>().is_err(), "{bad}");
        }
    }
}
