//! Who may reach a route by address, and what an authorizer's IAM policy lets through.
//!
//! - [`CidrSet`]: IPv4/IPv6 prefixes from config strings; [`CidrSet::contains`] is
//!   allocation-free and matches IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) against IPv4
//!   entries.
//! - [`client_ip`]: the client address behind trusted proxies, from `X-Forwarded-For`, the way
//!   nginx's realip module does it with `real_ip_recursive on`.
//! - [`ResourcePolicy`]: source-address allow and deny lists (deny wins), with the refusal text
//!   AWS sends ([`anonymous_denied_message`]).
//! - [`method_arn`]: the `arn:aws:execute-api:...` a request is authorized against.
//! - [`PolicyDocument`]: the IAM policy a request authorizer returns, and
//!   [`PolicyDocument::allows`] with IAM's evaluation order (an explicit deny wins, then any
//!   allow, else deny) and its `*` / `?` wildcards ([`glob_match`]).
//!
//! The matching functions run per request: they never allocate and never backtrack
//! exponentially. Parsing runs when a config is compiled or an authorizer answers.

use std::net::IpAddr;

use serde_json::Value;

#[cfg(test)]
mod tests;

/// A set of IPv4 and IPv6 prefixes ("10.0.0.0/8", "192.168.1.7", "2001:db8::/32").
///
/// An entry whose address has bits set past its prefix ("10.1.2.3/8") is accepted and masked
/// to its network ("10.0.0.0/8"), as nginx's `set_real_ip_from` and `allow`/`deny` do (nginx
/// warns; `ip route` refuses). An operator writing a host address with a prefix means the
/// network it is in; refusing would only make them do the masking by hand.
///
/// An IPv4-mapped IPv6 entry (`::ffff:10.0.0.0/104`) is stored as the IPv4 entry it maps
/// (`10.0.0.0/8`), so both spellings match the same clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    /// (network, mask) pairs, the network already masked.
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

/// Why a [`CidrSet`] entry was refused: which entry (0-based) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} ({text:?}): {reason}")]
pub struct CidrError {
    pub index: usize,
    pub text: String,
    pub reason: CidrReason,
}

/// What was wrong with a CIDR entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CidrReason {
    #[error("not an IPv4 or IPv6 address")]
    BadAddress,
    #[error("the prefix length is not a number")]
    BadPrefix,
    #[error("the prefix length is longer than the address (32 for IPv4, 128 for IPv6)")]
    PrefixTooLong,
}

impl CidrSet {
    /// Parses every entry; the first bad one is the error.
    pub fn parse(items: &[String]) -> Result<CidrSet, CidrError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let err = |reason| CidrError {
                index,
                text: item.clone(),
                reason,
            };
            let (addr, prefix) = match item.trim().split_once('/') {
                Some((a, p)) => {
                    // `u8::from_str` takes a leading '+'; a prefix is digits only.
                    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(err(CidrReason::BadPrefix));
                    }
                    let p: u8 = p.parse().map_err(|_| err(CidrReason::BadPrefix))?;
                    (a, Some(p))
                }
                None => (item.trim(), None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| err(CidrReason::BadAddress))?;
            match addr {
                IpAddr::V4(a) => {
                    let p = prefix.unwrap_or(32);
                    if p > 32 {
                        return Err(err(CidrReason::PrefixTooLong));
                    }
                    let mask = mask_v4(p);
                    v4.push((u32::from(a) & mask, mask));
                }
                IpAddr::V6(a) => {
                    let p = prefix.unwrap_or(128);
                    if p > 128 {
                        return Err(err(CidrReason::PrefixTooLong));
                    }
                    match a.to_ipv4_mapped() {
                        Some(m) if p >= 96 => {
                            let mask = mask_v4(p - 96);
                            v4.push((u32::from(m) & mask, mask));
                        }
                        _ => {
                            let mask = mask_v6(p);
                            v6.push((u128::from(a) & mask, mask));
                        }
                    }
                }
            }
        }
        Ok(CidrSet {
            v4: v4.into(),
            v6: v6.into(),
        })
    }

    /// Whether the set has no entries.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// Whether `ip` is in one of the prefixes. An IPv4-mapped IPv6 address is looked up as
    /// the IPv4 address it carries (a dual-stack socket reports IPv4 peers that way).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.contains_v4(u32::from(a)),
            IpAddr::V6(a) => {
                // A mapped address is also in any IPv6 prefix shorter than /96 that covers
                // `::ffff:0:0/96` ("::/0", "::/80").
                if let Some(m) = a.to_ipv4_mapped()
                    && self.contains_v4(u32::from(m))
                {
                    return true;
                }
                let a = u128::from(a);
                self.v6.iter().any(|&(net, mask)| a & mask == net)
            }
        }
    }

    fn contains_v4(&self, a: u32) -> bool {
        self.v4.iter().any(|&(net, mask)| a & mask == net)
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The client's address: `peer` unless `peer` is a trusted proxy, in which case
/// `X-Forwarded-For` is walked from the right (the entry the nearest proxy appended) and
/// trusted addresses are skipped; the first untrusted address is the client. If every entry
/// is trusted, the leftmost is the client.
///
/// An entry that is not a bare IP address (garbage, a port, a name, non-UTF-8) stops the walk
/// and the last address a trusted hop vouched for is the answer: the nearest trusted entry
/// already read, or `peer` if the rightmost entry is unparsable. Nothing to the left of an
/// unparsable entry is believed, since a trusted proxy would have written a proper address
/// there. nginx's realip module with `real_ip_recursive on` is the model; empty entries
/// (`a,,b`, a trailing comma) are skipped rather than ending the walk.
///
/// Only the entries to the right of the first untrusted one are believed, so a client cannot
/// choose its address by sending its own `X-Forwarded-For`: what it sends ends up on the left.
pub fn client_ip(peer: IpAddr, x_forwarded_for: Option<&[u8]>, trusted: &CidrSet) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let Some(xff) = x_forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for entry in xff.rsplit(|&b| b == b',') {
        let entry = entry.trim_ascii();
        if entry.is_empty() {
            continue;
        }
        let Some(ip) = std::str::from_utf8(entry)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok())
        else {
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// A source-address resource policy: who may call a route, by client address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePolicy {
    allow: CidrSet,
    deny: CidrSet,
    allow_all_if_no_allow: bool,
}

impl ResourcePolicy {
    /// A policy where `deny` wins and an empty `allow` admits everyone not denied.
    pub fn new(allow: CidrSet, deny: CidrSet) -> ResourcePolicy {
        ResourcePolicy {
            allow,
            deny,
            allow_all_if_no_allow: true,
        }
    }

    /// A policy that admits only the addresses in `allow` (none when it is empty), minus `deny`.
    pub fn allow_list_only(allow: CidrSet, deny: CidrSet) -> ResourcePolicy {
        ResourcePolicy {
            allow,
            deny,
            allow_all_if_no_allow: false,
        }
    }

    /// Whether a client at `ip` may call: never if denied; otherwise if allowed, or if there
    /// is no allow list and the policy admits everyone then.
    pub fn admits(&self, ip: IpAddr) -> bool {
        if self.deny.contains(ip) {
            return false;
        }
        if self.allow.is_empty() {
            return self.allow_all_if_no_allow;
        }
        self.allow.contains(ip)
    }

    /// Whether `ip` was refused by an explicit deny entry (AWS words that refusal
    /// differently, see [`anonymous_explicit_deny_message`]).
    pub fn denies_explicitly(&self, ip: IpAddr) -> bool {
        self.deny.contains(ip)
    }
}

/// The 403 message AWS gives when a resource policy does not allow the caller (implicit deny).
pub fn anonymous_denied_message(resource_arn: &str) -> String {
    format!(
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: {resource_arn}"
    )
}

/// The 403 message AWS gives when a resource policy explicitly denies the caller.
pub fn anonymous_explicit_deny_message(resource_arn: &str) -> String {
    format!(
        "User: anonymous is not authorized to perform: execute-api:Invoke on resource: \
         {resource_arn} with an explicit deny"
    )
}

/// The ARN a request is authorized against, AWS's `methodArn` (payload 1.0) and `routeArn`
/// (2.0): `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`, where
/// `path` is the request path after the stage, without its leading slash (`/` gives an empty
/// last part, as in AWS's `.../GET/`). `$default` stays `$default`.
pub fn method_arn(
    region: &str,
    account_id: &str,
    api_id: &str,
    stage: &str,
    method: &str,
    path: &str,
) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}/{path}")
}

/// An IAM policy document as a request authorizer returns it (`policyDocument`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    statements: Box<[Statement]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Box<[Box<str>]>,
    resources: Box<[Box<str>]>,
}

/// The IAM policy language versions; a document without `Version` is read as the old one,
/// which for `execute-api` statements (no policy variables) means the same.
const VERSIONS: [&str; 2] = ["2012-10-17", "2008-10-17"];

impl PolicyDocument {
    /// Reads `policyDocument`. `Statement` is one statement or an array of them; `Action` and
    /// `Resource` are a string or an array of strings; `Effect` is `Allow` or `Deny`, spelled
    /// exactly so (IAM is case-sensitive there). `NotAction`, `NotResource`, `Principal` and
    /// `Condition` are refused rather than ignored: ignoring them would widen an `Allow`.
    pub fn parse(doc: &Value) -> Result<PolicyDocument, String> {
        let Value::Object(doc) = doc else {
            return Err("policyDocument is not an object".into());
        };
        match doc.get("Version") {
            None => {}
            Some(Value::String(v)) if VERSIONS.contains(&v.as_str()) => {}
            Some(v) => {
                return Err(format!(
                    "policyDocument.Version {v} is not a policy version"
                ));
            }
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, s)| Statement::parse(s, &format!("Statement[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
            Some(s @ Value::Object(_)) => vec![Statement::parse(s, "Statement")?],
            Some(_) => return Err("policyDocument.Statement is not an object or array".into()),
            None => return Err("policyDocument has no Statement".into()),
        };
        Ok(PolicyDocument {
            statements: statements.into(),
        })
    }

    /// IAM's evaluation: a matching `Deny` statement refuses, else a matching `Allow` admits,
    /// else the request is refused. Actions match case-insensitively (IAM action names are);
    /// resources match exactly, with `*` and `?` wildcards.
    pub fn allows(&self, action: &str, resource_arn: &str) -> bool {
        let mut allowed = false;
        for s in self.statements.iter() {
            if s.matches(action, resource_arn) {
                if !s.allow {
                    return false;
                }
                allowed = true;
            }
        }
        allowed
    }
}

impl Statement {
    fn parse(v: &Value, at: &str) -> Result<Statement, String> {
        let Value::Object(s) = v else {
            return Err(format!("{at} is not an object"));
        };
        for refused in [
            "NotAction",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
        ] {
            if s.contains_key(refused) {
                return Err(format!("{at}.{refused} is not supported"));
            }
        }
        let allow = match s.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => true,
            Some(Value::String(e)) if e == "Deny" => false,
            Some(e) => return Err(format!("{at}.Effect {e} is not \"Allow\" or \"Deny\"")),
            None => return Err(format!("{at} has no Effect")),
        };
        Ok(Statement {
            allow,
            actions: strings(s.get("Action"), at, "Action")?,
            resources: strings(s.get("Resource"), at, "Resource")?,
        })
    }

    fn matches(&self, action: &str, resource: &str) -> bool {
        self.actions.iter().any(|p| glob_match(p, action, true))
            && self
                .resources
                .iter()
                .any(|p| glob_match(p, resource, false))
    }
}

fn strings(v: Option<&Value>, at: &str, field: &str) -> Result<Box<[Box<str>]>, String> {
    match v {
        Some(Value::String(s)) => Ok(Box::new([s.as_str().into()])),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, s)| match s {
                Value::String(s) => Ok(s.as_str().into()),
                _ => Err(format!("{at}.{field}[{i}] is not a string")),
            })
            .collect(),
        Some(_) => Err(format!("{at}.{field} is not a string or array of strings")),
        None => Err(format!("{at} has no {field}")),
    }
}

/// IAM wildcard matching: `*` matches any run of characters (including `/` and `:`), `?`
/// exactly one character; everything else matches itself (ASCII case-insensitively when
/// `ignore_case`). Iterative, remembering only the last `*`: O(pattern × text) at worst, no
/// allocation, no recursion.
pub fn glob_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let eq = |a: u8, b: u8| a == b || (ignore_case && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut ti) = (0, 0);
    // (pattern index just past the last '*', text index that '*' currently stops at)
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            pi += 1;
            star = Some((pi, ti));
        } else if pi < p.len() && p[pi] == b'?' {
            pi += 1;
            ti += char_len(t[ti]);
        } else if pi < p.len() && eq(p[pi], t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            // Let the last '*' take one more character and retry what follows it.
            let st = st + char_len(t[st]);
            star = Some((sp, st));
            pi = sp;
            ti = st;
        } else {
            return false;
        }
    }
    p[pi.min(p.len())..].iter().all(|&b| b == b'*') && ti == t.len()
}

/// The length of the UTF-8 sequence a lead byte starts, so `?` and `*` step over whole
/// characters (both strings are `str`, so the text is valid UTF-8).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    }
}
