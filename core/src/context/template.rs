//! Templates over `$context` variables: parsed once (when a config is compiled), rendered per
//! request into the caller's buffer with no allocation of their own.

use std::io::Write as _;

use super::RequestContext;
use super::escape::{self, Escape};
use super::time::RequestTime;
use super::var::{Value, Var};

/// A parsed template: literal byte runs and `$context` references.
///
/// Written as `$context.<name>` or `${context.<name>}`. A bare reference takes the longest
/// variable name found at that point that is not followed by a letter, digit or `_`, so
/// `$context.status.` followed by text is `status` then the literal `.`, while
/// `$context.statusCode` is an error. A `$` that does not start `$context.` or
/// `${context.` is literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: Box<str>,
    parts: Box<[Part]>,
    uses: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `source[start..end]`.
    Lit(u32, u32),
    Var(Var),
    /// `authorizer.claims.{source[start..end]}`.
    Claim(u32, u32),
    /// `authorizer.{source[start..end]}`, a request authorizer's context key.
    Property(u32, u32),
}

const CLAIMS: &str = "authorizer.claims.";
const AUTHORIZER: &str = "authorizer.";

/// Bytes of a claim or context key in a bare reference (`cognito:groups`, `custom-role`).
fn is_key_byte(b: u8) -> bool {
    is_name_byte(b) || b == b':' || b == b'-'
}

/// A reference to an authorizer value: `authorizer.claims.x` or `authorizer.x` (other than
/// the fixed `authorizer.principalId` / `authorizer.error`), with the key's length.
fn authorizer_key(name: &str, bare: bool) -> Option<(bool, usize, usize)> {
    let (claim, prefix) = if name.starts_with(CLAIMS) {
        (true, CLAIMS.len())
    } else if name.starts_with(AUTHORIZER) {
        (false, AUTHORIZER.len())
    } else {
        return None;
    };
    let key = &name.as_bytes()[prefix..];
    let len = if bare {
        key.iter()
            .position(|&b| !is_key_byte(b))
            .unwrap_or(key.len())
    } else {
        key.len()
    };
    if len == 0 || (!claim && Var::parse(&name[..prefix + len]).is_some()) {
        return None;
    }
    Some((claim, prefix, len))
}

const BARE: &str = "$context.";
const BRACED: &str = "${context.";

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Template {
    /// Parses `s`.
    ///
    /// Errors: an unknown variable (`unknown variable $context.requestid at byte 9; did you
    /// mean $context.requestId?`), an empty name, or a `${context.` without its `}`.
    pub fn parse(s: &str) -> Result<Template, String> {
        if s.len() > u32::MAX as usize {
            return Err("template longer than 4 GiB".into());
        }
        let bytes = s.as_bytes();
        let mut parts = Vec::new();
        let mut uses = 0u128;
        let mut lit_start = 0;
        let mut i = 0;
        while let Some(off) = memchr::memchr(b'$', &bytes[i..]) {
            let at = i + off;
            let rest = &s[at..];
            let dynamic = |name: &str, base: usize, bare: bool| {
                authorizer_key(name, bare).map(|(claim, prefix, len)| {
                    let (a, b) = ((base + prefix) as u32, (base + prefix + len) as u32);
                    let part = if claim {
                        Part::Claim(a, b)
                    } else {
                        Part::Property(a, b)
                    };
                    (part, base + prefix + len)
                })
            };
            if let Some(name) = rest.strip_prefix(BRACED)
                && let Some(close) = name.find('}')
                && let Some((part, end)) = dynamic(&name[..close], at + BRACED.len(), false)
            {
                if lit_start < at {
                    parts.push(Part::Lit(lit_start as u32, at as u32));
                }
                parts.push(part);
                lit_start = end + 1;
                i = end + 1;
                continue;
            }
            if let Some(name) = rest.strip_prefix(BARE)
                && let Some((part, end)) = dynamic(name, at + BARE.len(), true)
            {
                if lit_start < at {
                    parts.push(Part::Lit(lit_start as u32, at as u32));
                }
                parts.push(part);
                lit_start = end;
                i = end;
                continue;
            }
            let (var, end) = if let Some(name) = rest.strip_prefix(BRACED) {
                let Some(close) = name.find('}') else {
                    return Err(format!("`${{context.` at byte {at} has no closing `}}`"));
                };
                let name = &name[..close];
                match Var::parse(name) {
                    Some(v) => (v, at + BRACED.len() + close + 1),
                    None => return Err(unknown(name, at)),
                }
            } else if let Some(name) = rest.strip_prefix(BARE) {
                let nb = name.as_bytes();
                let found = Var::ALL
                    .iter()
                    .filter(|v| {
                        let n = v.name().as_bytes();
                        nb.starts_with(n) && nb.get(n.len()).is_none_or(|&b| !is_name_byte(b))
                    })
                    .max_by_key(|v| v.name().len());
                match found {
                    Some(&v) => (v, at + BARE.len() + v.name().len()),
                    None => {
                        let len = nb
                            .iter()
                            .position(|&b| !(is_name_byte(b) || b == b'.'))
                            .unwrap_or(nb.len());
                        return Err(unknown(name[..len].trim_end_matches('.'), at));
                    }
                }
            } else {
                // `$word.` that is not `$context.` is a mistyped variable (`$contxt.status`) or
                // one of another kind (`$stageVariables.x`, `$input.body`), never meant
                // literally: refused, so it does not end up verbatim in every line. A `$`
                // elsewhere (`$default`, `$5`) is text.
                let word = rest[1..]
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                if word > 0 && rest.as_bytes().get(1 + word) == Some(&b'.') {
                    return Err(format!(
                        "`{}` at byte {at}: only `$context.` variables exist here (did you mean \
                         `$context.`?)",
                        &rest[..=word + 1]
                    ));
                }
                i = at + 1;
                continue;
            };
            if lit_start < at {
                parts.push(Part::Lit(lit_start as u32, at as u32));
            }
            parts.push(Part::Var(var));
            uses |= var.bit();
            lit_start = end;
            i = end;
        }
        if lit_start < s.len() {
            parts.push(Part::Lit(lit_start as u32, s.len() as u32));
        }
        Ok(Template {
            source: s.into(),
            parts: parts.into(),
            uses,
        })
    }

    /// The text this template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template refers to `var` (under any spelling), so the proxy can skip
    /// computing values nobody reads.
    pub fn uses(&self, var: Var) -> bool {
        self.uses & var.bit() != 0
    }

    /// Appends the template filled in from `ctx` to `out`, values escaped for `esc`.
    /// Missing values are written `-`, as AWS writes them.
    pub fn render(&self, ctx: &RequestContext, esc: Escape, out: &mut Vec<u8>) {
        for part in self.parts.iter() {
            match *part {
                Part::Lit(a, b) => {
                    out.extend_from_slice(&self.source.as_bytes()[a as usize..b as usize])
                }
                Part::Var(v) => write_value(out, esc, v.value(ctx)),
                Part::Claim(a, b) | Part::Property(a, b) => {
                    let key = &self.source[a as usize..b as usize];
                    let value = ctx.authorizer.and_then(|z| match part {
                        Part::Claim(..) => z.0.claim(key),
                        _ => z.0.property(key),
                    });
                    write_value(out, esc, value.map_or(Value::Missing, Value::Text));
                }
            }
        }
    }
}

fn write_value(out: &mut Vec<u8>, esc: Escape, value: Value) {
    match value {
        Value::Missing => out.push(b'-'),
        Value::Text(s) => escape::write_text(out, esc, s.as_bytes()),
        Value::Num(n) => escape::write_u64(out, n),
        // Digits, dots, colons and hex letters: nothing to escape in any format. Writing to a
        // Vec cannot fail.
        Value::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
        Value::Time(ms) => out.extend_from_slice(RequestTime::from_epoch_ms(ms).as_bytes()),
        Value::Quoted(s) => escape::write_quoted(out, esc, s.as_bytes()),
    }
}

/// The error for an unknown name: where, and the closest known names.
fn unknown(name: &str, at: usize) -> String {
    if name.is_empty() {
        return format!("empty variable name after `$context.` at byte {at}");
    }
    let lower = name.to_ascii_lowercase();
    let mut close: Vec<(usize, &str)> = Var::ALL
        .iter()
        .map(|v| v.name())
        .filter_map(|n| {
            let nl = n.to_ascii_lowercase();
            let d = distance(&lower, &nl);
            let tail = nl.rsplit('.').next().unwrap_or(&nl);
            let related = d <= (name.len() / 4).max(2)
                || tail == lower.rsplit('.').next().unwrap_or(&lower)
                || (lower.len() >= 4 && nl.contains(&lower));
            related.then_some((d, n))
        })
        .collect();
    close.sort();
    // A name that differs only in case is the answer; otherwise offer up to three.
    let keep = if close.first().is_some_and(|&(d, _)| d == 0) {
        1
    } else {
        3
    };
    close.truncate(keep);
    let mut msg = format!("unknown variable $context.{name} at byte {at}");
    if close.is_empty() {
        msg.push_str(" (see AWS's \"Customize HTTP API access logs\" for the variables)");
    } else {
        msg.push_str("; did you mean ");
        for (k, (_, n)) in close.iter().enumerate() {
            if k > 0 {
                msg.push_str(if k + 1 == close.len() { " or " } else { ", " });
            }
            msg.push_str("$context.");
            msg.push_str(n);
        }
        msg.push('?');
    }
    msg
}

/// Levenshtein distance, for error messages only.
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.as_bytes().iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}
