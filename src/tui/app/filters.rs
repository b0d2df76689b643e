//! The filter picker's state: category (the tree), gender and colour, and for a shop's catalogue
//! also brand, price and stock, each a column of choices (drawn by `ui::filters`).

use std::collections::{BTreeMap, BTreeSet};

use crate::tui::action::Action;
use lookbook::catalog::{Product, ProductFilter};

/// What a column of the picker sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A category at any level.
    Category,
    /// Gender.
    Gender,
    /// Colour.
    Colour,
    /// Brand (shown when the catalogue has brands).
    Brand,
    /// A price band (shown when the catalogue has prices).
    Price,
    /// In stock or not (shown when the catalogue says).
    Stock,
}

impl Field {
    /// The column's heading.
    pub fn title(self) -> &'static str {
        match self {
            Field::Category => "Category",
            Field::Gender => "Gender",
            Field::Colour => "Colour",
            Field::Brand => "Brand",
            Field::Price => "Price",
            Field::Stock => "Stock",
        }
    }
}

/// The filter picker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPicker {
    /// Column in focus.
    pub column: usize,
    /// Selected row in each column (row 0 is "any").
    pub rows: Vec<usize>,
    /// Choices: (label, indent level) per column; index 0 is "any".
    pub choices: Vec<Vec<(String, usize)>>,
    /// What each column sets.
    pub fields: Vec<Field>,
    /// Price bands, (lowest, highest), for the price column's rows after "any".
    bands: Vec<(Option<f64>, Option<f64>)>,
    /// The filters the picker has no column for, kept as they were.
    pub kept: ProductFilter,
}

/// Price bands at round numbers around the catalogue's quartiles.
fn price_bands(products: &[Product]) -> Vec<(Option<f64>, Option<f64>)> {
    let mut prices: Vec<f64> = products.iter().filter_map(|p| p.price).collect();
    if prices.len() < 4 {
        return Vec::new();
    }
    prices.sort_by(f64::total_cmp);
    let round = |x: f64| {
        let step = 10f64.powf(x.max(1.0).log10().floor());
        (x / step).round().max(1.0) * step
    };
    let mut cuts: Vec<f64> = [0.25, 0.5, 0.75]
        .iter()
        .map(|q| round(prices[((prices.len() - 1) as f64 * q) as usize]))
        .collect();
    cuts.dedup();
    let mut bands = vec![(None, Some(cuts[0]))];
    for w in cuts.windows(2) {
        bands.push((Some(w[0]), Some(w[1])));
    }
    bands.push((cuts.last().copied(), None));
    bands
}

fn band_label((lo, hi): (Option<f64>, Option<f64>)) -> String {
    match (lo, hi) {
        (None, Some(h)) => format!("up to {h}"),
        (Some(l), Some(h)) => format!("{l} to {h}"),
        (Some(l), None) => format!("{l} and more"),
        (None, None) => "any".into(),
    }
}

/// What an action did to the picker.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Still choosing.
    Stay,
    /// Apply these filters and close.
    Apply(ProductFilter),
    /// Close without applying.
    Close,
}

impl FilterPicker {
    /// The choices the catalogue offers, with `current` selected.
    pub fn new(products: &[Product], current: &ProductFilter) -> Self {
        let mut cats: Vec<(String, usize)> = vec![("any".into(), 0)];
        let mut tree: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = Default::default();
        for p in products {
            tree.entry(&p.master_category)
                .or_default()
                .entry(&p.sub_category)
                .or_default()
                .insert(&p.article_type);
        }
        for (m, subs) in &tree {
            cats.push((m.to_string(), 0));
            for (s, types) in subs {
                cats.push((s.to_string(), 1));
                for t in types {
                    cats.push((t.to_string(), 2));
                }
            }
        }
        let distinct = |f: fn(&Product) -> &str| {
            let set: BTreeSet<&str> = products.iter().map(f).filter(|s| !s.is_empty()).collect();
            std::iter::once(("any".to_string(), 0))
                .chain(set.into_iter().map(|s| (s.to_string(), 0)))
                .collect::<Vec<_>>()
        };
        let genders = distinct(|p| &p.gender);
        let colours = distinct(|p| &p.colour);
        let row_of = |list: &[(String, usize)], v: &Option<String>| {
            v.as_ref()
                .and_then(|v| list.iter().position(|(x, _)| x.eq_ignore_ascii_case(v)))
                .unwrap_or(0)
        };
        let mut picker = FilterPicker {
            column: 0,
            rows: vec![
                row_of(&cats, &current.category),
                row_of(&genders, &current.gender),
                row_of(&colours, &current.colour),
            ],
            choices: vec![cats, genders, colours],
            fields: vec![Field::Category, Field::Gender, Field::Colour],
            bands: Vec::new(),
            kept: current.clone(),
        };
        // A shop's catalogue has more to choose by; the Kaggle set has none of these.
        let brands = distinct(|p| &p.brand);
        if brands.len() > 2 {
            picker.rows.push(row_of(&brands, &current.brand));
            picker.choices.push(brands);
            picker.fields.push(Field::Brand);
        }
        let bands = price_bands(products);
        if !bands.is_empty() {
            let mut choices = vec![("any".to_string(), 0)];
            choices.extend(bands.iter().map(|b| (band_label(*b), 0)));
            let row = bands
                .iter()
                .position(|b| *b == (current.min_price, current.max_price))
                .map_or(0, |i| i + 1);
            picker.rows.push(row);
            picker.choices.push(choices);
            picker.fields.push(Field::Price);
            picker.bands = bands;
        }
        if products
            .iter()
            .any(|p| p.availability != "unknown" && !p.availability.is_empty())
        {
            picker.rows.push(usize::from(current.in_stock));
            picker.choices.push(vec![("any".into(), 0), ("in stock".into(), 0)]);
            picker.fields.push(Field::Stock);
        }
        picker
    }

    /// Applies one of the picker's actions ([`crate::tui::keys::FILTER_BINDINGS`]).
    pub fn handle(&mut self, action: &Action) -> Outcome {
        let (c, n) = (self.column, self.fields.len());
        match action {
            Action::NextColumn => self.column = (c + 1) % n,
            Action::PrevColumn => self.column = (c + n - 1) % n,
            Action::Down => self.rows[c] = (self.rows[c] + 1).min(self.choices[c].len().saturating_sub(1)),
            Action::Up => self.rows[c] = self.rows[c].saturating_sub(1),
            Action::ClearChoices => self.rows.iter_mut().for_each(|r| *r = 0),
            Action::Submit => return Outcome::Apply(self.filter()),
            Action::Cancel | Action::Back => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
    }

    /// The filter the picks make (fields without a column keep their value).
    fn filter(&self) -> ProductFilter {
        let mut f = self.kept.clone();
        for (c, field) in self.fields.iter().enumerate() {
            let r = self.rows[c];
            let label = (r > 0).then(|| self.choices[c].get(r).map(|x| x.0.clone())).flatten();
            match field {
                Field::Category => f.category = label,
                Field::Gender => f.gender = label,
                Field::Colour => f.colour = label,
                Field::Brand => f.brand = label,
                Field::Price => {
                    let band = r.checked_sub(1).and_then(|i| self.bands.get(i)).copied();
                    (f.min_price, f.max_price) = band.unwrap_or((None, None));
                }
                Field::Stock => f.in_stock = r == 1,
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lookbook::synthetic::synthetic_products;

    fn shop() -> Vec<Product> {
        let mut ps = synthetic_products(12);
        for (i, p) in ps.iter_mut().enumerate() {
            p.brand = ["Acme", "Bolt", "Crest"][i % 3].into();
            p.price = Some(10.0 * (i + 1) as f64);
            p.availability = if i % 2 == 0 { "in_stock" } else { "out_of_stock" }.into();
        }
        ps
    }

    #[test]
    fn a_shops_catalogue_gets_brand_price_and_stock_columns_the_plain_one_does_not() {
        let plain = FilterPicker::new(&synthetic_products(12), &ProductFilter::default());
        assert_eq!(plain.fields, vec![Field::Category, Field::Gender, Field::Colour]);
        let p = FilterPicker::new(&shop(), &ProductFilter::default());
        assert_eq!(
            p.fields,
            vec![
                Field::Category,
                Field::Gender,
                Field::Colour,
                Field::Brand,
                Field::Price,
                Field::Stock
            ]
        );
        assert!(
            p.rows.iter().all(|r| *r == 0),
            "nothing picked: every column on \"any\""
        );
        // The category column is the tree: master, sub, type, indented.
        assert_eq!(p.choices[0][1], ("Apparel".to_string(), 0));
        assert_eq!(p.choices[0][2], ("Topwear".to_string(), 1));
    }

    #[test]
    fn picks_become_the_filter_and_unknown_fields_are_kept() {
        let current = ProductFilter {
            gender: Some("women".into()),
            min_price: Some(1.0),
            ..Default::default()
        };
        let mut p = FilterPicker::new(&synthetic_products(12), &current);
        // The current filter is selected, matched without regard to case.
        assert_eq!(p.choices[1][p.rows[1]].0, "Women");
        p.handle(&Action::NextColumn);
        p.handle(&Action::NextColumn);
        p.handle(&Action::Down);
        let Outcome::Apply(f) = p.handle(&Action::Submit) else {
            panic!("Enter applies")
        };
        assert_eq!(f.gender.as_deref(), Some("Women"));
        assert_eq!(f.colour.as_deref(), Some(p.choices[2][1].0.as_str()));
        assert_eq!(f.min_price, Some(1.0), "no price column here: the price filter is kept");
        p.handle(&Action::ClearChoices);
        let Outcome::Apply(f) = p.handle(&Action::Submit) else {
            panic!("Enter applies")
        };
        assert_eq!((f.gender, f.colour), (None, None));
        assert_eq!(p.handle(&Action::Cancel), Outcome::Close);
        assert_eq!(p.handle(&Action::Help), Outcome::Stay);
    }

    #[test]
    fn moving_stays_inside_the_columns_and_their_choices() {
        let mut p = FilterPicker::new(&shop(), &ProductFilter::default());
        p.handle(&Action::PrevColumn);
        assert_eq!(p.column, p.fields.len() - 1, "left of the first column is the last");
        for _ in 0..10 {
            p.handle(&Action::Down);
        }
        assert_eq!(p.rows[p.column], 1, "the stock column has two rows");
        p.handle(&Action::Up);
        p.handle(&Action::Up);
        assert_eq!(p.rows[p.column], 0);
    }
}
