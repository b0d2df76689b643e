//! Drawing the line the user types into: the search or prompt with its cursor.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use crate::tui::app::{Mode, PromptKind};

/// The input line for a text mode (with a cursor), or `None` when nothing is being typed.
pub fn line(mode: &Mode, search: &str) -> Option<Line<'static>> {
    let (label, text) = match mode {
        Mode::Search => ("/ ", search.to_string()),
        Mode::Prompt(PromptKind::User, text) => ("user (new names are created): ", text.clone()),
        Mode::Prompt(PromptKind::Photo, text) => ("photo file: ", text.clone()),
        _ => return None,
    };
    Some(Line::from(vec![
        Span::styled(label, Style::new().fg(Color::Cyan)),
        Span::raw(text),
        Span::raw("█"),
    ]))
}
