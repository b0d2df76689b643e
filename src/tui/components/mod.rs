//! The app's parts, each owning its state and drawing itself (as gitui's components do):
//!
//! | component | state it owns | draws |
//! | --- | --- | --- |
//! | [`list`] | selected and first visible row per tab | the current tab's rows |
//! | [`detail`] | none | the product in focus: photo, metadata, score, reason |
//! | [`strip`] | the picked thumbnail | the look-alikes of the selected product |
//! | [`filters`] | columns, choices, picks | the filter picker |
//! | [`prompt`] | the text being typed | the search and prompt line |
//! | [`help`] | the mode to go back to | the keys of that mode |
//!
//! What they share (products, rankings, feedback, engine state, user, settings, jobs) stays in
//! [`crate::tui::app::App`]; every key reaches them as an action from the one key map
//! ([`crate::tui::keys`]).

pub mod detail;
pub mod filters;
pub mod help;
pub mod list;
pub mod prompt;
pub mod strip;
