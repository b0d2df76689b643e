//! The help overlay: the keys of the mode it was opened from (over SSH without the local-only
//! ones), and that mode to go back to.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Row, Table};

use crate::tui::app::Mode;
use crate::tui::keys;
use crate::tui::view::{Canvas, centered};

/// The overlay's state: the mode it closes back to.
#[derive(Debug, Clone, PartialEq)]
pub struct HelpOverlay {
    /// Where `?` was pressed (the normal view or the filter picker).
    pub back: Mode,
}

impl Default for HelpOverlay {
    fn default() -> Self {
        HelpOverlay { back: Mode::Normal }
    }
}

impl HelpOverlay {
    /// Draws the keys of the mode the help was opened from.
    pub fn draw(&self, f: &mut Canvas, area: Rect, remote: bool) {
        let mut rows: Vec<(String, &str)> = keys::available(self.back.key_mode(), remote)
            .map(|b| (keys::key_names(b), b.help))
            .collect();
        rows.push((keys::MOUSE_HELP.0.to_string(), keys::MOUSE_HELP.1));
        let per_column = rows.len().div_ceil(2);
        let key_w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(8) as u16;
        let col_w = key_w + 1 + keys::HELP_WIDTH as u16;
        let r = centered(area, (2 * col_w + 4).min(area.width), per_column as u16 + 3);
        f.render_widget(Clear, r);
        let block = Block::bordered()
            .title(format!(" {} · any key closes ", self.back.key_mode().title()))
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
    }
}
