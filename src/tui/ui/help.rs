//! Drawing the help overlay: the keys of the mode it was opened from (over SSH without the
//! local-only ones).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Row, Table};

use super::canvas::Canvas;
use crate::tui::app::HelpOverlay;
use crate::tui::keys;
use crate::tui::layout::centered;

/// Draws the keys of the mode the help was opened from; returns the box it covers.
pub fn draw(help: &HelpOverlay, f: &mut Canvas, area: Rect, remote: bool) -> Rect {
    let mut rows: Vec<(String, &str)> = keys::available(help.back.key_mode(), remote)
        .map(|b| (keys::key_names(b), b.help))
        .collect();
    rows.push((keys::MOUSE_HELP.0.to_string(), keys::MOUSE_HELP.1));
    let per_column = rows.len().div_ceil(2);
    let key_w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(8) as u16;
    let col_w = key_w + 1 + keys::HELP_WIDTH as u16;
    let r = centered(area, (2 * col_w + 4).min(area.width), per_column as u16 + 3);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(format!(" {} · any key closes ", help.back.key_mode().title()))
        .border_type(BorderType::Rounded);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let halves = Layout::horizontal([Constraint::Length(col_w + 1), Constraint::Min(10)]).split(inner);
    for (half, chunk) in halves.iter().zip(rows.chunks(per_column)) {
        let lines: Vec<Row> = chunk
            .iter()
            .map(|(k, h)| Row::new(vec![Cell::from(k.clone()).fg(Color::Cyan), Cell::from(*h)]))
            .collect();
        f.render_widget(
            Table::new(lines, [Constraint::Length(key_w), Constraint::Min(10)]),
            *half,
        );
    }
    r
}
