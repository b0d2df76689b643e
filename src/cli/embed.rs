//! `lookbook embed`: the photos' vectors with the ResNet50.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::out::{errln, outln};
use super::{EXIT_SKIPPED, KdamProgress, print_json};
use lookbook::catalog::Catalog;
use lookbook::vision::{Pooling, weights};

/// Compute missing image embeddings with the ResNet50.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Weights file (.safetensors); default: LOOKBOOK_WEIGHTS, models/ beside the db, the data dir, the repo's models/.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Images per forward pass.
    #[arg(long, default_value_t = lookbook::embedding::DEFAULT_BATCH)]
    pub batch: usize,
    /// Feature pooling: avg, max, or gem (generalised mean; gem2 to gem8 name its power, gem is gem3).
    #[arg(long, default_value = "avg")]
    pub pooling: String,
    /// Arithmetic: bf16 (AMX tiles where the CPU has them; no loss in `eval`) or f32. Each
    /// is its own model: switching embeds the catalogue again. Default: what the catalogue's
    /// active model uses, bf16 for a new one.
    #[arg(long)]
    pub precision: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `embed`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let pooling: Pooling = a.pooling.parse()?;
    let mut cat = Catalog::open_existing(db)?;
    let precision = match &a.precision {
        Some(p) => p.parse()?,
        None => lookbook::embedding::catalogue_precision(&cat)?,
    };
    let path = weights::locate(a.weights.as_deref(), &cat.dir())?;
    let embedder = lookbook::vision::Embedder::load_with(&path, pooling, precision)
        .with_context(|| format!("loading weights {}", path.display()))?;
    if !a.json {
        errln!(
            "model {} ({}, {}x{} input, {} pooling), batch {}",
            embedder.spec.name,
            path.display(),
            embedder.preprocess.height,
            embedder.preprocess.width,
            pooling.name(),
            a.batch
        );
    }
    let report = lookbook::embedding::embed_catalog(&mut cat, &embedder, a.batch, &KdamProgress::new())?;
    if a.json {
        print_json(&report)?;
    } else {
        let rate = if report.seconds > 0.0 {
            report.embedded as f64 / report.seconds
        } else {
            0.0
        };
        outln!(
            "embedded {} photos in {:.1}s ({rate:.1} images/s); {} already up to date; {} failed",
            report.embedded,
            report.seconds,
            report.up_to_date,
            report.failed.len()
        );
        for (id, path, reason) in &report.failed {
            errln!("  product {id}: {}: {reason}", path.display());
        }
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_SKIPPED)
    })
}
