//! The help overlay's state: the mode it closes back to (drawn by `ui::help`).

use super::Mode;

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
