//! The generator's own correctness, checked by running the real binary against a counting
//! origin on loopback: counts, rate, coordinated-omission correction, report fields, errors.
//!
//! Load tests share two cores, so they take [`serial`] to run one at a time; the whole file
//! stays around 30 s.

#![allow(clippy::disallowed_types)] // std Mutex in the support code: a test harness, not per-core code.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    Origin, OriginOptions, closed_port, f, fixture, load, load_json, serial, tempdir, u,
};

/// The generator must account for every request the origin answered.
fn assert_counts_match(origin: &Origin, report: &Value) {
    let reported = u(report, "/requests") + u(report, "/warmup_requests");
    // Enough to compare counts; how many depends on how busy the machine is.
    assert!(reported >= 20, "too few requests: {report}");
    assert_eq!(u(report, "/errors/total"), 0, "{report}");
    assert_eq!(reported, origin.requests(), "generator vs origin: {report}");
    assert_eq!(u(report, "/status/2xx"), u(report, "/requests"));
    // Every measured request was sent and answered: nothing failed, nothing left unsent.
    let o = |field: &str| u(report, &format!("/outcomes/{field}"));
    assert_eq!(o("sent"), u(report, "/requests"), "{report}");
    assert_eq!((o("failed"), o("not_sent")), (0, 0), "{report}");
    assert_eq!(
        o("completed_in_window") + o("completed_after_window"),
        o("due"),
        "{report}"
    );
}

#[test]
fn closed_loop_counts_match_the_origin_on_both_drivers() {
    let _g = serial();
    for driver in ["auto", "epoll"] {
        let origin = Origin::start(OriginOptions::default());
        let url = origin.url("/");
        let (report, _) = load_json(&["-c", "4", "-d", "1s", "--driver", driver, &url]);
        assert_counts_match(&origin, &report);
        assert_eq!(report["mode"], "closed");
        assert_eq!(u(&report, "/connects"), 4);
        if driver == "epoll" {
            assert_eq!(report["driver"], "epoll");
        }
    }
}

#[test]
fn pipelined_counts_match_the_origin_with_warmup() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/p");
    let (report, _) = load_json(&[
        "-c",
        "3",
        "-d",
        "1s",
        "--warmup",
        "500ms",
        "--pipeline",
        "8",
        &url,
    ]);
    assert_counts_match(&origin, &report);
    assert!(u(&report, "/warmup_requests") > 0, "{report}");
    assert_eq!(
        u(&report, "/requests") % 8,
        0,
        "whole batches only: {report}"
    );
}

#[test]
fn chunked_responses_and_scenarios_with_credentials() {
    let _g = serial();
    let origin = Origin::start(OriginOptions {
        chunked: true,
        record_header: Some("authorization".into()),
        ..OriginOptions::default()
    });
    let dir = tempdir();
    let scenario = dir.join("mix.yaml");
    std::fs::write(
        &scenario,
        "requests:\n  - { path: /a, weight: 3 }\n  - { method: POST, path: /b, body: hello }\n\
         credentials: { header: Authorization, prefix: 'Bearer ', values: [t1, t2, t3] }\n",
    )
    .expect("write scenario");
    let url = origin.url("/");
    let sc = scenario.to_str().expect("path");
    let (report, _) = load_json(&[
        "-c",
        "2",
        "-d",
        "1s",
        "--pipeline",
        "4",
        "--scenario",
        sc,
        &url,
    ]);
    assert_counts_match(&origin, &report);
    let seen: Vec<String> = origin.seen_headers().into_iter().collect();
    assert_eq!(seen, ["Bearer t1", "Bearer t2", "Bearer t3"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_pinned_threads_count_right() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let cpus = turnpike_tuning::cpu::available_cpus();
    let pin = cpus
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (report, _) = load_json(&["-t", "2", "-c", "5", "-d", "1s", "--pin", &pin, &url]);
    assert_counts_match(&origin, &report);
    assert_eq!(u(&report, "/threads"), 2);
    assert_eq!(u(&report, "/connects"), 5);
}

#[test]
fn new_connection_per_request() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let (report, _) = load_json(&["-c", "2", "-d", "1s", "--new-conn", &url]);
    assert_counts_match(&origin, &report);
    assert_eq!(u(&report, "/connects"), u(&report, "/requests"));
    assert_eq!(origin.connections(), u(&report, "/requests"));
}

fn tls(v: &Value, field: &str) -> Value {
    v.pointer(&format!("/tls/{field}"))
        .cloned()
        .unwrap_or_else(|| panic!("tls.{field} missing in {v}"))
}

#[test]
fn tls_keep_alive_and_new_connections_count_right() {
    let _g = serial();
    let origin = Origin::start(OriginOptions {
        tls: true,
        ..OriginOptions::default()
    });
    let url = origin.url("/");
    let (report, out) = load_json(&["-c", "4", "-d", "1s", "--insecure", &url]);
    assert_counts_match(&origin, &report);
    assert_eq!(u(&report, "/connects"), 4);
    assert_eq!(tls(&report, "protocol"), "TLSv1_3");
    assert!(tls(&report, "cipher_suite").is_string(), "{report}");
    assert_eq!(tls(&report, "resume"), Value::Bool(false));
    assert_eq!(tls(&report, "full_handshakes"), 4);
    assert_eq!(tls(&report, "resumed_handshakes"), 0);
    assert_eq!(tls(&report, "verified"), Value::Bool(false));
    // An IP address host: no SNI unless asked for.
    assert_eq!(tls(&report, "sni"), Value::Null);
    assert!(origin.seen_headers().contains("sni (none)"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("handshakes: 4 full, 0 resumed"), "{text}");

    // A new verified connection per request, with a name to send: full handshakes each time.
    let origin = Origin::start(OriginOptions {
        tls: true,
        ..OriginOptions::default()
    });
    let cert = fixture("cert.pem");
    let url = origin.url("/");
    let args = ["--new-conn", "-c", "2", "-d", "1s", "--cacert", &cert];
    let (report, _) = load_json(&[&args[..], &["--sni", "bench.turnpike.test", &url]].concat());
    assert_counts_match(&origin, &report);
    assert_eq!(u(&report, "/connects"), origin.connections());
    assert_eq!(tls(&report, "full_handshakes"), origin.connections());
    assert_eq!(tls(&report, "resumed_handshakes"), 0);
    assert_eq!(tls(&report, "sni"), "bench.turnpike.test");
    assert_eq!(
        origin.seen_headers().into_iter().collect::<Vec<_>>(),
        ["sni bench.turnpike.test"]
    );

    // The same with a session cache: reconnects resume.
    let origin = Origin::start(OriginOptions {
        tls: true,
        ..OriginOptions::default()
    });
    let url = origin.url("/");
    let (report, _) = load_json(&[&args[..], &["--tls-resume", &url]].concat());
    assert_counts_match(&origin, &report);
    let full = tls(&report, "full_handshakes").as_u64().expect("count");
    let resumed = tls(&report, "resumed_handshakes").as_u64().expect("count");
    assert_eq!(full + resumed, origin.connections(), "{report}");
    assert!(resumed > 10 * full, "{report}");
}

#[test]
fn a_certificate_that_does_not_verify_fails_fast() {
    let _g = serial();
    let origin = Origin::start(OriginOptions {
        tls: true,
        ..OriginOptions::default()
    });
    let url = origin.url("/");
    let cert = fixture("cert.pem");
    let started = Instant::now();
    assert_fails(
        &[
            "-c",
            "2",
            "-d",
            "10s",
            "--cacert",
            &cert,
            "--sni",
            "other.example",
            &url,
        ],
        "TLS handshake failed: invalid peer certificate",
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn constant_rate_holds_within_one_percent() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let url = origin.url("/");
    let (report, _) = load_json(&["--rate", "2000", "-c", "8", "-d", "3s", &url]);
    let rps = f(&report, "/requests_per_sec");
    assert!((rps - 2000.0).abs() <= 20.0, "rate {rps}: {report}");
    assert_eq!(origin.requests(), u(&report, "/requests"));
    assert_eq!(u(&report, "/outcomes/due"), 6000, "{report}");
    assert_eq!(u(&report, "/outcomes/sent"), 6000, "{report}");
    assert_eq!(u(&report, "/outcomes/not_sent"), 0, "{report}");
    assert_eq!(report["mode"], "rate");
}

#[test]
fn a_stalled_origin_shows_in_the_corrected_tail_only() {
    let _g = serial();
    let origin = Origin::start(OriginOptions {
        stall: Some(Duration::from_millis(200)),
        ..OriginOptions::default()
    });
    let url = origin.url("/");
    let (report, _) = load_json(&["--rate", "1000", "-c", "4", "-d", "3s", &url]);
    let corrected = f(&report, "/latency_us/p99");
    let service = f(&report, "/service_time_us/p99");
    assert!(
        corrected >= 100_000.0,
        "corrected p99 {corrected} us hides the stall"
    );
    assert!(
        service < 50_000.0,
        "uncorrected p99 {service} us should stay small"
    );
    assert!(f(&report, "/service_time_us/max") >= 100_000.0, "{report}");
}

#[test]
fn open_loop_batches_overdue_requests_and_still_counts_right() {
    let _g = serial();
    let origin = Origin::start(OriginOptions {
        stall: Some(Duration::from_millis(200)),
        ..OriginOptions::default()
    });
    let url = origin.url("/");
    let (report, _) = load_json(&[
        "--rate",
        "1000",
        "-c",
        "2",
        "-d",
        "2s",
        "--pipeline",
        "4",
        &url,
    ]);
    // 2,000 fell due; those that fell due behind a stall at the very end may not have been
    // sent, but every one is accounted for, and the origin saw exactly the ones sent.
    let o = |field: &str| u(&report, &format!("/outcomes/{field}"));
    assert_eq!(o("due"), 2000, "{report}");
    assert_eq!(o("failed"), 0, "{report}");
    assert_eq!(
        o("completed_in_window") + o("completed_after_window") + o("not_sent"),
        2000,
        "{report}"
    );
    assert_eq!(u(&report, "/requests"), o("sent"), "{report}");
    assert_eq!(origin.requests(), o("sent"), "{report}");
    assert!(f(&report, "/latency_us/p99") >= 100_000.0, "{report}");
}

#[test]
fn json_report_has_every_documented_field_and_svg_is_written() {
    let _g = serial();
    let origin = Origin::start(OriginOptions::default());
    let dir = tempdir();
    let svg = dir.join("plot.svg");
    let url = origin.url("/");
    let svg_s = svg.to_str().expect("path");
    let (report, out) = load_json(&["--rate", "500", "-c", "2", "-d", "1s", "--svg", svg_s, &url]);
    for field in [
        "schema",
        "target",
        "mode",
        "driver",
        "threads",
        "connections",
        "pipeline",
        "new_conn",
        "rate",
        "duration_s",
        "warmup_s",
        "count",
        "requests",
        "warmup_requests",
        "requests_per_sec",
        "due_per_sec",
        "outcomes",
        "drain_s",
        "connect_us",
        "bytes_read",
        "bytes_written",
        "read_bytes_per_sec",
        "written_bytes_per_sec",
        "connects",
        "tls",
        "status",
        "errors",
        "latency_us",
        "service_time_us",
    ] {
        assert!(report.get(field).is_some(), "missing {field}: {report}");
    }
    // Plain HTTP: no TLS section.
    assert_eq!(report["tls"], Value::Null);
    for class in ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] {
        u(&report, &format!("/status/{class}"));
    }
    for kind in [
        "connect", "timeout", "read", "write", "parse", "tls", "total",
    ] {
        u(&report, &format!("/errors/{kind}"));
    }
    for field in [
        "due",
        "sent",
        "sent_late",
        "completed_in_window",
        "completed_after_window",
        "failed",
        "not_sent",
    ] {
        u(&report, &format!("/outcomes/{field}"));
    }
    for kind in [
        "connect",
        "timeout",
        "read",
        "write",
        "parse",
        "tls",
        "unanswered",
    ] {
        u(&report, &format!("/outcomes/failed_by_kind/{kind}"));
    }
    for summary in ["latency_us", "service_time_us", "connect_us"] {
        for p in [
            "count", "min", "mean", "stdev", "p50", "p90", "p99", "p99_9", "p99_99", "p99_999",
            "max",
        ] {
            f(&report, &format!("/{summary}/{p}"));
        }
    }
    assert_eq!(report["schema"], "turnpike-load/1");
    assert!(f(&report, "/latency_us/p50") > 0.0);
    let plot = std::fs::read_to_string(&svg).expect("svg written");
    assert!(plot.starts_with("<svg") && plot.contains("99.9%") && plot.contains("polyline"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("corrected") && text.contains("p99.9"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn header_values_from_a_file_are_drawn_per_request() {
    let _g = serial();
    let dir = tempdir();
    let keys = dir.join("keys.txt");
    let values: Vec<String> = (0..200).map(|i| format!("key-{i:036}")).collect();
    std::fs::write(&keys, format!("# API keys\n{}\n", values.join("\n"))).expect("write keys");
    let arg = format!("x-api-key={}", keys.display());
    let mut expected = values.clone();
    expected.sort();
    for pipeline in ["1", "4"] {
        let origin = Origin::start(OriginOptions {
            record_header: Some("x-api-key".into()),
            ..OriginOptions::default()
        });
        let url = origin.url("/keyed");
        let (report, _) = load_json(&[
            "-c",
            "4",
            "-d",
            "1s",
            "--pipeline",
            pipeline,
            "--header-values",
            &arg,
            &url,
        ]);
        assert_counts_match(&origin, &report);
        // Thousands of requests over 200 keys: every key was sent, and nothing else.
        let seen: Vec<String> = origin.seen_headers().into_iter().collect();
        assert_eq!(seen, expected, "--pipeline {pipeline}");
    }
    assert_fails(
        &[
            "--header-values",
            &arg,
            "-H",
            "X-Api-Key: k",
            "http://127.0.0.1:1/",
        ],
        "--header-values: x-api-key is also given with --header",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_fails(args: &[&str], expect: &str) {
    let out = load(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        err.contains(expect),
        "{args:?}: stderr {err:?} lacks {expect:?}"
    );
}

#[test]
fn clear_errors_for_bad_input() {
    assert_fails(&["not a url"], "bad URL");
    assert_fails(&["https://127.0.0.1:1/"], "https:// needs --cacert");
    assert_fails(
        &["--insecure", "http://127.0.0.1:1/"],
        "--insecure: only with an https:// URL",
    );
    assert_fails(
        &["--cacert", "/nonexistent.pem", "https://127.0.0.1:1/"],
        "--cacert: cannot read",
    );
    assert_fails(
        &["--insecure", "--sni", "10.0.0.1", "https://127.0.0.1:1/"],
        "--sni",
    );
    assert_fails(&["http://127.0.0.1:99999/"], "port");
    assert_fails(&["-H", "oops", "http://127.0.0.1:1/"], "--header");
    assert_fails(&["--rate", "0", "http://127.0.0.1:1/"], "--rate");
    assert_fails(
        &["--header-values", "x-api-key", "http://127.0.0.1:1/"],
        "--header-values: \"x-api-key\" must look like NAME=FILE",
    );
    assert_fails(
        &[
            "--header-values",
            "x-api-key=/nonexistent/keys.txt",
            "http://127.0.0.1:1/",
        ],
        "--header-values: cannot read /nonexistent/keys.txt",
    );
    let dir = tempdir();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "requests:\n  - { path: /a }\n  - { path: /b, weight: lots }\n",
    )
    .expect("write");
    assert_fails(
        &[
            "--scenario",
            bad.to_str().expect("path"),
            "http://127.0.0.1:1/",
        ],
        "requests[1].weight",
    );
    let missing = dir.join("missing.yaml");
    assert_fails(
        &[
            "--scenario",
            missing.to_str().expect("path"),
            "http://127.0.0.1:1/",
        ],
        "cannot read scenario file",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unreachable_target_fails_fast() {
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let started = Instant::now();
    assert_fails(&["-c", "4", "-d", "10s", &url], "cannot connect");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
