//! Charts as SVG, drawn on the server: no script, nothing loaded from
//! elsewhere (the pages' content security policy allows neither), and they
//! scale to the width of a phone through their `viewBox`.

use maud::{Markup, html};

/// One series of bars: a name for the legend, a colour, a value per category.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<Option<f64>>,
}

/// How values map to heights.
#[derive(Clone, Copy)]
pub enum Scale {
    /// From 0 to the largest value (or 1).
    Linear,
    /// From 0 to 1, labelled as percentages.
    Share,
    /// Durations in seconds on a logarithmic axis, from a minute to a week.
    Duration,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 46.0;

/// Durations' axis ticks: seconds and labels.
const DURATION_TICKS: [(f64, &str); 6] =
    [(60.0, "1m"), (900.0, "15m"), (3600.0, "1h"), (28_800.0, "8h"), (86_400.0, "1d"), (604_800.0, "7d")];

impl Scale {
    /// Where `v` sits, from 0 (the axis) to 1 (the top).
    fn at(self, v: f64, max: f64) -> f64 {
        match self {
            Scale::Linear => (v / max.max(1.0)).clamp(0.0, 1.0),
            Scale::Share => v.clamp(0.0, 1.0),
            Scale::Duration => {
                let (lo, hi) = (60f64.ln(), 604_800f64.ln());
                ((v.max(1.0).ln() - lo) / (hi - lo)).clamp(0.02, 1.0)
            }
        }
    }

    fn ticks(self, max: f64) -> Vec<(f64, String)> {
        match self {
            Scale::Linear => {
                let max = max.max(1.0);
                let step = nice_step(max / 4.0);
                (0..=4).map(|i| i as f64 * step).filter(|t| *t <= max * 1.0001).map(|t| (t, count(t))).collect()
            }
            Scale::Share => (0..=4).map(|i| (f64::from(i) * 0.25, format!("{}%", i * 25))).collect(),
            Scale::Duration => DURATION_TICKS.iter().map(|(s, l)| (*s, (*l).to_owned())).collect(),
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

fn count(v: f64) -> String {
    if v >= 10_000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") }
}

/// A bar chart: a group of bars per category (stacked when `stacked`), with
/// axis, legend and a title read by screen readers.
pub fn bars(title: &str, categories: &[String], series: &[Series<'_>], scale: Scale, stacked: bool) -> Markup {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let n = categories.len().max(1) as f64;
    let slot = plot_w / n;
    let per = if stacked { 1.0 } else { series.len().max(1) as f64 };
    let bar_w = (slot * 0.8 / per).max(1.0);
    let totals: Vec<f64> = (0..categories.len())
        .map(|i| {
            let vals = series.iter().filter_map(|s| s.values.get(i).copied().flatten());
            if stacked { vals.sum() } else { vals.fold(0.0, f64::max) }
        })
        .collect();
    let max = totals.iter().copied().fold(0.0, f64::max);
    let y = |v: f64| TOP + plot_h * (1.0 - scale.at(v, max));
    // Label every category when they fit, else every few.
    let every = (categories.len() / 8).max(1);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(title)
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @for (t, label) in scale.ticks(max) {
                line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(fmt(y(t))) y2=(fmt(y(t))) stroke="#e3e3e3" {}
                text x=(LEFT - 6.0) y=(fmt(y(t) + 4.0)) text-anchor="end" font-size="11" fill="#555" { (label) }
            }
            @for (i, category) in categories.iter().enumerate() {
                @let x0 = LEFT + slot * i as f64 + slot * 0.1;
                @let mut base = 0.0;
                @for (k, s) in series.iter().enumerate() {
                    @if let Some(v) = s.values.get(i).copied().flatten() {
                        @let (x, bottom) = if stacked { (x0, base) } else { (x0 + bar_w * k as f64, 0.0) };
                        @let top = if stacked { base + v } else { v };
                        @let (y_top, y_bottom) = (y(top), if bottom > 0.0 { y(bottom) } else { TOP + plot_h });
                        rect x=(fmt(x)) y=(fmt(y_top)) width=(fmt(bar_w)) height=(fmt((y_bottom - y_top).max(0.0)))
                            fill=(s.color) {
                            title { (category) " · " (s.name) ": " (value_label(scale, v)) }
                        }
                        @if stacked { (set(&mut base, top)) }
                    }
                }
                @if i % every == 0 {
                    text x=(fmt(x0 + slot * 0.4)) y=(fmt(HEIGHT - BOTTOM + 14.0)) text-anchor="middle" font-size="10"
                        fill="#555" { (short(category)) }
                }
            }
            line x1=(LEFT) x2=(WIDTH - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) stroke="#999" {}
            @for (k, s) in series.iter().enumerate() {
                @let lx = LEFT + 150.0 * k as f64;
                rect x=(fmt(lx)) y=(HEIGHT - 18.0) width="10" height="10" fill=(s.color) {}
                text x=(fmt(lx + 14.0)) y=(HEIGHT - 9.0) font-size="11" fill="#333" { (s.name) }
            }
        }
    }
}

/// Horizontal bars, one per row, each labelled with its value and a note.
pub fn rows(title: &str, rows: &[(String, f64, String)], color: &str) -> Markup {
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1.0);
    let row_h = 30.0;
    let height = row_h * rows.len().max(1) as f64 + 8.0;
    let (label_w, bar_max) = (170.0, WIDTH - 170.0 - 130.0);
    html! {
        svg.chart viewBox={ "0 0 " (WIDTH) " " (fmt(height)) } role="img" aria-label=(title)
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @for (i, (label, value, note)) in rows.iter().enumerate() {
                @let y = 4.0 + row_h * i as f64;
                @let w = (bar_max * value / max).max(1.0);
                text x="0" y=(fmt(y + 19.0)) font-size="13" fill="#333" { (label) }
                rect x=(label_w) y=(fmt(y + 4.0)) width=(fmt(w)) height=(row_h - 8.0) fill=(color) {}
                text x=(fmt(label_w + w + 6.0)) y=(fmt(y + 19.0)) font-size="12" fill="#333" { (count(*value)) " " (note) }
            }
        }
    }
}

/// Sets `slot` while rendering (maud's `@let` cannot reassign).
fn set(slot: &mut f64, value: f64) -> Markup {
    *slot = value;
    html! {}
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// A week's Monday as `03-02`; anything else as it is, cut to 10 characters.
fn short(category: &str) -> String {
    match category.get(5..) {
        Some(rest) if category.len() == 10 && category.as_bytes()[4] == b'-' => rest.to_owned(),
        _ => category.chars().take(10).collect(),
    }
}

/// A value as its axis reads it.
pub fn value_label(scale: Scale, v: f64) -> String {
    match scale {
        Scale::Linear => count(v),
        Scale::Share => format!("{:.0}%", v * 100.0),
        Scale::Duration => duration(v as i64),
    }
}

/// Seconds as people say them: 45s, 12m, 3h, 2d.
pub fn duration(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_draw_one_rect_per_value_and_escape_their_labels() {
        let series = [
            Series { name: "met", color: "#2e7d32", values: vec![Some(3.0), None] },
            Series { name: "breached", color: "#c62828", values: vec![Some(1.0), Some(2.0)] },
        ];
        let svg = bars("SLA", &["2026-03-02".into(), "<b>".into()], &series, Scale::Linear, true).into_string();
        assert_eq!(svg.matches("<rect").count(), 3 + 2, "three values and two legend keys");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
        assert!(svg.contains(">03-02<"), "a week is labelled by its Monday's month and day");
    }

    #[test]
    fn scales_map_values_into_the_plot() {
        assert_eq!(Scale::Share.at(2.0, 0.0), 1.0);
        assert_eq!(Scale::Linear.at(5.0, 10.0), 0.5);
        assert!((Scale::Duration.at(604_800.0, 0.0) - 1.0).abs() < 1e-9);
        assert!(Scale::Duration.at(3600.0, 0.0) > Scale::Duration.at(900.0, 0.0));
        assert_eq!(nice_step(23.0), 50.0);
        assert_eq!(duration(5400), "1h");
    }
}
