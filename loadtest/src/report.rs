//! The report: one [`Report`] value built from the merged measurements, printed as text and
//! written as JSON. The JSON field names are a contract (documented in BENCHMARKS.md, checked
//! by the integration tests): add fields, never rename or remove one.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    run::{Outcome, Plan},
    stats::{ErrorKind, Failure},
};

/// Version of the JSON layout, bumped only on an incompatible change.
pub const SCHEMA: &str = "turnpike-load/1";

/// A latency histogram summarized, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub stdev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub p99_999: f64,
    pub max: f64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                us(h.value_at_quantile(p / 100.0))
            }
        };
        Self {
            count: h.len(),
            min: if h.is_empty() { 0.0 } else { us(h.min()) },
            mean: if h.is_empty() { 0.0 } else { h.mean() / 1e3 },
            stdev: if h.is_empty() { 0.0 } else { h.stdev() / 1e3 },
            p50: q(50.0),
            p90: q(90.0),
            p99: q(99.0),
            p99_9: q(99.9),
            p99_99: q(99.99),
            p99_999: q(99.999),
            max: if h.is_empty() { 0.0 } else { us(h.max()) },
        }
    }
}

/// TLS of an `https://` run.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSummary {
    /// Negotiated protocol version and cipher suite (rustls' names, e.g. `TLSv1_3`,
    /// `TLS13_AES_128_GCM_SHA256`); null if no handshake completed.
    pub protocol: Option<&'static str>,
    pub cipher_suite: Option<&'static str>,
    /// The SNI sent; null when none was (an IP address host without `--sni`).
    pub sni: Option<String>,
    /// `false` with `--insecure`.
    pub verified: bool,
    /// `--tls-resume`.
    pub resume: bool,
    /// Completed handshakes, whole run (warm-up included): full and resumed.
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
}

/// What became of every measured request: `due == completed_in_window +
/// completed_after_window + failed + not_sent`. Counts of requests.
#[derive(Debug, Clone, Serialize)]
pub struct Outcomes {
    /// Requests that fell due in the window (rate mode: by the schedule; closed loop: the
    /// requests the loop made).
    pub due: u64,
    /// Of `due`, written to a connection. The target should have received exactly these.
    pub sent: u64,
    /// Of `sent` (rate mode), those that fell due while their connection was still busy, so
    /// went out after their due time (their latency counts from the due time).
    pub sent_late: u64,
    /// Responses that arrived inside the window.
    pub completed_in_window: u64,
    /// Responses that arrived after the window closed, while the run drained (bounded by
    /// `min(--timeout, 2s)`).
    pub completed_after_window: u64,
    /// Requests that got no response, all kinds.
    pub failed: u64,
    /// `failed` by kind: `connect`, `timeout`, `read`, `write`, `parse`, `tls` (the
    /// connection the request was meant for, or its exchange, failed that way) and
    /// `unanswered` (sent, no response when the drain time ran out).
    pub failed_by_kind: BTreeMap<&'static str, u64>,
    /// Rate mode: due, but never written: the window closed while every earlier request of its
    /// connection was still outstanding. Their corrected latency is recorded as the time from
    /// their due time to the moment the connection stopped, a lower bound.
    pub not_sent: u64,
}

/// Everything a run reports. Serialized as-is for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub target: String,
    /// `closed` (max throughput) or `rate` (constant rate, corrected latency).
    pub mode: &'static str,
    /// `io_uring` or `epoll`.
    pub driver: String,
    pub threads: usize,
    pub connections: usize,
    pub pipeline: usize,
    pub new_conn: bool,
    /// The requested rate (rate mode), else null.
    pub rate: Option<f64>,
    /// `--requests` (`-n`), else null.
    pub count: Option<u64>,
    /// Length of the measured window, seconds (with `-n` in the closed loop: until the last
    /// response).
    pub duration_s: f64,
    pub warmup_s: f64,
    /// Responses to requests sent (rate mode: due) in the measured window, whenever they
    /// arrived (`outcomes.completed_in_window + outcomes.completed_after_window`).
    pub requests: u64,
    pub warmup_requests: u64,
    /// The achieved rate: responses that arrived inside the window per second of it.
    pub requests_per_sec: f64,
    /// The rate requests fell due: `outcomes.due / duration_s` (the asked-for rate in rate
    /// mode, the closed loop's own pace otherwise).
    pub due_per_sec: f64,
    /// Every measured request and what became of it.
    pub outcomes: Outcomes,
    /// Time from the end of the window to the last response, seconds (0: none came later).
    pub drain_s: f64,
    /// Response bytes (heads and bodies) of the counted requests.
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub read_bytes_per_sec: f64,
    pub written_bytes_per_sec: f64,
    /// Connections made (with TLS: handshakes completed), whole run.
    pub connects: u64,
    /// Connect time in µs (TCP connect, and with TLS the handshake) of the `connects`.
    /// Failed connects are `errors.connect` (and `errors.tls`).
    pub connect_us: LatencySummary,
    /// `https://` targets only, else null.
    pub tls: Option<TlsSummary>,
    /// Responses by status class: `1xx` ... `5xx`, `other`.
    pub status: BTreeMap<&'static str, u64>,
    /// Errors by kind: `connect`, `timeout`, `read`, `write`, `parse`, `tls`, and `total`.
    pub errors: BTreeMap<&'static str, u64>,
    /// Latency in µs. Rate mode: from each request's intended send time (corrected for
    /// coordinated omission). Closed loop: from the actual send. Besides the completed
    /// requests it holds the not-sent and unanswered ones at a lower bound (the time they had
    /// waited when the run stopped waiting), so its `count` is `requests + not_sent +
    /// unanswered`.
    pub latency_us: LatencySummary,
    /// Latency in µs from the actual send (uncorrected service time).
    pub service_time_us: LatencySummary,
    /// Due requests in no outcome; 0 unless the generator itself is wrong.
    #[serde(skip)]
    pub unaccounted: i128,
    #[serde(skip)]
    pub latency: Histogram<u64>,
    #[serde(skip)]
    pub service: Histogram<u64>,
}

impl Report {
    pub fn new(plan: &Plan, outcome: Outcome) -> Self {
        let s = outcome.stats;
        let window = plan.window();
        // The closed loop with -n ends its window with its last response, unless the duration
        // ran out first.
        let end = if plan.rate.is_none() && plan.count.is_some() {
            window.end.min(s.last_response_ns.max(window.start))
        } else {
            window.end
        };
        let secs = (end - window.start) as f64 / 1e9;
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let in_window = s.requests - s.completed_after_window;
        let drain_s = if s.last_response_ns > end {
            (s.last_response_ns - end) as f64 / 1e9
        } else {
            0.0
        };
        // In the closed loop latency and service time are the same measurement.
        let service = if plan.rate.is_some() {
            s.service.clone()
        } else {
            s.latency.clone()
        };
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
        let mut errors: BTreeMap<_, _> = ErrorKind::ALL
            .iter()
            .map(|&k| (k.name(), s.error_count(k)))
            .collect();
        errors.insert("total", s.total_errors());
        Self {
            schema: SCHEMA,
            target: plan.target.url.clone(),
            mode: if plan.rate.is_some() {
                "rate"
            } else {
                "closed"
            },
            driver: outcome.driver.map_or("none", |d| d.name()).to_owned(),
            threads: plan.threads,
            connections: plan.connections,
            pipeline: plan.pipeline,
            new_conn: plan.new_conn,
            rate: plan.rate,
            count: plan.count,
            duration_s: secs,
            warmup_s: plan.warmup.as_secs_f64(),
            requests: s.requests,
            warmup_requests: s.warmup_requests,
            requests_per_sec: per_sec(in_window),
            due_per_sec: per_sec(s.due),
            outcomes: Outcomes {
                due: s.due,
                sent: s.sent,
                sent_late: s.sent_late,
                completed_in_window: in_window,
                completed_after_window: s.completed_after_window,
                failed: s.total_failed(),
                failed_by_kind: Failure::ALL
                    .iter()
                    .map(|&f| (f.name(), s.failed_count(f)))
                    .collect(),
                not_sent: s.not_sent,
            },
            drain_s,
            bytes_read: s.bytes_read,
            bytes_written: s.bytes_written,
            read_bytes_per_sec: per_sec(s.bytes_read),
            written_bytes_per_sec: per_sec(s.bytes_written),
            connects: s.connects,
            connect_us: LatencySummary::of(&s.connect),
            tls: plan.tls.as_ref().map(|t| TlsSummary {
                protocol: s.tls_negotiated.0,
                cipher_suite: s.tls_negotiated.1,
                sni: t.sni(),
                verified: !t.insecure,
                resume: t.resume,
                full_handshakes: s.tls_full,
                resumed_handshakes: s.tls_resumed,
            }),
            status: classes.iter().copied().zip(s.status).collect(),
            errors,
            latency_us: LatencySummary::of(&s.latency),
            service_time_us: LatencySummary::of(&service),
            unaccounted: s.unaccounted(),
            latency: s.latency,
            service,
        }
    }

    /// The human-readable report (stdout).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate {
            Some(r) => format!("constant rate {r} req/s"),
            None => format!("closed loop, pipeline {}", self.pipeline),
        };
        out.push_str(&format!(
            "{}: {mode}, {} threads, {} connections{}, {:.2}s (+{:.2}s warm-up), driver {}\n",
            self.target,
            self.threads,
            self.connections,
            if self.new_conn {
                " (new per request)"
            } else {
                ""
            },
            self.duration_s,
            self.warmup_s,
            self.driver,
        ));
        out.push_str(&self.requests_text());
        out.push_str(&format!(
            "  transfer   read {}/s, written {}/s\n",
            human_bytes(self.read_bytes_per_sec),
            human_bytes(self.written_bytes_per_sec)
        ));
        if let Some(t) = &self.tls {
            out.push_str(&format!(
                "  tls        {} {}, sni {}, {}; handshakes: {} full, {} resumed\n",
                t.protocol.unwrap_or("-"),
                t.cipher_suite.unwrap_or("-"),
                t.sni.as_deref().unwrap_or("none"),
                if t.verified {
                    "verified"
                } else {
                    "not verified"
                },
                t.full_handshakes,
                t.resumed_handshakes,
            ));
        }
        let status: Vec<String> = self
            .status
            .iter()
            .filter(|(k, v)| **v > 0 || (**k != "1xx" && **k != "other"))
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&format!("  status     {}\n", status.join("  ")));
        let errors: Vec<String> = ErrorKind::ALL
            .iter()
            .map(|k| k.name())
            .chain(["total"])
            .map(|k| format!("{k} {}", self.errors.get(k).copied().unwrap_or(0)))
            .collect();
        out.push_str(&format!("  errors     {}\n", errors.join("  ")));
        let c = &self.connect_us;
        out.push_str(&format!(
            "  connects   {} made, {} failed; connect time p50 {}  p99 {}  max {}\n",
            self.connects,
            self.errors.get("connect").copied().unwrap_or(0)
                + self.errors.get("tls").copied().unwrap_or(0),
            human_us(c.p50),
            human_us(c.p99),
            human_us(c.max),
        ));
        out.push_str(&format!(
            "  {:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}\n",
            "latency", "min", "p50", "p90", "p99", "p99.9", "p99.99", "max"
        ));
        let row = |name: &str, l: &LatencySummary| {
            format!(
                "  {name:<22}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}\n",
                human_us(l.min),
                human_us(l.p50),
                human_us(l.p90),
                human_us(l.p99),
                human_us(l.p99_9),
                human_us(l.p99_99),
                human_us(l.max)
            )
        };
        if self.rate.is_some() {
            out.push_str(&row("corrected (intended)", &self.latency_us));
            out.push_str(&row("service (uncorrected)", &self.service_time_us));
        } else {
            out.push_str(&row("response time", &self.latency_us));
        }
        out
    }

    /// The request lines: what became of every due request, and the rates.
    fn requests_text(&self) -> String {
        let o = &self.outcomes;
        let mut out = String::new();
        let failed: Vec<String> = o
            .failed_by_kind
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let failed = if failed.is_empty() {
            "0".to_owned()
        } else {
            format!("{} ({})", o.failed, failed.join(", "))
        };
        out.push_str(&format!(
            "  requests   {} due, {} sent{}: {} completed in the window, {} after it (drain {:.2}s), {} failed{}\n",
            o.due,
            o.sent,
            if self.rate.is_some() {
                format!(" ({} late)", o.sent_late)
            } else {
                String::new()
            },
            o.completed_in_window,
            o.completed_after_window,
            self.drain_s,
            failed,
            if self.rate.is_some() {
                format!(", {} not sent", o.not_sent)
            } else {
                String::new()
            },
        ));
        match self.rate {
            Some(_) => out.push_str(&format!(
                "  rate       due {:.1} req/s, achieved {:.1} req/s (completed in the window)\n",
                self.due_per_sec, self.requests_per_sec
            )),
            None => out.push_str(&format!(
                "  rate       achieved {:.1} req/s (completed in the window)\n",
                self.requests_per_sec
            )),
        }
        if o.not_sent > 0 {
            out.push_str(&format!(
                "  note       {} due requests were never sent: every connection was still busy \
                 when the window closed\n             (the target fell behind the rate); the \
                 corrected latency counts them at the time they had waited, a lower bound\n",
                o.not_sent
            ));
        }
        if self.unaccounted != 0 {
            out.push_str(&format!(
                "  warning    {} due requests are in no outcome: the generator's accounting is \
                 wrong, please report it\n",
                self.unaccounted
            ));
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// A duration in µs as `512us`, `1.25ms` or `2.10s`.
pub fn human_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2}s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}us")
    }
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.2} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.2} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}
