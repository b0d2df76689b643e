//! The product filters that `similar` and `recommend` share.

use lookbook::catalog::ProductFilter;

/// Filters shared by ranking commands.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this category (any level: Footwear, Shoes, Casual Shoes, ...).
    #[arg(long)]
    pub category: Option<String>,
    /// Only this gender.
    #[arg(long)]
    pub gender: Option<String>,
    /// Only this colour.
    #[arg(long, alias = "color")]
    pub colour: Option<String>,
    /// Only this brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Only products priced at least this (in the catalogue's currency).
    #[arg(long)]
    pub min_price: Option<f64>,
    /// Only products priced at most this.
    #[arg(long)]
    pub max_price: Option<f64>,
    /// Only products in stock.
    #[arg(long)]
    pub in_stock: bool,
}

impl FilterArgs {
    /// The library's filter, blank values dropped.
    pub fn to_filter(&self) -> ProductFilter {
        let f = self;
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
}
