//! `lookbook together`: what shoppers bought with a product.

use anyhow::{Result, bail};
use clap::Args as ClapArgs;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

use super::out::outln;
use super::{describe, print_json, print_results};
use lookbook::catalog::Catalog;
use lookbook::recommend::Engine;
use lookbook::recommend::shop::Trained;
use lookbook::recommend::shown::{fetch_shown, rows};

/// `together ID`: what shoppers bought with a product.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// The product: the shop's id or a SKU, or the catalogue's number.
    pub id: String,
    /// Number of results.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `together ID`.
/// Runs `together`.
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    if a.k == 0 {
        bail!("-k must be at least 1 (the number of products to show)");
    }
    let cat = Catalog::open_existing(db)?;
    let p = cat.require_product_ref(&a.id)?;
    let mut engine = Engine::load_for_query(&cat)?;
    let trained = Trained::load_for(&cat, &engine, Some(&[p.id]))?;
    let recs = trained.feed(&engine).bought_together(p.id, a.k);
    fetch_shown(&mut engine, &cat, &recs)?;
    let rows = rows(&engine, &recs);
    if a.json {
        print_json(&json!({ "query": p, "results": rows }))?;
    } else {
        outln!("Bought with {}", describe(&p));
        if rows.is_empty() {
            outln!("(nobody bought it with anything yet; import a history with `lookbook import --interactions FILE`)");
        } else {
            print_results(&rows, false);
        }
    }
    Ok(ExitCode::SUCCESS)
}
