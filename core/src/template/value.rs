//! The values a template computes with, and how Java would print them.
//!
//! Values borrow what they can for the time of a render (the parsed body, request strings,
//! literals of the template) and share what they build (`Rc`), so copying one is cheap and a
//! `#set` of a large list copies nothing. Lists and maps know how deep they nest, so no value
//! can make the renderer (or its drop) recurse deeper than [`MAX_DEPTH`].

use std::{fmt::Write as _, rc::Rc};

use serde_json::Value as Json;

/// How deep a list or map may nest (a parsed JSON document counts as [`JSON_DEPTH`]).
pub(crate) const MAX_DEPTH: u32 = 256;
/// What a JSON array or object counts for: serde_json refuses documents nested deeper.
pub(crate) const JSON_DEPTH: u32 = 128;

/// A string: borrowed from the input or the template, or built during the render.
#[derive(Debug, Clone)]
pub(crate) enum Str<'a> {
    Borrowed(&'a str),
    Owned(Rc<str>),
}

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Str::Borrowed(s) => s,
            Str::Owned(s) => s,
        }
    }
}

/// A list built by the template (or a JSON array it changed).
#[derive(Debug, Clone, Default)]
pub(crate) struct List<'a> {
    pub items: Vec<Value<'a>>,
    pub depth: u32,
}

/// A map built by the template, in insertion order; `ci` maps (header maps) match keys
/// case-insensitively.
#[derive(Debug, Clone, Default)]
pub(crate) struct Map<'a> {
    pub entries: Vec<(Str<'a>, Value<'a>)>,
    pub depth: u32,
    pub ci: bool,
}

impl<'a> Map<'a> {
    pub fn position(&self, key: &str) -> Option<usize> {
        if self.ci {
            self.entries
                .iter()
                .position(|(k, _)| k.eq_ignore_ascii_case(key))
        } else {
            self.entries.iter().position(|(k, _)| &**k == key)
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    /// Sets `key`, returning the value it replaced.
    pub fn insert(&mut self, key: Str<'a>, value: Value<'a>) -> Value<'a> {
        self.depth = self.depth.max(value.depth() + 1);
        match self.position(&key) {
            Some(i) => std::mem::replace(&mut self.entries[i].1, value),
            None => {
                self.entries.push((key, value));
                Value::Null
            }
        }
    }
}

/// A value. JSON scalars read from the body are turned into `Bool`, `Int`, `Float` or `Str`
/// as soon as they are read ([`Value::norm`]); `Json` only holds arrays and objects.
#[derive(Debug, Clone, Default)]
pub(crate) enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Str<'a>),
    Json(&'a Json),
    List(Rc<List<'a>>),
    Map(Rc<Map<'a>>),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a str) -> Value<'a> {
        Value::Str(Str::Borrowed(s))
    }

    pub fn string(s: String) -> Value<'a> {
        Value::Str(Str::Owned(s.into()))
    }

    /// A JSON node as a value: scalars become native values.
    pub fn json(j: &'a Json) -> Value<'a> {
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::str(s),
            _ => Value::Json(j),
        }
    }

    pub fn list(items: Vec<Value<'a>>) -> Value<'a> {
        let depth = items.iter().map(Value::depth).max().map_or(1, |d| d + 1);
        Value::List(Rc::new(List { items, depth }))
    }

    pub fn depth(&self) -> u32 {
        match self {
            Value::Json(_) => JSON_DEPTH,
            Value::List(l) => l.depth,
            Value::Map(m) => m.depth,
            _ => 0,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Velocity 1.7's `#if`: null and `false` are false, anything else is true (an empty
    /// string too).
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A number as `f64`, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// An integer argument (an index, a count): integers, and floats without a fraction.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9e18 => Some(*f as i64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A list's or JSON array's length, a map's or JSON object's size.
    pub fn len(&self) -> Option<usize> {
        match self {
            Value::List(l) => Some(l.items.len()),
            Value::Map(m) => Some(m.entries.len()),
            Value::Json(Json::Array(a)) => Some(a.len()),
            Value::Json(Json::Object(o)) => Some(o.len()),
            _ => None,
        }
    }

    /// Element `i` of a list or JSON array.
    pub fn index(&self, i: usize) -> Option<Value<'a>> {
        match self {
            Value::List(l) => l.items.get(i).cloned(),
            Value::Json(Json::Array(a)) => a.get(i).map(Value::json),
            _ => None,
        }
    }

    /// A map's or JSON object's entry.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        match self {
            Value::Map(m) => m.get(key).cloned(),
            Value::Json(Json::Object(o)) => o.get(key).map(Value::json),
            _ => None,
        }
    }

    /// Java's `toString`, appended to `out`. `top`: a null at the top renders as nothing (API
    /// Gateway), inside a collection as `null` (Java). Stops, answering false, once `out` is
    /// longer than `limit` (shared lists can print exponentially more than they hold).
    pub fn write_java(&self, out: &mut Vec<u8>, top: bool, limit: usize) -> bool {
        match self {
            Value::Null if top => {}
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => out.extend_from_slice(java_double(*f).as_bytes()),
            Value::Str(s) => out.extend_from_slice(s.as_bytes()),
            Value::Json(j) => write_json_java(j, out),
            Value::List(l) => {
                out.push(b'[');
                for (i, v) in l.items.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    if !v.write_java(out, false, limit) {
                        return false;
                    }
                }
                out.push(b']');
            }
            Value::Map(m) => {
                out.push(b'{');
                for (i, (k, v)) in m.entries.iter().enumerate() {
                    if i > 0 {
                        out.extend_from_slice(b", ");
                    }
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    if !v.write_java(out, false, limit) {
                        return false;
                    }
                }
                out.push(b'}');
            }
        }
        out.len() <= limit
    }

    /// Java's `toString` as a string (`null` for null, as `String.valueOf` gives); `None` when
    /// longer than `limit` bytes.
    pub fn to_java_string(&self, limit: usize) -> Option<Str<'a>> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Null => Some(Str::Borrowed("null")),
            other => {
                let mut out = Vec::new();
                if !other.write_java(&mut out, false, limit) {
                    return None;
                }
                Some(Str::Owned(String::from_utf8_lossy(&out).into()))
            }
        }
    }

    /// Velocity's `==`: numbers by value, strings by content, null only equals null; values of
    /// different kinds compare by their `toString`. Each node compared burns one unit of
    /// `fuel`; with none left the answer is false (the caller turns that into an error).
    pub fn equals(&self, other: &Value<'a>, fuel: &mut usize) -> bool {
        if *fuel == 0 {
            return false;
        }
        *fuel -= 1;
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (Value::Int(a), Value::Int(b)) => a == b,
            (a, b) if a.as_f64().is_some() && b.as_f64().is_some() => a.as_f64() == b.as_f64(),
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => **a == **b,
            (Value::Json(a), Value::Json(b)) => std::ptr::eq(*a, *b) || a == b,
            (Value::List(a), Value::List(b)) => {
                Rc::ptr_eq(a, b)
                    || (a.items.len() == b.items.len()
                        && a.items.iter().zip(&b.items).all(|(x, y)| x.equals(y, fuel)))
            }
            (Value::Map(a), Value::Map(b)) => {
                Rc::ptr_eq(a, b)
                    || (a.entries.len() == b.entries.len()
                        && a.entries
                            .iter()
                            .all(|(k, v)| b.get(k).is_some_and(|w| v.equals(w, fuel))))
            }
            (a, b) => {
                let limit = (*fuel).saturating_mul(16);
                match (a.to_java_string(limit), b.to_java_string(limit)) {
                    (Some(x), Some(y)) => {
                        *fuel = fuel.saturating_sub((x.len() + y.len()) / 16);
                        *x == *y
                    }
                    _ => {
                        *fuel = 0;
                        false
                    }
                }
            }
        }
    }
}

/// A JSON node as Java prints the map or list Jayway returns: `{a=1, b=[x, y]}`.
fn write_json_java(j: &Json, out: &mut Vec<u8>) {
    match j {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.extend_from_slice(i.to_string().as_bytes()),
            (None, Some(u)) => out.extend_from_slice(u.to_string().as_bytes()),
            _ => out.extend_from_slice(java_double(n.as_f64().unwrap_or(f64::NAN)).as_bytes()),
        },
        Json::String(s) => out.extend_from_slice(s.as_bytes()),
        Json::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_json_java(v, out);
            }
            out.push(b']');
        }
        Json::Object(o) => {
            out.push(b'{');
            for (i, (k, v)) in o.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                write_json_java(v, out);
            }
            out.push(b'}');
        }
    }
}

/// Java's `Double.toString`: plain between 10^-3 and 10^7 (`249.99`, `1.0`), computerized
/// scientific notation outside (`1.0E-4`, `1.0E21`), shortest digits that read back the same.
pub(crate) fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "2.4999e2", "1e-4".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if f < 0.0 {
        out.push('-');
    }
    if (-3..7).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            for _ in 0..(-exp - 1) {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let int_len = (exp + 1) as usize;
            if digits.len() <= int_len {
                out.push_str(&digits);
                for _ in digits.len()..int_len {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        if digits.len() > 1 {
            out.push_str(&digits[1..]);
        } else {
            out.push('0');
        }
        let _ = write!(out, "E{exp}");
    }
    out
}
