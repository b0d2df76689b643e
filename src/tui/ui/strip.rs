//! Drawing the look-alike strip: thumbnails of the selected product's closest look-alikes (its
//! state: `app::strip`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::canvas::{Canvas, Overlays, pane, short};
use super::detail::draw_image;
use super::list::marker;
use crate::tui::app::{App, EngineState, Focus};
use crate::tui::layout::{strip_cells, thumb_area};
use lookbook::text::sanitize;

/// Draws the thumbnails of the list's selected product's look-alikes.
pub fn draw(f: &mut Canvas, app: &App, area: Rect, overlays: &mut Overlays) {
    let focused = app.focus == Focus::Strip;
    let title = match app.list_id().and_then(|id| app.product(id)) {
        Some(p) => format!(" Looks like {} ", short(&p.name, 40)),
        None => " Looks like ".into(),
    };
    let block = pane(title, focused);
    let inner = block.inner(area);
    f.render_widget(block, area);
    if app.rankings.strip.is_empty() {
        let msg = match app.engine_state {
            EngineState::Loading => "loading vectors…",
            // The first run embeds by itself: say so rather than ask for `e`.
            EngineState::Missing(_) if app.work.is_some() => {
                "embedding the photos; look-alikes appear when it finishes"
            }
            EngineState::Missing(_) => "no vectors yet: press e to embed",
            EngineState::Ready => "no look-alikes (no vector for this product, or filters exclude all)",
        };
        f.render_widget(Paragraph::new(msg).fg(Color::DarkGray), inner);
        return;
    }
    for (i, (r, cell)) in app
        .rankings
        .strip
        .iter()
        .zip(strip_cells(area, app.rankings.strip.len()))
        .enumerate()
    {
        draw_image(f, app, r.id, thumb_area(cell), overlays);
        let name = app
            .product(r.id)
            .map(|p| sanitize(&p.name).into_owned())
            .unwrap_or_default();
        let sel = focused && i == app.strip.sel;
        let style = if sel {
            Style::new().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        let caption = vec![
            Line::from(vec![
                marker(app, r.id),
                Span::styled(format!("{:.2}", r.score), Style::new().fg(Color::Yellow)),
            ]),
            Line::from(short(&name, cell.width as usize)),
        ];
        let cap = Rect {
            y: cell.y + cell.height.saturating_sub(2),
            height: 2.min(cell.height),
            ..cell
        };
        f.render_widget(Paragraph::new(caption).style(style), cap);
    }
}
