use std::{
    ffi::CString,
    fs::{self, OpenOptions},
    io::{ErrorKind, Read},
    os::unix::{
        ffi::OsStrExt,
        fs::{OpenOptionsExt, PermissionsExt},
        net::UnixDatagram,
    },
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread,
    time::{Duration, Instant, SystemTime},
};

use turnpike_core::access_log::LogDestination;

use super::{
    LogBuffer, LogSink, LogSinks, spawn_sighup_listener,
    writer::{WarnLimiter, push_timestamp},
};

const SHUTDOWN: Duration = Duration::from_secs(10);

fn file(path: &Path) -> LogDestination {
    LogDestination::File(path.to_path_buf())
}

/// Waits (up to 10 s) until `done` holds.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Keeps a test worker from outrunning the writer, where a test wants no line dropped.
fn pace(sink: &LogSink) {
    wait_for("the writer to catch up", || {
        sink.queued_batches() * 2 < sink.queue_capacity()
    });
}

fn push(buf: &mut LogBuffer, line: &str) {
    buf.push_line(line.as_bytes());
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: mkfifo(3) reads a NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo: {}", std::io::Error::last_os_error());
}

#[test]
fn same_key_same_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sinks = LogSinks::new(1);
    let a = sinks.get_or_open(&file(&dir.path().join("a.log")));
    let again = sinks.get_or_open(&file(&dir.path().join("a.log")));
    let b = sinks.get_or_open(&LogDestination::Stdout);
    assert!(Arc::ptr_eq(&a, &again));
    assert!(!Arc::ptr_eq(&a, &b));
    assert_eq!(b.key(), "stdout");
    assert!(sinks.get(a.key()).is_some());
    assert_eq!(sinks.sinks().len(), 2);
    assert!(sinks.shutdown(SHUTDOWN));
}

#[test]
fn two_workers_lines_arrive_whole_and_in_order() {
    const LINES: usize = 20_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let sinks = LogSinks::new(2);
    let sink = sinks.get_or_open(&file(&path));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let sink = Arc::clone(&sink);
            thread::spawn(move || {
                let mut buf = sink.buffer();
                for i in 0..LINES {
                    push(&mut buf, &format!("w{w} {i:06} GET /users/{i} 200"));
                    if i % 500 == 499 {
                        buf.flush();
                        pace(&sink);
                    }
                }
                // Dropping the buffer flushes the rest.
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.dropped_lines(), 0);
    assert_eq!(sink.written_lines(), 2 * LINES as u64);
    let mut next = [0usize; 2];
    for line in read_lines(&path) {
        let mut parts = line.split(' ');
        let w: usize = match parts.next() {
            Some("w0") => 0,
            Some("w1") => 1,
            other => panic!("torn line {other:?} in {line:?}"),
        };
        let i: usize = parts.next().and_then(|s| s.parse().ok()).expect("seq");
        assert_eq!(i, next[w], "worker {w} out of order");
        assert_eq!(line, format!("w{w} {i:06} GET /users/{i} 200"));
        next[w] += 1;
    }
    assert_eq!(next, [LINES, LINES]);
}

#[test]
fn line_api_commits_whole_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let sinks = LogSinks::new(1);
    let mut buf = sinks.get_or_open(&file(&path)).buffer();
    buf.line().extend_from_slice(b"never ended");
    buf.line().extend_from_slice(b"a");
    buf.end_line();
    buf.push_line(b"b\n");
    buf.end_line();
    assert_eq!(buf.staged_lines(), 3);
    buf.line().extend_from_slice(b"abandoned");
    buf.flush();
    assert_eq!(buf.staged_lines(), 0);
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(fs::read(&path).expect("read"), b"a\nb\n\n");
    assert_eq!(buf.sink().written_lines(), 3);
}

#[test]
fn file_is_appended_and_created_0640() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = dir.path().join("old.log");
    let new = dir.path().join("new.log");
    fs::write(&old, "kept\n").expect("seed");
    let sinks = LogSinks::new(1);
    for path in [&old, &new] {
        let mut buf = sinks.get_or_open(&file(path)).buffer();
        push(&mut buf, "line");
    }
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(read_lines(&old), ["kept", "line"]);
    assert_eq!(read_lines(&new), ["line"]);
    let mode = fs::metadata(&new).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o}");
    assert_eq!(mode & 0o600, 0o600, "mode {mode:o}");
}

#[test]
fn missing_directory_drops_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sinks = LogSinks::new(1);
    let sink = sinks.get_or_open(&file(&dir.path().join("nope/access.log")));
    let mut buf = sink.buffer();
    for i in 0..3 {
        push(&mut buf, &format!("{i}"));
    }
    buf.flush();
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.dropped_lines(), 3);
    assert_eq!(sink.written_lines(), 0);
}

/// Lines 0..half while the file is renamed and reopened, half..2*half after: nothing lost,
/// the renamed file holds a prefix and the new file the rest, and every line sent after the
/// reopen is in the new file.
#[test]
fn rename_then_reopen_loses_no_line() {
    const HALF: usize = 5_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let sinks = LogSinks::new(1);
    let sink = sinks.get_or_open(&file(&path));
    let (go_on, wait) = mpsc::channel::<()>();
    let worker = {
        let sink = Arc::clone(&sink);
        thread::spawn(move || {
            let mut buf = sink.buffer();
            for i in 0..2 * HALF {
                if i == HALF {
                    buf.flush();
                    wait.recv().expect("main thread");
                }
                push(&mut buf, &format!("{i:06}"));
                if i % 50 == 49 {
                    buf.flush();
                    pace(&sink);
                }
            }
        })
    };
    wait_for("some lines written", || sink.written_lines() >= 1_000);
    fs::rename(&path, &rotated).expect("rename");
    sinks.reopen();
    go_on.send(()).expect("worker");
    worker.join().expect("worker");
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.dropped_lines(), 0);

    let before = read_lines(&rotated);
    let after = read_lines(&path);
    assert!(before.len() >= 1_000);
    assert!(
        after.len() >= HALF,
        "{} lines after the reopen",
        after.len()
    );
    let all: Vec<String> = (0..2 * HALF).map(|i| format!("{i:06}")).collect();
    assert_eq!([before, after].concat(), all);
}

#[test]
fn sighup_reopens_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let sinks = Arc::new(LogSinks::new(1));
    spawn_sighup_listener(Arc::clone(&sinks)).expect("listener");
    let sink = sinks.get_or_open(&file(&path));
    let mut buf = sink.buffer();
    let mut sent = 0u64;
    let mut send = |buf: &mut LogBuffer| {
        push(buf, &format!("{sent:06}"));
        sent += 1;
        buf.flush();
        let want = sent;
        wait_for("the line written", || sink.written_lines() == want);
    };
    send(&mut buf);
    fs::rename(&path, &rotated).expect("rename");
    // SAFETY: raise(3) with a signal whose handler signal-hook installed above.
    assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < deadline, "SIGHUP did not reopen the file");
        send(&mut buf);
        thread::sleep(Duration::from_millis(5));
    }
    send(&mut buf);
    assert!(sinks.shutdown(SHUTDOWN));
    let all: Vec<String> = (0..sent).map(|i| format!("{i:06}")).collect();
    let after = read_lines(&path);
    assert!(!after.is_empty());
    assert_eq!([read_lines(&rotated), after].concat(), all);
}

/// A FIFO whose reader never reads: the writer blocks on a full pipe, the worker does not.
#[test]
fn stalled_fifo_never_blocks_the_worker() {
    const LINES: u64 = 100_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipe");
    mkfifo(&path);
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .expect("open the FIFO for reading");
    let sinks = LogSinks::new(1);
    let sink = sinks.get_or_open(&file(&path));
    let mut buf = sink.buffer();

    let start = Instant::now();
    for i in 0..LINES {
        push(&mut buf, &format!("{i:06} GET /prod/users 200 0.001"));
        if i % 100 == 99 {
            buf.flush();
        }
    }
    buf.flush();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "appending took {took:?}");
    assert!(sink.dropped_lines() > 0);

    let shut = Arc::new(AtomicBool::new(false));
    let drain = {
        let shut = Arc::clone(&shut);
        thread::spawn(move || {
            let mut data = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                // EOF counts only once the writer is gone: before it opened the FIFO, a read
                // finds no writer too.
                match reader.read(&mut chunk) {
                    Ok(0) if shut.load(Ordering::Acquire) => return data,
                    Ok(0) => thread::sleep(Duration::from_millis(1)),
                    Ok(n) => data.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("read the FIFO: {e}"),
                }
            }
        })
    };
    assert!(sinks.shutdown(SHUTDOWN));
    shut.store(true, Ordering::Release);
    let data = drain.join().expect("reader");
    assert_eq!(sink.written_lines() + sink.dropped_lines(), LINES);
    let text = String::from_utf8(data).expect("utf-8");
    let mut last = None;
    let mut count = 0;
    for line in text.lines() {
        let (seq, rest) = line.split_once(' ').expect("whole line");
        assert_eq!(rest, "GET /prod/users 200 0.001");
        let seq: u64 = seq.parse().expect("seq");
        assert!(last.is_none_or(|l| l < seq), "out of order at {seq}");
        last = Some(seq);
        count += 1;
    }
    assert_eq!(count, sink.written_lines());
}

/// Nobody ever opens the FIFO for reading: opening the sink returns at once, its lines are
/// dropped and counted, and the writer is not stuck at shutdown.
#[test]
fn fifo_without_reader_does_not_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipe");
    mkfifo(&path);
    let sinks = LogSinks::new(1);
    let start = Instant::now();
    let sink = sinks.get_or_open(&file(&path));
    let mut buf = sink.buffer();
    for i in 0..10 {
        push(&mut buf, &format!("{i}"));
    }
    buf.flush();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.dropped_lines(), 10);
    assert_eq!(sink.written_lines(), 0);
}

#[test]
fn shutdown_writes_everything_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let sinks = LogSinks::new(4);
    let sink = sinks.get_or_open(&file(&path));
    assert!(sink.queue_capacity() >= 20);
    let mut buf = sink.buffer();
    for i in 0..20_000 {
        push(&mut buf, &format!("{i:06}"));
        if i % 1_000 == 999 {
            buf.flush();
        }
    }
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.written_lines(), 20_000);
    assert_eq!(sink.dropped_lines(), 0);
    let all: Vec<String> = (0..20_000).map(|i| format!("{i:06}")).collect();
    assert_eq!(read_lines(&path), all);

    // After shutdown nothing is queued any more: lines are counted as dropped.
    push(&mut buf, "late");
    buf.flush();
    assert_eq!(sink.dropped_lines(), 1);
    let late = sinks.get_or_open(&file(&dir.path().join("late.log")));
    let mut buf = late.buffer();
    push(&mut buf, "late");
    buf.flush();
    assert_eq!(late.dropped_lines(), 1);
}

#[test]
fn syslog_datagrams_carry_the_rfc3164_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("log");
    let server = UnixDatagram::bind(&socket_path).expect("bind");
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let sinks = LogSinks::new(1).with_syslog_path(&socket_path);
    let sink = sinks.get_or_open(&LogDestination::Syslog);
    let mut buf = sink.buffer();
    push(&mut buf, "GET /prod/users 200");
    push(&mut buf, "POST /prod/orders 201");
    buf.flush();
    let tag = format!(" turnpike[{}]: ", std::process::id());
    let mut got = Vec::new();
    let mut datagram = [0u8; 2048];
    for _ in 0..2 {
        let n = server.recv(&mut datagram).expect("datagram");
        got.push(String::from_utf8(datagram[..n].to_vec()).expect("utf-8"));
    }
    for (d, line) in got
        .iter()
        .zip(["GET /prod/users 200", "POST /prod/orders 201"])
    {
        let rest = d.strip_prefix("<134>").expect("PRI local0.info");
        assert_timestamp(&rest[..15]);
        assert_eq!(&rest[15..], format!("{tag}{line}"));
    }
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.written_lines(), 2);
}

#[test]
fn syslog_socket_missing_drops_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sinks = LogSinks::new(1).with_syslog_path(dir.path().join("absent"));
    let sink = sinks.get_or_open(&LogDestination::Syslog);
    let mut buf = sink.buffer();
    push(&mut buf, "a");
    push(&mut buf, "b");
    buf.flush();
    assert!(sinks.shutdown(SHUTDOWN));
    assert_eq!(sink.dropped_lines(), 2);
    assert_eq!(sink.written_lines(), 0);
}

fn assert_timestamp(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 15, "{ts:?}");
    assert!(
        [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
        ]
        .contains(&&ts[..3]),
        "{ts:?}"
    );
    let day = ts[4..6].trim_start().parse::<u8>().expect("day");
    assert!((1..=31).contains(&day), "{ts:?}");
    assert_eq!(
        (b[3], b[6], b[9], b[12]),
        (b' ', b' ', b':', b':'),
        "{ts:?}"
    );
    for i in [7, 8, 10, 11, 13, 14] {
        assert!(b[i].is_ascii_digit(), "{ts:?}");
    }
}

/// Once the writer has handed back a buffer, a worker's flushes stop allocating: the buffer
/// it stages into next is the one it sent before.
#[test]
fn batch_buffers_are_recycled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sinks = LogSinks::new(1);
    let sink = sinks.get_or_open(&file(&dir.path().join("access.log")));
    let mut buf = sink.buffer();
    push(&mut buf, "a");
    let first = buf.staged.as_ptr();
    buf.flush();
    // The writer counts a batch, then hands its buffer back.
    wait_for("a's buffer back", || sink.spare.len() == 1);
    push(&mut buf, "b");
    let second = buf.staged.as_ptr();
    buf.flush();
    assert_eq!(buf.staged.as_ptr(), first);
    wait_for("b's buffer back", || sink.spare.len() == 1);
    push(&mut buf, "c");
    buf.flush();
    assert_eq!(buf.staged.as_ptr(), second);
    assert!(sinks.shutdown(SHUTDOWN));
}

#[test]
fn dropping_the_registry_stops_its_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let sinks = LogSinks::new(1);
    let sink = sinks.get_or_open(&file(&path));
    let mut buf = sink.buffer();
    push(&mut buf, "last");
    buf.flush();
    drop(sinks);
    wait_for("the writer to exit", || {
        sink.finished.load(Ordering::Acquire)
    });
    assert_eq!(sink.written_lines(), 1);
    assert_eq!(read_lines(&path), ["last"]);
}

#[test]
fn timestamp_shape() {
    let mut out = Vec::new();
    push_timestamp(&mut out, SystemTime::now());
    assert_timestamp(std::str::from_utf8(&out).expect("ascii"));
}

#[test]
fn warnings_are_rate_limited() {
    let t0 = Instant::now();
    let mut warn = WarnLimiter::new(Duration::from_secs(5));
    assert_eq!(warn.note(t0, 5), Some(5));
    assert_eq!(warn.note(t0 + Duration::from_secs(1), 3), None);
    assert_eq!(warn.note(t0 + Duration::from_secs(4), 1), None);
    assert_eq!(warn.note(t0 + Duration::from_secs(6), 2), Some(6));
    assert_eq!(warn.note(t0 + Duration::from_secs(7), 0), None);
}
