//! Every request accounted for: the real binary against an origin that cannot keep up with the
//! asked-for rate, checked against the origin's own count, and the oha/hey-style `-n` and `-z`.
//!
//! Load tests share two cores, so they take [`serial`] to run one at a time; each stays within
//! a few seconds.

#![allow(clippy::disallowed_types)] // std Mutex in the support code: a test harness, not per-core code.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Origin, OriginOptions, f, load, load_json, serial, tempdir, u};

/// Every due request is in exactly one outcome, and the responses are the completed ones.
fn assert_balanced(r: &Value) {
    let o = |field: &str| u(r, &format!("/outcomes/{field}"));
    assert_eq!(
        o("completed_in_window") + o("completed_after_window") + o("failed") + o("not_sent"),
        o("due"),
        "outcomes do not add up: {r}"
    );
    assert_eq!(
        o("completed_in_window") + o("completed_after_window"),
        u(r, "/requests"),
        "{r}"
    );
    let by_kind: u64 = r["outcomes"]["failed_by_kind"]
        .as_object()
        .expect("failed_by_kind")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_kind, o("failed"), "{r}");
    assert!(o("sent") <= o("due"), "{r}");
}

/// The origin serves one request at a time, 4 ms each: at most 250 req/s. Asked for 1,000 req/s
/// for 2 s, the generator must not hide the 2,000 - ~500 requests it could not get through.
#[test]
fn an_overloaded_target_hides_no_request() {
    let _g = serial();
    const CAPACITY: f64 = 250.0;
    let origin = Origin::start(OriginOptions {
        per_request: Some(Duration::from_millis(4)),
        ..OriginOptions::default()
    });
    let dir = tempdir();
    let svg = dir.join("plot.svg");
    let url = origin.url("/");
    let args = ["--rate", "1000", "-c", "8", "-d", "2s"];
    let svg_s = svg.to_str().expect("path");
    let (r, out) = load_json(&[&args[..], &["--svg", svg_s, &url]].concat());
    assert_balanced(&r);
    let o = |field: &str| u(&r, &format!("/outcomes/{field}"));

    // 1,000 req/s for 2 s: exactly 2,000 fell due, whatever the target did.
    assert_eq!(o("due"), 2000, "{r}");
    assert!((f(&r, "/due_per_sec") - 1000.0).abs() < 1.0, "{r}");
    // (a) The origin received exactly what the generator says it sent.
    assert_eq!(origin.requests(), o("sent"), "origin vs sent: {r}");
    assert_eq!(u(&r, "/errors/total"), 0, "{r}");
    assert_eq!(o("failed"), 0, "{r}");
    // Most could not be sent: the connections were busy when the window closed.
    assert!(o("not_sent") > 1000, "{r}");
    assert!(o("sent_late") > o("sent") / 2, "{r}");
    // (c) The achieved rate is what the origin served, not the due rate.
    let achieved = f(&r, "/requests_per_sec");
    let served = origin.requests() as f64 / f(&r, "/duration_s");
    assert!(
        achieved <= served * 1.02 + 2.0,
        "achieved {achieved} > served {served}"
    );
    assert!(achieved <= CAPACITY * 1.05, "achieved {achieved}: {r}");
    assert!(achieved >= CAPACITY * 0.5, "achieved {achieved}: {r}");
    // Not-sent requests are in the corrected latency at a lower bound; the backlog grew for
    // the whole run, so even the median waited long.
    assert_eq!(
        u(&r, "/latency_us/count"),
        u(&r, "/requests") + o("not_sent") + u(&r, "/outcomes/failed_by_kind/unanswered"),
        "{r}"
    );
    assert!(f(&r, "/latency_us/p50") >= 200_000.0, "{r}");
    assert!(f(&r, "/service_time_us/p50") < 100_000.0, "{r}");

    let text = String::from_utf8_lossy(&out.stdout);
    let line = format!("{} not sent", o("not_sent"));
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("due 1000.0 req/s, achieved"), "{text}");
    assert!(text.contains("connects   8 made, 0 failed"), "{text}");

    // The plot: log-scale latency, the marked percentiles, the run's numbers.
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    for needle in [
        "log scale",
        "p50 ",
        "p99 ",
        "p99.9 ",
        &url,
        "not sent",
        "stroke-dasharray",
    ] {
        assert!(plot.contains(needle), "svg lacks {needle:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-n` as in hey and oha: exactly N requests, shared out over the connections, in the closed
/// loop and at a rate; `-z` is the duration.
#[test]
fn n_requests_and_z_duration() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let (r, _) = load_json(&["-n", "301", "-c", "4", "--pipeline", "2", &url]);
    assert_balanced(&r);
    assert_eq!(u(&r, "/outcomes/due"), 301, "{r}");
    assert_eq!(u(&r, "/requests"), 301, "{r}");
    assert_eq!(origin.requests(), 301);
    assert_eq!(u(&r, "/count"), 301);
    assert!(f(&r, "/duration_s") < 5.0, "{r}");

    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let (r, _) = load_json(&["-n", "200", "--rate", "400", "-c", "2", &url]);
    assert_balanced(&r);
    assert_eq!(u(&r, "/outcomes/due"), 200, "{r}");
    assert_eq!(origin.requests(), u(&r, "/outcomes/sent"));
    assert_eq!(u(&r, "/outcomes/sent"), 200, "{r}");
    assert!((f(&r, "/duration_s") - 0.5).abs() < 0.01, "{r}");

    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let (r, _) = load_json(&["-z", "500ms", "-c", "2", &url]);
    assert_balanced(&r);
    assert_eq!(f(&r, "/duration_s"), 0.5, "{r}");
    assert_eq!(origin.requests(), u(&r, "/requests"));
}

/// The progress line, asked for with --progress (stderr is not a terminal here): elapsed and
/// total, the due rate against the achieved one.
#[test]
fn progress_line_shows_elapsed_and_due_against_achieved() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let out = load(&["--rate", "200", "-c", "2", "-d", "2s", "--progress", &url]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.starts_with("[   1s/   2s] run"), "{err}");
    assert!(first.contains("due      200 req/s  achieved"), "{err}");
    assert!(first.contains("behind"), "{err}");
    // Not a terminal and no --progress: quiet.
    let out = load(&["-c", "1", "-d", "1100ms", &url]);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("achieved"));
}
