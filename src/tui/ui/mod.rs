//! Drawing: a pure function of the app state ([`App`], read only). No I/O, no computation beyond
//! formatting; where things go comes from [`crate::tui::layout`]. Each component's drawing has a
//! file here (`list`, `detail`, `strip`, `filters`, `help`, `prompt`); its state lives in
//! [`crate::tui::app`], which never imports this module.

mod canvas;
pub mod detail;
pub mod filters;
pub mod help;
pub mod list;
pub mod prompt;
pub mod strip;

use ratatui::Frame;
use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};
use ratatui_image::Image;

use super::app::{App, Mode, Tab};
use super::layout::{MIN_SIZE, layout, tab_cells};
pub use canvas::{Canvas, Overlays};
use lookbook::text::is_unsafe;

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
    for (area, key) in overlays.photos() {
        if let Some(p) = app.pictures.ready.peek(key) {
            f.render_widget(Image::new(p), *area);
        }
    }
    for (area, url) in overlays.links() {
        hyperlink(f.buffer_mut(), *area, url);
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
    list::draw(f, app, l.list);
    detail::draw(f, app, &l, overlays);
    strip::draw(f, app, l.strip, overlays);
    draw_status(f, app, l.status);
    match &app.mode {
        Mode::Help => overlays.popup = Some(help::draw(&app.help, f, area, app.remote)),
        Mode::Filters(p) => overlays.popup = Some(filters::draw(p, f, area)),
        _ => {}
    }
}

fn draw_tabs(f: &mut Canvas, app: &App, area: Rect) {
    let titles = app.tab_titles();
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
