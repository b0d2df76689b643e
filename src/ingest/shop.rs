//! Importing a shop's catalogue: the [`FeedItem`]s a format reader made, with their photos
//! found under `--images` (by path, or by the path of their URL for an offline copy of a CDN),
//! checked, and written with their variants in the import's one transaction.

use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::feed::{FeedItem, Parsed};
use super::{ImportReport, Skipped, clean, images, root_setting};
use crate::catalog::sql::Tx;
use crate::catalog::{Catalog, ProductUpsert, ShopFields, Upserted, VariantRow, id_for_shop_id};
use crate::{Error, Progress, Result, now_ms};

/// Longest description kept, in characters.
const MAX_DESCRIPTION: usize = 2000;

/// Where a feed's photo is on this machine: `DIR/<path>` for a relative path, `DIR/<the URL's
/// path>` for an http(s) URL. Any other scheme (`file://` above all: a feed is input from
/// outside) is refused.
pub fn local_photo(photo: &str) -> std::result::Result<String, String> {
    let p = photo.trim();
    if p.is_empty() {
        return Err("no photo".into());
    }
    let lower = p.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .map(|_| &p[p.find("://").map_or(0, |i| i + 3)..])
    {
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let path = path.split_once('/').map_or("", |(_, path)| path);
        if path.is_empty() {
            return Err(format!("photo URL {p:?} names no file"));
        }
        return Ok(crate::text::percent_decode(path));
    }
    // Any other scheme, with `//` (`file://`) or without (`javascript:`, `data:`): two or more
    // letters before the colon, so a drive letter (`C:/photos`) stays a path.
    if let Some((scheme, _)) = p.split_once(':')
        && scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    {
        let shown = if p[scheme.len() + 1..].starts_with("//") {
            format!("{scheme}://")
        } else {
            format!("{scheme}:")
        };
        return Err(format!(
            "photo {:?}: {} URLs are not allowed in a feed (only http and https URLs, or paths under --images)",
            crate::text::clip(p, 80),
            shown.to_ascii_lowercase()
        ));
    }
    Ok(p.to_string())
}

fn is_web(photo: &str) -> bool {
    let l = photo.to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// Where downloaded photos are kept: beside a SQLite catalogue (`catalog.db` keeps
/// `catalog-photos/`), or `lookbook-photos/` in the working folder for PostgreSQL.
pub fn photo_cache_dir(catalog: &Catalog) -> PathBuf {
    if catalog.is_postgres() {
        return PathBuf::from("lookbook-photos");
    }
    let stem = catalog
        .path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".into());
    catalog.dir().join(format!("{stem}-photos"))
}

/// Any depth of category folded into lookbook's three levels: the top, the one above the
/// leaf, the leaf.
fn fold_category(path: &[String]) -> [String; 3] {
    let clean_or = |s: Option<&String>| {
        let c = s.map(|s| clean(s)).unwrap_or_default();
        if c.is_empty() { "Unknown".to_string() } else { c }
    };
    match path.len() {
        0 => ["Unknown".into(), "Unknown".into(), "Unknown".into()],
        1 => [clean_or(path.first()), clean_or(path.first()), clean_or(path.first())],
        n => [
            clean_or(path.first()),
            clean_or(path.get(n - 2)),
            clean_or(path.get(n - 1)),
        ],
    }
}

fn upsert_of(item: &FeedItem, image_path: String) -> ProductUpsert {
    let category = fold_category(&item.category);
    let name = match clean(&item.name) {
        n if n.is_empty() => format!("{} {}", category[2], clean(&item.shop_id)),
        n => n,
    };
    let description: String = super::clean_long(&item.description, MAX_DESCRIPTION);
    ProductUpsert {
        id: 0,
        name,
        category,
        gender: clean(&item.gender),
        colour: clean(&item.colour),
        season: clean(&item.season),
        year: item.year,
        usage: clean(&item.usage),
        image_path,
        image_hash: String::new(),
        shop: ShopFields {
            shop_id: Some(clean(&item.shop_id)),
            group: item.group.as_deref().map(clean).filter(|g| !g.is_empty()),
            brand: clean(&item.brand),
            description,
            link: clean(&item.link),
            image_url: clean(&item.photo),
            price: item.price,
            compare_at: item.compare_at,
            currency: clean(&item.currency),
            availability: item.availability.as_str().into(),
            gender_raw: clean(&item.gender_raw),
            hidden: item.hidden.is_some(),
        },
        variants: {
            let mut v: Vec<VariantRow> = item
                .variants
                .iter()
                .filter(|v| !v.sku.trim().is_empty())
                .map(|v| VariantRow {
                    sku: clean(&v.sku),
                    size: clean(&v.size),
                    price: v.price,
                    stock: v.stock,
                    availability: v.availability.as_str().into(),
                })
                .collect();
            v.sort_by(|a, b| a.sku.cmp(&b.sku));
            v.dedup_by(|a, b| a.sku == b.sku);
            v
        },
    }
}

/// Writes a parsed feed into the catalogue, photos from `images`.
pub fn import_feed(
    catalog: &mut Catalog,
    images: Option<&Path>,
    metadata: &Path,
    parsed: Parsed,
    opts: &super::ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let prune = opts.prune;
    let mut report = ImportReport {
        mixed_currencies: super::formats::mixed_currencies(&parsed.items),
        ..Default::default()
    };
    // Rows the reader could not read (a cut or damaged file) make the feed's absences no proof.
    let unread = parsed.rejected.len();
    let skip = |report: &mut ImportReport, line: Option<usize>, shop_id: Option<String>, reason: String| {
        report.skipped.push(Skipped {
            file: metadata.to_path_buf(),
            line,
            id: None,
            shop_id,
            reason,
        })
    };
    for r in parsed.rejected {
        skip(&mut report, r.line, r.id, r.reason);
    }
    if parsed.items.is_empty() {
        report.no_rows = Some("the feed holds no products".into());
        return Ok(report);
    }
    // Without --images, photo URLs are downloaded into the cache, which is then the image root.
    let cache_dir;
    let (images, downloaded) = match images {
        Some(dir) => (dir, None),
        None => {
            cache_dir = photo_cache_dir(catalog);
            let mut cache = super::fetch::Cache::open(&cache_dir)?;
            if let Some(policy) = &opts.allow_hosts {
                cache.allow(policy.clone())?;
            }
            let mut urls: Vec<String> = parsed
                .items
                .iter()
                .map(|i| i.photo.trim().to_string())
                .filter(|u| is_web(u))
                .collect();
            urls.sort();
            urls.dedup();
            let got = cache.fetch_all(&urls, opts.download_timeout, progress);
            let by_url: HashMap<String, super::fetch::Fetched> = urls.into_iter().zip(got).collect();
            // The download workers' arenas held decoded photos: hand them back before the
            // rows are built.
            crate::memory::release_freed();
            (cache_dir.as_path(), Some(by_url))
        }
    };
    let root = images.canonicalize().map_err(|e| Error::io(images, e))?;
    if !root.is_dir() {
        return Err(Error::Invalid(format!("{}: not a folder of images", images.display())));
    }
    let stored_root = root_setting(catalog, &root)?;
    let row_root = match catalog.setting("image_root")? {
        Some(existing) if existing != stored_root => Some(root.clone()),
        _ => None,
    };
    // Each shop id once: the first wins, later ones are reported.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut known: HashMap<PathBuf, std::result::Result<String, String>> = HashMap::new();
    let mut pending: Vec<(usize, ProductUpsert, PathBuf)> = Vec::with_capacity(parsed.items.len());
    // Items are taken from the back and their vector shrunk as it empties, so the parsed feed
    // and the rows made from it are never both whole in memory (at 50,000 items that was
    // 23 MB of items beside 37 MB of rows).
    let mut items = parsed.items;
    items.reverse();
    let items = std::iter::from_fn(move || {
        let item = items.pop();
        if items.len().is_multiple_of(4096) {
            items.shrink_to_fit();
        }
        item
    });
    // Items are consumed as they become rows, so the feed is not held twice.
    for item in items {
        let id = clean(&item.shop_id);
        if id.is_empty() {
            skip(&mut report, Some(item.line), None, "no id".into());
            continue;
        }
        if let Some(first) = seen.get(&id) {
            skip(
                &mut report,
                Some(item.line),
                Some(id.clone()),
                format!("duplicate id {id:?} (first on line {first})"),
            );
            continue;
        }
        seen.insert(id.clone(), item.line);
        let rel = match (&downloaded, local_photo(&item.photo)) {
            (_, Err(reason)) => Err(reason),
            (None, Ok(rel)) => Ok(rel),
            (Some(by_url), Ok(_)) => match by_url.get(item.photo.trim()) {
                Some(super::fetch::Fetched::Ok { path, check, .. }) => {
                    known.insert(path.clone(), check.clone());
                    Ok(path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default())
                }
                Some(super::fetch::Fetched::Failed(why)) => {
                    Err(format!("photo {}: {why}", crate::text::clip(item.photo.trim(), 120)))
                }
                None => Err(format!(
                    "photo {:?} is a path: give --images DIR, the folder it is in",
                    crate::text::clip(item.photo.trim(), 120)
                )),
            },
        };
        let rel = match rel {
            Ok(r) => r,
            Err(reason) => {
                skip(&mut report, Some(item.line), Some(id), reason);
                continue;
            }
        };
        let (rel, full) = match images::safe_relative(images, &root, &rel) {
            Ok(v) => v,
            Err(reason) => {
                skip(&mut report, Some(item.line), Some(id), reason);
                continue;
            }
        };
        let image_path = match &row_root {
            Some(r) => r.join(&rel).to_string_lossy().into_owned(),
            None => rel,
        };
        pending.push((item.line, upsert_of(&item, image_path), full));
    }
    drop(downloaded);
    progress.start("importing", pending.len());
    // Photos checked as they were downloaded are not decoded again.
    let mut paths: Vec<PathBuf> = pending
        .iter()
        .map(|p| p.2.clone())
        .filter(|p| !known.contains_key(p))
        .collect();
    paths.sort();
    paths.dedup();
    let mut checked: HashMap<PathBuf, std::result::Result<String, String>> =
        paths.into_par_iter().map(|p| (p.clone(), images::check(&p))).collect();
    checked.extend(known);
    let now = now_ms();
    let mut tx = catalog.tx()?;
    // SKU -> the shop id of the product that has it.
    let mut skus: HashMap<String, String> = HashMap::new();
    for (line, mut product, full) in pending {
        let shop_id = product.shop.shop_id.clone().unwrap_or_default();
        match &checked[&full] {
            Ok(hash) => {
                product.image_hash = hash.clone();
                // A SKU names one product: a later product claiming it loses that variant,
                // and the report says so (two colourways exported with one SKU is a shop's
                // data error worth fixing, not something to hide).
                product.variants.retain(|v| match skus.get(&v.sku) {
                    Some(owner) => {
                        report.variants_dropped.push(Skipped {
                            file: metadata.to_path_buf(),
                            line: Some(line),
                            id: None,
                            shop_id: Some(shop_id.clone()),
                            reason: format!(
                                "size {:?} left off: its SKU {:?} already belongs to {owner:?}",
                                v.size, v.sku
                            ),
                        });
                        false
                    }
                    None => {
                        skus.insert(v.sku.clone(), shop_id.clone());
                        true
                    }
                });
                report.hidden += usize::from(product.shop.hidden);
                write(&mut tx, &mut product, &shop_id, now, &mut report)?;
            }
            Err(reason) => skip(&mut report, Some(line), Some(shop_id), reason.clone()),
        }
        progress.advance(1);
    }
    if row_root.is_none() {
        crate::catalog::set_setting(&mut tx, "image_root", &stored_root)?;
    }
    if prune != super::Prune::Off {
        let (missing, listed) = missing_from_feed(&mut tx, &seen)?;
        let share = missing.len() as f64 / listed.max(1) as f64;
        let refused = match prune {
            _ if missing.is_empty() => None,
            super::Prune::Safe if unread > 0 => Some(format!(
                "not pruned: {unread} rows of the feed could not be read (a cut or damaged file?), so what it lacks proves nothing; {} of {listed} listed products would have been unlisted (--prune-force unlists them anyway)",
                missing.len()
            )),
            super::Prune::Safe if share > super::PRUNE_MAX_SHARE => Some(format!(
                "not pruned: the feed lacks {} of the {listed} listed products ({:.0}%, more than {:.0}%): a cut download? Check the feed, or pass --prune-force to unlist them",
                missing.len(),
                share * 100.0,
                super::PRUNE_MAX_SHARE * 100.0
            )),
            _ => None,
        };
        match refused {
            Some(why) => report.prune_refused = Some(why),
            None => {
                for &id in &missing {
                    crate::catalog::unlist(&mut tx, id, now)?;
                }
                report.pruned = missing.len();
            }
        }
    }
    tx.commit()?;
    progress.finish();
    report.skipped.sort_by_key(|s| s.line);
    report.peak_memory_mib = crate::memory::peak_rss_mib();
    Ok(report)
}

/// The listed shop products whose id the feed did not have, and how many shop products are
/// listed.
fn missing_from_feed(tx: &mut Tx<'_>, in_feed: &HashMap<String, usize>) -> Result<(Vec<i64>, usize)> {
    use crate::catalog::sql::Db;
    let listed = tx.rows(
        "SELECT id, shop_id FROM products WHERE shop_id IS NOT NULL AND listed = 1",
        &[],
    )?;
    let mut missing = Vec::new();
    for r in &listed {
        let shop_id: String = r.get(1)?;
        if !in_feed.contains_key(&shop_id) {
            missing.push(r.get(0)?);
        }
    }
    Ok((missing, listed.len()))
}

fn write(
    tx: &mut Tx<'_>,
    product: &mut ProductUpsert,
    shop_id: &str,
    now: i64,
    report: &mut ImportReport,
) -> Result<()> {
    let (id, _) = id_for_shop_id(tx, shop_id)?;
    product.id = id;
    match crate::catalog::products_upsert(tx, product, now)? {
        Upserted::Inserted => report.inserted += 1,
        Upserted::Updated => report.updated += 1,
        Upserted::Unchanged => report.unchanged += 1,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photo_urls_become_paths_and_other_schemes_are_refused() {
        assert_eq!(
            local_photo("https://cdn.shop.example/s/files/1/x%20y.jpg?v=16").unwrap(),
            "s/files/1/x y.jpg"
        );
        assert_eq!(local_photo("HTTP://h/a/b.png#frag").unwrap(), "a/b.png");
        assert_eq!(
            local_photo("images/010/0100000001.jpg").unwrap(),
            "images/010/0100000001.jpg"
        );
        assert!(local_photo("file:///etc/passwd").unwrap_err().contains("not allowed"));
        assert!(local_photo("ftp://h/a.jpg").is_err());
        // Issue 37, case 8: schemes without `//` were taken for paths ("give --images DIR").
        for url in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "mailto:a@b.c",
            "JavaScript:x",
        ] {
            let e = local_photo(url).unwrap_err();
            assert!(
                e.contains("not allowed") && e.contains("only http and https"),
                "{url}: {e}"
            );
        }
        assert_eq!(
            local_photo("C:/photos/a.jpg").unwrap(),
            "C:/photos/a.jpg",
            "a drive letter is a path"
        );
        assert_eq!(local_photo("a:b/c.jpg").unwrap(), "a:b/c.jpg");
        assert!(local_photo("https://h").is_err());
        assert!(local_photo(" ").is_err());
    }

    #[test]
    fn categories_of_any_depth_fold_into_three_levels() {
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            fold_category(&p(&["Apparel & Accessories", "Clothing", "Tops", "T-shirts"])),
            ["Apparel & Accessories", "Tops", "T-shirts"]
        );
        assert_eq!(fold_category(&p(&["Bags", "Backpacks"])), ["Bags", "Bags", "Backpacks"]);
        assert_eq!(fold_category(&p(&["Shoes"])), ["Shoes", "Shoes", "Shoes"]);
        assert_eq!(fold_category(&[]), ["Unknown", "Unknown", "Unknown"]);
    }
}
