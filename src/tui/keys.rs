//! The key map: the one list of bindings. Dispatch ([`action_for`]), the `?` overlay,
//! `lookbook keys` and the README's key table are all derived from [`BINDINGS`] (a test keeps
//! the README in sync), so a key cannot be bound without being documented.

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

/// Longest help text, in characters (a test holds every binding to it).
pub const HELP_WIDTH: usize = 34;

/// What the mouse does, for the help (it has no keys to bind).
pub const MOUSE_HELP: (&str, &str) = ("mouse", "click selects, the wheel scrolls");

/// Maps a key in normal mode (no prompt open) to its action.
pub fn action_for(key: KeyEvent) -> Option<Action> {
    BINDINGS
        .iter()
        .find(|b| b.keys.iter().any(|k| k.matches(key)))
        .map(|b| b.action.clone())
}

/// The bindings a session can use: all of them locally, those that are not
/// [`Action::local_only`] over SSH.
pub fn available(remote: bool) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| !(remote && b.action.local_only()))
}

/// The keys of a binding as shown in help: `j, ↓`.
pub fn key_names(b: &Binding) -> String {
    b.keys.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
}

/// The key table in Markdown, as printed by `lookbook keys` and pasted into the README.
pub fn markdown_table() -> String {
    let mut s = String::from("| keys | action |\n| --- | --- |\n");
    for b in BINDINGS {
        s.push_str(&format!("| {} | {} |\n", key_names(b).replace('|', "\\|"), b.help));
    }
    s.push_str(&format!("| {} | {} |\n", MOUSE_HELP.0, MOUSE_HELP.1));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_key_table_matches_the_key_map() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&markdown_table()),
            "README key table is out of date; paste `lookbook keys` output"
        );
    }

    #[test]
    fn every_bound_key_dispatches_to_its_own_action() {
        for b in BINDINGS {
            for key in b.keys {
                let mut event = KeyEvent::new(key.code, key.mods);
                if matches!(key.code, KeyCode::Char(ch) if ch.is_ascii_uppercase() || "?+".contains(ch)) {
                    event.modifiers |= KeyModifiers::SHIFT; // as terminals report them
                }
                assert_eq!(action_for(event), Some(b.action.clone()), "{}", key.name());
            }
        }
    }

    #[test]
    fn help_texts_fit_the_overlay() {
        for b in BINDINGS {
            assert!(
                b.help.chars().count() <= HELP_WIDTH,
                "{:?} is longer than {HELP_WIDTH}",
                b.help
            );
        }
        assert!(MOUSE_HELP.1.chars().count() <= HELP_WIDTH);
    }

    #[test]
    fn no_key_is_bound_twice_and_unbound_keys_do_nothing() {
        let all: Vec<Key> = BINDINGS.iter().flat_map(|b| b.keys.iter().copied()).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{} is bound twice", a.name());
        }
        assert_eq!(action_for(KeyEvent::from(KeyCode::Char('z'))), None);
        assert_eq!(
            action_for(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::CONTROL)),
            None
        );
    }
}
