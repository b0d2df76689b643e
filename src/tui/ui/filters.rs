//! Drawing the filter picker: a column of choices per field over the screen.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, BorderType, Borders, Clear, List, ListItem, ListState};

use super::canvas::Canvas;
use crate::tui::app::FilterPicker;
use crate::tui::layout::centered;

/// Draws the picker over `area`; returns the box it covers.
pub fn draw(picker: &FilterPicker, f: &mut Canvas, area: Rect) -> Rect {
    let r = centered(area, 90, area.height.saturating_sub(4).max(8));
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(" Filters · Tab/←→ column · j/k choose · Enter apply · x clear · Esc cancel ")
        .border_type(BorderType::Rounded);
    let inner = block.inner(r);
    f.render_widget(block, r);
    // The category tree gets half; the other columns share the rest.
    let others = (picker.fields.len().max(2) - 1) as u16;
    let widths: Vec<Constraint> = (0..picker.fields.len())
        .map(|c| Constraint::Percentage(if c == 0 { 50 } else { 50 / others }))
        .collect();
    let cols = Layout::horizontal(widths).split(inner);
    for (c, field) in picker.fields.iter().enumerate() {
        let title = field.title();
        let focused = picker.column == c;
        let items: Vec<ListItem> = picker.choices[c]
            .iter()
            .map(|(label, level)| ListItem::new(format!("{}{label}", "  ".repeat(*level))))
            .collect();
        let mut state = ListState::default().with_selected(Some(picker.rows[c]));
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
    r
}
