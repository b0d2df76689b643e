//! `import`: a CSV of metadata plus a folder of photos into the catalogue.
//!
//! The whole import is one transaction: either every valid row lands or nothing changes.
//! Bad rows and bad photos are skipped and reported with file, line and reason; re-importing the
//! same files changes nothing.

pub mod csv;
pub mod feed;
pub mod fetch;
pub mod formats;
pub mod hosts;
mod images;
pub mod interactions;
pub mod shop;

use rayon::prelude::*;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog::sql::Tx;
use crate::catalog::{Catalog, ProductUpsert, Upserted};
use crate::{Error, Progress, Result, now_ms};

/// The columns lookbook reads; `id` is required, the rest default to empty.
const COLUMNS: [&str; 10] = [
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
];

/// Optional column naming the photo relative to the images folder (default `<id>.jpg`).
const IMAGE_COLUMNS: [&str; 3] = ["image", "image_path", "filename"];

/// Longest text field kept; longer ones are cut (they are names, not essays).
const MAX_FIELD: usize = 300;

/// One row or photo that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The CSV or image file.
    pub file: PathBuf,
    /// The CSV line, when the problem is a row.
    pub line: Option<usize>,
    /// Product id, when known.
    pub id: Option<i64>,
    /// The shop's id of the product, for a shop's feed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<String>,
    /// Why it was skipped.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(id) = self.id {
            write!(f, " (id {id})")?;
        }
        if let Some(id) = &self.shop_id {
            write!(f, " (id {id:?})")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// New products.
    pub inserted: usize,
    /// Products whose row or photo changed.
    pub updated: usize,
    /// Products already exactly like this.
    pub unchanged: usize,
    /// Everything left out, in file order.
    pub skipped: Vec<Skipped>,
    /// Peak resident memory of the process so far, in MiB (Linux only).
    pub peak_memory_mib: Option<f64>,
    /// Why the file held no rows at all, when it held none (`import` then exits 3).
    pub no_rows: Option<String>,
    /// Shop products unlisted by `--prune` because the feed no longer has them.
    pub pruned: usize,
    /// Why `--prune` unlisted nothing though the feed lacks products (a feed that could not be
    /// read whole, or one that would unlist too much of the shop), with how many it would have.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prune_refused: Option<String>,
    /// Products imported unlisted because the shop hides them (drafts, archived, unpublished).
    pub hidden: usize,
    /// Products per currency when the feed names more than one (prices are then compared as
    /// plain numbers: `--max-price 50` passes 50 JPY and 50 EUR alike).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_currencies: Option<std::collections::BTreeMap<String, usize>>,
    /// Sizes left off a product because another product of the file already has their SKU
    /// (a SKU names one thing): the product, the SKU, which product kept it.
    pub variants_dropped: Vec<Skipped>,
}

/// Refuses text that is not UTF-8 in a way that names the encoding (a UTF-16 export from a
/// spreadsheet otherwise reads as a header without an `id` column).
fn check_encoding(path: &Path, bytes: &[u8]) -> Result<()> {
    let head = &bytes[..bytes.len().min(4096)];
    let utf16 = head.starts_with(&[0xFF, 0xFE])
        || head.starts_with(&[0xFE, 0xFF])
        || (head.len() >= 8 && head.iter().filter(|b| **b == 0).count() * 4 >= head.len());
    if utf16 {
        return Err(Error::Metadata {
            path: path.into(),
            message: "the file is UTF-16 text; lookbook reads UTF-8: save it as UTF-8 (\"CSV UTF-8\" in a spreadsheet)"
                .into(),
        });
    }
    Ok(())
}

/// Why a file with a header yielded no rows, in words a user can act on.
fn why_no_rows(bytes: &[u8]) -> String {
    let newlines = bytes.iter().filter(|b| **b == b'\n').count();
    let crs = bytes.iter().filter(|b| **b == b'\r').count();
    if newlines == 0 && crs > 0 {
        "its lines end in CR only (old Mac line ends); save it with LF or CRLF line ends".into()
    } else if newlines == 0 && bytes.len() > 64 * 1024 {
        format!(
            "the file is one line of {:.1} MB with no line end; is it really a CSV?",
            bytes.len() as f64 / 1e6
        )
    } else {
        "the file has a header and no rows".into()
    }
}

/// Rows whose photos are checked (in parallel) and written together; the import streams the
/// CSV in chunks of this many, so its memory does not grow with the file.
const CHUNK: usize = 2048;

/// Turns line breaks and tabs into spaces (a quoted newline separates words), drops other
/// control characters (terminal escapes have no place in a product name), collapses runs of
/// spaces and caps length.
fn clean(s: &str) -> String {
    clean_long(s, MAX_FIELD)
}

/// [`clean`] with another cap (descriptions are longer than names).
fn clean_long(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max * 4));
    for c in s
        .chars()
        .map(|c| if c == '\n' || c == '\r' || c == '\t' { ' ' } else { c })
    {
        if crate::text::is_unsafe(c) || (c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            continue;
        }
        out.push(c);
        if out.chars().count() >= max {
            break;
        }
    }
    out.trim_end().to_string()
}

/// Line numbers (1-based) of the lines that are not valid UTF-8.
fn invalid_utf8_lines(bytes: &[u8]) -> std::collections::HashSet<usize> {
    if std::str::from_utf8(bytes).is_ok() {
        return Default::default();
    }
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| std::str::from_utf8(l).is_err())
        .map(|(i, _)| i + 1)
        .collect()
}

/// Imports a catalogue file of any supported format (detected from its header or XML root,
/// unless the options say), as [`ImportOptions`] describes.
/// How [`import_any`] reads a catalogue file.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The folder of photos (local paths, or an offline copy of the shop's CDN); without it,
    /// photo URLs are downloaded into the cache beside the catalogue.
    pub images: Option<PathBuf>,
    /// The format, when detection would guess wrong.
    pub format: Option<feed::Format>,
    /// `--map field=column` pairs for any CSV or TSV.
    pub map: Vec<(String, String)>,
    /// The feed is the whole catalogue: a shop product it no longer has is unlisted (hidden
    /// from look-alikes and feeds, likes kept) until a feed has it again.
    pub prune: Prune,
    /// Hosts photo downloads may reach though they are not public (`--allow-hosts`); kept in
    /// the photo cache for later imports and the app. `None` keeps what an earlier import kept.
    pub allow_hosts: Option<hosts::HostPolicy>,
    /// No photo download starts after this long (`--timeout`); the photos left are reported.
    pub download_timeout: Option<std::time::Duration>,
}

/// Whether an import unlists the shop products its feed no longer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prune {
    /// Never.
    #[default]
    Off,
    /// Unless the feed could not be read whole, or it would unlist more than
    /// [`PRUNE_MAX_SHARE`] of the listed shop products (a cut download looks like a small shop).
    Safe,
    /// Whatever the feed lacks, even most of the shop.
    Force,
}

/// The largest share of the listed shop products `--prune` unlists without `--prune-force`.
pub const PRUNE_MAX_SHARE: f64 = 0.2;

pub fn import_any(
    catalog: &mut Catalog,
    metadata: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let (images, format, map) = (opts.images.as_deref(), opts.format, &opts.map[..]);
    let bytes = crate::files::read_capped(metadata, crate::files::MAX_METADATA_BYTES, "catalogue")?;
    check_encoding(metadata, &bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let format = match format {
        Some(f) => f,
        None if !map.is_empty() => feed::Format::Mapped,
        // Anything else is read as the Kaggle shape, whose reader says what it expected.
        None => formats::detect(metadata, &text).unwrap_or(feed::Format::Kaggle),
    };
    if format == feed::Format::Kaggle {
        let images = images.ok_or_else(|| Error::Metadata {
            path: metadata.into(),
            message: "a Kaggle styles.csv names its photos <id>.jpg: give --images DIR".into(),
        })?;
        return import(catalog, images, metadata, progress);
    }
    let parsed = formats::parse(format, &text, map).map_err(|message| Error::Metadata {
        path: metadata.into(),
        message,
    })?;
    // The file's text is done with: only the parsed items go on.
    drop(text);
    drop(bytes);
    shop::import_feed(catalog, images, metadata, parsed, opts, progress)
}

/// A parsed row waiting for its photo to be checked.
struct Pending {
    line: usize,
    product: ProductUpsert,
    full_path: PathBuf,
}

/// Imports `metadata` (CSV) with photos from `images` into `catalog`.
pub fn import(catalog: &mut Catalog, images: &Path, metadata: &Path, progress: &dyn Progress) -> Result<ImportReport> {
    let root = images.canonicalize().map_err(|e| Error::io(images, e))?;
    if !root.is_dir() {
        return Err(Error::Invalid(format!("{}: not a folder of images", images.display())));
    }
    let bytes = crate::files::read_capped(metadata, crate::files::MAX_METADATA_BYTES, "metadata CSV")?;
    check_encoding(metadata, &bytes)?;
    let bad_lines = invalid_utf8_lines(&bytes);
    let text = String::from_utf8_lossy(&bytes);
    let mut report = ImportReport::default();
    let skip = |report: &mut ImportReport, line: Option<usize>, id: Option<i64>, reason: String| {
        report.skipped.push(Skipped {
            file: metadata.to_path_buf(),
            line,
            id,
            shop_id: None,
            reason,
        })
    };

    let mut recs = csv::Records::new(&text);
    let header = match recs.next() {
        Some(Ok(h)) => h.fields,
        Some(Err(e)) => {
            return Err(Error::Metadata {
                path: metadata.into(),
                message: format!("line {}: bad header: {}", e.line, e.reason),
            });
        }
        None => {
            return Err(Error::Metadata {
                path: metadata.into(),
                message: "empty file, expected a header row".into(),
            });
        }
    };
    let col = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name));
    let Some(id_col) = col("id") else {
        return Err(Error::Metadata {
            path: metadata.into(),
            message: format!(
                "no `id` column in the header; expected columns like {} (a Kaggle styles.csv), a Shopify, Google Merchant, WooCommerce or H&M export, or any CSV with --map id=COLUMN --map image=COLUMN",
                COLUMNS.join(",")
            ),
        });
    };
    let cols: Vec<Option<usize>> = COLUMNS.iter().map(|c| col(c)).collect();
    let image_col = IMAGE_COLUMNS.iter().find_map(|c| col(c));

    // Relative to the catalogue's folder when possible so the pair can move together.
    let stored_root = root_setting(catalog, &root)?;
    let row_root = match catalog.setting("image_root")? {
        Some(existing) if existing != stored_root => Some(root.clone()),
        _ => None,
    };

    let now = now_ms();
    progress.start(
        "importing",
        bytes.iter().filter(|b| **b == b'\n').count().saturating_sub(1),
    );
    let mut tx = catalog.tx()?;
    let mut pending = Vec::with_capacity(CHUNK);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut rows = 0usize;
    for rec in recs {
        rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                skip(&mut report, Some(e.line), None, e.reason);
                continue;
            }
        };
        if bad_lines.contains(&rec.line) {
            skip(
                &mut report,
                Some(rec.line),
                None,
                "not valid UTF-8; save the file as UTF-8".into(),
            );
            continue;
        }
        if rec.fields.len() != header.len() {
            skip(
                &mut report,
                Some(rec.line),
                None,
                format!("expected {} fields, found {}", header.len(), rec.fields.len()),
            );
            continue;
        }
        let get = |i: usize| cols[i].map(|c| clean(&rec.fields[c])).unwrap_or_default();
        let raw_id = rec.fields[id_col].trim();
        if raw_id.is_empty() {
            skip(&mut report, Some(rec.line), None, "missing id".into());
            continue;
        }
        let id: i64 = match raw_id.parse() {
            Ok(v) if v >= 0 => v,
            _ => {
                skip(
                    &mut report,
                    Some(rec.line),
                    None,
                    format!("id {:?} is not a non-negative integer", clean(raw_id)),
                );
                continue;
            }
        };
        if let Some(first) = seen.get(&id) {
            skip(
                &mut report,
                Some(rec.line),
                Some(id),
                format!("duplicate id {id} (first on line {first})"),
            );
            continue;
        }
        seen.insert(id, rec.line);
        let year_s = get(7);
        let year = if year_s.is_empty() || year_s == "NA" {
            None
        } else {
            match year_s.parse::<f64>() {
                Ok(y) if y.fract() == 0.0 && (0.0..=9999.0).contains(&y) => Some(y as i32),
                _ => {
                    skip(
                        &mut report,
                        Some(rec.line),
                        Some(id),
                        format!("year {year_s:?} is not a number"),
                    );
                    continue;
                }
            }
        };
        let rel = image_col
            .map(|c| rec.fields[c].trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or(format!("{id}.jpg"));
        let (rel, full_path) = match images::safe_relative(images, &root, &rel) {
            Ok(v) => v,
            Err(reason) => {
                skip(&mut report, Some(rec.line), Some(id), reason);
                continue;
            }
        };
        let or_unknown = |s: String| if s.is_empty() { "Unknown".to_string() } else { s };
        let article = or_unknown(get(4));
        let name = match get(9) {
            n if n.is_empty() => format!("{article} {id}"),
            n => n,
        };
        let image_path = match &row_root {
            Some(r) => r.join(&rel).to_string_lossy().into_owned(),
            None => rel,
        };
        pending.push(Pending {
            line: rec.line,
            product: ProductUpsert {
                id,
                name,
                category: [or_unknown(get(2)), or_unknown(get(3)), article],
                gender: get(1),
                colour: get(5),
                season: get(6),
                year,
                usage: get(8),
                image_path,
                image_hash: String::new(),
                ..Default::default()
            },
            full_path,
        });
        if pending.len() >= CHUNK {
            flush(&mut tx, &mut pending, &mut report, metadata, now, progress)?;
        }
    }
    flush(&mut tx, &mut pending, &mut report, metadata, now, progress)?;
    if row_root.is_none() {
        crate::catalog::set_setting(&mut tx, "image_root", &stored_root)?;
    }
    tx.commit()?;
    progress.finish();
    report.skipped.sort_by_key(|s| s.line);
    report.peak_memory_mib = crate::memory::peak_rss_mib();
    if rows == 0 {
        report.no_rows = Some(why_no_rows(&bytes));
    }
    Ok(report)
}

/// Checks the photos of the pending rows (each distinct file once, in parallel) and writes the
/// rows whose photo is usable; the others are reported as skipped.
fn flush(
    tx: &mut Tx<'_>,
    pending: &mut Vec<Pending>,
    report: &mut ImportReport,
    metadata: &Path,
    now: i64,
    progress: &dyn Progress,
) -> Result<()> {
    let mut paths: Vec<PathBuf> = pending.iter().map(|p| p.full_path.clone()).collect();
    paths.sort();
    paths.dedup();
    let checked: HashMap<PathBuf, Result<String, String>> = paths
        .into_par_iter()
        .map(|p| {
            let r = images::check(&p);
            (p, r)
        })
        .collect();
    let rows = pending.len();
    for p in pending.iter_mut() {
        match &checked[&p.full_path] {
            Ok(hash) => {
                p.product.image_hash = hash.clone();
                match crate::catalog::products_upsert(tx, &p.product, now)? {
                    Upserted::Inserted => report.inserted += 1,
                    Upserted::Updated => report.updated += 1,
                    Upserted::Unchanged => report.unchanged += 1,
                }
            }
            Err(reason) => report.skipped.push(Skipped {
                file: metadata.to_path_buf(),
                line: Some(p.line),
                id: Some(p.product.id),
                shop_id: None,
                reason: reason.clone(),
            }),
        }
    }
    pending.clear();
    progress.advance(rows);
    Ok(())
}

/// The image root as stored: relative to the database's folder when inside it, else absolute
/// (always for PostgreSQL, which has no folder).
fn root_setting(catalog: &Catalog, root: &Path) -> Result<String> {
    if catalog.is_postgres() {
        return Ok(root.to_string_lossy().into_owned());
    }
    let db_dir = catalog.dir().canonicalize().map_err(|e| Error::io(catalog.dir(), e))?;
    Ok(match root.strip_prefix(&db_dir) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => root.to_string_lossy().into_owned(),
    })
}
