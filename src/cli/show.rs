//! `lookbook show`: a product's photo and metadata printed in the terminal.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitCode;

use super::out::outln;
use lookbook::catalog::Catalog;

/// Print a product's photo and metadata in the terminal.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The product: the shop's id or a SKU, or the catalogue's number.
    pub id: String,
    /// Width of the picture in terminal cells.
    #[arg(long, default_value_t = 40)]
    pub width: u32,
}

/// Runs `show`; `images` is the global `--images` protocol.
pub fn run(db: &Path, a: Args, images: &str) -> Result<ExitCode> {
    use std::io::IsTerminal;
    let cat = Catalog::open_existing(db)?;
    let p = cat.require_product_ref(&a.id)?;
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
            width: Some(a.width.clamp(4, 400)),
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
    let sizes = p.sizes_in_stock();
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
