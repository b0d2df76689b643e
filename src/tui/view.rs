//! Drawing: a pure function of the app state. No I/O, no computation beyond formatting.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, BorderType, Borders, Cell, Clear, Gauge, List, ListItem, ListState, Paragraph, Row, StatefulWidget, Table,
    Widget, Wrap,
};
use ratatui_image::Image;

use super::app::{Anchor, App, EngineState, Focus, Mode, PromptKind, STRIP_K, Tab};
use super::jobs::ImageKey;
use super::keys;
use lookbook::recommend::Reason;
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
fn short(s: &str, max: usize) -> String {
    truncate(&sanitize(s), max)
}

/// Photos to draw once the text is in place: where, and which encoded image.
type Pictures = Vec<(Rect, ImageKey)>;

/// Where the view draws: a terminal frame's buffer, or a server session's own (see
/// `serve::session`, which keeps one buffer between frames where a `Terminal` keeps two).
struct Canvas<'a>(&'a mut Buffer);

impl Canvas<'_> {
    fn area(&self) -> Rect {
        self.0.area
    }
    fn buffer_mut(&mut self) -> &mut Buffer {
        self.0
    }
    fn render_widget<W: Widget>(&mut self, widget: W, area: Rect) {
        widget.render(area, self.0);
    }
    fn render_stateful_widget<W: StatefulWidget>(&mut self, widget: W, area: Rect, state: &mut W::State) {
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
    let mut pictures = Pictures::new();
    draw_all(f, app, &mut pictures);
    // The last line of defence: whatever path text took into the frame, a cell holding a
    // character the terminal would act on (an escape, a bidi override) shows U+FFFD instead.
    for cell in f.buffer_mut().content.iter_mut() {
        if cell.symbol().chars().any(is_unsafe) {
            cell.set_symbol("\u{fffd}");
        }
    }
    // Photos go in after that pass: kitty, sixel and iTerm2 images are escape sequences by
    // design, encoded by ratatui-image from pixels, never from catalogue text.
    for (area, key) in pictures {
        if let Some(p) = app.pictures.ready.peek(&key) {
            f.render_widget(Image::new(p), area);
        }
    }
}

fn draw_all(f: &mut Canvas, app: &App, pictures: &mut Pictures) {
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
    draw_list(f, app, l.list);
    draw_detail(f, app, &l, pictures);
    draw_strip(f, app, l.strip, pictures);
    draw_status(f, app, l.status);
    match &app.mode {
        Mode::Help => draw_help(f, area, app.remote),
        Mode::Filters(p) => draw_filters(f, p, area),
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

fn marker(app: &App, id: i64) -> Span<'static> {
    match app.opinion(id) {
        Some(true) => Span::styled("♥ ", Style::new().fg(Color::Red)),
        Some(false) => Span::styled("✗ ", Style::new().fg(Color::DarkGray)),
        None => Span::raw("  "),
    }
}

fn list_title(app: &App) -> String {
    let n = app.row_count(app.tab);
    match app.tab {
        Tab::Browse => {
            let mut t = format!(" Catalogue · {n} of {} ", app.products.len());
            if !app.search.is_empty() {
                t.push_str(&format!("· \"{}\" ", app.search));
            }
            for (k, v) in [
                ("", &app.filter.category),
                ("", &app.filter.gender),
                ("", &app.filter.colour),
            ] {
                if let Some(v) = v {
                    t.push_str(&format!("· {k}{v} "));
                }
            }
            t
        }
        Tab::Similar => match &app.anchor {
            Some(Anchor::Item(id)) => {
                format!(
                    " Looks like {} · α {:.1} ",
                    app.product(*id).map(|p| short(&p.name, 28)).unwrap_or_default(),
                    app.alpha
                )
            }
            Some(Anchor::Photo(p, _)) => format!(
                " Looks like {} · α {:.1} ",
                short(&p.display().to_string(), 28),
                app.alpha
            ),
            None => " Similar: press Enter on a product ".into(),
        },
        Tab::ForYou => {
            let likes = app.feedback.iter().filter(|f| f.is_like()).count();
            if likes == 0 {
                " For you · starter picks (like something!) ".into()
            } else {
                format!(" For you · from {likes} like{} ", if likes == 1 { "" } else { "s" })
            }
        }
        Tab::Liked => format!(" Liked and disliked · {n} "),
    }
}

fn draw_list(f: &mut Canvas, app: &App, area: Rect) {
    let focused = app.focus == Focus::List && matches!(app.mode, Mode::Normal | Mode::Search);
    let block = Block::bordered()
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .title(list_title(app))
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        });
    let inner = block.inner(area);
    f.render_widget(block, area);
    let n = app.row_count(app.tab);
    if n == 0 {
        let msg = match (app.tab, &app.engine_state) {
            (Tab::Browse, _) => "No products match. Esc clears the search and filters.",
            (_, EngineState::Loading) => "Loading vectors…",
            (_, EngineState::Missing(_)) => "No image vectors yet. Press e to embed the catalogue.",
            (Tab::Similar, _) => "Select a product and press Enter to see look-alikes, or o for a photo.",
            (Tab::Liked, _) => "Nothing liked yet. Press l on products you like, d on those you don't.",
            _ => "Nothing to show with these filters.",
        };
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }).fg(Color::DarkGray), inner);
        return;
    }
    let visible = inner.height as usize;
    let start = app.offset_row().min(n.saturating_sub(1));
    let end = (start + visible).min(n);
    let width = inner.width as usize;
    let items: Vec<ListItem> = (start..end)
        .filter_map(|row| {
            let id = app.row_id(app.tab, row)?;
            let p = app.product(id)?;
            let mut spans = vec![marker(app, id)];
            let score = app.ranked(app.tab, row).map(|r| format!("{:.2} ", r.score));
            if let Some(s) = &score {
                spans.push(Span::styled(s.clone(), Style::new().fg(Color::Yellow)));
            }
            let used = 2 + score.as_ref().map(|s| s.len()).unwrap_or(0);
            let ty = format!(" {}", p.article_type);
            let name_w = width.saturating_sub(used + ty.chars().count().min(16));
            spans.push(Span::raw(short(&p.name, name_w.max(4))));
            spans.push(Span::styled(short(&ty, 16), Style::new().fg(Color::DarkGray)));
            Some(ListItem::new(Line::from(spans)))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(app.selected_row().saturating_sub(start)));
    let list = List::new(items).highlight_style(Style::new().bg(Color::Blue).add_modifier(Modifier::BOLD));
    f.render_stateful_widget(list, inner, &mut state);
}

/// One line explaining a ranked result (the wording lives with [`Reason`]).
pub fn reason_text(app: &App, r: &Reason) -> String {
    r.describe(|id| {
        app.product(id)
            .map(|p| short(&p.name, 36))
            .unwrap_or_else(|| id.to_string())
    })
}

fn draw_image(f: &mut Canvas, app: &App, id: i64, area: Rect, pictures: &mut Pictures) {
    if area.width < 2 || area.height < 2 {
        return;
    }
    let key = ImageKey {
        id,
        cols: area.width,
        rows: area.height,
    };
    if !app.images_on {
        return;
    }
    if app.pictures.ready.contains(&key) {
        pictures.push((area, key));
    } else if let Some(e) = app.pictures.errors.get(&key) {
        f.render_widget(
            Paragraph::new(format!("no image: {e}"))
                .wrap(Wrap { trim: true })
                .fg(Color::Red),
            area,
        );
    } else {
        f.render_widget(
            Paragraph::new("loading…")
                .fg(Color::DarkGray)
                .alignment(Alignment::Center),
            area,
        );
    }
}

fn draw_detail(f: &mut Canvas, app: &App, l: &super::view::Areas, pictures: &mut Pictures) {
    let block = Block::bordered().title(" Detail ");
    f.render_widget(block, l.detail);
    let Some(id) = app.current_id() else { return };
    let Some(p) = app.product(id) else { return };
    draw_image(f, app, id, l.image, pictures);
    let mut lines = vec![
        Line::from(Span::styled(
            sanitize(&p.name).into_owned(),
            Style::new().add_modifier(Modifier::BOLD),
        )),
        Line::from(vec![Span::styled(
            format!("#{}", p.id),
            Style::new().fg(Color::DarkGray),
        )]),
        Line::from(
            sanitize(&format!(
                "{} › {} › {}",
                p.master_category, p.sub_category, p.article_type
            ))
            .into_owned(),
        ),
        Line::from(
            [
                p.gender.as_str(),
                p.colour.as_str(),
                p.season.as_str(),
                &p.year.map(|y| y.to_string()).unwrap_or_default(),
                p.usage.as_str(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .map(|s| sanitize(s).into_owned())
            .collect::<Vec<_>>()
            .join(" · "),
        ),
        Line::from(""),
    ];
    match app.opinion(id) {
        Some(true) => lines.push(Line::from(Span::styled("♥ you like this", Style::new().fg(Color::Red)))),
        Some(false) => lines.push(Line::from(Span::styled(
            "✗ you dislike this",
            Style::new().fg(Color::DarkGray),
        ))),
        None => {}
    }
    let ranked = if app.focus == Focus::Strip {
        app.rankings.strip.get(app.strip_sel)
    } else {
        app.ranked(app.tab, app.selected_row())
    };
    if let Some(r) = ranked {
        lines.push(Line::from(vec![
            Span::raw("score "),
            Span::styled(format!("{:.3}", r.score), Style::new().fg(Color::Yellow)),
        ]));
        lines.push(Line::from(Span::styled(
            reason_text(app, &r.reason),
            Style::new().fg(Color::Green),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Enter look-alikes · l like · d dislike · ? help",
        Style::new().fg(Color::DarkGray),
    )));
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), l.info);
}

fn draw_strip(f: &mut Canvas, app: &App, area: Rect, pictures: &mut Pictures) {
    let focused = app.focus == Focus::Strip;
    let title = match app.list_id().and_then(|id| app.product(id)) {
        Some(p) => format!(" Looks like {} ", short(&p.name, 40)),
        None => " Looks like ".into(),
    };
    let block = Block::bordered()
        .title(title)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(if focused {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        });
    let inner = block.inner(area);
    f.render_widget(block, area);
    if app.rankings.strip.is_empty() {
        let msg = match app.engine_state {
            EngineState::Loading => "loading vectors…",
            // The first run embeds by itself: say so rather than ask for `e`.
            EngineState::Missing(_) if app.work.is_some() => {
                "embedding the photos; look-alikes appear when it finishes"
            }
            EngineState::Missing(_) => "no vectors yet: press e to embed",
            EngineState::Ready => "no look-alikes (no vector for this product, or filters exclude all)",
        };
        f.render_widget(Paragraph::new(msg).fg(Color::DarkGray), inner);
        return;
    }
    for (i, (r, cell)) in app
        .rankings
        .strip
        .iter()
        .zip(strip_cells(area, app.rankings.strip.len()))
        .enumerate()
    {
        draw_image(f, app, r.id, thumb_area(cell), pictures);
        let name = app
            .product(r.id)
            .map(|p| sanitize(&p.name).into_owned())
            .unwrap_or_default();
        let sel = focused && i == app.strip_sel;
        let style = if sel {
            Style::new().bg(Color::DarkGray).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        let caption = vec![
            Line::from(vec![
                marker(app, r.id),
                Span::styled(format!("{:.2}", r.score), Style::new().fg(Color::Yellow)),
            ]),
            Line::from(short(&name, cell.width as usize)),
        ];
        let cap = Rect {
            y: cell.y + cell.height.saturating_sub(2),
            height: 2.min(cell.height),
            ..cell
        };
        f.render_widget(Paragraph::new(caption).style(style), cap);
    }
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
    let line = match &app.mode {
        Mode::Search => Line::from(vec![
            Span::styled("/ ", Style::new().fg(Color::Cyan)),
            Span::raw(app.search.clone()),
            Span::raw("█"),
        ]),
        Mode::Prompt(kind, text) => {
            let label = match kind {
                PromptKind::User => "user (new names are created): ",
                PromptKind::Photo => "photo file: ",
            };
            Line::from(vec![
                Span::styled(label, Style::new().fg(Color::Cyan)),
                Span::raw(text.clone()),
                Span::raw("█"),
            ])
        }
        _ => Line::from(Span::raw(app.status.clone())),
    };
    f.render_widget(Paragraph::new(line), rows[1]);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn draw_help(f: &mut Canvas, area: Rect, remote: bool) {
    let mut rows: Vec<(String, &str)> = keys::available(remote).map(|b| (keys::key_names(b), b.help)).collect();
    rows.push((keys::MOUSE_HELP.0.to_string(), keys::MOUSE_HELP.1));
    let per_column = rows.len().div_ceil(2);
    let key_w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(8) as u16;
    let col_w = key_w + 1 + keys::HELP_WIDTH as u16;
    let r = centered(area, (2 * col_w + 4).min(area.width), per_column as u16 + 3);
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(" Keys · any key closes ")
        .border_type(BorderType::Rounded);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let halves = Layout::horizontal([Constraint::Length(col_w + 1), Constraint::Min(10)]).split(inner);
    for (half, chunk) in halves.iter().zip(rows.chunks(per_column)) {
        let lines: Vec<Row> = chunk
            .iter()
            .map(|(k, h)| Row::new(vec![Cell::from(k.clone()).fg(Color::Cyan), Cell::from(*h)]))
            .collect();
        f.render_widget(
            Table::new(lines, [Constraint::Length(key_w), Constraint::Min(10)]),
            *half,
        );
    }
}

fn draw_filters(f: &mut Canvas, p: &super::app::FilterPicker, area: Rect) {
    let r = centered(area, 90, area.height.saturating_sub(4).max(8));
    f.render_widget(Clear, r);
    let block = Block::bordered()
        .title(" Filters · Tab/←→ column · j/k choose · Enter apply · x clear · Esc cancel ")
        .border_type(BorderType::Rounded);
    let inner = block.inner(r);
    f.render_widget(block, r);
    let cols = Layout::horizontal([
        Constraint::Percentage(50),
        Constraint::Percentage(25),
        Constraint::Percentage(25),
    ])
    .split(inner);
    for (c, title) in ["Category", "Gender", "Colour"].iter().enumerate() {
        let focused = p.column == c;
        let items: Vec<ListItem> = p.choices[c]
            .iter()
            .map(|(label, level)| ListItem::new(format!("{}{label}", "  ".repeat(*level))))
            .collect();
        let mut state = ListState::default().with_selected(Some(p.rows[c]));
        let list = List::new(items)
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(*title)
                    .border_style(if focused {
                        Style::new().fg(Color::Cyan)
                    } else {
                        Style::new()
                    }),
            )
            .highlight_style(if focused {
                Style::new().bg(Color::Cyan).fg(Color::Black)
            } else {
                Style::new().add_modifier(Modifier::REVERSED)
            });
        f.render_stateful_widget(list, cols[c], &mut state);
    }
}
