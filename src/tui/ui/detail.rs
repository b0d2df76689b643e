//! The detail pane: the product in focus with its photo, metadata, score and why it is there.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::canvas::{Canvas, Overlays, short};
use crate::tui::app::{App, Focus};
use crate::tui::jobs::ImageKey;
use crate::tui::layout::Areas;
use lookbook::recommend::Reason;
use lookbook::text::sanitize;

/// One line explaining a ranked result (the wording lives with [`Reason`]).
pub fn reason_text(app: &App, r: &Reason) -> String {
    r.describe(|id| {
        app.product(id)
            .map(|p| short(&p.name, 36))
            .unwrap_or_else(|| id.to_string())
    })
}

/// A product's photo in `area`: queued for drawing when encoded, else a note.
pub fn draw_image(f: &mut Canvas, app: &App, id: i64, area: Rect, overlays: &mut Overlays) {
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
        overlays.images.push((area, key));
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

/// The selected product, large: photo, metadata, score and reason.
pub fn draw(f: &mut Canvas, app: &App, l: &Areas, overlays: &mut Overlays) {
    let block = Block::bordered().title(" Detail ");
    f.render_widget(block, l.detail);
    let Some(id) = app.current_id() else { return };
    let Some(p) = app.product(id) else { return };
    draw_image(f, app, id, l.image, overlays);
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
    ];
    lines.extend(shop_lines(app, p));
    lines.push(Line::from(""));
    match app.opinion(id) {
        Some(true) => lines.push(Line::from(Span::styled("♥ you like this", Style::new().fg(Color::Red)))),
        Some(false) => lines.push(Line::from(Span::styled(
            "✗ you dislike this",
            Style::new().fg(Color::DarkGray),
        ))),
        None => {}
    }
    let ranked = if app.focus == Focus::Strip {
        app.rankings.strip.get(app.strip.sel)
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
        if let Some(i) = &r.interest {
            lines.push(Line::from(Span::styled(
                format!("for your interest in {}", short(i, 40)),
                Style::new().fg(Color::Cyan),
            )));
        }
    }
    if app.focus != Focus::Strip && !app.rankings.together.is_empty() {
        let names: Vec<String> = app
            .rankings
            .together
            .iter()
            .filter_map(|t| app.product(t.id))
            .map(|p| short(&p.name, 30))
            .collect();
        lines.push(Line::from(Span::styled(
            format!("bought with: {}", names.join(" · ")),
            Style::new().fg(Color::Magenta),
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Enter look-alikes · l like · d dislike · ? help",
        Style::new().fg(Color::DarkGray),
    )));
    // The product page gets the info area's last row to itself, so the hyperlink pass knows
    // exactly which cells hold it.
    let mut text_area = l.info;
    if !p.link.is_empty() && l.info.height >= 3 {
        text_area.height -= 1;
        let row = Rect {
            y: l.info.y + l.info.height - 1,
            height: 1,
            ..l.info
        };
        let shown = short(&p.link, row.width as usize);
        f.render_widget(
            Paragraph::new(Span::styled(shown, Style::new().fg(Color::Blue).underlined())),
            row,
        );
        if let Some(url) = lookbook::text::link_target(&p.link) {
            overlays.links.push((row, url.to_string()));
        }
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), text_area);
}

/// What a shop's catalogue adds: brand and price, sizes in stock, the other colours of the
/// group, the product page. Nothing for a catalogue without them (the Kaggle set).
fn shop_lines(app: &App, p: &lookbook::catalog::Product) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let price = p.price.map(|x| {
        let was = p
            .compare_at
            .filter(|c| *c > x)
            .map(|c| format!(" (was {c:.2})"))
            .unwrap_or_default();
        format!("{x:.2} {}{was}", p.currency).trim().to_string()
    });
    let head: Vec<String> = [Some(p.brand.clone()).filter(|b| !b.is_empty()), price]
        .into_iter()
        .flatten()
        .collect();
    if !head.is_empty() {
        out.push(Line::from(Span::styled(
            sanitize(&head.join(" · ")).into_owned(),
            Style::new().fg(Color::Yellow),
        )));
    }
    if !p.variants.is_empty() {
        let sizes = p.sizes_in_stock();
        let text = if sizes.is_empty() {
            "sizes: none in stock".to_string()
        } else {
            format!("sizes in stock: {}", sizes.join(", "))
        };
        out.push(Line::from(short(&text, 200)));
    } else if p.availability == "out_of_stock" {
        out.push(Line::from(Span::styled(
            "out of stock",
            Style::new().fg(Color::DarkGray),
        )));
    }
    let others: Vec<String> = app
        .products
        .colourways(p)
        .filter(|o| o.id != p.id && !o.colour.is_empty())
        .map(|o| o.colour.clone())
        .collect();
    if !others.is_empty() {
        out.push(Line::from(short(&format!("also in {}", others.join(", ")), 200)));
    }
    out
}
