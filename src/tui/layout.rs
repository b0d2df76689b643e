//! Where everything goes on the screen: pure geometry from the terminal's size (and a few counts),
//! shared by drawing (`ui`) and mouse hit-tests (`app`), so a click lands on what is drawn
//! under it. No app state, no widgets.

use ratatui::layout::{Constraint, Direction, Layout, Margin, Rect};

/// Look-alikes in the strip under the detail pane.
pub const STRIP_K: usize = 8;

/// A bordered pane's inside: one cell of border on every side.
const BORDER: Margin = Margin {
    horizontal: 1,
    vertical: 1,
};

/// Smallest terminal the layout works in.
pub const MIN_SIZE: (u16, u16) = (50, 14);

/// Where each pane goes for a terminal size (shared by drawing and mouse hit-tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Areas {
    /// Tab bar.
    pub tabs: Rect,
    /// Product list (with its border).
    pub list: Rect,
    /// Detail pane (with its border).
    pub detail: Rect,
    /// The large image inside the detail pane.
    pub image: Rect,
    /// Metadata text inside the detail pane.
    pub info: Rect,
    /// Look-alike strip (with its border).
    pub strip: Rect,
    /// Two status lines.
    pub status: Rect,
}

/// Computes the layout.
pub fn layout(area: Rect) -> Areas {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(1), Constraint::Min(4), Constraint::Length(2)])
        .split(area);
    let body = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(38), Constraint::Percentage(62)])
        .split(rows[1]);
    let strip_h = (body[1].height * 2 / 5).clamp(6.min(body[1].height), 14);
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(strip_h)])
        .split(body[1]);
    let inner = right[0].inner(BORDER);
    // Photos are 3:4 portraits and a cell is about twice as tall as wide.
    let img_w = (inner.height as u32 * 3 / 2).min(inner.width as u32 / 2) as u16;
    let image = Rect { width: img_w, ..inner };
    let info = Rect {
        x: inner.x + img_w + u16::from(img_w > 0),
        width: inner.width.saturating_sub(img_w + 1),
        ..inner
    };
    Areas {
        tabs: rows[0],
        list: body[0],
        detail: right[0],
        image,
        info,
        strip: right[1],
        status: rows[2],
    }
}

/// The cells of the look-alike strip.
pub fn strip_cells(strip: Rect, n: usize) -> Vec<Rect> {
    let inner = strip.inner(BORDER);
    if inner.width < 8 || inner.height < 3 || n == 0 {
        return Vec::new();
    }
    let w = (inner.width / STRIP_K as u16).max(12);
    let fit = (inner.width / w) as usize;
    (0..n.min(fit))
        .map(|i| Rect {
            x: inner.x + i as u16 * w,
            y: inner.y,
            width: w - 1,
            height: inner.height,
        })
        .collect()
}

/// The thumbnail part of a strip cell (the rest holds the caption).
pub fn thumb_area(cell: Rect) -> Rect {
    Rect {
        height: cell.height.saturating_sub(2),
        ..cell
    }
}

/// Where each tab title sits in the tab bar: one space each side, a divider between. Drawing
/// and mouse hit-testing both use this, so a click lands on the tab it is drawn over.
pub fn tab_cells(area: Rect, titles: &[String]) -> Vec<Rect> {
    let mut x = area.x;
    let end = area.x + area.width;
    titles
        .iter()
        .map(|t| {
            let w = (t.chars().count() as u16 + 2).min(end.saturating_sub(x));
            let r = Rect {
                x,
                y: area.y,
                width: w,
                height: 1.min(area.height),
            };
            x = (x + w + 1).min(end);
            r
        })
        .collect()
}

/// A `w` x `h` box in the middle of `area` (popups).
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
