//! `lookbook import`: a catalogue file, shoppers' age and gender, and a shop's history.

use anyhow::{Context, Result};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::out::{errln, outln};
use super::{EXIT_SKIPPED, KdamProgress, print_json};
use lookbook::catalog::Catalog;
use lookbook::ingest;

/// Import a catalogue: a Kaggle styles.csv, a Shopify, WooCommerce or H&M CSV, a Google
/// Merchant feed (TSV or XML), or any CSV with --map; see docs/catalogues.md.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of photos: local ones by their path, photo URLs by the path of the URL (an
    /// offline copy of the shop's CDN).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// The catalogue file (its format is told from its header or XML root).
    #[arg(long, required_unless_present_any = ["interactions", "customers"])]
    pub metadata: Option<PathBuf>,
    /// A shop's history: `user,product,time[,kind][,count][,price]` or H&M's
    /// transactions_train.csv, each row an event of its user (made if new); rows with a
    /// `weight` (or kind like/dislike) are likes and dislikes. Importing it again adds nothing.
    #[arg(long)]
    pub interactions: Option<PathBuf>,
    /// Shoppers' age and gender: `customer_id,age,gender` (H&M's customers.csv), for best
    /// sellers per group.
    #[arg(long)]
    pub customers: Option<PathBuf>,
    /// The format, when detection guesses wrong: kaggle, shopify, merchant-tsv,
    /// merchant-xml, woocommerce, hm, mapped.
    #[arg(long)]
    pub format: Option<String>,
    /// For any CSV or TSV: which column holds a field (`--map id=Code --map image=Photo`);
    /// repeat it for each field.
    #[arg(long = "map", value_name = "FIELD=COLUMN")]
    pub map: Vec<String>,
    /// The feed is the whole catalogue: shop products it no longer has are unlisted
    /// (hidden from look-alikes and feeds, likes kept) until a feed has them again.
    #[arg(long)]
    pub prune: bool,
    /// With --prune: unlist what the feed lacks even when that is most of the shop (without
    /// it, --prune refuses to unlist more than a fifth, or anything after a read error).
    #[arg(long)]
    pub prune_force: bool,
    /// Photo URLs may reach these hosts though they are loopback or private (the shop's
    /// own CDN): `host` or `host:port`, comma-separated. Kept for later imports and the app.
    #[arg(long, value_delimiter = ',')]
    pub allow_hosts: Vec<String>,
    /// Seconds after which no photo download starts (those running finish, within 30 s
    /// each); the photos left are reported as skipped. Default: no limit.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Write every skipped row and photo to this file (the terminal shows the first few).
    #[arg(long)]
    pub skipped: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Skipped rows shown on the terminal before the rest is summarised as a count.
const SHOW_SKIPPED: usize = 20;

/// Runs `import`: the catalogue file first, then shoppers, then their history (an
/// interactions file then finds its shoppers made).
pub fn run(db: &Path, a: Args) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    if let Some(metadata) = &a.metadata {
        code = catalogue(db, metadata, &a)?;
    }
    if let Some(file) = &a.customers {
        let c = customers(db, file, a.json)?;
        if c != ExitCode::SUCCESS {
            code = c;
        }
    }
    match &a.interactions {
        Some(file) => interactions(db, file, a.json).map(|c| if c == ExitCode::SUCCESS { code } else { c }),
        None => Ok(code),
    }
}

/// `import --metadata FILE`: a catalogue file into products.
fn catalogue(db: &Path, metadata: &Path, a: &Args) -> Result<ExitCode> {
    let prune = match (a.prune, a.prune_force) {
        (_, true) => ingest::Prune::Force,
        (true, false) => ingest::Prune::Safe,
        (false, false) => ingest::Prune::Off,
    };
    let download_timeout = a.timeout.map(std::time::Duration::from_secs);
    let format = a
        .format
        .as_deref()
        .map(|f| {
            ingest::feed::Format::from_name(f).ok_or_else(|| {
                anyhow::anyhow!(
                    "--format {f:?} is not one lookbook reads; use one of {}",
                    ingest::feed::Format::ALL.map(|f| f.name()).join(", ")
                )
            })
        })
        .transpose()?;
    let map: Vec<(String, String)> = a
        .map
        .iter()
        .map(|m| match m.split_once('=') {
            Some((field, column)) if !field.trim().is_empty() && !column.trim().is_empty() => {
                Ok((field.trim().to_string(), column.trim().to_string()))
            }
            _ => Err(anyhow::anyhow!(
                "--map {m:?}: write it as FIELD=COLUMN, e.g. --map id=Code"
            )),
        })
        .collect::<Result<_>>()?;
    // A catalogue this import creates and that gets nothing (the file is refused) is removed
    // again, not left behind empty (issue 37).
    let new_file = !db.exists() && !lookbook::catalog::postgres::is_url(&db.to_string_lossy());
    let mut cat = Catalog::open(db)?;
    let allow_hosts = match a.allow_hosts.is_empty() {
        true => None,
        false => Some(ingest::hosts::HostPolicy::parse(&a.allow_hosts).map_err(anyhow::Error::msg)?),
    };
    let opts = ingest::ImportOptions {
        images: a.images.clone(),
        format,
        map,
        prune,
        allow_hosts,
        download_timeout,
    };
    let report = match ingest::import_any(&mut cat, metadata, &opts, &KdamProgress::new()) {
        Ok(r) => r,
        Err(e) => {
            if new_file && cat.product_count().unwrap_or(1) == 0 {
                drop(cat);
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = db.as_os_str().to_owned();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
            return Err(e.into());
        }
    };
    if let Some(f) = &a.skipped {
        let text: String = report
            .skipped
            .iter()
            .map(|s| format!("{}\n", lookbook::text::sanitize(&s.to_string())))
            .collect();
        std::fs::write(f, text).with_context(|| format!("writing the skipped list to {}", f.display()))?;
    }
    if a.json {
        print_json(&report)?;
    } else {
        outln!(
            "imported {}: {} new, {} updated, {} unchanged, {} skipped{}{}",
            metadata.display(),
            report.inserted,
            report.updated,
            report.unchanged,
            report.skipped.len(),
            if prune != ingest::Prune::Off {
                format!(", {} no longer in the feed (unlisted)", report.pruned)
            } else {
                String::new()
            },
            match report.hidden {
                0 => String::new(),
                n => format!(", {n} hidden by the shop (drafts, archived or unpublished: stored unlisted)"),
            }
        );
        if let Some(why) = &report.prune_refused {
            errln!("{why}");
        }
        if let Some(mix) = &report.mixed_currencies {
            let list: Vec<String> = mix.iter().map(|(c, n)| format!("{n} in {c}")).collect();
            errln!(
                "the feed mixes currencies ({}): prices are compared as plain numbers (--max-price, price filters), so import each currency into a catalogue of its own",
                list.join(", ")
            );
        }
        if !report.variants_dropped.is_empty() {
            errln!("sizes left off (their SKU is another product's):");
            for s in report.variants_dropped.iter().take(SHOW_SKIPPED) {
                errln!("  {s}");
            }
            if report.variants_dropped.len() > SHOW_SKIPPED {
                errln!(
                    "  ... and {} more; `--json` lists them all",
                    report.variants_dropped.len() - SHOW_SKIPPED
                );
            }
        }
        if !report.skipped.is_empty() {
            errln!("skipped:");
            for s in report.skipped.iter().take(SHOW_SKIPPED) {
                errln!("  {s}");
            }
            let more = report.skipped.len().saturating_sub(SHOW_SKIPPED);
            match (more, &a.skipped) {
                (0, _) => {}
                (n, Some(f)) => errln!("  ... and {n} more, all listed in {}", f.display()),
                (n, None) => errln!("  ... and {n} more; `--skipped FILE` writes them all to a file"),
            }
        }
    }
    if let Some(why) = &report.no_rows {
        errln!("{}: no rows: {why}", metadata.display());
    }
    Ok(
        if report.skipped.is_empty() && report.no_rows.is_none() && report.prune_refused.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_SKIPPED)
        },
    )
}

/// `import --interactions FILE`: a shop's history into users, events and likes.
fn interactions(db: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    let r = ingest::interactions::import(&mut cat, file, &KdamProgress::new())?;
    if json {
        print_json(&json!({ "interactions": r }))?;
    } else {
        outln!(
            "imported {}: {} rows, {} new events ({} stored already), {} likes and dislikes, {} new users, {} rows of unknown products, {} bad rows",
            file.display(),
            r.rows,
            r.events,
            r.already_stored,
            r.likes,
            r.new_users,
            r.unknown_products,
            r.bad_row_count
        );
        if !r.unknown_examples.is_empty() {
            errln!(
                "unknown products (not in the catalogue): {}",
                r.unknown_examples.join(", ")
            );
        }
        for (line, why) in &r.bad_rows {
            errln!("  {}:{line}: {why}", file.display());
        }
    }
    Ok(if r.bad_row_count > 0 || r.likes + r.events + r.already_stored == 0 {
        ExitCode::from(EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `import --customers FILE`.
fn customers(db: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    let r = ingest::interactions::import_shoppers(&mut cat, file, &KdamProgress::new())?;
    if json {
        print_json(&json!({ "customers": r }))?;
    } else {
        outln!(
            "imported {}: {} rows, {} shoppers' age and gender, {} new users, {} bad rows",
            file.display(),
            r.rows,
            r.shoppers,
            r.new_users,
            r.bad_row_count
        );
        for (line, why) in &r.bad_rows {
            errln!("  {}:{line}: {why}", file.display());
        }
    }
    Ok(if r.bad_row_count > 0 {
        ExitCode::from(EXIT_SKIPPED)
    } else {
        ExitCode::SUCCESS
    })
}
