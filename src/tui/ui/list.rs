//! Drawing the product list: the rows of the current tab (its state: `app::list`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph, Wrap};

use super::canvas::{Canvas, pane, short};
use crate::tui::app::{Anchor, App, EngineState, Focus, Mode, Tab};

/// Draws the current tab's rows.
pub fn draw(f: &mut Canvas, app: &App, area: Rect) {
    let focused = app.focus == Focus::List && matches!(app.mode, Mode::Normal | Mode::Search);
    let block = pane(list_title(app), focused);
    let inner = block.inner(area);
    f.render_widget(block, area);
    let n = app.row_count(app.tab);
    if n == 0 {
        let msg = match (app.tab, &app.engine_state) {
            (Tab::Browse, _) => "No products match. Esc clears the search and filters.",
            (_, EngineState::Loading) => "Loading vectors…",
            (_, EngineState::Missing(_)) => "No image vectors yet. Press e to embed the catalogue.",
            (Tab::Similar, _) => "Select a product and press Enter to see look-alikes, or o for a photo.",
            (Tab::Liked, _) => "Nothing liked yet. Press l on products you like, d on those you don't.",
            _ => "Nothing to show with these filters.",
        };
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }).fg(Color::DarkGray), inner);
        return;
    }
    let visible = inner.height as usize;
    let start = app.list.offset[app.tab.index()].min(n.saturating_sub(1));
    let end = (start + visible).min(n);
    let width = inner.width as usize;
    let items: Vec<ListItem> = (start..end)
        .filter_map(|row| {
            let id = app.row_id(app.tab, row)?;
            let p = app.product(id)?;
            let mut spans = vec![marker(app, id)];
            let score = app.ranked(app.tab, row).map(|r| format!("{:.2} ", r.score));
            if let Some(s) = &score {
                spans.push(Span::styled(s.clone(), Style::new().fg(Color::Yellow)));
            }
            let used = 2 + score.as_ref().map(|s| s.len()).unwrap_or(0);
            // Measured in terminal columns: a wide (Japanese, full-width) name is cut with
            // an ellipsis where it would push the type out of the row.
            let ty = short(&format!(" {}", p.article_type), 16);
            let name_w = width.saturating_sub(used + lookbook::text::width(&ty));
            spans.push(Span::raw(short(&p.name, name_w.max(4))));
            spans.push(Span::styled(ty, Style::new().fg(Color::DarkGray)));
            Some(ListItem::new(Line::from(spans)))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.list.selected[app.tab.index()].saturating_sub(start)));
    let list = List::new(items).highlight_style(Style::new().bg(Color::Blue).add_modifier(Modifier::BOLD));
    f.render_stateful_widget(list, inner, &mut state);
}

/// The like or dislike mark in front of a product.
pub fn marker(app: &App, id: i64) -> Span<'static> {
    match app.opinion(id) {
        Some(true) => Span::styled("♥ ", Style::new().fg(Color::Red)),
        Some(false) => Span::styled("✗ ", Style::new().fg(Color::DarkGray)),
        None => Span::raw("  "),
    }
}

fn list_title(app: &App) -> String {
    let n = app.row_count(app.tab);
    match app.tab {
        Tab::Browse => {
            let mut t = format!(" Catalogue · {n} of {} ", app.products.len());
            if !app.search.is_empty() {
                t.push_str(&format!("· \"{}\" ", app.search));
            }
            for (k, v) in [
                ("", &app.filter.category),
                ("", &app.filter.gender),
                ("", &app.filter.colour),
                ("", &app.filter.brand),
            ] {
                if let Some(v) = v {
                    t.push_str(&format!("· {k}{} ", short(v, 30)));
                }
            }
            match (app.filter.min_price, app.filter.max_price) {
                (None, None) => {}
                (lo, hi) => t.push_str(&format!(
                    "· {}–{} ",
                    lo.map(|x| x.to_string()).unwrap_or_default(),
                    hi.map(|x| x.to_string()).unwrap_or_default()
                )),
            }
            if app.filter.in_stock {
                t.push_str("· in stock ");
            }
            t
        }
        Tab::Similar => match &app.anchor {
            Some(Anchor::Item(id)) => {
                format!(
                    " Looks like {} · α {:.1} ",
                    app.product(*id).map(|p| short(&p.name, 28)).unwrap_or_default(),
                    app.alpha
                )
            }
            Some(Anchor::Photo(p, _)) => format!(
                " Looks like {} · α {:.1} ",
                short(&p.display().to_string(), 28),
                app.alpha
            ),
            None => " Similar: press Enter on a product ".into(),
        },
        Tab::ForYou => {
            let likes = app.feedback.iter().filter(|f| f.is_like()).count();
            let bought = app.purchases();
            let plural = |n: usize| if n == 1 { "" } else { "s" };
            match (likes, bought) {
                (0, 0) if app.shop_sells() => " For you · what sells now (like something!) ".into(),
                (0, 0) => " For you · starter picks (like something!) ".into(),
                (_, 0) => format!(" For you · from {likes} like{} ", plural(likes)),
                _ => format!(
                    " For you · from {bought} purchase{} and {likes} like{} ",
                    plural(bought),
                    plural(likes)
                ),
            }
        }
        Tab::Liked => format!(" Liked and disliked · {n} "),
    }
}
