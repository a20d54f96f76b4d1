//! Access logs per stage (AWS `accessLogSettings`): where lines go and how they are formatted.
//!
//! This module is sans-io: it names destinations and renders lines. Writing them (a writer
//! thread per destination, fed by per-core buffers) lives in the proxy crate.

use std::path::PathBuf;

/// Where a stage's access log lines go: `access_log.destination` in the config.
///
/// Written as an absolute file path (`/var/log/turnpike/access.log`), `stdout`, or `syslog`
/// (the local syslog socket, `/dev/log`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogDestination {
    /// Appended to; reopened on SIGHUP so logrotate's rename-and-signal works.
    File(PathBuf),
    Stdout,
    Syslog,
}

impl LogDestination {
    /// Parses `stdout`, `syslog` or an absolute path.
    ///
    /// Errors: a relative path or an empty string, with the reason.
    pub fn parse(s: &str) -> Result<LogDestination, String> {
        match s {
            "stdout" => Ok(LogDestination::Stdout),
            "syslog" => Ok(LogDestination::Syslog),
            "" => Err("empty: use an absolute file path, \"stdout\" or \"syslog\"".into()),
            p if p.starts_with('/') => Ok(LogDestination::File(PathBuf::from(p))),
            p => Err(format!(
                "{p:?}: use an absolute file path, \"stdout\" or \"syslog\""
            )),
        }
    }

    /// The stable name of this destination (its writer and counters survive reloads under
    /// it): the path, `stdout` or `syslog`.
    pub fn key(&self) -> String {
        match self {
            LogDestination::File(p) => p.display().to_string(),
            LogDestination::Stdout => "stdout".into(),
            LogDestination::Syslog => "syslog".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse() {
        assert_eq!(LogDestination::parse("stdout"), Ok(LogDestination::Stdout));
        assert_eq!(LogDestination::parse("syslog"), Ok(LogDestination::Syslog));
        assert_eq!(
            LogDestination::parse("/var/log/a.log"),
            Ok(LogDestination::File("/var/log/a.log".into()))
        );
        assert!(LogDestination::parse("a.log").is_err());
        assert!(LogDestination::parse("").is_err());
    }
}
