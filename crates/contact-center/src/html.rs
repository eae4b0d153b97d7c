//! `--html FILE`: the report as one self-contained page, readable offline,
//! with SVG charts of each channel's backlog and consumer instances over
//! the day and of its latency distributions. The SVG is written by hand: a few polylines need
//! no plotting library.

use std::fmt::Write as _;

use crate::report::Report;
use crate::stages::Stages;

const COLORS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
];

/// One line of a chart.
#[derive(Debug)]
pub struct Series {
    /// Legend.
    pub name: String,
    /// Points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// A line chart as an SVG element. With `log_x` the x axis is logarithmic
/// (x must then be positive).
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> String {
    let (width, height, left, right, top, bottom) = (720.0, 340.0, 64.0, 170.0, 34.0, 46.0);
    let fx = |x: f64| if log_x { x.max(1e-9).log10() } else { x };
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0_f64);
    for &(x, y) in points {
        x0 = x0.min(fx(x));
        x1 = x1.max(fx(x));
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if log_x {
        (x0, x1) = (x0.floor(), x1.ceil().max(x0.floor() + 1.0));
    } else {
        x0 = x0.min(0.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y1 = nice(y1.max(1.0));
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let px = |x: f64| left + (fx(x) - x0) / (x1 - x0) * plot_w;
    let py = |y: f64| top + plot_h - y / y1 * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{left}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    // Axes, grid and ticks.
    for i in 0..=4 {
        let y = y1 * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{}" y1="{py}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            py(y) + 4.0,
            short(y),
            py = py(y)
        );
    }
    let ticks: Vec<f64> = if log_x {
        (x0 as i32..=x1 as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5)
            .map(|i| x0 + (x1 - x0) * f64::from(i) / 5.0)
            .collect()
    };
    for x in ticks {
        let _ = write!(
            svg,
            r##"<line x1="{px}" x2="{px}" y1="{top}" y2="{}" stroke="#eee"/><text x="{px}" y="{}" text-anchor="middle">{}</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            short(x),
            px = px(x)
        );
    }
    let _ = write!(
        svg,
        r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
        left + plot_w / 2.0,
        height - 8.0,
        escape(x_label),
        top + plot_h / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{}"/><rect x="{}" y="{}" width="12" height="3" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            path.join(" "),
            left + plot_w + 12.0,
            top + 10.0 + 18.0 * i as f64,
            left + plot_w + 30.0,
            top + 15.0 + 18.0 * i as f64,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A chart of one figure of each stage over the day.
fn timeline_chart(
    stages: &Stages,
    factor: f64,
    title: &str,
    y_label: &str,
    figure: impl Fn(&crate::stages::Sample, usize) -> f64,
) -> String {
    let timeline = stages.timeline.lock().unwrap();
    let series: Vec<Series> = stages
        .stages
        .iter()
        .enumerate()
        .map(|(i, stage)| Series {
            name: stage.spec.name.to_string(),
            points: timeline
                .iter()
                .map(|sample| (sample.at * factor / 3600.0, figure(sample, i)))
                .collect(),
        })
        .collect();
    line_chart(title, "simulated hours", y_label, &series, false)
}

/// The chart of each channel's backlog over the day.
pub fn depth_chart(stages: &Stages, factor: f64) -> String {
    timeline_chart(
        stages,
        factor,
        "Queue depth over the day",
        "messages waiting or held",
        |sample, i| sample.depths.get(i).copied().unwrap_or(0) as f64,
    )
}

/// The chart of the consumer instances each stage's scaler ran.
pub fn workers_chart(stages: &Stages, factor: f64) -> String {
    timeline_chart(
        stages,
        factor,
        "Consumer instances per stage",
        "instances",
        |sample, i| sample.instances.get(i).copied().unwrap_or(0) as f64,
    )
}

/// The chart of each channel's time from publishing to handling (queued
/// plus processing) as a cumulative distribution.
pub fn latency_chart(stages: &Stages) -> String {
    let series: Vec<Series> = stages
        .stages
        .iter()
        .map(|stage| {
            let queued = stage.queued.lock().unwrap();
            let mut samples: Vec<f64> = queued.iter().map(|s| (s * 1000.0).max(0.01)).collect();
            samples.sort_by(|a, b| a.total_cmp(b));
            let n = samples.len().max(1) as f64;
            // At most 200 points a line.
            let step = (samples.len() / 200).max(1);
            let points = samples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i + 1 == samples.len())
                .map(|(i, ms)| (*ms, (i + 1) as f64 / n * 100.0))
                .collect();
            Series {
                name: stage.spec.name.to_string(),
                points,
            }
        })
        .collect();
    line_chart(
        "Time in queue, cumulative",
        "real milliseconds from publishing to the handler's start (log scale)",
        "% of handlings",
        &series,
        true,
    )
}

/// The whole page.
pub fn page(report: &Report, stages: &Stages) -> String {
    let mut table = Vec::new();
    let _ = crate::report::print_report(report, &mut table);
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>contact center day</title>\
         <style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}</style>\
         </head><body><h1>Contact center day</h1>\n{}\n{}\n{}\n<pre>{}</pre></body></html>\n",
        depth_chart(stages, report.time_factor),
        workers_chart(stages, report.time_factor),
        latency_chart(stages),
        escape(&String::from_utf8_lossy(&table))
    )
}

/// The smallest of 1, 2 or 5 × 10ⁿ that is at least `value`.
fn nice(value: f64) -> f64 {
    let power = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|v| *v >= value)
        .unwrap_or(value)
}

fn short(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.0}k", value / 1000.0)
    } else if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_every_series_inside_its_box() {
        let svg = line_chart(
            "t",
            "x",
            "y",
            &[
                Series {
                    name: "a<b".into(),
                    points: vec![(0.0, 0.0), (1.0, 7.0)],
                },
                Series {
                    name: "c".into(),
                    points: vec![],
                },
            ],
            false,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn axis_tops_are_round() {
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(130.0), 200.0);
        assert_eq!(nice(400.0), 500.0);
    }
}
