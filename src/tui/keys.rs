//! The key map: the one list of bindings for every mode. Dispatch ([`action_for`]), the `?`
//! overlay (the keys of the mode it was opened from), `lookbook keys` and the README's key
//! tables are all derived from these lists (a test keeps the README in sync), so a key cannot
//! be bound without being documented.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::action::Action;

/// One key, with the modifiers that must be held (Shift is implied by the character itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The key.
    pub code: KeyCode,
    /// Ctrl or Alt, when required.
    pub mods: KeyModifiers,
}

const fn k(code: KeyCode) -> Key {
    Key {
        code,
        mods: KeyModifiers::NONE,
    }
}

/// Any character typed without Ctrl or Alt (text modes type it).
const ANY_CHAR: Key = k(KeyCode::Null);

/// Any key at all (the help overlay closes on it).
const ANY_KEY: Key = Key {
    code: KeyCode::Null,
    mods: KeyModifiers::ALT,
};

const fn c(ch: char) -> Key {
    k(KeyCode::Char(ch))
}

const fn ctrl(ch: char) -> Key {
    Key {
        code: KeyCode::Char(ch),
        mods: KeyModifiers::CONTROL,
    }
}

impl Key {
    /// As written in help: `j`, `↓`, `Ctrl-d`, `Shift-Tab`.
    pub fn name(self) -> String {
        if self == ANY_CHAR {
            return "any character".into();
        }
        if self == ANY_KEY {
            return "any key".into();
        }
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(ch) => ch.to_string(),
            KeyCode::Down => "↓".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Backspace => "Backspace".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    /// True when `event` is this key. Shift is ignored for characters (it is part of `G`, `?`
    /// and `+` already), Ctrl and Alt must match.
    pub fn matches(self, event: KeyEvent) -> bool {
        let relevant = KeyModifiers::CONTROL | KeyModifiers::ALT;
        if self == ANY_KEY {
            return true;
        }
        if self == ANY_CHAR {
            return matches!(event.code, KeyCode::Char(_)) && (event.modifiers & relevant).is_empty();
        }
        self.code == event.code && (event.modifiers & relevant) == self.mods
    }
}

/// A binding: the keys, the action they trigger, and what it does in words.
pub struct Binding {
    /// Every key that triggers the action, the main one first.
    pub keys: &'static [Key],
    /// The action.
    pub action: Action,
    /// What it does.
    pub help: &'static str,
}

/// Every binding, in help order. Help texts stay within [`HELP_WIDTH`] characters so the `?`
/// overlay shows them whole in two columns on an 80-column-plus terminal.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: &[c('j'), k(KeyCode::Down)],
        action: Action::Down,
        help: "move down",
    },
    Binding {
        keys: &[c('k'), k(KeyCode::Up)],
        action: Action::Up,
        help: "move up",
    },
    Binding {
        keys: &[k(KeyCode::PageDown), ctrl('d')],
        action: Action::PageDown,
        help: "move a page down",
    },
    Binding {
        keys: &[k(KeyCode::PageUp), ctrl('u')],
        action: Action::PageUp,
        help: "move a page up",
    },
    Binding {
        keys: &[c('g'), k(KeyCode::Home)],
        action: Action::Top,
        help: "jump to the top",
    },
    Binding {
        keys: &[c('G'), k(KeyCode::End)],
        action: Action::Bottom,
        help: "jump to the bottom",
    },
    Binding {
        keys: &[k(KeyCode::Enter)],
        action: Action::OpenSimilar,
        help: "look-alikes of this product",
    },
    Binding {
        keys: &[c('l')],
        action: Action::ToggleLike,
        help: "like / unlike this product",
    },
    Binding {
        keys: &[c('d')],
        action: Action::ToggleDislike,
        help: "dislike / un-dislike this product",
    },
    Binding {
        keys: &[c('/')],
        action: Action::StartSearch,
        help: "search names (Esc clears)",
    },
    Binding {
        keys: &[c('f')],
        action: Action::OpenFilters,
        help: "filter by category, gender, colour",
    },
    Binding {
        keys: &[c('u')],
        action: Action::SwitchUser,
        help: "switch or create user",
    },
    Binding {
        keys: &[c('['), c('-')],
        action: Action::AlphaDown,
        help: "alpha down: less like the query",
    },
    Binding {
        keys: &[c(']'), c('+'), c('=')],
        action: Action::AlphaUp,
        help: "alpha up: more like the query",
    },
    Binding {
        keys: &[c('v')],
        action: Action::CycleDiversity,
        help: "diversity (MMR): 0, .3, .5, .7",
    },
    Binding {
        keys: &[c('o')],
        action: Action::PhotoQuery,
        help: "find look-alikes of a photo file",
    },
    Binding {
        keys: &[c('e')],
        action: Action::EmbedMissing,
        help: "embed products with no vector",
    },
    Binding {
        keys: &[c('1')],
        action: Action::Tab(0),
        help: "Browse tab",
    },
    Binding {
        keys: &[c('2')],
        action: Action::Tab(1),
        help: "Similar tab",
    },
    Binding {
        keys: &[c('3')],
        action: Action::Tab(2),
        help: "For you tab",
    },
    Binding {
        keys: &[c('4')],
        action: Action::Tab(3),
        help: "Liked tab",
    },
    Binding {
        keys: &[k(KeyCode::BackTab)],
        action: Action::NextTab,
        help: "next tab",
    },
    Binding {
        keys: &[k(KeyCode::Tab)],
        action: Action::FocusNext,
        help: "focus: list / look-alike strip",
    },
    Binding {
        keys: &[k(KeyCode::Right)],
        action: Action::Right,
        help: "into and along the strip",
    },
    Binding {
        keys: &[k(KeyCode::Left)],
        action: Action::Left,
        help: "back along the strip, to the list",
    },
    Binding {
        keys: &[k(KeyCode::Esc)],
        action: Action::Back,
        help: "back out of a prompt, popup or tab",
    },
    Binding {
        keys: &[c('?')],
        action: Action::Help,
        help: "show / hide this help",
    },
    Binding {
        keys: &[c('q'), ctrl('c')],
        action: Action::Quit,
        help: "quit",
    },
];

/// Where keys are read: each mode has its own bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Browsing: keys are actions ([`BINDINGS`]).
    Normal,
    /// Typing a search or into a prompt ([`TEXT_BINDINGS`]).
    Text,
    /// The filter picker ([`FILTER_BINDINGS`]).
    Filters,
    /// The help overlay ([`HELP_BINDINGS`]).
    Help,
}

impl KeyMode {
    /// Every mode, in the order `lookbook keys` lists them.
    pub const ALL: [KeyMode; 4] = [KeyMode::Normal, KeyMode::Filters, KeyMode::Text, KeyMode::Help];

    /// Where the mode's keys apply, as a heading.
    pub fn title(self) -> &'static str {
        match self {
            KeyMode::Normal => "Keys",
            KeyMode::Text => "Keys while typing a search or prompt",
            KeyMode::Filters => "Keys in the filter picker",
            KeyMode::Help => "Keys in the help overlay",
        }
    }
}

/// The filter picker's keys.
pub const FILTER_BINDINGS: &[Binding] = &[
    Binding {
        keys: &[c('j'), k(KeyCode::Down)],
        action: Action::Down,
        help: "next choice in the column",
    },
    Binding {
        keys: &[c('k'), k(KeyCode::Up)],
        action: Action::Up,
        help: "previous choice in the column",
    },
    Binding {
        keys: &[k(KeyCode::Tab), k(KeyCode::Right)],
        action: Action::NextColumn,
        help: "next column",
    },
    Binding {
        keys: &[k(KeyCode::BackTab), k(KeyCode::Left)],
        action: Action::PrevColumn,
        help: "previous column",
    },
    Binding {
        keys: &[c('x'), k(KeyCode::Backspace)],
        action: Action::ClearChoices,
        help: "clear every column",
    },
    Binding {
        keys: &[k(KeyCode::Enter)],
        action: Action::Submit,
        help: "apply the filters",
    },
    Binding {
        keys: &[k(KeyCode::Esc), c('q')],
        action: Action::Cancel,
        help: "close without applying",
    },
    Binding {
        keys: &[c('?')],
        action: Action::Help,
        help: "show / hide this help",
    },
    Binding {
        keys: &[ctrl('c')],
        action: Action::Quit,
        help: "quit",
    },
];

/// The keys of a search or a prompt.
pub const TEXT_BINDINGS: &[Binding] = &[
    Binding {
        keys: &[k(KeyCode::Enter)],
        action: Action::Submit,
        help: "accept",
    },
    Binding {
        keys: &[k(KeyCode::Esc)],
        action: Action::Cancel,
        help: "cancel (a search is cleared)",
    },
    Binding {
        keys: &[k(KeyCode::Backspace)],
        action: Action::Erase,
        help: "delete the last character",
    },
    Binding {
        keys: &[k(KeyCode::Down)],
        action: Action::Down,
        help: "accept a search, move down",
    },
    Binding {
        keys: &[k(KeyCode::Up)],
        action: Action::Up,
        help: "accept a search, move up",
    },
    Binding {
        keys: &[ctrl('c')],
        action: Action::Quit,
        help: "quit",
    },
    Binding {
        keys: &[ANY_CHAR],
        action: Action::Type('\0'),
        help: "typed into the search or prompt",
    },
];

/// The help overlay's keys.
pub const HELP_BINDINGS: &[Binding] = &[
    Binding {
        keys: &[ctrl('c')],
        action: Action::Quit,
        help: "quit",
    },
    Binding {
        keys: &[ANY_KEY],
        action: Action::Help,
        help: "close this help",
    },
];

/// The bindings of a mode.
pub fn bindings(mode: KeyMode) -> &'static [Binding] {
    match mode {
        KeyMode::Normal => BINDINGS,
        KeyMode::Text => TEXT_BINDINGS,
        KeyMode::Filters => FILTER_BINDINGS,
        KeyMode::Help => HELP_BINDINGS,
    }
}

/// Longest help text, in characters (a test holds every binding to it).
pub const HELP_WIDTH: usize = 34;

/// What the mouse does, for the help (it has no keys to bind).
pub const MOUSE_HELP: (&str, &str) = ("mouse", "click selects, the wheel scrolls");

/// Maps a key in a mode to its action (a typed character carries itself).
pub fn action_for(mode: KeyMode, key: KeyEvent) -> Option<Action> {
    bindings(mode)
        .iter()
        .find(|b| b.keys.iter().any(|k| k.matches(key)))
        .map(|b| match (&b.action, key.code) {
            (Action::Type(_), KeyCode::Char(ch)) => Action::Type(ch),
            (a, _) => a.clone(),
        })
}

/// The bindings of a mode a session can use: all of them locally, those that are not
/// [`Action::local_only`] over SSH.
pub fn available(mode: KeyMode, remote: bool) -> impl Iterator<Item = &'static Binding> {
    bindings(mode)
        .iter()
        .filter(move |b| !(remote && b.action.local_only()))
}

/// The keys of a binding as shown in help: `j, ↓`.
pub fn key_names(b: &Binding) -> String {
    b.keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

/// A mode's key table in Markdown (the mouse with the normal keys).
pub fn markdown_table(mode: KeyMode) -> String {
    let mut s = String::from("| keys | action |\n| --- | --- |\n");
    for b in bindings(mode) {
        s.push_str(&format!("| {} | {} |\n", key_names(b).replace('|', "\\|"), b.help));
    }
    if mode == KeyMode::Normal {
        s.push_str(&format!("| {} | {} |\n", MOUSE_HELP.0, MOUSE_HELP.1));
    }
    s
}

/// Every mode's key table, as printed by `lookbook keys` and pasted into the README.
pub fn markdown_tables() -> String {
    KeyMode::ALL
        .iter()
        .map(|m| format!("{}:\n\n{}", m.title(), markdown_table(*m)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_key_table_matches_the_key_map() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&markdown_tables()),
            "README key tables are out of date; paste `lookbook keys` output"
        );
    }

    #[test]
    fn every_bound_key_dispatches_to_its_own_action_in_every_mode() {
        for mode in KeyMode::ALL {
            for b in bindings(mode) {
                for key in b.keys.iter().filter(|k| **k != ANY_CHAR && **k != ANY_KEY) {
                    let mut event = KeyEvent::new(key.code, key.mods);
                    if matches!(key.code, KeyCode::Char(ch) if ch.is_ascii_uppercase() || "?+".contains(ch)) {
                        event.modifiers |= KeyModifiers::SHIFT; // as terminals report them
                    }
                    assert_eq!(
                        action_for(mode, event),
                        Some(b.action.clone()),
                        "{mode:?} {}",
                        key.name()
                    );
                }
            }
        }
        // Text modes type what is typed; the help closes on anything.
        let typed = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(action_for(KeyMode::Text, typed), Some(Action::Type('q')));
        assert_eq!(action_for(KeyMode::Help, typed), Some(Action::Help));
        assert_eq!(action_for(KeyMode::Filters, typed), Some(Action::Cancel));
    }

    #[test]
    fn help_texts_fit_the_overlay() {
        for b in KeyMode::ALL.iter().flat_map(|m| bindings(*m)) {
            assert!(
                b.help.chars().count() <= HELP_WIDTH,
                "{:?} is longer than {HELP_WIDTH}",
                b.help
            );
        }
        assert!(MOUSE_HELP.1.chars().count() <= HELP_WIDTH);
    }

    #[test]
    fn no_key_is_bound_twice_in_a_mode_and_unbound_keys_do_nothing() {
        for mode in KeyMode::ALL {
            let all: Vec<Key> = bindings(mode).iter().flat_map(|b| b.keys.iter().copied()).collect();
            for (i, a) in all.iter().enumerate() {
                assert!(!all[i + 1..].contains(a), "{mode:?}: {} is bound twice", a.name());
            }
        }
        assert_eq!(action_for(KeyMode::Normal, KeyEvent::from(KeyCode::Char('z'))), None);
        assert_eq!(
            action_for(
                KeyMode::Normal,
                KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL)
            ),
            None
        );
        assert_eq!(
            action_for(KeyMode::Text, KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL)),
            None,
            "Ctrl-j is not text"
        );
    }
}
