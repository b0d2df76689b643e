//! The precision curve as an SVG a person would rather look at than read.

use plotters::prelude::*;
use std::path::Path;

use super::retrieval::Report;
use crate::{Error, Result};

/// Draws precision@k against k for every method of `report` into an SVG file.
pub fn precision_curve(report: &Report, path: &Path) -> Result<()> {
    let err = |e: String| Error::Invalid(format!("{}: cannot draw plot: {e}", path.display()));
    let max_k = report
        .methods
        .iter()
        .map(|m| m.precision_curve.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let title = format!(
        "precision@k by {:?} ({} held-out queries, gallery {})",
        report.level, report.queries, report.gallery
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(1f64..max_k as f64, 0f64..1f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_labels(max_k.min(20))
        .x_label_formatter(&|k| format!("{k:.0}"))
        .x_desc("k (results shown)")
        .y_desc("precision@k")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let colours = [
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
    ];
    for (i, m) in report.methods.iter().enumerate() {
        let c = colours[i % colours.len()];
        let pts: Vec<(f64, f64)> = m
            .precision_curve
            .iter()
            .enumerate()
            .map(|(k, p)| ((k + 1) as f64, *p))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(3)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{} (P@{} {:.3})", m.method, report.k, m.metrics.precision))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
