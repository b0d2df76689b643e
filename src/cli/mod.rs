//! Command implementations: parse nothing, print everything. Each calls the library and formats
//! its answer as a text table or JSON.

pub mod bench;
pub mod feed;
pub mod out;
mod progress;
pub mod table;

use anyhow::{Context, Result, bail};
use lookbook::catalog::postgres::{IndexChoice, display_db};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{EvalArgs, FeedbackArgs, FilterArgs, UsersAction};
use lookbook::catalog::{Catalog, Product, ProductFilter};
use lookbook::recommend::shown::{ShownRow, fetch_shown, rows};
use lookbook::recommend::{Engine, Profile, ProfileSettings, Request};
use lookbook::text::truncate;
use lookbook::vision::{Embedder, Pooling, weights};
use lookbook::{eval, ingest, train};
use out::{errln, out, outln};
pub use progress::KdamProgress;
use table::render;

/// Exit status when `import` or `embed` finished but skipped rows or photos (listed on stderr,
/// or in the JSON report).
const EXIT_SKIPPED: u8 = 3;

fn filter_of(f: &FilterArgs) -> ProductFilter {
    let norm = |s: &Option<String>| s.as_ref().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    ProductFilter {
        category: norm(&f.category),
        gender: norm(&f.gender),
        colour: norm(&f.colour),
        brand: norm(&f.brand),
        min_price: f.min_price,
        max_price: f.max_price,
        in_stock: f.in_stock,
    }
}

pub(crate) fn print_json<T: Serialize>(v: &T) -> Result<()> {
    out::raw(&format!("{}\n", serde_json::to_string_pretty(v)?));
    Ok(())
}

/// Creates `db` from the bundled demo catalogue if it does not exist (or is empty), and embeds
/// it now (`embed_now`) or leaves that to the app, which embeds in the background. Returns
/// whether the app should embed at start (a new catalogue, or one that has no vectors yet). An existing catalogue is left alone: the app offers to
/// embed what is missing.
pub(crate) fn ensure_demo(db: &Path, embed_now: bool) -> Result<bool> {
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

/// Skipped rows shown on the terminal before the rest is summarised as a count.
const SHOW_SKIPPED: usize = 20;

#[allow(clippy::too_many_arguments)]
pub(crate) fn import(
    db: &Path,
    images: Option<&Path>,
    metadata: &Path,
    format: Option<&str>,
    map: &[String],
    prune: ingest::Prune,
    allow_hosts: &[String],
    download_timeout: Option<std::time::Duration>,
    skipped_file: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let format = format
        .map(|f| {
            ingest::feed::Format::from_name(f).ok_or_else(|| {
                anyhow::anyhow!(
                    "--format {f:?} is not one lookbook reads; use one of {}",
                    ingest::feed::Format::ALL.map(|f| f.name()).join(", ")
                )
            })
        })
        .transpose()?;
    let map: Vec<(String, String)> = map
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
    let allow_hosts = match allow_hosts.is_empty() {
        true => None,
        false => Some(ingest::hosts::HostPolicy::parse(allow_hosts).map_err(anyhow::Error::msg)?),
    };
    let opts = ingest::ImportOptions {
        images: images.map(Path::to_path_buf),
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
    if let Some(f) = skipped_file {
        let text: String = report
            .skipped
            .iter()
            .map(|s| format!("{}\n", lookbook::text::sanitize(&s.to_string())))
            .collect();
        std::fs::write(f, text).with_context(|| format!("writing the skipped list to {}", f.display()))?;
    }
    if json {
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
            match (more, skipped_file) {
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
pub(crate) fn import_interactions(db: &Path, file: &Path, json: bool) -> Result<ExitCode> {
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

pub(crate) fn embed(
    db: &Path,
    weights_arg: Option<&Path>,
    batch: usize,
    pooling: &str,
    precision: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let pooling: Pooling = pooling.parse()?;
    let mut cat = Catalog::open_existing(db)?;
    let precision = match precision {
        Some(p) => p.parse()?,
        None => lookbook::embedding::catalogue_precision(&cat)?,
    };
    let path = weights::locate(weights_arg, &cat.dir())?;
    let embedder = lookbook::vision::Embedder::load_with(&path, pooling, precision)
        .with_context(|| format!("loading weights {}", path.display()))?;
    if !json {
        errln!(
            "model {} ({}, {}x{} input, {} pooling), batch {batch}",
            embedder.spec.name,
            path.display(),
            embedder.preprocess.height,
            embedder.preprocess.width,
            pooling.name()
        );
    }
    let report = lookbook::embedding::embed_catalog(&mut cat, &embedder, batch, &KdamProgress::new())?;
    if json {
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

/// The engine for one query: without a metadata filter, one that reads only the products it
/// shows (see [`Engine::load_for_query`]).
fn engine_for(cat: &Catalog, filter: &ProductFilter) -> Result<Engine> {
    Ok(if filter.is_empty() {
        Engine::load_for_query(cat)?
    } else {
        Engine::load(cat)?
    })
}

fn print_results(rows: &[ShownRow], with_reason: bool) {
    let mut header = vec!["#", "id", "score", "articleType", "colour", "name"];
    if with_reason {
        header.push("why");
    }
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.rank.to_string(),
                r.id.to_string(),
                format!("{:.3}", r.score),
                r.article_type.to_string(),
                r.colour.to_string(),
                truncate(r.name, 48),
            ];
            if with_reason {
                v.push(r.because.clone());
            }
            v
        })
        .collect();
    out!("{}", render(&header, &body));
}

fn describe(p: &Product) -> String {
    format!("{} {} ({}, {}, {})", p.id, p.name, p.article_type, p.colour, p.gender)
}

pub(crate) fn similar(
    db: &Path,
    id: Option<String>,
    image: Option<&Path>,
    k: usize,
    filter: &FilterArgs,
    weights_arg: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    if k == 0 {
        bail!("-k must be at least 1 (the number of look-alikes to show)");
    }
    let cat = Catalog::open_existing(db)?;
    let filter = filter_of(filter);
    let mut engine = engine_for(&cat, &filter)?;
    let (query_json, recs) = match (id, image) {
        (Some(reference), _) => {
            let p = cat.require_product_ref(&reference)?;
            let recs = engine.similar(p.id, &filter, k)?;
            if !json {
                outln!("Look-alikes of {}", describe(&p));
            }
            (serde_json::to_value(&p)?, recs)
        }
        (None, Some(photo)) => {
            let v = lookbook::embedding::photo_vector(&cat, photo, weights_arg)?;
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

#[allow(clippy::too_many_arguments)]
pub(crate) fn recommend(
    db: &Path,
    user: &str,
    item: Option<String>,
    k: usize,
    alpha: f32,
    diversity: Option<f32>,
    half_life: f32,
    filter: &FilterArgs,
    json: bool,
) -> Result<ExitCode> {
    if k == 0 {
        bail!("-k must be at least 1 (the number of products to show)");
    }
    if !(0.0..=1.0).contains(&alpha) {
        bail!("--alpha must be between 0 and 1, got {alpha}");
    }
    if let Some(d) = diversity
        && !(0.0..=1.0).contains(&d)
    {
        bail!("--diversity must be between 0 and 1, got {d}");
    }
    if half_life.is_nan() || half_life <= 0.0 {
        bail!("--half-life must be a positive number of days");
    }
    let filter = filter_of(filter);
    let Some(item) = item else {
        return feed::recommend(db, user, k, diversity, filter, json);
    };
    let diversity = diversity.unwrap_or(lookbook::recommend::DEFAULT_DIVERSITY);
    let cat = Catalog::open_existing(db)?;
    let uid = cat.require_user(user)?;
    let item = Some(cat.require_product_ref(&item)?.id);
    let mut engine = engine_for(&cat, &filter)?;
    let fb = cat.feedback(uid)?;
    let profile = Profile::build(
        &fb,
        engine.index(),
        ProfileSettings {
            half_life_days: half_life,
            ..Default::default()
        },
    );
    let req = Request {
        item,
        vector: None,
        filter,
        k,
        alpha,
        diversity,
    };
    let recs = engine.recommend(&profile, &req)?;
    fetch_shown(&mut engine, &cat, &recs)?;
    let rows = rows(&engine, &recs);
    if json {
        print_json(
            &json!({ "user": user, "item": item, "alpha": alpha, "diversity": diversity,
            "likes": fb.iter().filter(|f| f.is_like()).count(), "cold_start": profile.is_cold() && item.is_none(),
            "results": rows }),
        )?;
    } else {
        let likes = fb.iter().filter(|f| f.is_like()).count();
        match item {
            Some(i) => outln!(
                "For {user} ({likes} likes), blended with {} at alpha {alpha}",
                describe(&cat.require_product(i)?)
            ),
            None if profile.is_cold() => outln!("For {user}: no likes yet, so a starter feed of typical items"),
            None => outln!("For {user} ({likes} likes)"),
        }
        print_results(&rows, true);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn users(db: &Path, action: Option<UsersAction>, json: bool) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    match action.unwrap_or(UsersAction::List) {
        UsersAction::List => {
            let us = cat.users()?;
            if json {
                print_json(&us)?;
            } else if us.is_empty() {
                outln!("(no users yet; add one with `lookbook users add NAME`)");
            } else {
                let body: Vec<Vec<String>> = us
                    .iter()
                    .map(|u| vec![u.name.clone(), u.likes.to_string(), u.dislikes.to_string()])
                    .collect();
                out!("{}", render(&["user", "likes", "dislikes"], &body));
            }
        }
        UsersAction::Add { name } => {
            cat.add_user(&name)?;
            outln!("added user {name}");
        }
        UsersAction::Remove { name } => {
            let n = cat.remove_user(&name)?;
            outln!("removed user {name} and {n} likes/dislikes");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn feedback(db: &Path, a: FeedbackArgs, weight: Option<f32>) -> Result<ExitCode> {
    let mut cat = Catalog::open_existing(db)?;
    match weight {
        Some(w) => {
            let uid = cat.ensure_user(&a.user)?;
            let ids = cat.product_ids(&a.ids)?;
            cat.set_feedback(uid, &ids, w)?;
            let what = if w > 0.0 { "liked" } else { "disliked" };
            outln!("{} {what} {}", a.user, a.ids.join(", "));
        }
        None => {
            let uid = cat.require_user(&a.user)?;
            let ids = cat.product_ids(&a.ids)?;
            let n = cat.clear_feedback(uid, &ids)?;
            outln!("{} forgot {n} of {} products", a.user, a.ids.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn likes(db: &Path, user: &str, json: bool) -> Result<ExitCode> {
    let cat = Catalog::open_existing(db)?;
    let uid = cat.require_user(user)?;
    let fb = cat.feedback(uid)?;
    #[derive(Serialize)]
    struct Row {
        id: i64,
        feedback: &'static str,
        at_ms: i64,
        product: Option<Product>,
    }
    let rows: Vec<Row> = fb
        .iter()
        .map(|f| Row {
            id: f.product_id,
            feedback: if f.is_like() { "like" } else { "dislike" },
            at_ms: f.at,
            product: cat.product(f.product_id).ok().flatten(),
        })
        .collect();
    if json {
        print_json(&json!({ "user": user, "feedback": rows }))?;
    } else {
        let body: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                let (t, n) = r
                    .product
                    .as_ref()
                    .map(|p| (p.article_type.clone(), truncate(&p.name, 48)))
                    .unwrap_or_default();
                vec![r.feedback.to_string(), r.id.to_string(), t, n]
            })
            .collect();
        out!("{}", render(&["feedback", "id", "articleType", "name"], &body));
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn show(db: &Path, id: &str, width: u32, images: &str) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let cat = Catalog::open_existing(db)?;
    let p = cat.require_product_ref(id)?;
    let path = cat.image_path(&p)?;
    // Pictures only on a terminal: piped output gets text alone, and no terminal queries.
    let picture = match images {
        _ if !std::io::stdout().is_terminal() => None,
        "none" | "off" | "text" => None,
        "halfblocks" => Some((false, false)),
        "kitty" => Some((true, false)),
        "iterm2" => Some((false, true)),
        "auto" | "sixel" => Some((true, true)),
        other => bail!("--images {other:?}: expected auto, kitty, sixel, iterm2, halfblocks or none"),
    };
    if let Some((use_kitty, use_iterm)) = picture {
        let img = lookbook::vision::load(&path)?;
        let conf = viuer::Config {
            width: Some(width.clamp(4, 400)),
            absolute_offset: false,
            transparent: false,
            use_kitty,
            use_iterm,
            ..Default::default()
        };
        viuer::print(&image::DynamicImage::ImageRgb8(img), &conf)
            .with_context(|| format!("printing {}", path.display()))?;
    }
    match &p.shop_id {
        Some(shop_id) => outln!("{}  {}  ({shop_id})", p.id, p.name),
        None => outln!("{}  {}", p.id, p.name),
    }
    outln!("{} > {} > {}", p.master_category, p.sub_category, p.article_type);
    // Only the facets the catalogue has: a shop's feed often has no season, year or usage.
    let year = p.year.map(|y| y.to_string()).unwrap_or_default();
    let facets = [
        p.gender.as_str(),
        p.colour.as_str(),
        p.season.as_str(),
        year.as_str(),
        p.usage.as_str(),
    ];
    let joined = |parts: &[&str]| {
        parts
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let line = joined(&facets);
    if !line.is_empty() {
        outln!("{line}");
    }
    let price = p
        .price
        .map(|x| format!("{x:.2} {}", p.currency).trim().to_string())
        .unwrap_or_default();
    let sizes: Vec<&str> = p
        .variants
        .iter()
        .filter(|v| v.availability == "in_stock" && !v.size.is_empty())
        .map(|v| v.size.as_str())
        .collect();
    let sizes = if sizes.is_empty() {
        String::new()
    } else {
        format!("sizes in stock: {}", sizes.join(", "))
    };
    let availability = if p.availability == "unknown" {
        ""
    } else {
        p.availability.as_str()
    };
    let shop = joined(&[p.brand.as_str(), price.as_str(), availability, sizes.as_str()]);
    if !shop.is_empty() {
        outln!("{shop}");
    }
    if !p.link.is_empty() {
        outln!("{}", p.link);
    }
    outln!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn model_info(db: &Path, weights_arg: Option<&Path>, json: bool) -> Result<ExitCode> {
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
pub(crate) fn model_fetch() -> Result<ExitCode> {
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
pub(crate) fn model_fetch() -> Result<ExitCode> {
    bail!(
        "this lookbook was built without the `fetch` feature; rebuild with `cargo install --path . --features fetch` (or `cargo run --features fetch -- model fetch`), or download a torchvision ResNet50 in safetensors yourself and pass --weights FILE"
    )
}

pub(crate) fn evaluate(db: &Path, a: EvalArgs) -> Result<ExitCode> {
    let cat = Catalog::open_existing(db)?;
    let progress = KdamProgress::new();
    if a.k == Some(0) {
        bail!("-k must be at least 1");
    }
    if a.histories && cat.event_count()? > 0 {
        if a.days < 1 {
            bail!("--days must be at least 1");
        }
        let split = match &a.split {
            Some(s) => Some(
                lookbook::dates::parse_time(s).with_context(|| format!("--split {s:?} is not a date (YYYY-MM-DD)"))?,
            ),
            None => None,
        };
        let opts = eval::shop::Options {
            k: a.k.unwrap_or(12),
            days: a.days,
            split,
            users: a.users.unwrap_or(usize::MAX).max(1),
            seed: a.seed,
            fit: !a.no_fit,
        };
        return feed::evaluate(&cat, &opts, a.json);
    }
    let k = a.k.unwrap_or(10);
    let users = a.users.unwrap_or(300);
    if a.personal {
        let engine = Engine::load(&cat)?;
        if let Some(d) = a.mmr.iter().find(|d| !(0.0..=1.0).contains(*d)) {
            bail!("--mmr levels must be between 0 and 1, got {d}");
        }
        let opts = eval::personal::Options {
            users,
            k,
            seed: a.seed,
            mmr: a.mmr.clone(),
        };
        let r = if a.histories {
            let all = cat.users()?.len();
            let mut ids = cat.users_with_likes(2)?;
            // Sample before reading histories: a shop's history has millions of users.
            let sampled = ids.len() > opts.users;
            let fewer = all.saturating_sub(ids.len());
            if sampled {
                lookbook::sample::Rng::new(opts.seed).shuffle(&mut ids);
                ids.truncate(opts.users);
            }
            let histories = ids
                .iter()
                .map(|&u| cat.feedback(u))
                .collect::<lookbook::Result<Vec<_>>>()?;
            let (users, short) = eval::personal::stored_users(&engine, histories, opts.users, opts.seed);
            if users.is_empty() {
                bail!(
                    "{}: no user has two likes of embedded products to measure on ({all} users); import a history with `lookbook import --interactions FILE`, or drop --histories to simulate users",
                    db.display()
                );
            }
            // Users with under two likes at all are counted only when every user was read.
            let too_short = short + if sampled { 0 } else { fewer };
            eval::personal::evaluate_users(&engine, users, too_short, "stored", &opts, &progress)?
        } else {
            eval::personal::evaluate(&engine, &opts, &progress)?
        };
        if a.json {
            print_json(&r)?;
        } else {
            let whose = match r.source.as_str() {
                "stored" => format!(
                    "{} users' stored histories ({} with too few likes left out)",
                    r.users, r.too_short
                ),
                _ => format!("{} simulated users", r.users),
            };
            outln!("personal feed, {whose}, newest like held out, k = {}", r.k);
            let body: Vec<Vec<String>> = r
                .methods
                .iter()
                .map(|m| {
                    vec![
                        m.method.clone(),
                        format!("{:.3}", m.hit_rate),
                        format!("{:.3}", m.ndcg),
                        format!("{:.3}", m.taste_precision),
                        format!("{:.3}", m.diversity),
                        format!("{:.3}", m.coverage),
                    ]
                })
                .collect();
            out!(
                "{}",
                render(
                    &["method", "hit@k", "nDCG@k", "taste P@k", "diversity", "coverage"],
                    &body
                )
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let queries = match &a.queries {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let mut ids = Vec::new();
            for (i, line) in text.lines().enumerate() {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                ids.push(
                    t.parse::<i64>()
                        .with_context(|| format!("{}:{}: {t:?} is not a product id", f.display(), i + 1))?,
                );
            }
            Some(ids)
        }
        None => None,
    };
    let opts = eval::retrieval::Options {
        k,
        level: a.level.parse()?,
        queries,
        baselines: !a.no_baselines,
        curve_k: k.max(20),
        levers: a.levers.iter().map(|l| l.parse()).collect::<lookbook::Result<_>>()?,
    };
    let r = eval::retrieval::evaluate(&cat, &opts, &progress)?;
    if let Some(p) = &a.plot {
        eval::plot::precision_curve(&r, p)?;
        errln!("wrote {}", p.display());
    }
    if a.json {
        print_json(&r)?;
    } else {
        outln!(
            "look-alikes by {:?}: {} held-out queries against a gallery of {}, k = {}",
            r.level,
            r.queries,
            r.gallery,
            r.k
        );
        let body: Vec<Vec<String>> = r
            .methods
            .iter()
            .map(|m| {
                let x = &m.metrics;
                vec![
                    m.method.clone(),
                    format!("{:.3}", x.precision),
                    format!("{:.3}", x.recall),
                    format!("{:.3}", x.map),
                    format!("{:.3}", x.ndcg),
                    format!("{:.3}", x.hit_rate),
                    format!("{:.3}", x.diversity),
                    format!("{:.3}", x.coverage),
                ]
            })
            .collect();
        out!(
            "{}",
            render(
                &[
                    "method",
                    "P@k",
                    "R@k",
                    "mAP@k",
                    "nDCG@k",
                    "hit@k",
                    "diversity",
                    "coverage"
                ],
                &body
            )
        );
        for m in &r.methods {
            outln!("  {:<16} {}", m.method, m.description);
        }
        outln!(
            "\nby label: macro P@k (each type once), and rare types (under {} training-side products; {} of the queries) against the rest",
            r.rare_under,
            r.rare_queries
        );
        let body: Vec<Vec<String>> = r
            .methods
            .iter()
            .map(|m| {
                let c = m.prototypes.classifier.as_ref();
                let cell = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.3}"));
                vec![
                    m.method.clone(),
                    format!("{:.3}", m.macro_precision),
                    format!("{:.3}", m.rare_precision),
                    format!("{:.3}", m.common_precision),
                    format!("{:.3}", m.prototypes.retrieval.p_at_1),
                    format!("{:.3}", m.prototypes.retrieval.p_at_10),
                    format!("{:.3}", m.prototypes.retrieval.mrr),
                    cell(c.map(|c| c.common_top1)),
                    cell(c.map(|c| c.rare_top1)),
                ]
            })
            .collect();
        out!(
            "{}",
            render(
                &[
                    "method",
                    "macro P@k",
                    "rare P@k",
                    "common P@k",
                    "proto P@1",
                    "proto P@10",
                    "proto MRR",
                    "top-1 common",
                    "top-1 rare"
                ],
                &body
            )
        );
        outln!(
            "proto: each type's mean training-side vector ranks the held-out products (macro over types; supervised, unlike zero-shot text queries). top-1: nearest prototype of even-year products classifies odd-year ones, the 20 commonest types and the rest."
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn train_head(db: &Path, s: &train::Settings, force: bool, json: bool) -> Result<ExitCode> {
    if s.dim < 2 || s.epochs == 0 {
        bail!("--dim must be at least 2 and --epochs at least 1");
    }
    let mut cat = Catalog::open_existing(db)?;
    let out = train::train_catalog(&mut cat, s, force, &KdamProgress::new())?;
    if json {
        print_json(&out)?;
    } else {
        let r = &out.report;
        outln!(
            "trained head {} ({} -> {}) on {} items of {} types, {} epochs (best {})",
            out.head_id,
            r.in_dim,
            s.dim,
            r.train_items,
            r.classes,
            r.epochs,
            r.best_epoch
        );
        outln!(
            "validation P@10: backbone {:.3}, head {:.3} ({} items)",
            r.backbone_val_p10,
            r.head_val_p10,
            r.val_items
        );
        if out.activated {
            outln!(
                "the head is now active: similar, recommend and the app use {}-d vectors",
                s.dim
            );
        } else {
            outln!(
                "the head did not beat the backbone, so the backbone stays active (use --force to activate it anyway)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes on one line, each cause once: library errors already carry their
/// source's text, and anyhow's `{:#}` would repeat it ("database is locked: database is locked").
/// SQLite errors name the database file instead of SQLite's generic code.
pub fn error_message(e: &anyhow::Error, db: &Path) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        if cause.downcast_ref::<rusqlite::ffi::Error>().is_some() {
            continue; // "Error code 1: SQL logic error" adds nothing to SQLite's own message
        }
        let text = match cause.downcast_ref::<lookbook::Error>() {
            Some(lookbook::Error::Sqlite(inner)) => format!("{}: {inner}", display_db(db)),
            _ => cause.to_string(),
        };
        if msg.contains(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    // Whatever put the URL into a message, its password never reaches the terminal.
    lookbook::catalog::postgres::scrub(&msg.replace('\n', " "), &db.to_string_lossy())
}

/// `lookbook migrate`: SQLite to PostgreSQL or back, one transaction on the receiving side;
/// `index` is the vector index built in PostgreSQL.
pub fn migrate(from: &str, to: &str, index: IndexChoice, json: bool) -> Result<ExitCode> {
    use lookbook::catalog::postgres::{is_url, redact};
    let copied = match (is_url(from), is_url(to)) {
        (false, true) => lookbook::migrate::sqlite_to_postgres(&Catalog::open_existing(from)?, to, index)?,
        (true, false) => lookbook::migrate::postgres_to_sqlite(from, Path::new(to))?,
        _ => bail!(
            "migrate copies between a SQLite file and a PostgreSQL database: one of --from ({}) and --to ({}) must be a postgres:// URL and the other a file",
            redact(from),
            redact(to)
        ),
    };
    if json {
        outln!("{}", serde_json::to_string_pretty(&copied)?);
    } else {
        let rows: Vec<Vec<String>> = copied
            .tables
            .iter()
            .map(|(t, n)| vec![t.clone(), n.to_string()])
            .collect();
        outln!("copied {} to {}", redact(from), redact(to));
        out!("{}", render(&["table", "rows"], &rows));
    }
    Ok(ExitCode::SUCCESS)
}
