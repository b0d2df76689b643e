//! The catalogue's active model, end to end: embedding a catalogue without losing a trained
//! head, and turning a photo file into a query vector in the space the rankings use. Both front
//! ends (the commands and the app) call these; neither resolves models itself.

use std::path::Path;

use crate::catalog::Catalog;
use crate::train::{self, Head};
use crate::vision::{EmbedReport, Embedder, Pooling, Precision, weights};
use crate::{Error, Progress, Result};

/// Images per forward pass when nobody says otherwise.
pub const DEFAULT_BATCH: usize = 16;

/// Embeds every product that lacks a fresh vector with `embedder`'s backbone. If a head on that
/// backbone was the active model, its vectors are brought up to date and it stays active, so
/// embedding new products never silently swaps the ranking model.
pub fn embed_catalog(
    cat: &mut Catalog,
    embedder: &Embedder,
    batch: usize,
    progress: &dyn Progress,
) -> Result<EmbedReport> {
    let previous = cat.active_model()?;
    let (backbone, report) = embedder.embed_catalog(cat, batch, progress)?;
    if let Some(prev) = previous
        && let Some(head_id) = prev.spec.head_id
        && cat.head(head_id)?.backbone_model_id == backbone.id
    {
        train::project_missing(cat, &prev)?;
        cat.set_active_model(prev.id)?;
    }
    Ok(report)
}

/// Finds the weights (see [`weights::locate`]) and embeds the catalogue with them, as
/// [`embed_catalog`] does, in the catalogue's precision ([`catalogue_precision`]).
pub fn embed_with_located_weights(
    cat: &mut Catalog,
    weights_arg: Option<&Path>,
    progress: &dyn Progress,
) -> Result<EmbedReport> {
    let path = weights::locate(weights_arg, &cat.dir())?;
    let embedder = Embedder::load_with(&path, Pooling::Avg, catalogue_precision(cat)?)?;
    embed_catalog(cat, &embedder, DEFAULT_BATCH, progress)
}

/// The arithmetic of the active model's backbone, so that embedding new products keeps adding
/// to the same model (and its trained head) rather than starting another; the default
/// ([`Precision::Bf16`]) for a catalogue with no model yet.
pub fn catalogue_precision(cat: &Catalog) -> Result<Precision> {
    let Some(active) = cat.active_model()? else {
        return Ok(Precision::default());
    };
    let backbone = match active.spec.head_id {
        Some(h) => cat.model(cat.head(h)?.backbone_model_id)?,
        None => active,
    };
    Ok(Precision::of_model(&backbone))
}

/// The vector of a photo file in the active model's space (backbone, then the head if one is
/// active), with weights found as [`weights::locate`] does; they must be the ones the
/// catalogue was embedded with.
pub fn photo_vector(cat: &Catalog, photo: &Path, weights_arg: Option<&Path>) -> Result<Vec<f32>> {
    PhotoEncoder::for_catalog(cat, weights_arg)?.vector(photo)
}

/// Photos to query vectors for a catalogue's active model, loaded once: the app keeps one, so a
/// photo query costs one forward pass (tens of ms) instead of loading 100 MB of weights.
pub struct PhotoEncoder {
    embedder: Embedder,
    head: Option<Head>,
    /// The active model it was built for.
    model_id: i64,
}

impl PhotoEncoder {
    /// Loads the backbone (and head) of `cat`'s active model, checking the weights are the
    /// ones its vectors were made with.
    pub fn for_catalog(cat: &Catalog, weights_arg: Option<&Path>) -> Result<Self> {
        let active = cat.active_model()?.ok_or_else(|| Error::NoEmbeddings { model: None })?;
        let (backbone, head) = match active.spec.head_id {
            Some(h) => {
                let stored = cat.head(h)?;
                (cat.model(stored.backbone_model_id)?, Some(Head::from_stored(&stored)))
            }
            None => (active.clone(), None),
        };
        let path = weights::locate(weights_arg, &cat.dir())?;
        let embedder = Embedder::load_with(&path, Pooling::of_model(&backbone), Precision::of_model(&backbone))?;
        if embedder.spec.key() != backbone.spec.key() {
            return Err(Error::Invalid(format!(
                "{}: not the model this catalogue was embedded with ({}, sha256 {}); pass the same --weights or run `lookbook embed` again",
                path.display(),
                backbone.spec.name,
                &backbone.spec.weights_sha256[..12.min(backbone.spec.weights_sha256.len())]
            )));
        }
        Ok(PhotoEncoder {
            embedder,
            head,
            model_id: active.id,
        })
    }

    /// True while `cat`'s active model is still the one this was built for.
    pub fn is_current(&self, cat: &Catalog) -> Result<bool> {
        Ok(cat.active_model()?.is_some_and(|m| m.id == self.model_id))
    }

    /// The query vector of a photo file.
    pub fn vector(&self, photo: &Path) -> Result<Vec<f32>> {
        let v = self.embedder.embed_file(photo)?;
        Ok(self.project(v))
    }

    /// The query vector of a photo's bytes (an upload); `what` names it in errors.
    pub fn vector_of_bytes(&self, bytes: &[u8], what: &str) -> Result<Vec<f32>> {
        let img = crate::vision::decode(bytes).map_err(|reason| Error::Image {
            path: what.into(),
            reason,
        })?;
        let v = self.embedder.embed_images(std::slice::from_ref(&img))?.remove(0);
        Ok(self.project(v))
    }

    fn project(&self, v: Vec<f32>) -> Vec<f32> {
        match &self.head {
            Some(h) => h.project(&v),
            None => v,
        }
    }
}
