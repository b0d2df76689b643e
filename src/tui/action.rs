//! Everything the app can be asked to do. Keys and mouse map to these; tests drive the app with
//! them directly.

use serde::{Deserialize, Serialize};

/// One user intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Action {
    /// Move the selection down one row.
    Down,
    /// Move the selection up one row.
    Up,
    /// Move down a page.
    PageDown,
    /// Move up a page.
    PageUp,
    /// Jump to the first row.
    Top,
    /// Jump to the last row.
    Bottom,
    /// Show look-alikes of the selected product.
    OpenSimilar,
    /// Toggle a like on the selected product.
    ToggleLike,
    /// Toggle a dislike on the selected product.
    ToggleDislike,
    /// Start typing a name search.
    StartSearch,
    /// Open the filter picker.
    OpenFilters,
    /// Switch or create a user.
    SwitchUser,
    /// Query by a photo path.
    PhotoQuery,
    /// Raise alpha (more like the query, less like the profile).
    AlphaUp,
    /// Lower alpha.
    AlphaDown,
    /// Step MMR diversity through [`super::app::DIVERSITY_STEPS`], back to 0 after the last.
    CycleDiversity,
    /// Embed products that have no vector yet.
    EmbedMissing,
    /// Move focus between the list and the look-alike strip.
    FocusNext,
    /// Left in the strip (from its first thumbnail, back to the list).
    Left,
    /// Right in the strip (from the list, into the strip).
    Right,
    /// Go to a tab by number (0-based).
    Tab(usize),
    /// Next tab.
    NextTab,
    /// Back out of a prompt, a popup or a tab.
    Back,
    /// Show or hide the key help.
    Help,
    /// Leave the app.
    Quit,
    /// Select the row at this screen position (mouse).
    ClickAt(u16, u16),
    /// A character typed into the open search or prompt.
    Type(char),
    /// Delete the last character of the open search or prompt.
    Erase,
    /// Accept the open search or prompt.
    Submit,
    /// Close the open search (clearing it), prompt or filter picker.
    Cancel,
    /// The filter picker's next column.
    NextColumn,
    /// The filter picker's previous column.
    PrevColumn,
    /// Every filter column back to "any".
    ClearChoices,
}

impl Action {
    /// Actions a `lookbook serve` session may not take: a session is the user it logged in as
    /// (switching would let anyone act as anyone), and it may neither read files on the server
    /// nor start embedding there. The help overlay of such a session leaves them out.
    pub fn local_only(&self) -> bool {
        matches!(self, Action::SwitchUser | Action::PhotoQuery | Action::EmbedMissing)
    }
}
