//! Drawing: a pure function of the app state. No I/O, no computation beyond formatting.

use ratatui::Frame;
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Alignment, Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Gauge, Paragraph, StatefulWidget, Widget, Wrap};
use ratatui_image::Image;

use super::app::{App, Mode, STRIP_K, Tab};
use super::components::{detail, prompt};
use super::jobs::ImageKey;
use lookbook::text::{is_unsafe, sanitize, truncate};

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
    let inner = Block::bordered().inner(right[0]);
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
    let inner = Block::bordered().inner(strip);
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
    fn buffer_mut(&mut self) -> &mut Buffer {
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

/// Draws the whole app into a terminal's frame.
pub fn draw(f: &mut Frame, app: &App) {
    draw_into(f.buffer_mut(), app);
}

/// Draws the whole app into a buffer (its area is the screen).
pub fn draw_into(buf: &mut Buffer, app: &App) {
    let f = &mut Canvas(buf);
    let mut overlays = Overlays::default();
    draw_all(f, app, &mut overlays);
    // The last line of defence: whatever path text took into the frame, a cell holding a
    // character the terminal would act on (an escape, a bidi override) shows U+FFFD instead.
    for cell in f.buffer_mut().content.iter_mut() {
        if cell.symbol().chars().any(is_unsafe) {
            cell.set_symbol("\u{fffd}");
        }
    }
    // Photos go in after that pass: kitty, sixel and iTerm2 images are escape sequences by
    // design, encoded by ratatui-image from pixels, never from catalogue text.
    for (area, key) in overlays.images {
        if let Some(p) = app.pictures.ready.peek(&key) {
            f.render_widget(Image::new(p), area);
        }
    }
    for (area, url) in overlays.links {
        hyperlink(f.buffer_mut(), area, &url);
    }
}

/// Makes the text already drawn in `area`'s first row a hyperlink (OSC 8) to `url`, which
/// the caller checked with [`lookbook::text::link_target`]. The first cell carries the whole
/// run (open, text, close) and is marked as wide as the run, so the diff sends it as one piece
/// and skips the cells it covers. Terminals without OSC 8 show the text alone.
fn hyperlink(buf: &mut Buffer, area: Rect, url: &str) {
    let area = area.intersection(buf.area);
    if area.is_empty() || lookbook::text::link_target(url).is_none() {
        return;
    }
    let y = area.y;
    // Read the row back as the terminal will show it: a wide character's second cell is
    // covered by the first, so it is stepped over, not read.
    let mut text = String::new();
    let mut x = area.x;
    while x < area.x + area.width {
        let Some(cell) = buf.cell((x, y)) else { break };
        text.push_str(cell.symbol());
        x += (lookbook::text::width(cell.symbol()) as u16).max(1);
    }
    let text = text.trim_end();
    let width = (lookbook::text::width(text) as u16).min(area.width);
    let Some(width) = std::num::NonZeroU16::new(width) else {
        return;
    };
    if let Some(cell) = buf.cell_mut((area.x, y)) {
        cell.set_symbol(&format!("\x1b]8;;{url}\x1b\\{text}\x1b]8;;\x1b\\"));
        cell.set_diff_option(CellDiffOption::ForcedWidth(width));
    }
}

fn draw_all(f: &mut Canvas, app: &App, overlays: &mut Overlays) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        let msg = format!(
            "Terminal too small: {}x{}. lookbook needs {}x{}; q quits.",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        f.render_widget(
            Paragraph::new(msg)
                .wrap(Wrap { trim: true })
                .alignment(Alignment::Center),
            area,
        );
        return;
    }
    let l = layout(area);
    draw_tabs(f, app, l.tabs);
    app.list.draw(f, app, l.list);
    detail::draw(f, app, &l, overlays);
    app.strip.draw(f, app, l.strip, overlays);
    draw_status(f, app, l.status);
    match &app.mode {
        Mode::Help => app.help.draw(f, area, app.remote),
        Mode::Filters(p) => p.draw(f, area),
        _ => {}
    }
}

/// The tab titles as drawn, with their row counts ("Browse 2115").
pub fn tab_titles(app: &App) -> Vec<String> {
    Tab::ALL
        .iter()
        .map(|t| format!("{} {}", t.title(), app.row_count(*t)))
        .collect()
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

fn draw_tabs(f: &mut Canvas, app: &App, area: Rect) {
    let titles = tab_titles(app);
    let sel = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let cells = tab_cells(area, &titles);
    for (i, (title, cell)) in titles.iter().zip(&cells).enumerate() {
        let style = if i == sel {
            Style::new()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        f.render_widget(Paragraph::new(format!(" {title} ")).style(style), *cell);
        if i + 1 < cells.len() && cell.right() < area.right() {
            f.render_widget(
                Paragraph::new("│"),
                Rect {
                    x: cell.right(),
                    width: 1,
                    ..*cell
                },
            );
        }
    }
    let right = format!("lookbook · {} ", app.user.1);
    let used = cells.last().map_or(area.x, |c| c.right());
    let cols = Layout::horizontal([Constraint::Min(10), Constraint::Length(right.chars().count() as u16)]).split(area);
    if cols[1].x < used {
        return; // no room for the user name beside the tabs
    }
    f.render_widget(
        Paragraph::new(right).alignment(Alignment::Right).fg(Color::Cyan),
        cols[1],
    );
}

fn draw_status(f: &mut Canvas, app: &App, area: Rect) {
    let rows = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).split(area);
    let likes = app.feedback.iter().filter(|x| x.is_like()).count();
    let dislikes = app.feedback.len() - likes;
    let settings = format!(
        " {} ♥{likes} ✗{dislikes} │ α {:.1} │ diversity {:.2} │ {} ",
        app.user.1, app.alpha, app.diversity, app.model_name
    );
    match &app.work {
        Some(w) if w.total > 0 => {
            let cols = Layout::horizontal([Constraint::Min(10), Constraint::Length(34)]).split(rows[0]);
            f.render_widget(Paragraph::new(settings).bg(Color::Blue).fg(Color::White), cols[0]);
            let ratio = (w.done as f64 / w.total as f64).clamp(0.0, 1.0);
            let gauge = Gauge::default()
                .ratio(ratio)
                .label(format!("{} {}/{}", w.label, w.done, w.total))
                .gauge_style(Style::new().fg(Color::Green).bg(Color::Black));
            f.render_widget(gauge, cols[1]);
        }
        Some(w) => f.render_widget(
            Paragraph::new(format!("{settings}│ {}…", w.label))
                .bg(Color::Blue)
                .fg(Color::White),
            rows[0],
        ),
        None => f.render_widget(Paragraph::new(settings).bg(Color::Blue).fg(Color::White), rows[0]),
    }
    let line = prompt::line(&app.mode, &app.search).unwrap_or_else(|| Line::from(Span::raw(app.status.clone())));
    f.render_widget(Paragraph::new(line), rows[1]);
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
