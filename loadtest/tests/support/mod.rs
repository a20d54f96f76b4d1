//! Test support: a small real HTTP/1.1 origin on loopback that counts what it serves, and a
//! helper to run the real `turnpike-load` binary.
//!
//! The origin is deliberately plain (a std thread per connection, keep-alive, pipelining,
//! request bodies skipped by Content-Length) so that the generator's counts can be checked
//! against an independent count. It can answer with chunked bodies and can stall: pause every
//! response for the first `stall` of each second, as a server in a GC pause would. It can speak
//! TLS (rustls, the certificate in `tests/fixtures`: self-signed ECDSA P-256 for
//! bench.turnpike.test and 127.0.0.1, valid for a century, made with
//! `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
//! -subj /CN=bench.turnpike.test -addext subjectAltName=DNS:bench.turnpike.test,IP:127.0.0.1
//! -addext basicConstraints=critical,CA:FALSE ...`), and then remembers the SNI each
//! connection sent. It can also be slow on purpose (`per_request`): one request at a time over
//! all connections, each taking a fixed time, like a saturated single-threaded backend.

// Shared by several test binaries, each of which uses only a part of it.
#![allow(dead_code)]

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Output},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// How the origin behaves.
#[derive(Debug, Clone, Default)]
pub struct OriginOptions {
    /// Answer with a chunked body instead of a Content-Length one.
    pub chunked: bool,
    /// Pause responses during the first `stall` of every second.
    pub stall: Option<Duration>,
    /// Remember the values of this request header.
    pub record_header: Option<String>,
    /// Serve TLS with the fixture certificate.
    pub tls: bool,
    /// Serve one request at a time over all connections, each taking this long: the origin
    /// then manages at most `1 / per_request` requests per second, whatever the offered load.
    pub per_request: Option<Duration>,
}

/// A running origin; stops accepting when dropped.
pub struct Origin {
    pub addr: SocketAddr,
    tls: bool,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
}

impl Origin {
    pub fn start(opts: OriginOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        let origin = Self {
            addr,
            requests: Arc::default(),
            connections: Arc::default(),
            tls: opts.tls,
            seen: Arc::default(),
            stop: Arc::default(),
        };
        let tls = opts.tls.then(server_tls);
        let (requests, connections, seen, stop) = (
            origin.requests.clone(),
            origin.connections.clone(),
            origin.seen.clone(),
            origin.stop.clone(),
        );
        let epoch = Instant::now();
        let one_at_a_time = Arc::new(Mutex::new(()));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                connections.fetch_add(1, Ordering::Relaxed);
                let (requests, seen, opts) = (requests.clone(), seen.clone(), opts.clone());
                let tls = tls.clone();
                let one_at_a_time = one_at_a_time.clone();
                std::thread::spawn(move || match tls {
                    None => serve(stream, &opts, epoch, &requests, &seen, &one_at_a_time),
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut stream = rustls::StreamOwned::new(conn, stream);
                        // Finish the handshake first, so the SNI is known before any request.
                        while stream.conn.is_handshaking() {
                            if stream.conn.complete_io(&mut stream.sock).is_err() {
                                return;
                            }
                        }
                        let sni = stream.conn.server_name().unwrap_or("(none)").to_owned();
                        seen.lock().expect("seen").insert(format!("sni {sni}"));
                        serve(stream, &opts, epoch, &requests, &seen, &one_at_a_time);
                    }
                });
            }
        });
        origin
    }

    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// The recorded header values and, with TLS, `sni NAME` (or `sni (none)`) for each SNI seen.
    pub fn seen_headers(&self) -> BTreeSet<String> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// The fixture certificate and key.
pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn server_tls() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let certs = CertificateDer::pem_file_iter(fixture("cert.pem"))
        .expect("fixture cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("fixture cert parses");
    let key = PrivateKeyDer::from_pem_file(fixture("key.pem")).expect("fixture key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server config");
    Arc::new(config)
}

/// Serves one connection until the client closes it.
fn serve(
    mut stream: impl Read + Write,
    opts: &OriginOptions,
    epoch: Instant,
    requests: &AtomicU64,
    seen: &Mutex<BTreeSet<String>>,
    one_at_a_time: &Mutex<()>,
) {
    let mut buf = Vec::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut close = false;
        // Answer every complete request in the buffer (pipelining) with one write.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let head_len = match req.parse(&buf) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let mut body_len = 0usize;
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    body_len = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                }
                if h.name.eq_ignore_ascii_case("connection") && h.value == b"close" {
                    close = true;
                }
                if opts
                    .record_header
                    .as_deref()
                    .is_some_and(|r| h.name.eq_ignore_ascii_case(r))
                {
                    let v = String::from_utf8_lossy(h.value).into_owned();
                    seen.lock().expect("seen").insert(v);
                }
            }
            if buf.len() < head_len + body_len {
                break;
            }
            buf.drain(..head_len + body_len);
            requests.fetch_add(1, Ordering::SeqCst);
            if let Some(took) = opts.per_request {
                let _turn = one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
                std::thread::sleep(took);
            }
            if opts.chunked {
                out.extend_from_slice(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                );
            } else {
                out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
            }
            if close {
                break;
            }
        }
        if let Some(stall) = opts.stall {
            let into_second =
                Duration::from_nanos((epoch.elapsed().as_nanos() % 1_000_000_000) as u64);
            if into_second < stall {
                std::thread::sleep(stall - into_second);
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

/// Runs `turnpike-load` with `args`, with a hard time limit so a hang fails the test.
pub fn load(args: &[&str]) -> Output {
    load_env(args, &[])
}

pub fn load_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_turnpike-load"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn turnpike-load");
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                if done.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: plain kill(2) of the child this test spawned.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
        })
    };
    let out = child.wait_with_output().expect("wait turnpike-load");
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    out
}

/// Runs the generator with `--json` and returns the parsed report.
pub fn load_json(args: &[&str]) -> (serde_json::Value, Output) {
    let dir = tempdir();
    let path = dir.join("report.json");
    let path_s = path.to_str().expect("utf-8 path").to_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-q", "--json", &path_s]);
    let out = load(&all);
    assert!(
        out.status.success(),
        "turnpike-load {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("json report written");
    let _ = std::fs::remove_dir_all(&dir);
    (
        serde_json::from_str(&text).expect("json report parses"),
        out,
    )
}

/// A fresh directory under the system temp dir.
pub fn tempdir() -> std::path::PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "turnpike-load-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A loopback port with nothing listening on it.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

/// One load test at a time within a test binary: a rate or latency check must not compete for
/// the CPUs.
#[allow(clippy::disallowed_types)] // std Mutex: test harness, not per-core code.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The unsigned integer at JSON pointer `path` of a report (panics, with the report, if absent).
pub fn u(v: &serde_json::Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// The number at JSON pointer `path` of a report (panics, with the report, if absent).
pub fn f(v: &serde_json::Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
}
