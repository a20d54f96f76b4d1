//! Command line: the flags (wrk-compatible where wrk has one) and their conversion into a
//! checked [`Plan`]. Every refusal here names the flag that is wrong.

use std::{io::IsTerminal, path::PathBuf, time::Duration};

use clap::Parser;
use turnpike_tuning::driver::DriverChoice;

use crate::{
    request::{RequestSet, RequestTemplate, parse_header_arg, parse_header_values_arg},
    run::Plan,
    scenario,
    target::Target,
    tls::{TlsClient, TlsError, TlsOptions},
};

/// HTTP/1.1 load generator: closed loop (max throughput, like wrk) or constant rate with
/// coordinated-omission correction (like wrk2).
#[derive(Debug, Parser)]
#[command(name = "turnpike-load", version, after_help = EXAMPLES)]
pub struct Args {
    /// Target URL, http:// or https://host[:port][/path]. With --scenario, only the scheme, host
    /// and port are used.
    pub url: String,
    /// Open connections, spread over the threads.
    #[arg(short = 'c', long, default_value_t = 64)]
    pub connections: usize,
    /// Load threads, each with its own runtime.
    #[arg(short = 't', long, default_value_t = 1)]
    pub threads: usize,
    /// Measured duration (e.g. 10s, 500ms, 2m); -z as in oha and hey. Default 10s, or, with
    /// -n alone, until the N requests are done.
    #[arg(short = 'd', long, short_alias = 'z', value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Number of measured requests (as in oha and hey), shared out over the connections; with
    /// --rate, the window is the time in which N requests fall due. With -d/-z too, the run
    /// ends at whichever comes first.
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub count: Option<u64>,
    /// Warm-up before the measured window; its requests are not reported.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Constant request rate (requests/s over all connections): the open loop.
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Requests written at once per connection (closed loop; in the open loop, the most that
    /// are batched when already due).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// A fresh TCP connection per request (sends Connection: close).
    #[arg(long)]
    pub new_conn: bool,
    /// https://: trust the certificates in this PEM file (a self-signed server certificate, or
    /// the CA that signed it).
    #[arg(long, value_name = "PATH")]
    pub cacert: Option<PathBuf>,
    /// https://: accept any server certificate (the handshake signature is still checked).
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,
    /// https://: the server name to send (SNI) and verify. Default: the URL's host; when that
    /// is an IP address, no SNI is sent.
    #[arg(long, value_name = "NAME")]
    pub sni: Option<String>,
    /// https://: keep a TLS session cache, so that new connections (--new-conn: one per
    /// request) resume a session instead of making a full handshake (default: full handshakes).
    #[arg(long)]
    pub tls_resume: bool,
    /// Request method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// A header whose value changes from request to request: NAME=FILE, FILE holding one
    /// value per line (blank lines and lines starting with # are skipped), e.g. 10,000 API
    /// keys with x-api-key=keys.txt. Each request carries one value drawn at random. Every
    /// (request, value) pair is serialized before the run, so a draw allocates nothing.
    #[arg(long, value_name = "NAME=FILE", conflicts_with = "scenario")]
    pub header_values: Option<String>,
    /// Request body from a file (Content-Length is set from it).
    #[arg(long, conflicts_with = "body")]
    pub body_file: Option<PathBuf>,
    /// Request body as a string.
    #[arg(long)]
    pub body: Option<String>,
    /// Request mix from a YAML or JSON scenario file (see BENCHMARKS.md).
    #[arg(long, conflicts_with_all = ["body", "body_file", "headers"])]
    pub scenario: Option<PathBuf>,
    /// Give up on a response (or a connect) after this long; counted as a timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write the machine-readable report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency-by-percentile plot (SVG) here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Pin load threads to these CPUs, round-robin (e.g. 1 or 0,2 or 2-3).
    #[arg(long, value_parser = parse_cpu_list)]
    pub pin: Option<CpuList>,
    /// Runtime driver: auto (io_uring, else epoll), io_uring or epoll.
    #[arg(long, default_value = "auto")]
    pub driver: DriverChoice,
    /// No per-second progress line on stderr.
    #[arg(short = 'q', long, conflicts_with = "progress")]
    pub quiet: bool,
    /// Print the per-second progress line on stderr even when it is not a terminal (by
    /// default it is printed only to a terminal).
    #[arg(long)]
    pub progress: bool,
}

const EXAMPLES: &str = "Examples:
  turnpike-load -c 64 -d 10s http://127.0.0.1:8080/
  turnpike-load -n 100000 -c 50 http://127.0.0.1:8080/          (like hey/oha: 100,000 requests)
  turnpike-load --rate 20000 -c 64 -d 30s --warmup 2s --json out.json --svg out.svg http://127.0.0.1:8080/
  turnpike-load -m POST --body-file 1MiB.bin -H 'Content-Type: application/octet-stream' http://127.0.0.1:8080/upload
  turnpike-load --scenario mix.yaml http://127.0.0.1:8080
  turnpike-load --header-values x-api-key=keys.txt -c 64 -d 10s http://127.0.0.1:8080/
  turnpike-load --cacert cert.pem -c 64 -d 10s https://127.0.0.1:8443/
  turnpike-load --insecure --new-conn --tls-resume -c 16 https://127.0.0.1:8443/";

/// The measured window when neither -d/-z nor -n is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Why the flags do not make a runnable plan.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    #[error(transparent)]
    Request(#[from] crate::request::RequestError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

fn flag(flag: &'static str, reason: impl Into<String>) -> CliError {
    CliError::Flag {
        flag,
        reason: reason.into(),
    }
}

impl Args {
    /// Checks the flags, resolves the target and serializes the requests.
    pub fn into_plan(self) -> Result<Plan, CliError> {
        if self.threads == 0 {
            return Err(flag("--threads", "must be at least 1"));
        }
        if self.connections < self.threads {
            return Err(flag(
                "--connections",
                format!("must be at least --threads ({})", self.threads),
            ));
        }
        if self.pipeline == 0 {
            return Err(flag("--pipeline", "must be at least 1"));
        }
        if self.new_conn && self.pipeline > 1 {
            return Err(flag("--pipeline", "cannot pipeline with --new-conn"));
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(flag("--duration", "must be more than 0"));
        }
        if self.count == Some(0) {
            return Err(flag("--requests", "must be at least 1"));
        }
        if self.timeout.is_zero() {
            return Err(flag("--timeout", "must be more than 0"));
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(flag(
                "--rate",
                "must be a positive number of requests per second",
            ));
        }
        let target = Target::parse(&self.url)?;
        let tls = self.tls(&target)?;
        let (templates, credentials) = match &self.scenario {
            Some(path) => {
                let s = scenario::load(path)?;
                (s.requests, s.credentials)
            }
            None => {
                let request = self.cli_request()?;
                let values = match &self.header_values {
                    Some(arg) => {
                        let v =
                            parse_header_values_arg(arg).map_err(|e| flag("--header-values", e))?;
                        if request
                            .headers
                            .iter()
                            .any(|(name, _)| name.eq_ignore_ascii_case(&v.header))
                        {
                            return Err(flag(
                                "--header-values",
                                format!("{} is also given with --header", v.header),
                            ));
                        }
                        Some(v)
                    }
                    None => None,
                };
                (vec![request], values)
            }
        };
        let requests = RequestSet::build(
            &target.authority,
            &templates,
            credentials.as_ref(),
            self.new_conn,
            self.pipeline,
        )?;
        Ok(Plan {
            target,
            tls,
            requests,
            threads: self.threads,
            connections: self.connections,
            pipeline: self.pipeline,
            rate: self.rate,
            warmup: self.warmup,
            duration: match (self.duration, self.count) {
                (None, None) => Some(DEFAULT_DURATION),
                (d, _) => d,
            },
            count: self.count,
            timeout: self.timeout,
            new_conn: self.new_conn,
            driver: self.driver,
            pin: self.pin.map(|c| c.0).unwrap_or_default(),
            progress: self.progress || (!self.quiet && std::io::stderr().is_terminal()),
        })
    }

    /// The TLS client for an https:// target; the TLS flags are refused with http://.
    fn tls(&self, target: &Target) -> Result<Option<TlsClient>, CliError> {
        let opts = TlsOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
            sni: self.sni.clone(),
            resume: self.tls_resume,
        };
        if !target.https {
            let given = [
                ("--cacert", opts.cacert.is_some()),
                ("--insecure", opts.insecure),
                ("--sni", opts.sni.is_some()),
                ("--tls-resume", opts.resume),
            ];
            return match given.iter().find(|(_, set)| *set) {
                Some((name, _)) => Err(flag(name, "only with an https:// URL")),
                None => Ok(None),
            };
        }
        Ok(Some(TlsClient::new(&target.host, &opts)?))
    }

    /// The single request of plain URL mode.
    fn cli_request(&self) -> Result<RequestTemplate, CliError> {
        crate::request::check_method(&self.method).map_err(|e| flag("--method", e))?;
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            headers.push(parse_header_arg(h).map_err(|e| flag("--header", e))?);
        }
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => b.clone().into_bytes(),
            (None, Some(p)) => std::fs::read(p)
                .map_err(|e| flag("--body-file", format!("cannot read {}: {e}", p.display())))?,
            (None, None) => Vec::new(),
        };
        // Checked again here so a bad URL path is reported as the URL's fault.
        let target_path = Target::parse(&self.url).map(|t| t.path)?;
        Ok(RequestTemplate {
            method: self.method.clone(),
            path: target_path,
            headers,
            body,
            weight: 1,
            credentials: self.header_values.is_some(),
        })
    }
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (try 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

/// CPUs named by `--pin` (a newtype so clap takes the list as one value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses `0`, `0,2`, `2-3`, `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<CpuList, String> {
    let bad = || format!("{s:?} is not a CPU list (e.g. 1 or 0,2 or 2-3)");
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b >= 1024 {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(CpuList(cpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    fn plan(args: &[&str]) -> Plan {
        let all = [&["turnpike-load"], args, &["http://127.0.0.1:1/"]].concat();
        Args::try_parse_from(all)
            .expect("flags parse")
            .into_plan()
            .expect("plan")
    }

    #[test]
    fn count_and_duration_flags_as_in_oha_and_hey() {
        let p = plan(&[]);
        assert_eq!((p.duration, p.count), (Some(Duration::from_secs(10)), None));
        let p = plan(&["-z", "3s"]);
        assert_eq!((p.duration, p.count), (Some(Duration::from_secs(3)), None));
        let p = plan(&["--duration", "2s"]);
        assert_eq!(p.duration, Some(Duration::from_secs(2)));
        // -n alone: no time limit.
        let p = plan(&["-n", "500"]);
        assert_eq!((p.duration, p.count), (None, Some(500)));
        let p = plan(&["-n", "500", "-d", "1s", "-q"]);
        assert_eq!(
            (p.duration, p.count),
            (Some(Duration::from_secs(1)), Some(500))
        );
        assert!(!p.progress);
        assert!(plan(&["--progress"]).progress);
        let refused = |args: &[&str]| {
            let all = [&["turnpike-load"], args, &["http://127.0.0.1:1/"]].concat();
            Args::try_parse_from(all)
                .map_err(|e| e.to_string())
                .and_then(|a| a.into_plan().map_err(|e| e.to_string()))
                .expect_err("refused")
        };
        assert!(refused(&["-n", "0"]).contains("--requests"));
        assert!(refused(&["-z", "0s"]).contains("--duration"));
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("1"), Ok(CpuList(vec![1])));
        assert_eq!(parse_cpu_list("0,2-3"), Ok(CpuList(vec![0, 2, 3])));
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
