//! The line the user types into: the name search (`/`) and the prompts (a user name, a photo
//! path), edited by the text actions of the key map.

use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};

use crate::tui::action::Action;
use crate::tui::app::{Mode, PromptKind};

/// What an editing action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// The text changed (or stayed, at its cap).
    Changed,
    /// Enter: accept it.
    Submit,
    /// Esc: drop it.
    Cancel,
    /// Not an editing action.
    Other,
}

/// Applies a text action to `text`, which never grows past `cap` characters (a paste flood
/// cannot grow it without bound).
pub fn edit(text: &mut String, action: &Action, cap: usize) -> Edit {
    match action {
        Action::Type(c) => {
            if text.chars().count() < cap {
                text.push(*c);
            }
            Edit::Changed
        }
        Action::Erase => {
            text.pop();
            Edit::Changed
        }
        Action::Submit => Edit::Submit,
        Action::Cancel => Edit::Cancel,
        _ => Edit::Other,
    }
}

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
