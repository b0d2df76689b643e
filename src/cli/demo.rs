//! `lookbook demo`, and the bundled demo catalogue the app opens on a first run.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::KdamProgress;
use super::out::{errln, outln};
use lookbook::catalog::Catalog;
use lookbook::catalog::postgres::display_db;
use lookbook::ingest;
use lookbook::vision::{Embedder, Pooling, weights};

/// Install the bundled demo and model into the data folder, then create the database from
/// the demo (import + embed) if it does not exist.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A lookbook checkout to install from (default: the source tree this binary was built from).
    #[arg(long)]
    pub from: Option<PathBuf>,
}

/// Runs `demo`: installs the demo and model into the data folder (unless an installed demo is
/// all there is), then creates the catalogue at `db`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    match (
        a.from.as_deref(),
        lookbook::bundled::source_dir(),
        lookbook::bundled::installed_demo(),
    ) {
        (None, None, Some(demo)) => errln!("using the installed demo ({})", demo.display()),
        (from, _, _) => {
            let installed = lookbook::bundled::install(from)?;
            errln!(
                "{} the demo ({}) and the model ({})",
                if installed.copied {
                    "installed"
                } else {
                    "already installed:"
                },
                installed.demo.display(),
                installed.model.display()
            );
        }
    }
    ensure_demo(db, true)?;
    outln!(
        "{} is ready; open it with `lookbook --db {}`",
        display_db(db),
        display_db(db)
    );
    Ok(ExitCode::SUCCESS)
}

/// Creates `db` from the bundled demo catalogue if it does not exist (or is empty), and embeds
/// it now (`embed_now`) or leaves that to the app, which embeds in the background. Returns
/// whether the app should embed at start (a new catalogue, or one that has no vectors yet). An existing catalogue is left alone: the app offers to
/// embed what is missing.
pub fn ensure_demo(db: &Path, embed_now: bool) -> Result<bool> {
    let mut cat = Catalog::open(db)?;
    if cat.product_count()? > 0 {
        // A first run cut short (quit before the background embedding finished) leaves
        // products without vectors: the app picks the embedding up again.
        return Ok(cat.active_model()?.is_none());
    }
    let progress = KdamProgress::new();
    let demo = lookbook::bundled::demo_dir()?;
    errln!(
        "Creating {} from the bundled demo catalogue ({})",
        display_db(db),
        demo.display()
    );
    let report = ingest::import(&mut cat, &demo.join("images"), &demo.join("styles.csv"), &progress)
        .context("importing the bundled demo catalogue")?;
    errln!(
        "imported {} products",
        report.inserted + report.updated + report.unchanged
    );
    // A year of a simulated shop's purchases, so "For you" knows what sells and what goes together.
    let (history, shoppers) = (
        demo.join(lookbook::bundled::HISTORY),
        demo.join(lookbook::bundled::SHOPPERS),
    );
    if history.is_file() && shoppers.is_file() {
        ingest::interactions::import_shoppers(&mut cat, &shoppers, &progress)
            .context("importing the bundled demo's shoppers")?;
        let r = ingest::interactions::import(&mut cat, &history, &progress)
            .context("importing the bundled demo's shop history")?;
        errln!("imported a year of the demo shop's purchases ({} events)", r.events);
    }
    let path = weights::locate(None, &cat.dir())?;
    if !embed_now {
        errln!(
            "Opening the app; it embeds the photos with {} in the background (once)",
            path.display()
        );
        return Ok(true);
    }
    errln!(
        "Embedding the photos with {} (once; later starts are instant)",
        path.display()
    );
    let (embedder, _) = load_embedder(&path, Pooling::Avg)?;
    lookbook::embedding::embed_catalog(&mut cat, &embedder, lookbook::embedding::DEFAULT_BATCH, &progress)?;
    Ok(true)
}

fn load_embedder(path: &Path, pooling: Pooling) -> Result<(Embedder, PathBuf)> {
    let e = Embedder::load(path, pooling).with_context(|| format!("loading weights {}", path.display()))?;
    Ok((e, path.to_path_buf()))
}
