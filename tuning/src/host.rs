//! What on this host holds the gateway back, each finding with its fix: `turnpike tune check`,
//! `GET /v1/tuning/host`; and the sysctl drop-in `turnpike tune apply` writes.
//!
//! Everything is read from `/proc` and `/sys` (and one io_uring probe); nothing is changed
//! except by [`apply`]. A value that cannot be read is reported as `unknown`, never guessed.

use std::{fmt, fs, io, path::Path};

/// How a finding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, but holds the gateway back under load.
    Warn,
    /// Breaks something (io_uring unavailable with `--driver io_uring`, say).
    Fail,
    /// Could not be read here (a container, a VM without cpufreq).
    Unknown,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// One thing checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked: `io_uring`, `net.core.somaxconn`, `nofile`, ...
    pub name: &'static str,
    pub status: Status,
    /// What the host has.
    pub found: String,
    /// What the gateway wants.
    pub want: String,
    /// How to get there (empty when nothing is to be done).
    pub fix: String,
    /// A sysctl `turnpike tune apply` sets: (key, value).
    pub sysctl: Option<(&'static str, String)>,
}

/// The sysctls a busy gateway wants: (key, least value or exact value, why).
const SYSCTLS: &[(&str, &str, &str)] = &[
    (
        "net.core.somaxconn",
        "8192",
        "each worker's listener has a backlog of 4096; the kernel caps it at somaxconn",
    ),
    (
        "net.ipv4.tcp_max_syn_backlog",
        "8192",
        "half-open connections queued during a burst",
    ),
    (
        "net.ipv4.tcp_tw_reuse",
        "1",
        "reuse TIME_WAIT ports for new connections to upstreams on any address (the kernel's \
         default, 2, reuses them for loopback only)",
    ),
    (
        "net.ipv4.tcp_migrate_req",
        "1",
        "connections queued on a listener that closes (a restart, an upgrade) move to another \
         SO_REUSEPORT listener instead of being reset",
    ),
];

/// The ephemeral port range the gateway wants at least: this many ports.
const MIN_PORTS: u64 = 50_000;
/// The open-file limit the gateway wants at least (two descriptors per proxied connection).
const MIN_NOFILE: u64 = 65_536;

/// Runs every check. `workers`: the worker cores the gateway uses (for IRQ placement).
pub fn check(workers: usize) -> Vec<Finding> {
    let mut out = vec![io_uring(), nofile(), memlock()];
    for &(key, want, why) in SYSCTLS {
        out.push(sysctl(key, want, why));
    }
    out.push(port_range());
    out.push(governor());
    out.push(irqs(workers));
    out
}

fn finding(name: &'static str, status: Status, found: String, want: &str, fix: &str) -> Finding {
    Finding {
        name,
        status,
        found,
        want: want.to_owned(),
        fix: if status == Status::Ok {
            String::new()
        } else {
            fix.to_owned()
        },
        sysctl: None,
    }
}

fn read_trim(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn io_uring() -> Finding {
    let disabled = read_trim("/proc/sys/kernel/io_uring_disabled");
    let seccomp = read_trim("/proc/self/status").and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Seccomp:").map(|v| v.trim().to_owned()))
    });
    let works = io_uring::IoUring::new(8).is_ok();
    let found = format!(
        "{}; kernel.io_uring_disabled={}; seccomp mode {}",
        if works {
            "io_uring_setup works"
        } else {
            "io_uring_setup refused"
        },
        disabled.as_deref().unwrap_or("(not present)"),
        seccomp.as_deref().unwrap_or("?"),
    );
    let fix = match disabled.as_deref() {
        Some("1" | "2") => {
            "sysctl kernel.io_uring_disabled=0 (it blocks io_uring for unprivileged processes (1) \
             or everyone (2)); without it turnpike runs on epoll"
        }
        _ if seccomp.as_deref() == Some("2") => {
            "a seccomp filter refuses io_uring_setup (containers: docker --security-opt \
             seccomp=... allowing io_uring_setup/enter/register; systemd: SystemCallFilter \
             must keep @aio); without it turnpike runs on epoll"
        }
        _ => "a kernel of 5.11 or later with io_uring; without it turnpike runs on epoll",
    };
    finding(
        "io_uring",
        if works { Status::Ok } else { Status::Warn },
        found,
        "io_uring available (the faster driver)",
        fix,
    )
}

fn rlimit(resource: libc::__rlimit_resource_t) -> Option<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    (unsafe { libc::getrlimit(resource, &mut r) } == 0).then_some((r.rlim_cur, r.rlim_max))
}

fn limit_text(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_owned()
    } else {
        v.to_string()
    }
}

fn nofile() -> Finding {
    let Some((soft, hard)) = rlimit(libc::RLIMIT_NOFILE) else {
        return finding("nofile", Status::Unknown, "?".into(), "", "");
    };
    // The gateway raises its soft limit to the hard one at start: the hard one is what counts.
    finding(
        "nofile",
        if hard >= MIN_NOFILE {
            Status::Ok
        } else {
            Status::Warn
        },
        format!("soft {}, hard {}", limit_text(soft), limit_text(hard)),
        &format!("hard limit at least {MIN_NOFILE} (the gateway raises its soft limit to it)"),
        "LimitNOFILE=1048576 in the unit (the package's unit has it), or nofile in \
         /etc/security/limits.conf; takes effect at the next start of the service",
    )
}

fn memlock() -> Finding {
    let Some((soft, _)) = rlimit(libc::RLIMIT_MEMLOCK) else {
        return finding("memlock", Status::Unknown, "?".into(), "", "");
    };
    // Since 5.12 io_uring's rings are charged to the memory cgroup, not to RLIMIT_MEMLOCK.
    let modern = kernel_at_least(5, 12);
    let enough = soft == libc::RLIM_INFINITY || soft >= 64 << 20 || modern;
    finding(
        "memlock",
        if enough { Status::Ok } else { Status::Warn },
        format!(
            "{}{}",
            limit_text(soft),
            if modern {
                " (kernel 5.12+: io_uring does not count against it)"
            } else {
                ""
            }
        ),
        "unlimited or 64 MiB on kernels before 5.12 (io_uring rings)",
        "LimitMEMLOCK=infinity in the unit (the package's unit has it); takes effect at the \
         next start of the service",
    )
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    read_trim("/proc/sys/kernel/osrelease")
        .and_then(|r| {
            let mut it = r.split(['.', '-']);
            let a: u32 = it.next()?.parse().ok()?;
            let b: u32 = it.next()?.parse().ok()?;
            Some((a, b) >= (major, minor))
        })
        .unwrap_or(false)
}

fn sysctl_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Switches (`0`/`1`/`2` meaning different things) want their value exactly; sizes want at
/// least theirs.
fn is_switch(key: &str) -> bool {
    matches!(key, "net.ipv4.tcp_tw_reuse" | "net.ipv4.tcp_migrate_req")
}

fn sysctl(key: &'static str, want: &str, why: &str) -> Finding {
    let found = read_trim(sysctl_path(key));
    let wanted = want.parse::<u64>().unwrap_or(0);
    let status = match found.as_deref().map(str::parse::<u64>) {
        None => Status::Unknown,
        Some(Ok(v)) if is_switch(key) && v == wanted => Status::Ok,
        Some(Ok(v)) if !is_switch(key) && v >= wanted => Status::Ok,
        Some(_) => Status::Warn,
    };
    let mut f = finding(
        key,
        status,
        found.unwrap_or_else(|| "(not present)".into()),
        &if is_switch(key) {
            format!("{want}: {why}")
        } else {
            format!("{want} or more: {why}")
        },
        &format!("sysctl -w {key}={want} (turnpike tune apply writes it to the drop-in)"),
    );
    if status == Status::Warn {
        f.sysctl = Some((key, want.to_owned()));
    }
    f
}

fn port_range() -> Finding {
    const KEY: &str = "net.ipv4.ip_local_port_range";
    let found =
        read_trim(sysctl_path(KEY)).map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "));
    let span = found.as_deref().and_then(|r| {
        let mut it = r.split_whitespace().map(|v| v.parse::<u64>().ok());
        let (lo, hi) = (it.next()??, it.next()??);
        Some(hi.saturating_sub(lo) + 1)
    });
    let status = match span {
        None => Status::Unknown,
        Some(n) if n >= MIN_PORTS => Status::Ok,
        Some(_) => Status::Warn,
    };
    let mut f = finding(
        KEY,
        status,
        found.unwrap_or_else(|| "(not present)".into()),
        &format!("at least {MIN_PORTS} ports for connections to upstreams"),
        "sysctl -w net.ipv4.ip_local_port_range='10240 65535' (turnpike tune apply writes it)",
    );
    if status == Status::Warn {
        f.sysctl = Some((KEY, "10240 65535".to_owned()));
    }
    f
}

fn governor() -> Finding {
    let mut governors: Vec<String> = Vec::new();
    if let Ok(dir) = fs::read_dir("/sys/devices/system/cpu") {
        for e in dir.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("cpu")
                && name[3..].bytes().all(|b| b.is_ascii_digit())
                && let Some(g) = read_trim(e.path().join("cpufreq/scaling_governor"))
            {
                governors.push(g);
            }
        }
    }
    governors.sort();
    governors.dedup();
    if governors.is_empty() {
        return finding(
            "cpu_governor",
            Status::Unknown,
            "no cpufreq (a VM or a container: the host decides)".into(),
            "performance",
            "",
        );
    }
    let ok = governors.iter().all(|g| g == "performance");
    finding(
        "cpu_governor",
        if ok { Status::Ok } else { Status::Warn },
        governors.join(", "),
        "performance (no ramp-up latency on bursts)",
        "cpupower frequency-set -g performance (not kept across reboots: set it in a unit or \
         the BIOS profile)",
    )
}

/// NIC interrupts and the CPUs they land on.
fn irqs(workers: usize) -> Finding {
    let Some(text) = read_trim("/proc/interrupts") else {
        return finding("nic_irqs", Status::Unknown, "?".into(), "", "");
    };
    let mut cpus: Vec<String> = Vec::new();
    let mut count = 0;
    for line in text.lines().skip(1) {
        let Some((irq, rest)) = line.trim_start().split_once(':') else {
            continue;
        };
        if !irq.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let nic = [
            "eth", "ens", "enp", "eno", "virtio", "mlx", "ixgbe", "i40e", "ena",
        ]
        .iter()
        .any(|n| rest.contains(n));
        if !nic {
            continue;
        }
        count += 1;
        if let Some(list) = read_trim(format!("/proc/irq/{irq}/smp_affinity_list")) {
            cpus.push(list);
        }
    }
    if count == 0 {
        return finding(
            "nic_irqs",
            Status::Unknown,
            "no NIC interrupts found in /proc/interrupts".into(),
            "",
            "",
        );
    }
    cpus.sort();
    cpus.dedup();
    let one_cpu = cpus.len() == 1 && !cpus[0].contains([',', '-']);
    let status = if one_cpu && workers > 1 {
        Status::Warn
    } else {
        Status::Ok
    };
    finding(
        "nic_irqs",
        status,
        format!("{count} NIC interrupt(s) on CPUs {}", cpus.join(" / ")),
        "spread over the worker cores (each worker then handles its own connections' packets)",
        "run irqbalance, or set /proc/irq/N/smp_affinity_list per queue; with RSS, one queue per \
         worker core",
    )
}

/// The drop-in [`apply`] writes.
pub const DROP_IN: &str = "/etc/sysctl.d/60-turnpike.conf";

/// The drop-in's text for the sysctls in `findings` that want changing (all of [`SYSCTLS`]
/// and the port range, current or not, so the file is whole).
pub fn drop_in_text() -> String {
    let mut out =
        String::from("# Written by `turnpike tune apply`: kernel settings for a busy gateway.\n");
    for &(key, want, why) in SYSCTLS {
        out.push_str(&format!("# {why}\n{key} = {want}\n"));
    }
    out.push_str(
        "# local ports for connections to upstreams\nnet.ipv4.ip_local_port_range = 10240 65535\n",
    );
    out
}

/// Writes the drop-in to `path` (whole, via a temporary file and a rename) and, with
/// `to_kernel`, applies each setting to the running kernel (a size already larger is kept);
/// returns what could not be applied now (key, error).
pub fn apply(path: &Path, to_kernel: bool) -> io::Result<Vec<(String, String)>> {
    let text = drop_in_text();
    let tmp = path.with_extension("conf.tmp");
    fs::write(&tmp, &text)?;
    fs::rename(&tmp, path)?;
    if !to_kernel {
        return Ok(Vec::new());
    }
    let mut failed = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let (k, v) = line.split_once('=').unwrap_or_default();
        let (k, v) = (k.trim(), v.trim());
        // A lower current value is raised; a higher one (someone tuned it further) is kept.
        let current = read_trim(sysctl_path(k));
        let keep = current
            .as_deref()
            .and_then(|c| Some((c.parse::<u64>().ok()?, v.parse::<u64>().ok()?)))
            .is_some_and(|(c, w)| if is_switch(k) { c == w } else { c >= w });
        if keep {
            continue;
        }
        if let Err(e) = fs::write(sysctl_path(k), v) {
            failed.push((k.to_owned(), e.to_string()));
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_reports_and_says_how_to_fix_what_is_not_ok() {
        let all = check(2);
        for name in [
            "io_uring",
            "nofile",
            "memlock",
            "net.core.somaxconn",
            "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse",
            "cpu_governor",
            "nic_irqs",
        ] {
            let f = all.iter().find(|f| f.name == name).expect(name);
            assert!(!f.found.is_empty(), "{name}");
            if matches!(f.status, Status::Warn | Status::Fail) {
                assert!(!f.fix.is_empty(), "{name} has no fix");
            }
        }
    }

    /// The package's sysctl file and the drop-in `tune apply` writes set the same values.
    #[test]
    fn the_packaged_sysctl_file_agrees_with_the_drop_in() {
        let settings = |text: &str| {
            let mut v: Vec<(String, String)> = text
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains('='))
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or_default();
                    (
                        k.trim().to_owned(),
                        v.split_whitespace().collect::<Vec<_>>().join(" "),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let packaged = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../packaging/60-turnpike.conf"
        ))
        .expect("packaging/60-turnpike.conf");
        assert_eq!(settings(&packaged), settings(&drop_in_text()));
    }

    #[test]
    fn the_drop_in_sets_every_sysctl() {
        let text = drop_in_text();
        for &(key, want, _) in SYSCTLS {
            assert!(text.contains(&format!("{key} = {want}\n")), "{key}");
        }
        assert!(text.contains("net.ipv4.ip_local_port_range = 10240 65535\n"));
    }
}
