//! `lookbook similar`: the products that look most like a product or a photo.

use anyhow::{Result, bail};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::filters::FilterArgs;
use super::out::outln;
use super::{describe, engine_for, print_json, print_results};
use lookbook::catalog::Catalog;
use lookbook::recommend::shown::{fetch_shown, rows};

/// The products that look most like a product or a photo.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The query product: the shop's id or a SKU, or the catalogue's number.
    pub id: Option<String>,
    /// Or a photo file (embedded on the fly with the active model).
    #[arg(long, conflicts_with = "id")]
    pub image: Option<PathBuf>,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Weights for a photo query (default: the usual search).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `similar`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let Args {
        id,
        image,
        k,
        filter,
        weights,
        json,
    } = a;
    if k == 0 {
        bail!("-k must be at least 1 (the number of look-alikes to show)");
    }
    let cat = Catalog::open_existing(db)?;
    let filter = filter.to_filter();
    let mut engine = engine_for(&cat, &filter)?;
    let (query_json, recs) = match (id, image.as_deref()) {
        (Some(reference), _) => {
            let p = cat.require_product_ref(&reference)?;
            let recs = engine.similar(p.id, &filter, k)?;
            if !json {
                outln!("Look-alikes of {}", describe(&p));
            }
            (serde_json::to_value(&p)?, recs)
        }
        (None, Some(photo)) => {
            let v = lookbook::embedding::photo_vector(&cat, photo, weights.as_deref())?;
            if !json {
                outln!("Look-alikes of {}", photo.display());
            }
            (json!({ "image": photo }), engine.similar_to_vector(&v, &filter, k)?)
        }
        (None, None) => bail!("give a product id or --image PHOTO"),
    };
    fetch_shown(&mut engine, &cat, &recs)?;
    let rows = rows(&engine, &recs);
    if json {
        print_json(&json!({ "query": query_json, "filter": filter, "results": rows }))?;
    } else if rows.is_empty() {
        outln!("(no products match the filters)");
    } else {
        print_results(&rows, false);
    }
    Ok(ExitCode::SUCCESS)
}
