//! The look-alike strip's state: which thumbnail is picked when the strip has focus (drawn by
//! `ui::strip`).

/// The strip's state: the picked thumbnail.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Strip {
    /// The picked thumbnail (when the strip has focus).
    pub sel: usize,
}
