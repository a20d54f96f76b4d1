//! `GET /metrics`: the metrics reading merged over workers, encoded for Prometheus.
//!
//! The body is written by prometheus-client's text encoder, which writes the OpenMetrics 1.0
//! text format (the format Prometheus asks for first; it ends in `# EOF`), so it is served as
//! [`CONTENT_TYPE`]. The values are constants taken from one [`MetricsReading`]: a
//! [`Collector`] encodes them when the body is built, and nothing here touches the workers'
//! counters, so a scrape costs the data plane nothing.
//!
//! Families (label names in AWS terms):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `turnpike_requests_total` | counter | `api`, `stage`, `route` |
//! | `turnpike_responses_total` | counter | `api`, `stage`, `route`, `class` (`1xx`..`5xx`), `code` (`200`, ..., `other`) |
//! | `turnpike_request_duration_seconds` | histogram | `api`, `stage`, `route` |
//! | `turnpike_integration_duration_seconds` | histogram | `api`, `stage`, `route` |
//! | `turnpike_request_body_bytes_total`, `turnpike_response_body_bytes_total` | counter | `api`, `stage`, `route` |
//! | `turnpike_upstream_errors_total` | counter | `api`, `stage`, `route`, `cause` (`connect`, `timeout`, `reset`, `bad_response`) |
//! | `turnpike_worker_connections` | gauge | `worker` |
//! | `turnpike_connections_accepted_total` | counter | `worker` |
//! | `turnpike_worker_config_generation` | gauge | `worker` |
//! | `turnpike_tls_handshakes_total` | counter | `result` (`full`, `resumed`, or why it failed: `closed`, `plain_http`, `not_tls`, `unknown_name`, `client_certificate`, `refused`) |
//! | `turnpike_config_version` | gauge | |
//! | `turnpike_workers` | gauge | |
//! | `turnpike_info` | gauge, always 1 | `version`, `driver` |
//!
//! Requests that matched no route (or were refused before routing: 400, 404, 413, 431 ...)
//! are counted in the same families with `api=""`, `stage=""`, `route=""`, so that a sum over
//! a family is all the gateway's traffic and `{api=""}` selects the unrouted part. Every
//! configured route has its series from the moment it is configured, and `class` always has
//! `2xx`, `4xx` and `5xx` (as `code` 200, 400 and 500 at zero until a code of the class is
//! counted), so rates and error ratios exist from the first request; other codes appear once
//! counted.
//!
//! The process families (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...)
//! follow the Prometheus client libraries' names, read from `/proc/self` at scrape time.
//!
//! `GET /metrics` answers OpenMetrics to a scraper that prefers it (`Accept:
//! application/openmetrics-text`, as Prometheus sends) and the 0.0.4 text format otherwise
//! ([`Format::from_accept`], [`to_text_format`]).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet, text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use turnpike_core::metrics::{
    BUCKETS, CODE_SLOTS, HistogramReading, LATENCY_BOUNDS_SECONDS, MetricsReading, RouteReading,
    UPSTREAM_CAUSES, slot_class, slot_code,
};

/// The `Content-Type` of an OpenMetrics `/metrics` response, as prometheus-client's examples
/// serve it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of the Prometheus text format 0.0.4 (Prometheus "Exposition formats").
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which text format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 (`application/openmetrics-text`), what Prometheus asks for first.
    OpenMetrics,
    /// The Prometheus text format 0.0.4 (`text/plain`), what older parsers read: counters'
    /// `# TYPE` lines name the `_total` samples, no `# UNIT`, no `# EOF`.
    Text,
}

impl Format {
    /// From a request's `Accept` header (RFC 9110 §12.5.1): OpenMetrics when it is acceptable
    /// (listed with a non-zero q) and preferred over text/plain or equal to it, else the 0.0.4
    /// text format, which is also the answer to no `Accept` at all, as Prometheus client
    /// libraries give.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut open, mut text) = (None::<f32>, None::<f32>);
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = Some(open.unwrap_or(0.0).max(q)),
                "text/plain" => text = Some(text.unwrap_or(0.0).max(q)),
                _ => {}
            }
        }
        match (open, text) {
            (Some(o), t) if o > 0.0 && o >= t.unwrap_or(0.0) => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => CONTENT_TYPE,
            Format::Text => CONTENT_TYPE_TEXT,
        }
    }
}

/// The OpenMetrics body rewritten in the 0.0.4 text format: a counter family `X` is typed
/// and described as `X_total` (its samples' name, so old parsers do not take them for
/// untyped), `# UNIT` lines and `# EOF` go.
pub fn to_text_format(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut counters: Vec<&str> = Vec::new();
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.push(name);
        }
    }
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# TYPE ", "# HELP "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (*p, rest)));
        if let Some((prefix, rest)) = meta {
            let name = rest.split(' ').next().unwrap_or("");
            if counters.contains(&name) && !name.ends_with("_total") {
                out.push_str(prefix);
                out.push_str(name);
                out.push_str("_total");
                out.push_str(&rest[name.len()..]);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// What the body says besides the counters.
pub struct Info<'a> {
    /// The crate version.
    pub version: &'a str,
    /// The I/O driver the workers run: `io_uring` or `epoll`.
    pub driver: &'a str,
    /// The applied config's version.
    pub config_version: u64,
    pub workers: usize,
    /// Access log destinations' line counters.
    pub access_logs: &'a [crate::plane::AccessLogReading],
    pub functions: &'a [crate::plane::FunctionReading],
}

/// The whole `/metrics` body.
pub fn encode(reading: &MetricsReading, info: &Info) -> String {
    // A collector must own what it encodes (prometheus-client requires `'static`), hence the
    // copy; it is made on the admin thread, once per scrape.
    let scrape = Scrape {
        reading: reading.clone(),
        version: info.version.to_owned(),
        driver: info.driver.to_owned(),
        config_version: info.config_version,
        workers: info.workers,
        access_logs: info.access_logs.to_vec(),
        functions: info.functions.to_vec(),
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape));
    // Roughly what one route's four families take, so the body grows without many copies.
    let mut body = String::with_capacity(4096 + 4096 * reading.series.len());
    // The text encoder fails only when its writer does, and a String never does; if that ever
    // changes, a short body with no `# EOF` tells Prometheus the scrape failed.
    if let Err(fmt::Error) = text::encode(&mut body, &registry) {
        tracing::error!("encoding /metrics failed");
    }
    body
}

#[derive(Debug)]
struct Scrape {
    reading: MetricsReading,
    version: String,
    driver: String,
    config_version: u64,
    workers: usize,
    access_logs: Vec<crate::plane::AccessLogReading>,
    functions: Vec<crate::plane::FunctionReading>,
}

/// The route labels: `api`, `stage`, `route`.
type RouteLabels<'a> = [(&'static str, &'a str); 3];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Classes written even when zero, so that error ratios have a series to divide from the start.
const ALWAYS: [bool; 5] = [false, true, false, true, true];

/// Routes encoded between two yields of the CPU (see [`Scrape::routes`]).
const ROUTES_PER_SLICE: usize = 16;

impl Scrape {
    /// Unrouted first (its empty labels sort first anyway), then the series in key order.
    ///
    /// Every [`ROUTES_PER_SLICE`] routes the thread yields the CPU: a scrape of hundreds of
    /// routes is milliseconds of formatting, and on a core it shares with a worker, requests
    /// would wait out the whole burst. Yielding lets a runnable worker in after each slice
    /// (tens of microseconds); with nothing else runnable it costs one cheap syscall.
    fn routes(&self) -> impl Iterator<Item = (RouteLabels<'_>, &RouteReading)> {
        let unrouted = (
            [("api", ""), ("stage", ""), ("route", "")],
            &self.reading.unrouted,
        );
        let series = self.reading.series.iter().map(|(key, reading)| {
            let labels = [
                ("api", key.api.as_str()),
                ("stage", key.stage.as_str()),
                ("route", key.route.as_str()),
            ];
            (labels, reading)
        });
        std::iter::once(unrouted)
            .chain(series)
            .enumerate()
            .map(|(i, route)| {
                if i % ROUTES_PER_SLICE == ROUTES_PER_SLICE - 1 {
                    std::thread::yield_now();
                }
                route
            })
    }

    /// One counter family per route (labels `api`, `stage`, `route`), read by `count`.
    fn route_counter(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        count: impl Fn(&RouteReading) -> u64,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, route) in self.routes() {
            ConstCounter::new(count(route)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn encode_routes(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        self.route_counter(
            encoder,
            "turnpike_requests",
            "Requests served, by API, stage and route (all empty: matched no route).",
            |r| r.requests,
        )?;

        let mut responses = encoder.encode_descriptor(
            "turnpike_responses",
            "Responses by status class and code (`other`: a code outside the counted set), by API, stage and route.",
            None,
            MetricType::Counter,
        )?;
        for ([api, stage, route], reading) in self.routes() {
            for (i, class) in CLASSES.iter().enumerate() {
                let mut written = false;
                for slot in (0..CODE_SLOTS).filter(|&slot| slot_class(slot) == i) {
                    let count = reading.by_code[slot];
                    if count == 0 {
                        continue;
                    }
                    let code =
                        slot_code(slot).map_or_else(|| "other".to_owned(), |c| c.to_string());
                    let labels = [
                        api,
                        stage,
                        route,
                        ("class", *class),
                        ("code", code.as_str()),
                    ];
                    ConstCounter::new(count).encode(responses.encode_family(&labels)?)?;
                    written = true;
                }
                if !written && ALWAYS[i] {
                    // The class's most common code, at zero: error ratios have a series.
                    let code = ["100", "200", "300", "400", "500"][i];
                    let labels = [api, stage, route, ("class", *class), ("code", code)];
                    ConstCounter::new(0u64).encode(responses.encode_family(&labels)?)?;
                }
            }
        }

        self.route_counter(
            encoder,
            "turnpike_throttled_requests",
            "Requests refused with 429 THROTTLED (account, route or usage plan throttle), by API, stage and route.",
            |r| r.throttled,
        )?;
        self.route_counter(
            encoder,
            "turnpike_quota_exceeded_requests",
            "Requests refused with 429 QUOTA_EXCEEDED (a key's usage plan quota used up), by API, stage and route.",
            |r| r.quota_exceeded,
        )?;
        self.route_counter(
            encoder,
            "turnpike_cache_hits",
            "Requests answered from the stage cache (AWS CacheHitCount), by API, stage and route.",
            |r| r.cache_hits,
        )?;
        self.route_counter(
            encoder,
            "turnpike_cache_misses",
            "Cacheable requests sent to the integration (AWS CacheMissCount), by API, stage and route.",
            |r| r.cache_misses,
        )?;

        self.route_counter(
            encoder,
            "turnpike_request_body_bytes",
            "Request body bytes read from clients, by API, stage and route.",
            |r| r.bytes_in,
        )?;
        self.route_counter(
            encoder,
            "turnpike_response_body_bytes",
            "Response body bytes written to clients, by API, stage and route.",
            |r| r.bytes_out,
        )?;
        let mut upstream = encoder.encode_descriptor(
            "turnpike_upstream_errors",
            "http_proxy integration failures by cause (connect: refused, unreachable or TLS handshake; timeout; reset: closed mid-exchange; bad_response), by API, stage and route.",
            None,
            MetricType::Counter,
        )?;
        for ([api, stage, route], reading) in self.routes() {
            for (i, cause) in UPSTREAM_CAUSES.iter().enumerate() {
                let labels = [api, stage, route, ("cause", *cause)];
                ConstCounter::new(reading.upstream_errors[i])
                    .encode(upstream.encode_family(&labels)?)?;
            }
        }

        let seconds = Unit::Seconds;
        let mut latency = encoder.encode_descriptor(
            "turnpike_request_duration",
            "Time from the request's first byte to the response's last, by API, stage and route.",
            Some(&seconds),
            MetricType::Histogram,
        )?;
        for (labels, route) in self.routes() {
            encode_histogram(latency.encode_family(&labels)?, &route.latency)?;
        }

        let mut integration = encoder.encode_descriptor(
            "turnpike_integration_duration",
            "Time spent in the integration (backend, function or mock), by API, stage and route.",
            Some(&seconds),
            MetricType::Histogram,
        )?;
        for (labels, route) in self.routes() {
            encode_histogram(
                integration.encode_family(&labels)?,
                &route.integration_latency,
            )?;
        }
        Ok(())
    }

    fn encode_process(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let info = [
            ("version", self.version.as_str()),
            ("driver", self.driver.as_str()),
        ];
        let mut family = encoder.encode_descriptor(
            "turnpike_info",
            "Version and I/O driver (always 1).",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(1u64).encode(family.encode_family(&info)?)?;
        gauge(
            encoder,
            "turnpike_workers",
            "Worker threads (one per core).",
            self.workers as u64,
        )?;
        gauge(
            encoder,
            "turnpike_config_version",
            "Version of the applied config.",
            self.config_version,
        )?;

        let mut connections = encoder.encode_descriptor(
            "turnpike_worker_connections",
            "Client connections open, by worker.",
            None,
            MetricType::Gauge,
        )?;
        for (worker, reading) in self.reading.workers.iter().enumerate() {
            let labels = [("worker", worker)];
            ConstGauge::new(reading.connections).encode(connections.encode_family(&labels)?)?;
        }

        let mut accepted = encoder.encode_descriptor(
            "turnpike_connections_accepted",
            "Client connections accepted, by worker.",
            None,
            MetricType::Counter,
        )?;
        for (worker, reading) in self.reading.workers.iter().enumerate() {
            let labels = [("worker", worker)];
            ConstCounter::new(reading.accepted).encode(accepted.encode_family(&labels)?)?;
        }

        let mut generation = encoder.encode_descriptor(
            "turnpike_worker_config_generation",
            "Generation of the config snapshot each worker serves with.",
            None,
            MetricType::Gauge,
        )?;
        for (worker, reading) in self.reading.workers.iter().enumerate() {
            let labels = [("worker", worker)];
            ConstGauge::new(reading.config_generation)
                .encode(generation.encode_family(&labels)?)?;
        }

        let mut handshakes = encoder.encode_descriptor(
            "turnpike_tls_handshakes",
            "Client TLS handshakes on https listeners: completed (full or resumed) or failed, and why.",
            None,
            MetricType::Counter,
        )?;
        for (i, result) in turnpike_core::metrics::HANDSHAKE_OUTCOMES
            .iter()
            .enumerate()
        {
            let total: u64 = self
                .reading
                .workers
                .iter()
                .map(|w| w.tls_handshakes[i])
                .sum();
            ConstCounter::new(total).encode(handshakes.encode_family(&[("result", *result)])?)?;
        }

        if !self.access_logs.is_empty() {
            let mut written = encoder.encode_descriptor(
                "turnpike_access_log_lines",
                "Access log lines written, by destination.",
                None,
                MetricType::Counter,
            )?;
            for log in &self.access_logs {
                let labels = [("destination", log.destination.as_str())];
                ConstCounter::new(log.written_lines).encode(written.encode_family(&labels)?)?;
            }
            let mut dropped = encoder.encode_descriptor(
                "turnpike_access_log_dropped_lines",
                "Access log lines dropped because the destination's writer fell behind or \
                 failed, by destination.",
                None,
                MetricType::Counter,
            )?;
            for log in &self.access_logs {
                let labels = [("destination", log.destination.as_str())];
                ConstCounter::new(log.dropped_lines).encode(dropped.encode_family(&labels)?)?;
            }
        }
        if let Some(stats) = ProcessStats::read() {
            stats.encode(encoder)?;
        }
        self.encode_functions(encoder)
    }

    /// Per function: invocations, errors, throttles, timeouts, restarts, time in runtimes
    /// and in the queue, and what waits now.
    fn encode_functions(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        if self.functions.is_empty() {
            return Ok(());
        }
        type Read = fn(&crate::plane::FunctionReading) -> u64;
        let counters: [(&str, &str, Read); 7] = [
            (
                "turnpike_function_invocations",
                "Invocations handed to a runtime, by function.",
                |f| f.invocations,
            ),
            (
                "turnpike_function_errors",
                "Invocations that ended in the function's error or a runtime crash, by function.",
                |f| f.errors,
            ),
            (
                "turnpike_function_throttles",
                "Invocations refused on a full queue (503), by function.",
                |f| f.throttles,
            ),
            (
                "turnpike_function_timeouts",
                "Invocations that overran the function's timeout (504), by function.",
                |f| f.timeouts,
            ),
            (
                "turnpike_function_restarts",
                "Runtime processes started again after exiting or being killed, by function.",
                |f| f.restarts,
            ),
            (
                "turnpike_function_duration_microseconds",
                "Time runtimes spent on invocations, summed, by function.",
                |f| f.duration_us,
            ),
            (
                "turnpike_function_queue_wait_microseconds",
                "Time invocations waited for a runtime, summed, by function.",
                |f| f.queue_wait_us,
            ),
        ];
        for (name, help, read) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for f in &self.functions {
                ConstCounter::new(read(f))
                    .encode(family.encode_family(&[("function", f.name.as_str())])?)?;
            }
        }
        let mut queued = encoder.encode_descriptor(
            "turnpike_function_queued",
            "Invocations waiting for a runtime now, by function.",
            None,
            MetricType::Gauge,
        )?;
        for f in &self.functions {
            ConstGauge::new(f.queued)
                .encode(queued.encode_family(&[("function", f.name.as_str())])?)?;
        }
        Ok(())
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.encode_process(&mut encoder)?;
        self.encode_routes(&mut encoder)
    }
}

/// A gauge family with one sample and no labels.
/// What `/proc/self` says of this process (the Prometheus client libraries' `process_*`).
#[derive(Debug, Clone, Copy, Default)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: Option<f64>,
    open_fds: u64,
    max_fds: u64,
    threads: u64,
}

impl ProcessStats {
    /// `None` where `/proc` cannot be read.
    fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // proc(5): utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24 (1-based,
        // counted from the pid); `rest` starts at field 3.
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        // Hidden under systemd's ProcSubset=pid: then no start time.
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("btime ")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        });
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct it is given.
        let max_fds = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            limit.rlim_cur
        } else {
            0
        };
        Some(ProcessStats {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            resident_bytes: field(24)? * page,
            virtual_bytes: field(23)?,
            start_time_seconds: boot
                .zip(field(22))
                .map(|(b, t)| b as f64 + t as f64 / ticks),
            open_fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64),
            max_fds,
            threads: field(20)?,
        })
    }

    fn encode(&self, encoder: &mut DescriptorEncoder) -> fmt::Result {
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;
        ConstCounter::new(self.cpu_seconds).encode(encoder.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent in seconds.",
            Some(&seconds),
            MetricType::Counter,
        )?)?;
        ConstGauge::new(self.resident_bytes as i64).encode(encoder.encode_descriptor(
            "process_resident_memory",
            "Resident memory size in bytes.",
            Some(&bytes),
            MetricType::Gauge,
        )?)?;
        ConstGauge::new(self.virtual_bytes as i64).encode(encoder.encode_descriptor(
            "process_virtual_memory",
            "Virtual memory size in bytes.",
            Some(&bytes),
            MetricType::Gauge,
        )?)?;
        if let Some(start) = self.start_time_seconds {
            ConstGauge::new(start).encode(encoder.encode_descriptor(
                "process_start_time",
                "Start time of the process since unix epoch in seconds.",
                Some(&seconds),
                MetricType::Gauge,
            )?)?;
        }
        gauge(
            encoder,
            "process_open_fds",
            "Number of open file descriptors.",
            self.open_fds,
        )?;
        gauge(
            encoder,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            self.max_fds,
        )?;
        gauge(
            encoder,
            "process_threads",
            "Number of OS threads in the process.",
            self.threads,
        )
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> fmt::Result {
    ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// Buckets with their `le` in seconds; the encoder makes the counts cumulative and writes the
/// sum (converted here from microseconds to seconds) and the count.
fn encode_histogram(mut encoder: MetricEncoder, reading: &HistogramReading) -> fmt::Result {
    let buckets: [(f64, u64); BUCKETS] = std::array::from_fn(|i| {
        let le = LATENCY_BOUNDS_SECONDS
            .get(i)
            .copied()
            .unwrap_or(f64::INFINITY);
        (le, reading.counts[i])
    });
    encoder.encode_histogram::<NoLabelSet>(
        reading.sum_micros as f64 / 1e6,
        reading.count(),
        &buckets,
        None,
    )
}

#[cfg(test)]
mod tests {
    use turnpike_core::metrics::{MetricsRegistry, SeriesKey, WorkerReading};

    use super::*;

    fn info() -> Info<'static> {
        Info {
            version: "0.1.0",
            driver: "io_uring",
            config_version: 7,
            workers: 2,
            access_logs: &[],
            functions: &[],
        }
    }

    fn key(api: &str, stage: &str, route: &str) -> SeriesKey {
        SeriesKey {
            api: api.to_owned(),
            stage: stage.to_owned(),
            route: route.to_owned(),
        }
    }

    /// Two workers; `GET /users/{id}` served three requests, one of them a 404 with no
    /// integration; one unrouted 404.
    fn small_reading() -> MetricsReading {
        let mut registry = MetricsRegistry::new(2);
        let users = registry.series(key("shop", "prod", "GET /users/{id}"));
        users[0].record(200, 500, Some(300));
        users[1].record(200, 501, Some(400));
        users[1].record(404, 12_000_000, None);
        registry.series(key("shop", "prod", r#"GET /a"b\c"#))[0].record(503, 2_000, Some(1_000));
        registry.unrouted()[0].record(404, 40, None);
        let mut reading = registry.read();
        reading.workers = vec![
            WorkerReading {
                connections: 5,
                config_generation: 3,
                tls_handshakes: [2, 1, 0, 0, 0, 0, 0, 0],
                accepted: 9,
            },
            WorkerReading {
                connections: 0,
                config_generation: 2,
                ..WorkerReading::default()
            },
        ];
        reading
    }

    /// A sample line, parsed: name, labels (unescaped), value.
    type Sample = (String, Vec<(String, String)>, f64);

    /// Parses `name{label="value",...} value` as the text format defines it; `None` if the
    /// line is anything else.
    fn parse_sample(line: &str) -> Option<Sample> {
        let name_end = line.find(['{', ' '])?;
        let name = &line[..name_end];
        let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        if !name_ok {
            return None;
        }
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(inner) = rest.strip_prefix('{') {
            rest = inner;
            while !rest.starts_with('}') {
                let eq = rest.find("=\"")?;
                let label = &rest[..eq];
                let label_ok = label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !label_ok {
                    return None;
                }
                let mut value = String::new();
                let mut chars = rest[eq + 2..].char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break eq + 2 + i + 1,
                        (_, '\\') => match chars.next()?.1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            _ => return None,
                        },
                        (_, c) => value.push(c),
                    }
                };
                labels.push((label.to_owned(), value));
                rest = &rest[end..];
                if let Some(next) = rest.strip_prefix(',') {
                    // OpenMetrics allows no trailing comma.
                    if next.starts_with('}') {
                        return None;
                    }
                    rest = next;
                } else if !rest.starts_with('}') {
                    return None;
                }
            }
            rest = &rest[1..];
        }
        let value = rest.strip_prefix(' ')?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().ok()?,
        };
        Some((name.to_owned(), labels, value))
    }

    fn samples(body: &str) -> Vec<Sample> {
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}")))
            .collect()
    }

    fn assert_has_line(body: &str, line: &str) {
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }

    #[test]
    fn the_sample_parser_refuses_what_is_not_a_sample() {
        assert_eq!(
            parse_sample(r#"a_b{x="1",y="q\"\\\n"} 2.5"#),
            Some((
                "a_b".to_owned(),
                vec![
                    ("x".to_owned(), "1".to_owned()),
                    ("y".to_owned(), "q\"\\\n".to_owned())
                ],
                2.5
            ))
        );
        assert!(parse_sample("up 1").is_some());
        for line in [
            "",
            "up",
            "up 1 2",
            "1up 1",
            "up{} x",
            r#"up{a="b} 1"#,
            r#"up{a="\x"} 1"#,
            r#"up{a="b"c="d"} 1"#,
            r#"up{,a="b"} 1"#,
            r#"up{a="b",} 1"#,
        ] {
            assert_eq!(parse_sample(line), None, "{line:?}");
        }
    }

    #[test]
    fn every_line_is_a_comment_or_a_sample() {
        let body = encode(&small_reading(), &info());
        assert!(body.ends_with("\n# EOF\n"), "{body}");
        for line in body.lines() {
            let comment = ["# HELP ", "# TYPE ", "# UNIT "]
                .iter()
                .any(|p| line.starts_with(p))
                || line == "# EOF";
            assert!(
                comment || parse_sample(line).is_some(),
                "neither comment nor sample: {line:?}"
            );
        }
    }

    #[test]
    fn counters_and_gauges() {
        let body = encode(&small_reading(), &info());
        let users = r#"api="shop",stage="prod",route="GET /users/{id}""#;
        for line in [
            "# TYPE turnpike_requests counter".to_owned(),
            format!("turnpike_requests_total{{{users}}} 3"),
            r#"turnpike_requests_total{api="",stage="",route=""} 1"#.to_owned(),
            "# TYPE turnpike_responses counter".to_owned(),
            format!(r#"turnpike_responses_total{{{users},class="2xx",code="200"}} 2"#),
            format!(r#"turnpike_responses_total{{{users},class="4xx",code="404"}} 1"#),
            // 4xx and 5xx are there from the start, zero or not.
            format!(r#"turnpike_responses_total{{{users},class="5xx",code="500"}} 0"#),
            r#"turnpike_responses_total{api="",stage="",route="",class="4xx",code="404"} 1"#
                .to_owned(),
            r#"turnpike_worker_connections{worker="0"} 5"#.to_owned(),
            r#"turnpike_worker_connections{worker="1"} 0"#.to_owned(),
            r#"turnpike_worker_config_generation{worker="0"} 3"#.to_owned(),
            r#"turnpike_worker_config_generation{worker="1"} 2"#.to_owned(),
            r#"turnpike_tls_handshakes_total{result="full"} 2"#.to_owned(),
            r#"turnpike_tls_handshakes_total{result="resumed"} 1"#.to_owned(),
            r#"turnpike_tls_handshakes_total{result="refused"} 0"#.to_owned(),
            "# TYPE turnpike_config_version gauge".to_owned(),
            "turnpike_config_version 7".to_owned(),
            "turnpike_workers 2".to_owned(),
            "# TYPE turnpike_info gauge".to_owned(),
            r#"turnpike_info{version="0.1.0",driver="io_uring"} 1"#.to_owned(),
        ] {
            assert_has_line(&body, &line);
        }
        // Classes never counted and not always written are left out.
        assert!(!body.contains(r#"class="1xx""#));
        assert!(!body.contains(r#"class="3xx""#));
    }

    #[test]
    fn accept_chooses_the_format() {
        use Format::*;
        let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        for (accept, want) in [
            (None, Text),
            (Some("*/*"), Text),
            (Some("text/plain"), Text),
            (Some(prometheus_3), OpenMetrics),
            (
                Some("application/openmetrics-text; version=1.0.0"),
                OpenMetrics,
            ),
            (Some("application/openmetrics-text;q=0, text/plain"), Text),
            (
                Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
                Text,
            ),
        ] {
            assert_eq!(Format::from_accept(accept), want, "{accept:?}");
        }
    }

    #[test]
    fn the_text_format_types_counters_by_their_samples() {
        let text = to_text_format(&encode(&small_reading(), &info()));
        assert!(!text.contains("# EOF") && !text.contains("# UNIT "));
        assert_has_line(&text, "# TYPE turnpike_requests_total counter");
        assert!(
            text.lines()
                .any(|l| l.starts_with("# HELP turnpike_requests_total "))
        );
        assert_has_line(&text, "# TYPE turnpike_request_duration_seconds histogram");
        assert_has_line(&text, "# TYPE turnpike_workers gauge");
        assert_has_line(&text, "# TYPE process_cpu_seconds_total counter");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(parse_sample(line).is_some(), "{line:?}");
        }
    }

    #[test]
    fn histograms_are_cumulative_with_sum_in_seconds() {
        let body = encode(&small_reading(), &info());
        let users = r#"api="shop",stage="prod",route="GET /users/{id}""#;
        let name = "turnpike_request_duration_seconds";
        let mut expected = vec![
            format!("# TYPE {name} histogram"),
            format!("# UNIT {name} seconds"),
            format!("{name}_sum{{{users}}} 12.001001"),
            format!("{name}_count{{{users}}} 3"),
        ];
        // 500 µs is in le=0.0005; 501 µs from le=0.001 on; 12 s only in +Inf.
        let cumulative = [1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2];
        let les = [
            "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1.0", "2.5", "5.0", "10.0",
        ];
        for (le, n) in les.iter().zip(cumulative) {
            expected.push(format!(r#"{name}_bucket{{le="{le}",{users}}} {n}"#));
        }
        expected.push(format!(r#"{name}_bucket{{le="+Inf",{users}}} 3"#));
        let integration = "turnpike_integration_duration_seconds";
        expected.push(format!("{integration}_sum{{{users}}} 0.0007"));
        expected.push(format!("{integration}_count{{{users}}} 2"));
        expected.push(format!(r#"{integration}_bucket{{le="0.0005",{users}}} 2"#));
        expected.push(format!(r#"{integration}_bucket{{le="+Inf",{users}}} 2"#));
        for line in expected {
            assert_has_line(&body, &line);
        }
    }

    #[test]
    fn every_histogram_is_cumulative_and_ends_in_its_count() {
        let body = encode(&small_reading(), &info());
        let samples = samples(&body);
        let mut histograms = 0;
        for (name, labels, count) in &samples {
            let Some(family) = name.strip_suffix("_count") else {
                continue;
            };
            histograms += 1;
            let bucket_name = format!("{family}_bucket");
            let buckets: Vec<_> = samples
                .iter()
                .filter(|(n, l, _)| {
                    *n == bucket_name && l.iter().filter(|(k, _)| k != "le").eq(labels.iter())
                })
                .collect();
            assert_eq!(buckets.len(), BUCKETS, "{name} {labels:?}");
            assert!(buckets.windows(2).all(|w| w[0].2 <= w[1].2));
            let last = buckets[BUCKETS - 1];
            assert_eq!(last.1[0], ("le".to_owned(), "+Inf".to_owned()));
            assert_eq!(last.2, *count);
        }
        // Two families for the unrouted requests and each of two routes.
        assert_eq!(histograms, 2 * 3);
    }

    #[test]
    fn label_values_are_escaped() {
        let body = encode(&small_reading(), &info());
        assert!(
            body.lines().any(|l| l
                == r#"turnpike_requests_total{api="shop",stage="prod",route="GET /a\"b\\c"} 1"#),
            "{body}"
        );
        let routes: Vec<_> = samples(&body)
            .into_iter()
            .filter(|(name, _, _)| name == "turnpike_requests_total")
            .map(|(_, labels, _)| labels[2].1.clone())
            .collect();
        assert_eq!(routes, ["", r#"GET /a"b\c"#, "GET /users/{id}"]);
    }

    #[test]
    fn an_empty_reading_still_has_the_unrouted_series_and_process_gauges() {
        let body = encode(
            &MetricsReading::default(),
            &Info {
                version: "0.1.0",
                driver: "epoll",
                config_version: 0,
                workers: 0,
                access_logs: &[],
                functions: &[],
            },
        );
        for line in [
            r#"turnpike_requests_total{api="",stage="",route=""} 0"#,
            r#"turnpike_request_duration_seconds_bucket{le="+Inf",api="",stage="",route=""} 0"#,
            r#"turnpike_request_duration_seconds_sum{api="",stage="",route=""} 0.0"#,
            r#"turnpike_info{version="0.1.0",driver="epoll"} 1"#,
            "turnpike_workers 0",
        ] {
            assert_has_line(&body, line);
        }
        assert!(!body.contains("turnpike_worker_connections{"));
    }

    #[test]
    fn content_type_is_openmetrics_text() {
        assert!(CONTENT_TYPE.starts_with("application/openmetrics-text; version=1.0.0"));
    }
}
