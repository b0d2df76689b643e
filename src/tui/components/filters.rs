//! The filter picker: category (the tree), gender and colour, chosen in three columns.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders, Clear, List, ListItem, ListState};

use std::collections::{BTreeMap, BTreeSet};

use crate::tui::action::Action;
use crate::tui::view::{Canvas, centered};
use lookbook::catalog::{Product, ProductFilter};

/// The filter picker's state.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPicker {
    /// Column in focus: 0 category, 1 gender, 2 colour.
    pub column: usize,
    /// Selected row in each column (row 0 is "any").
    pub rows: [usize; 3],
    /// Choices: (label, indent level) per column; index 0 is "any".
    pub choices: [Vec<(String, usize)>; 3],
    /// The filters the picker has no column for (price, stock, brand), kept as they were.
    pub kept: ProductFilter,
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
        FilterPicker {
            column: 0,
            rows: [
                row_of(&cats, &current.category),
                row_of(&genders, &current.gender),
                row_of(&colours, &current.colour),
            ],
            choices: [cats, genders, colours],
            kept: current.clone(),
        }
    }

    /// Applies one of the picker's actions ([`crate::tui::keys::FILTER_BINDINGS`]).
    pub fn handle(&mut self, action: &Action) -> Outcome {
        let c = self.column;
        match action {
            Action::NextColumn => self.column = (c + 1) % 3,
            Action::PrevColumn => self.column = (c + 2) % 3,
            Action::Down => self.rows[c] = (self.rows[c] + 1).min(self.choices[c].len().saturating_sub(1)),
            Action::Up => self.rows[c] = self.rows[c].saturating_sub(1),
            Action::ClearChoices => self.rows = [0; 3],
            Action::Submit => {
                let pick = |c: usize| {
                    let r = self.rows[c];
                    (r > 0).then(|| self.choices[c].get(r).map(|x| x.0.clone())).flatten()
                };
                return Outcome::Apply(ProductFilter {
                    category: pick(0),
                    gender: pick(1),
                    colour: pick(2),
                    ..self.kept.clone()
                });
            }
            Action::Cancel | Action::Back => return Outcome::Close,
            _ => {}
        }
        Outcome::Stay
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
        let cols = Layout::horizontal([
            Constraint::Percentage(50),
            Constraint::Percentage(25),
            Constraint::Percentage(25),
        ])
        .split(inner);
        for (c, title) in ["Category", "Gender", "Colour"].iter().enumerate() {
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
                        .title(*title)
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
