//! The latency-by-percentile plot, drawn as HdrHistogram's plotter draws it: the x axis is
//! `log10(1 / (1 - p))`, so 0%, 90%, 99%, 99.9%, ... are evenly spaced and the tail gets the
//! room it deserves; the y axis is linear latency. Hand-written SVG: no plotting dependency.

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::report::Report;

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// One series: (x = log10(1/(1-p)), latency in ms) points.
struct Series {
    name: &'static str,
    colour: &'static str,
    points: Vec<(f64, f64)>,
}

/// Percentile points of a histogram, capped at `x_max` (the 100% point sits at the cap).
fn points(h: &Histogram<u64>, x_max: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    if h.is_empty() {
        return pts;
    }
    for v in h.iter_quantiles(5) {
        let q = v.quantile_iterated_to();
        let x = if q >= 1.0 {
            x_max
        } else {
            (1.0 / (1.0 - q)).log10().min(x_max)
        };
        pts.push((x, h.highest_equivalent(v.value_iterated_to()) as f64 / 1e6));
    }
    pts
}

/// The plot for a report: corrected and service time in rate mode, one curve otherwise.
pub fn render(report: &Report) -> String {
    let count = report.latency.len().max(1) as f64;
    // Enough decades to show the rarest measured percentile, at least to 99.9%.
    let x_max = count.log10().ceil().clamp(3.0, 7.0);
    let mut series = vec![Series {
        name: if report.rate.is_some() {
            "corrected (from intended send time)"
        } else {
            "response time"
        },
        colour: "#1f77b4",
        points: points(&report.latency, x_max),
    }];
    if report.rate.is_some() {
        series.push(Series {
            name: "service time (uncorrected)",
            colour: "#ff7f0e",
            points: points(&report.service, x_max),
        });
    }
    let y_top = nice_ceiling(
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let title = match report.rate {
        Some(r) => format!(
            "{} at {r} req/s, {} connections",
            report.target, report.connections
        ),
        None => format!(
            "{} closed loop, {} connections, pipeline {}",
            report.target, report.connections, report.pipeline
        ),
    };
    draw(&title, &series, x_max, y_top)
}

fn draw(title: &str, series: &[Series], x_max: f64, y_top: f64) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / x_max * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_top * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Grid and x labels: one line per decade of "nines".
    for d in 0..=(x_max as usize) {
        let x = px(d as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>",
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            TOP + plot_h + 18.0,
            percentile_label(d)
        );
    }
    for i in 0..=5 {
        let v = y_top * f64::from(i) / 5.0;
        let y = py(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            LEFT + plot_w
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 8.0,
            y + 4.0,
            trim_float(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 14.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle">latency (ms)</text>"#,
        TOP + plot_h / 2.0
    );
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            ser.colour,
            pts.join(" ")
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"/>"#,
            LEFT + 12.0,
            LEFT + 36.0,
            ser.colour
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 42.0,
            ly + 4.0,
            escape(ser.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `0%`, `90%`, `99%`, `99.9%`, ... for decade `d`.
fn percentile_label(d: usize) -> String {
    match d {
        0 => "0%".into(),
        1 => "90%".into(),
        _ => format!("99.{}%", "9".repeat(d - 2)).replace("99.%", "99%"),
    }
}

/// The next "round" value (1, 2, 5 times a power of ten) at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * mag)
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_scales() {
        let labels: Vec<_> = (0..5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        assert_eq!(nice_ceiling(0.7), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
        assert_eq!(trim_float(2.5), "2.5");
    }

    #[test]
    fn points_follow_the_log_axis() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("hist");
        for v in 1..=1000u64 {
            h.record(v * 1000).expect("record");
        }
        let pts = points(&h, 3.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(pts.last().map(|p| p.0), Some(3.0));
        let svg = draw(
            "t <x>",
            &[Series {
                name: "a",
                colour: "red",
                points: pts,
            }],
            3.0,
            1.0,
        );
        assert!(svg.starts_with("<svg") && svg.contains("t &lt;x&gt;") && svg.contains("99.9%"));
    }
}
