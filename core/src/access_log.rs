//! Access logs per stage (AWS `accessLogSettings`): where lines go and how they are formatted.
//!
//! This module is sans-io: it names destinations and renders lines. Writing them (a writer
//! thread per destination, fed by per-core buffers) lives in the proxy crate.

use std::path::PathBuf;

use crate::context::{Escape, RequestContext, Template, Var};

/// AWS's example `CLF` format for HTTP APIs ("Configure logging for HTTP APIs", "Example log
/// formats"), verbatim.
pub const CLF: &str = "$context.identity.sourceIp - - [$context.requestTime] \"$context.httpMethod $context.routeKey $context.protocol\" $context.status $context.responseLength $context.requestId";

/// AWS's example `JSON` format for HTTP APIs, verbatim (every value a JSON string).
pub const JSON: &str = r#"{ "requestId":"$context.requestId", "ip": "$context.identity.sourceIp", "requestTime":"$context.requestTime", "httpMethod":"$context.httpMethod","routeKey":"$context.routeKey", "status":"$context.status","protocol":"$context.protocol", "responseLength":"$context.responseLength" }"#;

/// AWS's example `XML` format for HTTP APIs, verbatim.
pub const XML: &str = r#"<request id="$context.requestId"> <ip>$context.identity.sourceIp</ip> <requestTime>$context.requestTime</requestTime> <httpMethod>$context.httpMethod</httpMethod> <routeKey>$context.routeKey</routeKey> <status>$context.status</status> <protocol>$context.protocol</protocol> <responseLength>$context.responseLength</responseLength> </request>"#;

/// AWS's example `CSV` format for HTTP APIs, verbatim.
pub const CSV: &str = "$context.identity.sourceIp,$context.requestTime,$context.httpMethod,$context.routeKey,$context.protocol,$context.status,$context.responseLength,$context.requestId";

/// A stage's access log line format: `access_log.format` in the config (AWS
/// `accessLogSettings.format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogFormat {
    /// The line, without its newline.
    pub template: Template,
    /// How values are escaped inside it.
    pub escape: Escape,
}

impl AccessLogFormat {
    /// Parses a format: `clf`, `json`, `xml` or `csv` (any case) name AWS's example formats
    /// ([`CLF`], [`JSON`], [`XML`], [`CSV`]) with their escaping; anything else is a custom
    /// template, escaped as JSON when it starts with `{`, as XML when it starts with `<`,
    /// else not at all (control bytes aside, see [`Escape::None`]).
    ///
    /// Errors: the template's own errors (an unknown `$context` variable, ...), and a format
    /// without `$context.requestId` or `$context.extendedRequestId`, which AWS also refuses.
    pub fn parse(s: &str) -> Result<AccessLogFormat, String> {
        let (text, escape) = match s.to_ascii_lowercase().as_str() {
            "clf" => (CLF, Escape::None),
            "json" => (JSON, Escape::Json),
            "xml" => (XML, Escape::Xml),
            "csv" => (CSV, Escape::Csv),
            _ => {
                let escape = match s.trim_start().as_bytes().first() {
                    Some(b'{') => Escape::Json,
                    Some(b'<') => Escape::Xml,
                    _ => Escape::None,
                };
                (s, escape)
            }
        };
        let template = Template::parse(text)?;
        if !template.uses(Var::RequestId) && !template.uses(Var::ExtendedRequestId) {
            return Err(
                "the format must include $context.requestId or $context.extendedRequestId".into(),
            );
        }
        Ok(AccessLogFormat { template, escape })
    }

    /// Appends one log line for `ctx` to `out`, ending in `\n`.
    pub fn render_line(&self, ctx: &RequestContext, out: &mut Vec<u8>) {
        self.template.render(ctx, self.escape, out);
        out.push(b'\n');
    }
}

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
    use std::net::{IpAddr, Ipv6Addr};

    use super::*;

    const HOSTILE: &str = "x\",<a&b>\n\\\u{1}";

    fn ctx() -> RequestContext<'static> {
        RequestContext {
            request_id: "JKJaXmhLoAMEJeQ=",
            source_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            request_time_epoch_ms: 1_583_348_638_390,
            method: "GET",
            route_key: HOSTILE,
            protocol: "HTTP/1.1",
            status: 200,
            response_length: 5,
            ..Default::default()
        }
    }

    fn line(format: &str, ctx: &RequestContext) -> String {
        let f = AccessLogFormat::parse(format).expect("format");
        let mut out = Vec::new();
        f.render_line(ctx, &mut out);
        let s = String::from_utf8(out).expect("utf-8");
        assert_eq!(s.matches('\n').count(), 1, "{format}: one line: {s:?}");
        assert!(s.ends_with('\n'));
        s
    }

    #[test]
    fn ready_formats_render() {
        let plain = RequestContext {
            route_key: "GET /pets",
            ..ctx()
        };
        assert_eq!(
            line("clf", &plain),
            "::1 - - [04/Mar/2020:19:03:58 +0000] \"GET GET /pets HTTP/1.1\" 200 5 JKJaXmhLoAMEJeQ=\n"
        );
        assert_eq!(
            line("CSV", &plain),
            "::1,04/Mar/2020:19:03:58 +0000,GET,GET /pets,HTTP/1.1,200,5,JKJaXmhLoAMEJeQ=\n"
        );
        assert_eq!(
            line("xml", &plain),
            "<request id=\"JKJaXmhLoAMEJeQ=\"> <ip>::1</ip> <requestTime>04/Mar/2020:19:03:58 +0000</requestTime> <httpMethod>GET</httpMethod> <routeKey>GET /pets</routeKey> <status>200</status> <protocol>HTTP/1.1</protocol> <responseLength>5</responseLength> </request>\n"
        );
        let json: serde_json::Value = serde_json::from_str(&line("json", &plain)).expect("json");
        assert_eq!(json["requestId"], "JKJaXmhLoAMEJeQ=");
        assert_eq!(json["ip"], "::1");
        assert_eq!(json["requestTime"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(json["routeKey"], "GET /pets");
        assert_eq!(json["status"], "200");
        assert_eq!(json["responseLength"], "5");
    }

    #[test]
    fn ready_formats_hold_hostile_values() {
        let c = ctx();
        let json: serde_json::Value = serde_json::from_str(&line("json", &c)).expect("json");
        assert_eq!(json["routeKey"], HOSTILE);
        let xml = line("xml", &c);
        assert!(
            xml.contains("<routeKey>x&quot;,&lt;a&amp;b&gt;&#10;\\\u{fffd}</routeKey>"),
            "{xml}"
        );
        let csv = line("csv", &c);
        assert!(csv.contains(",\"x\"\",<a&b>\\x0a\\\\x01\","), "{csv}");
        let clf = line("clf", &c);
        assert!(
            clf.contains("\"GET x\",<a&b>\\x0a\\\\x01 HTTP/1.1\""),
            "{clf}"
        );
    }

    #[test]
    fn custom_formats_pick_their_escaping() {
        let f = |s| AccessLogFormat::parse(s).expect("format").escape;
        assert_eq!(f(r#" {"id":"$context.requestId"}"#), Escape::Json);
        assert_eq!(f("<r>$context.requestId</r>"), Escape::Xml);
        assert_eq!(f("$context.requestId $context.status"), Escape::None);
        assert_eq!(f("${context.extendedRequestId}"), Escape::None);
        let err = AccessLogFormat::parse("$context.status").expect_err("no request id");
        assert!(err.contains("$context.requestId"), "{err}");
        let err = AccessLogFormat::parse("$context.requestId $context.bogus").expect_err("unknown");
        assert!(err.contains("$context.bogus"), "{err}");
    }

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
