//! `lookbook model`: the active model, or fetch the ImageNet weights.

use anyhow::{Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::out::outln;
use super::print_json;
use lookbook::catalog::Catalog;
use lookbook::vision::{Embedder, Pooling, weights};

/// The active model, or fetch the ImageNet weights.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: ModelAction,
}

/// `model` actions.
#[derive(clap::Subcommand, Debug)]
pub enum ModelAction {
    /// The active model, its weights and how many products it has embedded.
    Info {
        /// Weights file to check (default: the usual search).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Download the ImageNet ResNet50 (torchvision weights, safetensors) into the data dir.
    Fetch,
}

/// Runs `model info` or `model fetch`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    match a.action {
        ModelAction::Info { weights, json } => info(db, weights.as_deref(), json),
        ModelAction::Fetch => fetch(),
    }
}

/// `model info`.
fn info(db: &Path, weights_arg: Option<&Path>, json: bool) -> Result<ExitCode> {
    let cat = Catalog::open_existing(db)?;
    let active = cat.active_model()?;
    let located = weights::locate(weights_arg, &cat.dir());
    let file = match &located {
        Ok(p) => {
            let e = Embedder::load(p, Pooling::Avg)?;
            Some(
                json!({ "path": p, "sha256": e.spec.weights_sha256, "input": format!("{}x{}", e.preprocess.height, e.preprocess.width),
                "preprocessing": e.preprocess.describe(), "classes": e.classes().len() }),
            )
        }
        Err(_) => None,
    };
    let products = cat.product_count()?;
    let (model_json, fresh, stale, missing, other) = match &active {
        Some(m) => {
            let (fresh, stale) = cat.embedding_counts(m.id)?;
            let head = match m.spec.head_id {
                Some(h) => {
                    let s = cat.head(h)?;
                    Some(
                        json!({ "id": s.id, "in": s.in_dim, "out": s.out_dim, "sha256": s.sha256,
                        "metrics": serde_json::from_str::<serde_json::Value>(&s.metrics).unwrap_or_default() }),
                    )
                }
                None => None,
            };
            (
                json!({ "id": m.id, "name": m.spec.name, "architecture": m.spec.architecture, "weights_sha256": m.spec.weights_sha256,
                    "preprocessing": m.spec.preprocessing, "pooling": m.spec.pooling, "dim": m.spec.dim, "head": head }),
                fresh,
                stale,
                products - fresh,
                cat.embeddings_of_other_models(m.id)?,
            )
        }
        None => (serde_json::Value::Null, 0, 0, products, 0),
    };
    if json {
        print_json(
            &json!({ "active_model": model_json, "weights_file": file, "products": products, "embedded": fresh,
            "stale": stale, "missing": missing, "other_models_vectors": other }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    match &active {
        Some(m) => {
            outln!("active model    {} (id {})", m.spec.name, m.id);
            outln!("architecture    {}", m.spec.architecture);
            outln!("preprocessing   {}", m.spec.preprocessing);
            outln!("pooling         {}", m.spec.pooling);
            outln!("dimension       {}", m.spec.dim);
            outln!("weights sha256  {}", m.spec.weights_sha256);
            if let Some(h) = m.spec.head_id {
                let s = cat.head(h)?;
                outln!(
                    "projection head {} ({} -> {}, sha256 {})",
                    s.id,
                    s.in_dim,
                    s.out_dim,
                    &s.sha256[..16]
                );
            }
        }
        None => outln!("active model    none yet (run `lookbook embed`)"),
    }
    match (&located, &file) {
        (Ok(p), Some(f)) => {
            outln!("weights file    {}", p.display());
            outln!("file sha256     {}", f["sha256"].as_str().unwrap_or(""));
            outln!("input size      {}", f["input"].as_str().unwrap_or(""));
            if let Some(m) = &active
                && f["sha256"].as_str() != Some(m.spec.weights_sha256.as_str())
            {
                outln!(
                    "note            this file differs from the active model's weights; `lookbook embed` would re-embed"
                );
            }
        }
        (Err(e), _) => outln!("weights file    not found: {e}"),
        _ => {}
    }
    outln!("products        {products}");
    outln!("embedded        {fresh}");
    outln!("stale           {stale} (photo changed since embedding)");
    outln!("missing         {missing}");
    outln!("other models    {other} vectors from other weights or preprocessing (never mixed in)");
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "fetch")]
fn fetch() -> Result<ExitCode> {
    use super::out::errln;
    use anyhow::Context;
    use std::net::ToSocketAddrs;
    use std::time::Duration;
    const REPO: (&str, &str) = ("timm", "resnet50.tv_in1k");
    let dest_dir = lookbook::paths::data_dir()
        .context("no home directory to store weights in")?
        .join("models");
    let dest = dest_dir.join("resnet50.safetensors");
    // Fail fast offline: one bounded connection attempt before the client's retries.
    let reachable = "huggingface.co:443"
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok());
    if !reachable {
        bail!(
            "cannot reach huggingface.co (offline?). To install weights by hand, put a torchvision-layout ResNet50 \
             .safetensors at {} or pass --weights FILE; lookbook's own fashion model ships in the repository's models/",
            dest.display()
        );
    }
    errln!("downloading {}/{} model.safetensors ...", REPO.0, REPO.1);
    let client = hf_hub::HFClientSync::new().context("creating the Hugging Face client")?;
    let path = client
        .model(REPO.0, REPO.1)
        .download_file()
        .filename("model.safetensors")
        .send()
        .with_context(|| format!("downloading {}/{}", REPO.0, REPO.1))?;
    std::fs::create_dir_all(&dest_dir).with_context(|| format!("creating {}", dest_dir.display()))?;
    std::fs::copy(&path, &dest).with_context(|| format!("copying to {}", dest.display()))?;
    lookbook::vision::ResNet50::load(&dest).context("the downloaded file is not a usable ResNet50")?;
    outln!(
        "saved {} (ImageNet ResNet50, 224x224); it is used when no other weights come first",
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "fetch"))]
fn fetch() -> Result<ExitCode> {
    bail!(
        "this lookbook was built without the `fetch` feature; rebuild with `cargo install --path . --features fetch` (or `cargo run --features fetch -- model fetch`), or download a torchvision ResNet50 in safetensors yourself and pass --weights FILE"
    )
}
