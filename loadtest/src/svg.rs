//! The latency-by-percentile plot, drawn as HdrHistogram's plotter draws it: the x axis is
//! `log10(1 / (1 - p))`, so 0%, 90%, 99%, 99.9%, ... are evenly spaced and the tail gets the
//! room it deserves; the y axis is latency on a log scale, so a 1 ms median and a 2 s tail are
//! both readable. p50, p99 and p99.9 are marked on the main curve, and the run's summary
//! (target, rate, what became of the requests) is printed under the plot. Curves that coincide
//! stay visible: the main one is drawn wide and solid, the others narrower and dashed on top.
//! Hand-written SVG: no plotting dependency.

use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::report::{Report, human_us};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 580.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 50.0;
/// Room under the plot for the x labels, the axis name and three summary lines.
const BOTTOM: f64 = 130.0;

/// One series: (x = log10(1/(1-p)), latency in ms) points.
struct Series {
    name: &'static str,
    colour: &'static str,
    /// Stroke width, px.
    width: f64,
    /// SVG `stroke-dasharray`, or none for a solid line.
    dash: Option<&'static str>,
    points: Vec<(f64, f64)>,
}

/// A percentile marked on the plot: (label, x = log10(1/(1-p)), latency in ms).
type Mark = (&'static str, f64, f64);

/// What [`draw`] needs besides the curves.
struct Plot<'a> {
    title: &'a str,
    /// Lines of text printed under the plot.
    summary: &'a [String],
    /// Decades of "nines" on the x axis.
    x_max: f64,
    marks: &'a [Mark],
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

/// p50, p99 and p99.9 of `h` as marks (none for an empty histogram).
fn marks(h: &Histogram<u64>) -> Vec<Mark> {
    if h.is_empty() {
        return Vec::new();
    }
    [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)]
        .iter()
        .map(|&(label, q)| {
            let ms = h.highest_equivalent(h.value_at_quantile(q)) as f64 / 1e6;
            (label, (1.0 / (1.0 - q)).log10(), ms)
        })
        .collect()
}

/// The lines of the run's summary printed under the plot.
fn summary(report: &Report) -> Vec<String> {
    let o = &report.outcomes;
    let mode = match report.rate {
        Some(r) => format!("constant rate {r} req/s"),
        None => format!("closed loop, pipeline {}", report.pipeline),
    };
    let mut lines = vec![format!(
        "{}: {mode}, {} connections, {} threads, {}s window",
        report.target, report.connections, report.threads, report.duration_s
    )];
    let mut counts = format!(
        "due {} ({:.1}/s), sent {}, completed {} in the window + {} after, failed {}",
        o.due,
        report.due_per_sec,
        o.sent,
        o.completed_in_window,
        o.completed_after_window,
        o.failed
    );
    if report.rate.is_some() {
        counts.push_str(&format!(", not sent {}", o.not_sent));
    }
    lines.push(counts);
    let l = &report.latency_us;
    lines.push(format!(
        "achieved {:.1} req/s; {}latency p50 {}, p99 {}, p99.9 {}, max {}",
        report.requests_per_sec,
        if report.rate.is_some() {
            "corrected "
        } else {
            ""
        },
        human_us(l.p50),
        human_us(l.p99),
        human_us(l.p99_9),
        human_us(l.max)
    ));
    lines
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
        width: 4.0,
        dash: None,
        points: points(&report.latency, x_max),
    }];
    if report.rate.is_some() {
        series.push(Series {
            name: "service time (uncorrected)",
            colour: "#ff7f0e",
            width: 2.0,
            dash: Some("8 5"),
            points: points(&report.service, x_max),
        });
    }
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
    let plot = Plot {
        title: &title,
        summary: &summary(report),
        x_max,
        marks: &marks(&report.latency),
    };
    draw(&plot, &series)
}

/// The y range of the log axis: whole decades (in ms) around every point.
fn y_decades(series: &[Series]) -> (i32, i32) {
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return (-1, 0);
    }
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    (a, b.max(a + 1))
}

fn draw(plot: &Plot, series: &[Series]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_max = plot.x_max;
    let (y_lo, y_hi) = y_decades(series);
    let px = |x: f64| LEFT + x / x_max * plot_w;
    let py = |ms: f64| {
        let l = ms.max(10f64.powi(y_lo)).log10();
        TOP + plot_h - (l - f64::from(y_lo)) / f64::from(y_hi - y_lo) * plot_h
    };
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
        escape(plot.title)
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
    // Log y grid: every decade labelled, 2x and 5x as fainter lines.
    for e in y_lo..=y_hi {
        for m in [1.0, 2.0, 5.0] {
            let ms = m * 10f64.powi(e);
            if ms > 10f64.powi(y_hi) {
                break;
            }
            let y = py(ms);
            let colour = if m == 1.0 { "#ccc" } else { "#eee" };
            let _ = writeln!(
                s,
                "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\"/>",
                LEFT + plot_w
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 8.0,
                y + 4.0,
                tick_label(ms)
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        TOP + plot_h + 38.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">latency (log scale)</text>"#,
        TOP + plot_h / 2.0
    );
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let dash = ser
            .dash
            .map(|d| format!(r#" stroke-dasharray="{d}""#))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{}" stroke-width="{}"{dash} points="{}"/>"#,
            ser.colour,
            ser.width,
            pts.join(" ")
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="{}"{dash}/>"#,
            LEFT + 12.0,
            LEFT + 44.0,
            ser.colour,
            ser.width
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            LEFT + 50.0,
            ly + 4.0,
            escape(ser.name)
        );
    }
    for &(label, x, ms) in plot.marks {
        let (cx, cy) = (px(x), py(ms));
        // Below and to the right of the marker, unless that runs off the plot.
        let (tx, anchor) = if x > x_max - 0.8 {
            (cx - 8.0, "end")
        } else {
            (cx + 8.0, "start")
        };
        let _ = writeln!(
            s,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="4" fill="white" stroke="black" stroke-width="1.5"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="11">{label} {}</text>"#,
            tx,
            cy + 16.0,
            human_us(ms * 1e3)
        );
    }
    for (i, line) in plot.summary.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{:.1}">{}</text>"#,
            TOP + plot_h + 64.0 + 18.0 * i as f64,
            escape(line)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A y tick (1, 2 or 5 times a power of ten, in ms) in its unit: `500us`, `20ms`, `1s`.
fn tick_label(ms: f64) -> String {
    let (v, unit) = if ms >= 1e3 {
        (ms / 1e3, "s")
    } else if ms >= 1.0 {
        (ms, "ms")
    } else {
        (ms * 1e3, "us")
    };
    // Rounded to 3 significant digits, then printed without trailing zeros.
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{s}{unit}")
}

/// `0%`, `90%`, `99%`, `99.9%`, ... for decade `d`.
fn percentile_label(d: usize) -> String {
    match d {
        0 => "0%".into(),
        1 => "90%".into(),
        _ => format!("99.{}%", "9".repeat(d - 2)).replace("99.%", "99%"),
    }
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
    fn labels() {
        let labels: Vec<_> = (0..5).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
        let ticks: Vec<_> = [0.001, 0.05, 0.2, 1.0, 20.0, 500.0, 1e3, 2e3, 1e5]
            .iter()
            .map(|&ms| tick_label(ms))
            .collect();
        assert_eq!(
            ticks,
            [
                "1us", "50us", "200us", "1ms", "20ms", "500ms", "1s", "2s", "100s"
            ]
        );
    }

    fn series(points: Vec<(f64, f64)>, dash: Option<&'static str>) -> Series {
        Series {
            name: "a",
            colour: "red",
            width: 2.0,
            dash,
            points,
        }
    }

    #[test]
    fn points_follow_the_log_axes() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).expect("hist");
        for v in 2..=1000u64 {
            h.record(v * 990).expect("record");
        }
        let pts = points(&h, 3.0);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(pts.last().map(|p| p.0), Some(3.0));
        // 2 µs .. 0.99 ms: the y axis spans the decades 1 µs to 1 ms.
        assert_eq!(y_decades(&[series(pts.clone(), None)]), (-3, 0));
        let m = marks(&h);
        let labels: Vec<_> = m.iter().map(|m| m.0).collect();
        assert_eq!(labels, ["p50", "p99", "p99.9"]);
        assert!((m[1].1 - 2.0).abs() < 1e-9 && (m[1].2 - 0.98).abs() < 0.01);
        let summary = ["due 5 <all>".to_owned()];
        let plot = Plot {
            title: "t <x>",
            summary: &summary,
            x_max: 3.0,
            marks: &m,
        };
        let svg = draw(
            &plot,
            &[series(pts.clone(), None), series(pts, Some("8 5"))],
        );
        assert!(svg.starts_with("<svg") && svg.contains("t &lt;x&gt;") && svg.contains("99.9%"));
        assert!(svg.contains("latency (log scale)") && svg.contains("due 5 &lt;all&gt;"));
        assert!(svg.contains(">p99.9 ") && svg.contains(r#"stroke-dasharray="8 5""#));
        // The decade labels: 1us, 10us, 100us, 1ms.
        for label in [">1us<", ">10us<", ">100us<", ">1ms<", ">200us<"] {
            assert!(svg.contains(label), "{label}");
        }
    }

    #[test]
    fn a_flat_or_empty_curve_still_has_a_decade() {
        assert_eq!(
            y_decades(&[series(vec![(0.0, 5.0), (3.0, 5.0)], None)]),
            (0, 1)
        );
        assert_eq!(y_decades(&[series(vec![(0.0, 10.0)], None)]), (1, 2));
        assert_eq!(y_decades(&[series(vec![], None)]), (-1, 0));
        let h = Histogram::<u64>::new(3).expect("hist");
        assert!(marks(&h).is_empty() && points(&h, 3.0).is_empty());
    }
}
