//! The filter picker: category (the tree), gender and colour, and for a shop's catalogue also
//! brand, price and stock, each a column of choices.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders, Clear, List, ListItem, ListState};

use std::collections::{BTreeMap, BTreeSet};

use crate::tui::action::Action;
use crate::tui::view::{Canvas, centered};
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
    fn title(self) -> &'static str {
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

    /// Draws the picker over `area`.
    pub fn draw(&self, f: &mut Canvas, area: Rect) {
        let r = centered(area, 90, area.height.saturating_sub(4).max(8));
        f.render_widget(Clear, r);
        let block = Block::bordered()
            .title(" Filters · Tab/←→ column · j/k choose · Enter apply · x clear · Esc cancel ")
            .border_type(BorderType::Rounded);
        let inner = block.inner(r);
        f.render_widget(block, r);
        // The category tree gets half; the other columns share the rest.
        let others = (self.fields.len().max(2) - 1) as u16;
        let widths: Vec<Constraint> = (0..self.fields.len())
            .map(|c| Constraint::Percentage(if c == 0 { 50 } else { 50 / others }))
            .collect();
        let cols = Layout::horizontal(widths).split(inner);
        for (c, field) in self.fields.iter().enumerate() {
            let title = field.title();
            let focused = self.column == c;
            let items: Vec<ListItem> = self.choices[c]
                .iter()
                .map(|(label, level)| ListItem::new(format!("{}{label}", "  ".repeat(*level))))
                .collect();
            let mut state = ListState::default().with_selected(Some(self.rows[c]));
            let list = List::new(items)
                .block(
                    Block::new()
                        .borders(Borders::TOP)
                        .title(title)
                        .border_style(if focused {
                            Style::new().fg(Color::Cyan)
                        } else {
                            Style::new()
                        }),
                )
                .highlight_style(if focused {
                    Style::new().bg(Color::Cyan).fg(Color::Black)
                } else {
                    Style::new().add_modifier(Modifier::REVERSED)
                });
            f.render_stateful_widget(list, cols[c], &mut state);
        }
    }
}
