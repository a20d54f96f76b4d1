//! Java methods that real templates call on values (`String`, `List`, `Map`, numbers), and
//! the `$util` functions of AWS's "Variables for data transformations" reference.
//!
//! A method a value does not have returns null, as Velocity does (it logs and goes on).
//! String positions are counted in UTF-16 code units, as Java counts them.

use std::rc::Rc;

use base64::Engine as _;

use super::{
    RenderError,
    ast::Util,
    render::Renderer,
    value::{List, Map, Str, Value},
};

/// Methods that change their receiver: on a variable (or an entry in one) they change it in
/// place.
pub(super) fn is_mutating(name: &str) -> bool {
    matches!(
        name,
        "add" | "addAll" | "put" | "putAll" | "remove" | "clear" | "set" | "putIfAbsent"
    )
}

/// Java `String.length()`: UTF-16 code units.
fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The `&str` slice between UTF-16 positions `from..to`, if they fall on characters.
fn utf16_slice(s: &str, from: usize, to: usize) -> Option<&str> {
    if from > to {
        return None;
    }
    let mut units = 0;
    let (mut start, mut end) = (None, None);
    for (i, c) in s.char_indices() {
        if units == from {
            start = Some(i);
        }
        if units == to {
            end = Some(i);
            break;
        }
        units += c.len_utf16();
    }
    if units == from && start.is_none() {
        start = Some(s.len());
    }
    if units == to && end.is_none() {
        end = Some(s.len());
    }
    Some(&s[start?..end?])
}

/// The UTF-16 position of byte offset `i`.
fn utf16_pos(s: &str, i: usize) -> usize {
    utf16_len(&s[..i])
}

/// A Java regex replacement (`$1`, `\$`) in the `regex` crate's syntax (`${1}`, `$$`).
fn java_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len() + 4);
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str("${");
                    out.push_str(&digits);
                    out.push('}');
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn regex(pattern: &str) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .ok()
}

impl<'a> Renderer<'a> {
    fn owned(&mut self, s: String) -> Result<Value<'a>, RenderError> {
        self.check_len(s.len())?;
        self.tick(s.len() / 16)?;
        Ok(Value::string(s))
    }

    /// A method that does not change its receiver.
    pub(super) fn call(
        &mut self,
        recv: Value<'a>,
        name: &str,
        args: Vec<Value<'a>>,
    ) -> Result<Value<'a>, RenderError> {
        // Methods every object has.
        match (name, args.as_slice()) {
            ("toString", []) => return Ok(Value::Str(self.jstr(&recv)?)),
            ("equals", [other]) => return Ok(Value::Bool(self.equals(&recv, other)?)),
            _ => {}
        }
        match &recv {
            Value::Str(s) => self.string_method(s.clone(), name, &args),
            Value::List(_) | Value::Json(serde_json::Value::Array(_)) => {
                self.list_method(&recv, name, &args)
            }
            Value::Map(_) | Value::Json(serde_json::Value::Object(_)) => {
                self.map_method(&recv, name, &args)
            }
            Value::Int(_) | Value::Float(_) => Ok(number_method(&recv, name)),
            Value::Bool(b) => Ok(match name {
                "booleanValue" => Value::Bool(*b),
                _ => Value::Null,
            }),
            _ => Ok(Value::Null),
        }
    }

    fn string_method(
        &mut self,
        s: Str<'a>,
        name: &str,
        args: &[Value<'a>],
    ) -> Result<Value<'a>, RenderError> {
        self.tick(s.len() / 64)?;
        let mut sargs = Vec::with_capacity(args.len());
        for a in args {
            sargs.push(self.jstr(a)?);
        }
        let arg = |i: usize| sargs.get(i).cloned();
        Ok(match (name, args.len()) {
            ("length" | "size", 0) => Value::Int(utf16_len(&s) as i64),
            ("isEmpty", 0) => Value::Bool(s.is_empty()),
            ("toLowerCase", 0) => self.owned(s.to_lowercase())?,
            ("toUpperCase", 0) => self.owned(s.to_uppercase())?,
            ("trim", 0) => match s {
                Str::Borrowed(b) => Value::str(b.trim_matches(|c: char| c <= ' ')),
                Str::Owned(_) => self.owned(s.trim_matches(|c: char| c <= ' ').to_owned())?,
            },
            ("contains", 1) => Value::Bool(arg(0).is_some_and(|a| s.contains(&*a))),
            ("startsWith", 1) => Value::Bool(arg(0).is_some_and(|a| s.starts_with(&*a))),
            ("endsWith", 1) => Value::Bool(arg(0).is_some_and(|a| s.ends_with(&*a))),
            ("equalsIgnoreCase", 1) => Value::Bool(
                matches!(args[0], Value::Str(_))
                    && arg(0).is_some_and(|a| s.to_lowercase() == a.to_lowercase()),
            ),
            ("concat", 1) => {
                let a = arg(0).unwrap_or(Str::Borrowed(""));
                self.owned(format!("{}{}", &*s, &*a))?
            }
            ("replace", 2) => {
                let (from, to) = (
                    arg(0).unwrap_or(Str::Borrowed("")),
                    arg(1).unwrap_or(Str::Borrowed("")),
                );
                if from.is_empty() {
                    // Java inserts `to` between every character; no template needs that.
                    Value::Str(s)
                } else {
                    let n = s.matches(&*from).count();
                    self.check_len(s.len() + n.saturating_mul(to.len()))?;
                    self.owned(s.replace(&*from, &to))?
                }
            }
            ("replaceAll" | "replaceFirst", 2) => {
                let (pat, rep) = (
                    arg(0).unwrap_or(Str::Borrowed("")),
                    arg(1).unwrap_or(Str::Borrowed("")),
                );
                self.tick(pat.len() * 16)?;
                let Some(re) = regex(&pat) else {
                    return Ok(Value::Null);
                };
                let rep = java_replacement(&rep);
                let n = if name == "replaceAll" {
                    re.find_iter(&s).count()
                } else {
                    1
                };
                self.tick(n)?;
                self.check_len(s.len() + n.saturating_mul(rep.len() + 16))?;
                let limit = if name == "replaceAll" { 0 } else { 1 };
                self.owned(re.replacen(&s, limit, rep.as_str()).into_owned())?
            }
            ("matches", 1) => {
                let pat = arg(0).unwrap_or(Str::Borrowed(""));
                self.tick(pat.len() * 16)?;
                match regex(&format!("^(?:{})$", &*pat)) {
                    Some(re) => Value::Bool(re.is_match(&s)),
                    None => Value::Null,
                }
            }
            ("split", 1) => {
                let pat = arg(0).unwrap_or(Str::Borrowed(""));
                self.tick(pat.len() * 16)?;
                let Some(re) = regex(&pat) else {
                    return Ok(Value::Null);
                };
                let mut parts: Vec<Value<'a>> = Vec::new();
                for p in re.split(&s) {
                    self.tick(1)?;
                    parts.push(match &s {
                        Str::Borrowed(b) => {
                            let off = p.as_ptr() as usize - b.as_ptr() as usize;
                            Value::str(&b[off..off + p.len()])
                        }
                        Str::Owned(_) => Value::string(p.to_owned()),
                    });
                }
                // Java drops trailing empty strings.
                while parts.last().is_some_and(|v| v.as_str() == Some("")) {
                    parts.pop();
                }
                if s.is_empty() {
                    parts = vec![Value::str("")];
                }
                Value::list(parts)
            }
            ("substring", 1 | 2) => {
                let total = utf16_len(&s);
                let from = args[0].as_i64().and_then(|i| usize::try_from(i).ok());
                let to = match args.get(1) {
                    Some(v) => v.as_i64().and_then(|i| usize::try_from(i).ok()),
                    None => Some(total),
                };
                match (from, to) {
                    (Some(f), Some(t)) if t <= total => match utf16_slice(&s, f, t) {
                        Some(sub) => self.owned(sub.to_owned())?,
                        None => Value::Null,
                    },
                    _ => Value::Null,
                }
            }
            ("indexOf" | "lastIndexOf", 1) => {
                let a = arg(0).unwrap_or(Str::Borrowed(""));
                let at = if name == "indexOf" {
                    s.find(&*a)
                } else {
                    s.rfind(&*a)
                };
                Value::Int(at.map_or(-1, |i| utf16_pos(&s, i) as i64))
            }
            ("charAt", 1) => {
                let i = args[0].as_i64().and_then(|i| usize::try_from(i).ok());
                match i.and_then(|i| utf16_slice(&s, i, i + 1)) {
                    Some(c) => self.owned(c.to_owned())?,
                    None => Value::Null,
                }
            }
            ("toString" | "intern", 0) => Value::Str(s),
            _ => Value::Null,
        })
    }

    fn list_method(
        &mut self,
        recv: &Value<'a>,
        name: &str,
        args: &[Value<'a>],
    ) -> Result<Value<'a>, RenderError> {
        let len = recv.len().unwrap_or(0);
        Ok(match (name, args) {
            ("size", []) => Value::Int(len as i64),
            ("isEmpty", []) => Value::Bool(len == 0),
            ("get", [i]) => i
                .as_i64()
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| recv.index(i))
                .unwrap_or(Value::Null),
            ("contains" | "indexOf", [x]) => {
                self.tick(len)?;
                let mut at = None;
                for i in 0..len {
                    if let Some(v) = recv.index(i)
                        && self.equals(&v, x)?
                    {
                        at = Some(i);
                        break;
                    }
                }
                if name == "contains" {
                    Value::Bool(at.is_some())
                } else {
                    Value::Int(at.map_or(-1, |i| i as i64))
                }
            }
            ("subList", [a, b]) => {
                let (Some(a), Some(b)) = (a.as_i64(), b.as_i64()) else {
                    return Ok(Value::Null);
                };
                match (usize::try_from(a), usize::try_from(b)) {
                    (Ok(a), Ok(b)) if a <= b && b <= len => {
                        self.tick(b - a)?;
                        Value::list((a..b).filter_map(|i| recv.index(i)).collect())
                    }
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        })
    }

    fn map_method(
        &mut self,
        recv: &Value<'a>,
        name: &str,
        args: &[Value<'a>],
    ) -> Result<Value<'a>, RenderError> {
        let len = recv.len().unwrap_or(0);
        Ok(match (name, args) {
            ("size", []) => Value::Int(len as i64),
            ("isEmpty", []) => Value::Bool(len == 0),
            ("get", [k]) => {
                self.tick(len / 8)?;
                let k = self.jstr(k)?;
                recv.get(&k).unwrap_or(Value::Null)
            }
            // An entry of `entrySet()` is a map of `key` and `value`.
            ("getKey", []) => recv.get("key").unwrap_or(Value::Null),
            ("getValue", []) => recv.get("value").unwrap_or(Value::Null),
            ("containsKey", [k]) => {
                self.tick(len / 8)?;
                let k = self.jstr(k)?;
                Value::Bool(recv.get(&k).is_some())
            }
            ("keySet" | "values" | "entrySet" | "containsValue", _) => {
                self.tick(len)?;
                let mut entries: Vec<(Str<'a>, Value<'a>)> = Vec::with_capacity(len);
                match recv {
                    Value::Map(m) => entries.extend(m.entries.iter().cloned()),
                    Value::Json(serde_json::Value::Object(o)) => {
                        entries.extend(
                            o.iter()
                                .map(|(k, v)| (Str::Borrowed(k.as_str()), Value::json(v))),
                        );
                    }
                    _ => {}
                }
                match (name, args) {
                    ("keySet", []) => {
                        Value::list(entries.into_iter().map(|(k, _)| Value::Str(k)).collect())
                    }
                    ("values", []) => Value::list(entries.into_iter().map(|(_, v)| v).collect()),
                    ("entrySet", []) => Value::list(
                        entries
                            .into_iter()
                            .map(|(k, v)| {
                                let mut m = Map::default();
                                m.insert(Str::Borrowed("key"), Value::Str(k));
                                m.insert(Str::Borrowed("value"), v);
                                Value::Map(Rc::new(m))
                            })
                            .collect(),
                    ),
                    ("containsValue", [x]) => {
                        let mut found = false;
                        for (_, v) in &entries {
                            if self.equals(v, x)? {
                                found = true;
                                break;
                            }
                        }
                        Value::Bool(found)
                    }
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        })
    }

    /// A method that may change its receiver (`add`, `put`, ...): `recv` is the variable or
    /// entry itself, or a temporary.
    pub(super) fn call_mut(
        &mut self,
        recv: &mut Value<'a>,
        name: &str,
        mut args: Vec<Value<'a>>,
    ) -> Result<Value<'a>, RenderError> {
        if matches!(
            recv,
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null
        ) {
            // `"a,b".remove(..)` and the like: no such methods.
            return Ok(Value::Null);
        }
        self.make_native(recv)?;
        let r = match recv {
            Value::List(l) => {
                let l = self.unshare_list(l)?;
                match (name, args.len()) {
                    ("add", 1) => {
                        let v = args.remove(0);
                        push(l, v);
                        Value::Bool(true)
                    }
                    ("add", 2) => {
                        let v = args.remove(1);
                        match args[0].as_i64().and_then(|i| usize::try_from(i).ok()) {
                            Some(i) if i <= l.items.len() => {
                                self.tick(l.items.len())?;
                                l.depth = l.depth.max(v.depth() + 1);
                                l.items.insert(i, v);
                            }
                            _ => {}
                        }
                        Value::Null
                    }
                    ("addAll", 1) => {
                        let items = collection_items(&args[0]);
                        self.tick(items.len())?;
                        for v in items {
                            push(l, v);
                        }
                        Value::Bool(true)
                    }
                    ("set", 2) => {
                        let v = args.remove(1);
                        match args[0].as_i64().and_then(|i| usize::try_from(i).ok()) {
                            Some(i) if i < l.items.len() => {
                                l.depth = l.depth.max(v.depth() + 1);
                                std::mem::replace(&mut l.items[i], v)
                            }
                            _ => Value::Null,
                        }
                    }
                    ("remove", 1) => {
                        self.tick(l.items.len())?;
                        match &args[0] {
                            Value::Int(i) => match usize::try_from(*i) {
                                Ok(i) if i < l.items.len() => l.items.remove(i),
                                _ => Value::Null,
                            },
                            x => {
                                let mut at = None;
                                for (i, v) in l.items.iter().enumerate() {
                                    if self.equals(v, x)? {
                                        at = Some(i);
                                        break;
                                    }
                                }
                                match at {
                                    Some(i) => {
                                        l.items.remove(i);
                                        Value::Bool(true)
                                    }
                                    None => Value::Bool(false),
                                }
                            }
                        }
                    }
                    ("clear", 0) => {
                        l.items.clear();
                        Value::Null
                    }
                    _ => Value::Null,
                }
            }
            Value::Map(m) => {
                self.tick(m.entries.len() / 8)?;
                let m = self.unshare_map(m)?;
                match (name, args.len()) {
                    ("put" | "putIfAbsent", 2) => {
                        let v = args.remove(1);
                        let k = self.jstr(&args[0])?;
                        if name == "putIfAbsent" && m.get(&k).is_some_and(|x| !x.is_null()) {
                            m.get(&k).cloned().unwrap_or(Value::Null)
                        } else {
                            m.insert(k, v)
                        }
                    }
                    ("putAll", 1) => {
                        if let Some(n) = args[0].len() {
                            self.tick(n.saturating_mul(m.entries.len() / 8 + 1))?;
                        }
                        match &args[0] {
                            Value::Map(other) => {
                                for (k, v) in &other.entries {
                                    m.insert(k.clone(), v.clone());
                                }
                            }
                            Value::Json(serde_json::Value::Object(o)) => {
                                for (k, v) in o {
                                    m.insert(Str::Borrowed(k), Value::json(v));
                                }
                            }
                            _ => {}
                        }
                        Value::Null
                    }
                    ("remove", 1) => {
                        let k = self.jstr(&args[0])?;
                        match m.position(&k) {
                            Some(i) => m.entries.remove(i).1,
                            None => Value::Null,
                        }
                    }
                    ("clear", 0) => {
                        m.entries.clear();
                        Value::Null
                    }
                    _ => Value::Null,
                }
            }
            _ => Value::Null,
        };
        Self::check_depth(recv)?;
        Ok(r)
    }

    /// `$util.name(arg)`.
    pub(super) fn util(&mut self, u: Util, arg: Value<'a>) -> Result<Value<'a>, RenderError> {
        if arg.is_null() {
            return Ok(Value::Null);
        }
        let s = self.jstr(&arg)?;
        self.tick(s.len() / 16)?;
        Ok(match u {
            Util::EscapeJavaScript => {
                let mut out = String::with_capacity(s.len() + 8);
                escape_javascript(&s, &mut out);
                self.owned(out)?
            }
            Util::ParseJson => match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(j) => {
                    self.tick(s.len() / 8)?;
                    from_json(j)
                }
                Err(_) => Value::Null,
            },
            Util::UrlEncode => self.owned(url_encode(&s))?,
            Util::UrlDecode => self.owned(url_decode(&s))?,
            Util::Base64Encode => {
                self.owned(base64::engine::general_purpose::STANDARD.encode(s.as_bytes()))?
            }
            Util::Base64Decode => {
                match base64::engine::general_purpose::STANDARD.decode(s.trim().as_bytes()) {
                    Ok(bytes) => self.owned(String::from_utf8_lossy(&bytes).into_owned())?,
                    Err(_) => Value::Null,
                }
            }
        })
    }
}

fn push<'a>(l: &mut List<'a>, v: Value<'a>) {
    l.depth = l.depth.max(v.depth() + 1);
    l.items.push(v);
}

/// The elements of a list or JSON array (for `addAll`).
fn collection_items<'a>(v: &Value<'a>) -> Vec<Value<'a>> {
    match v {
        Value::List(l) => l.items.clone(),
        Value::Json(serde_json::Value::Array(a)) => a.iter().map(Value::json).collect(),
        _ => Vec::new(),
    }
}

fn number_method<'a>(v: &Value<'a>, name: &str) -> Value<'a> {
    match name {
        "intValue" | "longValue" => match v {
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Int(*f as i64),
            _ => Value::Null,
        },
        "doubleValue" | "floatValue" => v.as_f64().map_or(Value::Null, Value::Float),
        _ => Value::Null,
    }
}

/// A JSON document `$util.parseJson` parsed, as template values (serde_json bounds its depth).
fn from_json<'a>(j: serde_json::Value) -> Value<'a> {
    match j {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(a) => Value::list(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            let mut m = Map::default();
            for (k, v) in o {
                m.insert(Str::Owned(k.into()), from_json(v));
            }
            Value::Map(Rc::new(m))
        }
    }
}

/// Commons Lang 2's `escapeJavaScript`, which API Gateway's `$util.escapeJavaScript` is: `"`,
/// `'`, `\` and `/` get a backslash, control characters their short escape or `\u00XX`, and
/// anything past ASCII `\uXXXX` per UTF-16 unit (upper-case hex).
pub(crate) fn escape_javascript(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{:04X}", u);
                }
            }
            c => out.push(c),
        }
    }
}

/// Java's `URLEncoder.encode(s, "UTF-8")`: letters, digits and `.-*_` stay, space is `+`,
/// every other byte `%XX`.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for &b in s.as_bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char);
            }
            b' ' => out.push('+'),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

/// Java's `URLDecoder.decode(s, "UTF-8")`: `+` is a space, `%XX` a byte; a malformed escape is
/// kept as written (Java would throw).
pub(crate) fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
