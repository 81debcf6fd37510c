//! Inline SVG charts for the HTML reports: line charts and grouped bar
//! charts, with axes, ticks and a legend. Pure string building.

use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 58.0;

/// Colors of the series, in order.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One named series of values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Values (a line's y values, or one bar per category).
    pub values: Vec<f64>,
}

impl Series {
    /// A series.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Series {
            name: name.into(),
            values,
        }
    }
}

/// Escapes text for XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step for a span of `span` with about `count` ticks.
fn nice_step(span: f64, count: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / count;
    let magnitude = 10f64.powf(raw.log10().floor());
    let r = raw / magnitude;
    let nice = if r <= 1.0 {
        1.0
    } else if r <= 2.0 {
        2.0
    } else if r <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// A tick label: integers without decimals, small values with a few.
fn label(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn max_of(series: &[Series]) -> f64 {
    series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// Legend entries laid out in rows: `(row, x, series index)`.
fn legend_layout(names: &[&str]) -> Vec<(usize, f64, usize)> {
    let mut out = Vec::new();
    let (mut row, mut x) = (0, LEFT);
    for (i, name) in names.iter().enumerate() {
        let w = 24.0 + 7.0 * name.chars().count() as f64;
        if x + w > WIDTH - RIGHT && x > LEFT {
            row += 1;
            x = LEFT;
        }
        out.push((row, x, i));
        x += w;
    }
    out
}

/// Extra height for legend rows past the first.
fn legend_extra(names: &[&str]) -> f64 {
    legend_layout(names)
        .last()
        .map_or(0.0, |&(row, _, _)| row as f64 * 16.0)
}

fn frame(out: &mut String, title: &str, y_max: f64, y_label: &str, extra: f64) -> f64 {
    let step = nice_step(y_max, 5.0);
    let top = (y_max / step).ceil().max(1.0) * step;
    let height = HEIGHT + extra;
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        out,
        r#"<text x="{}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        LEFT,
        escape(title)
    );
    let plot_h = HEIGHT - TOP - BOTTOM;
    let mut v = 0.0;
    while v <= top + step / 2.0 {
        let y = TOP + plot_h - v / top * plot_h;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            label(v)
        );
        v += step;
    }
    let _ = write!(
        out,
        r#"<text transform="translate(14,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    top
}

fn legend(out: &mut String, names: &[&str]) {
    for (row, x, i) in legend_layout(names) {
        let y = HEIGHT - 10.0 + row as f64 * 16.0;
        let color = PALETTE[i % PALETTE.len()];
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 9.0,
            x + 14.0,
            escape(names[i])
        );
    }
}

/// A line chart of `series` over `x` (shared by every series).
pub fn lines(title: &str, x: &[f64], series: &[Series], x_label: &str, y_label: &str) -> String {
    lines_capped(title, x, series, x_label, y_label, None)
}

/// A line chart whose y axis stops at `cap` (values above are drawn at the
/// top edge), so that one runaway series does not flatten the others.
pub fn lines_capped(
    title: &str,
    x: &[f64],
    series: &[Series],
    x_label: &str,
    y_label: &str,
    cap: Option<f64>,
) -> String {
    let mut out = String::new();
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let y_max = cap.map_or_else(|| max_of(series), |c| max_of(series).min(c));
    let top = frame(&mut out, title, y_max, y_label, legend_extra(&names));
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_min = x.first().copied().unwrap_or(0.0);
    let x_max = x.last().copied().unwrap_or(1.0).max(x_min + 1e-9);
    let px = |v: f64| LEFT + (v - x_min) / (x_max - x_min) * plot_w;
    let py = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;
    let step = nice_step(x_max - x_min, 8.0);
    let mut t = (x_min / step).ceil() * step;
    while t <= x_max + step * 1e-6 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            px(t),
            TOP + plot_h + 14.0,
            label(t)
        );
        t += step;
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 30.0,
        escape(x_label)
    );
    for (i, s) in series.iter().enumerate() {
        let points: Vec<String> = x
            .iter()
            .zip(&s.values)
            .filter(|(_, v)| v.is_finite())
            .map(|(&xv, &yv)| format!("{:.1},{:.1}", px(xv), py(yv)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"/>"#,
            PALETTE[i % PALETTE.len()],
            points.join(" ")
        );
    }
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// A grouped bar chart: one group per category, one bar per series.
pub fn bars(title: &str, categories: &[String], series: &[Series], y_label: &str) -> String {
    let mut out = String::new();
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    let extra = if series.len() > 1 {
        legend_extra(&names)
    } else {
        0.0
    };
    let top = frame(&mut out, title, max_of(series), y_label, extra);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let groups = categories.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let gx = LEFT + c as f64 * group_w;
        for (i, s) in series.iter().enumerate() {
            let v = s.values.get(c).copied().unwrap_or(0.0);
            let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
            let h = (v / top).min(1.0) * plot_h;
            let _ = write!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"><title>{}: {}</title></rect>"#,
                gx + group_w * 0.1 + i as f64 * bar_w,
                TOP + plot_h - h,
                bar_w.max(1.0),
                PALETTE[i % PALETTE.len()],
                escape(&s.name),
                label(v)
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w / 2.0,
            TOP + plot_h + 14.0,
            escape(category)
        );
    }
    if series.len() > 1 {
        legend(&mut out, &names);
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
        assert_eq!(nice_step(0.3, 5.0), 0.1);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(label(0.5), "0.5");
        assert_eq!(label(0.125), "0.125");
        assert_eq!(label(2.0), "2");
        assert_eq!(label(2.5), "2.5");
        assert_eq!(label(20_000.0), "20k");
        assert_eq!(label(0.0), "0");
    }

    #[test]
    fn charts_are_well_formed_svg() {
        let s = [
            Series::new("a<b", vec![1.0, 3.0, 2.0]),
            Series::new("c", vec![0.0, f64::NAN, 5.0]),
        ];
        let l = lines("t & t", &[0.0, 1.0, 2.0], &s, "s", "n");
        assert!(l.starts_with("<svg") && l.ends_with("</svg>"));
        assert!(l.contains("a&lt;b") && l.contains("t &amp; t"));
        assert_eq!(l.matches("<polyline").count(), 2);
        let b = bars("b", &["x".into(), "y".into(), "z".into()], &s, "n");
        assert_eq!(b.matches("<rect").count(), 6 + 2, "six bars and two legend keys");
        assert!(!b.contains("NaN"));
        let many: Vec<Series> = (0..8)
            .map(|i| Series::new(format!("a long series name {i}"), vec![1.0]))
            .collect();
        let wrapped = lines_capped("w", &[0.0], &many, "x", "y", Some(0.5));
        assert!(
            wrapped.contains(r#"height="332""#) || wrapped.contains(r#"height="316""#),
            "legend wraps"
        );
    }
}
