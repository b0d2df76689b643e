//! The key map: the one source of truth for bindings, the help overlay, `lookbook keys` and the
//! README's key table (a test keeps the README in sync).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// A binding as shown to people, with the action it triggers.
pub struct Binding {
    /// Keys as written in help ("j / ↓").
    pub keys: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every binding in help order.
pub const BINDINGS: &[Binding] = &[
    Binding { keys: "j / ↓, k / ↑", help: "move down / up" },
    Binding { keys: "PgDn, PgUp", help: "move a page" },
    Binding { keys: "g, G", help: "jump to top / bottom" },
    Binding { keys: "Enter", help: "show look-alikes of the selected product (Similar tab)" },
    Binding { keys: "l", help: "like / unlike the selected product" },
    Binding { keys: "d", help: "dislike / un-dislike the selected product" },
    Binding { keys: "/", help: "search names (Enter keeps, Esc clears)" },
    Binding { keys: "f", help: "filter by category, gender, colour" },
    Binding { keys: "u", help: "switch or create user" },
    Binding { keys: "[ or -, ] or +", help: "alpha down / up: less / more like the query item" },
    Binding { keys: "v", help: "step diversity (MMR): 0, 0.3 (default), 0.5, 0.7" },
    Binding { keys: "o", help: "find look-alikes of a photo file" },
    Binding { keys: "e", help: "embed products that have no vector yet" },
    Binding { keys: "1 2 3 4", help: "tabs: Browse, Similar, For you, Liked" },
    Binding { keys: "Tab", help: "move focus between the list and the look-alike strip" },
    Binding { keys: "→, ←", help: "into and along the look-alike strip, and back" },
    Binding { keys: "mouse click", help: "select a row or a thumbnail" },
    Binding { keys: "Esc", help: "back out of a prompt, popup or tab" },
    Binding { keys: "?", help: "show / hide this help" },
    Binding { keys: "q, Ctrl-C", help: "quit" },
];

/// Maps a key in normal mode (no prompt open) to an action.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('d') => Some(Action::PageDown),
            KeyCode::Char('u') => Some(Action::PageUp),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Action::Down,
        KeyCode::Char('k') | KeyCode::Up => Action::Up,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::Char('g') | KeyCode::Home => Action::Top,
        KeyCode::Char('G') | KeyCode::End => Action::Bottom,
        KeyCode::Enter => Action::OpenSimilar,
        KeyCode::Char('l') => Action::ToggleLike,
        KeyCode::Char('d') => Action::ToggleDislike,
        KeyCode::Char('/') => Action::StartSearch,
        KeyCode::Char('f') => Action::OpenFilters,
        KeyCode::Char('u') => Action::SwitchUser,
        KeyCode::Char('[') | KeyCode::Char('-') => Action::AlphaDown,
        KeyCode::Char(']') | KeyCode::Char('+') | KeyCode::Char('=') => Action::AlphaUp,
        KeyCode::Char('v') => Action::CycleDiversity,
        KeyCode::Char('o') => Action::PhotoQuery,
        KeyCode::Char('e') => Action::EmbedMissing,
        KeyCode::Char('1') => Action::Tab(0),
        KeyCode::Char('2') => Action::Tab(1),
        KeyCode::Char('3') => Action::Tab(2),
        KeyCode::Char('4') => Action::Tab(3),
        KeyCode::Tab => Action::FocusNext,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::BackTab => Action::NextTab,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('?') => Action::Help,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

/// The key table in Markdown, as printed by `lookbook keys` and pasted into the README.
pub fn markdown_table() -> String {
    let mut s = String::from("| keys | action |\n| --- | --- |\n");
    for b in BINDINGS {
        s.push_str(&format!("| {} | {} |\n", b.keys.replace('|', "\\|"), b.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_key_table_matches_the_key_map() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(readme.contains(&markdown_table()), "README key table is out of date; paste `lookbook keys` output");
    }

    #[test]
    fn every_documented_letter_maps_to_an_action() {
        for c in ['j', 'k', 'g', 'G', 'l', 'd', '/', 'f', 'u', '[', ']', '-', '+', 'v', 'o', 'e', '1', '4', '?', 'q'] {
            assert!(action_for(KeyEvent::from(KeyCode::Char(c))).is_some(), "{c}");
        }
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(ctrl_c), Some(Action::Quit));
    }
}
