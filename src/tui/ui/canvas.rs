//! What every component's drawing shares: the [`Canvas`] it draws on, the [`Overlays`] that go
//! in after the safety pass, a pane's frame and data text made safe. Its own module so the
//! components and the screen that arranges them (`ui`) use it without using each other.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::{Block, BorderType, StatefulWidget, Widget};

use crate::tui::jobs::ImageKey;
use lookbook::text::{sanitize, truncate};

/// Data text for a column: made safe (see `lookbook::text`), then shortened to `max` characters.
pub fn short(s: &str, max: usize) -> String {
    truncate(&sanitize(s), max)
}

/// What goes in once the text is in place and checked: photos (where, which encoded image)
/// and hyperlinks (a one-row area whose text links to a URL that passed
/// [`lookbook::text::link_target`]).
#[derive(Debug, Default)]
pub struct Overlays {
    /// Photos.
    pub images: Vec<(Rect, ImageKey)>,
    /// Product pages.
    pub links: Vec<(Rect, String)>,
}

/// Where the view draws: a terminal frame's buffer, or a server session's own (see
/// `serve::session`, which keeps one buffer between frames where a `Terminal` keeps two).
pub struct Canvas<'a>(pub &'a mut Buffer);

impl Canvas<'_> {
    /// The whole screen.
    pub fn area(&self) -> Rect {
        self.0.area
    }
    /// The buffer itself (the safety pass and hyperlinks work on cells).
    pub(super) fn buffer_mut(&mut self) -> &mut Buffer {
        self.0
    }
    /// Draws a widget.
    pub fn render_widget<W: Widget>(&mut self, widget: W, area: Rect) {
        widget.render(area, self.0);
    }
    /// Draws a widget with state (a list's selection).
    pub fn render_stateful_widget<W: StatefulWidget>(&mut self, widget: W, area: Rect, state: &mut W::State) {
        widget.render(area, self.0, state);
    }
}

/// A pane's frame: thick and cyan while it has the focus.
pub fn pane<'a>(title: impl Into<ratatui::text::Line<'a>>, focused: bool) -> Block<'a> {
    Block::bordered()
        .title(title)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        })
}
