//! The line the user types into, as state: the name search (`/`) and the prompts (a user name,
//! a photo path), edited by the text actions of the key map (drawn by `ui::prompt`).

use crate::tui::action::Action;

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
