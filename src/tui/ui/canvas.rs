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
    /// The popup over the screen (help, filter picker), which no photo may cover.
    pub popup: Option<Rect>,
}

impl Overlays {
    /// The photos to draw: those clear of the popup. A photo is an image escape sequence the
    /// terminal paints over whatever text its cells hold, so one under the filter picker or
    /// the help would hide them.
    pub fn photos(&self) -> impl Iterator<Item = &(Rect, ImageKey)> {
        self.images.iter().filter(|(area, _)| self.clear_of_popup(*area))
    }

    /// The product links to make: those clear of the popup (a link under it would wrap the
    /// popup's own text).
    pub fn links(&self) -> impl Iterator<Item = &(Rect, String)> {
        self.links.iter().filter(|(area, _)| self.clear_of_popup(*area))
    }

    fn clear_of_popup(&self, area: Rect) -> bool {
        self.popup.is_none_or(|p| !p.intersects(area))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_photo_is_drawn_over_a_popup() {
        let key = |id| ImageKey { id, cols: 10, rows: 5 };
        let mut o = Overlays {
            images: vec![(Rect::new(40, 2, 20, 10), key(1)), (Rect::new(40, 30, 10, 5), key(2))],
            ..Overlays::default()
        };
        assert_eq!(o.photos().count(), 2, "no popup: every photo");
        o.popup = Some(Rect::new(10, 1, 60, 20));
        let ids: Vec<i64> = o.photos().map(|(_, k)| k.id).collect();
        assert_eq!(
            ids,
            vec![2],
            "the photo under the popup is left out, the one below it stays"
        );
        o.links = vec![(Rect::new(12, 5, 30, 1), "https://shop.example/a".into())];
        assert_eq!(
            o.links().count(),
            0,
            "a link under the popup would wrap the popup's text"
        );
    }
}
