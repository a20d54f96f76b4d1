//! JSONPath over `serde_json` values, as API Gateway's mapping templates (`$input.path('$.a')`,
//! `$input.json('$.items[0]')`) and HTTP API parameter mapping (`$request.body.name`, which is
//! `$.name`) use it.
//!
//! AWS evaluates these paths with Jayway JsonPath (Goessner's syntax); turnpike evaluates them
//! with `serde_json_path` (RFC 9535) after [`JsonPath::parse`] rewrites the few Jayway forms
//! RFC 9535 spells differently:
//!
//! - a path without the leading `$` (`name`, Jayway prefixes `$.`);
//! - dot members RFC 9535's shorthand does not allow (`$.content-type`, `$.2fa`): they become
//!   `$['content-type']`.
//!
//! Jayway's `[?(@.price < 10)]` filters are RFC 9535 already (a parenthesized logical
//! expression). Not supported: Jayway's functions (`.length()`, `.min()`), its `=~`, `in`,
//! `nin`, `size`, `empty` filter operators (RFC 9535 has `match()`, `search()`, `length()`).
//!
//! Bounds: a path is at most [`MAX_PATH_LEN`] bytes and nests brackets and parentheses at most
//! [`MAX_NESTING`] deep, so parsing an operator's or a client's path never recurses without
//! bound.

use serde_json::Value;

/// The longest path [`JsonPath::parse`] accepts, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// How deep brackets and parentheses may nest in a path.
pub const MAX_NESTING: usize = 32;

/// A compiled JSONPath.
#[derive(Debug, Clone)]
pub struct JsonPath {
    inner: serde_json_path::JsonPath,
    definite: bool,
}

/// What a path selected, with AWS's shape for it (see [`JsonPath::select_aws`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Selection<'v> {
    /// Nothing matched.
    Nothing,
    /// One node.
    One(&'v Value),
    /// Several nodes (or, from [`JsonPath::select_jayway`], any number for an indefinite path).
    Many(Vec<&'v Value>),
}

impl Selection<'_> {
    /// The selection as one JSON value: `None` for nothing, the node, or an array of the nodes.
    pub fn to_value(&self) -> Option<Value> {
        match self {
            Selection::Nothing => None,
            Selection::One(v) => Some((*v).clone()),
            Selection::Many(vs) => Some(Value::Array(vs.iter().map(|v| (*v).clone()).collect())),
        }
    }
}

impl JsonPath {
    /// Parses a path as an API Gateway user writes it (`$`, `$.a.b`, `$['a']`, `$.a[0]`,
    /// `$.a[*].b`, `$..b`, `$.a[-1]`, `$.a[0:2]`, `$.a[?(@.price < 10)]`).
    ///
    /// Errors: a message saying what is wrong (too long, nested too deep, or the RFC 9535
    /// parser's message for the rewritten path).
    pub fn parse(path: &str) -> Result<JsonPath, String> {
        if path.len() > MAX_PATH_LEN {
            return Err(format!("a JSONPath is at most {MAX_PATH_LEN} bytes"));
        }
        let (normal, definite) = normalize(path.trim())?;
        let inner = serde_json_path::JsonPath::parse(&normal).map_err(|e| e.to_string())?;
        Ok(JsonPath { inner, definite })
    }

    /// Whether the path names at most one node by its form (no wildcard, descendant, filter,
    /// slice or union): Jayway's "definite path".
    pub fn is_definite(&self) -> bool {
        self.definite
    }

    /// Every node the path selects, in document order.
    pub fn select<'v>(&self, value: &'v Value) -> Vec<&'v Value> {
        self.inner.query(value).all()
    }

    /// AWS's shape for HTTP API parameter mapping: one node gives that node, several give an
    /// array, none gives nothing.
    pub fn select_aws<'v>(&self, value: &'v Value) -> Selection<'v> {
        let mut nodes = self.select(value);
        match nodes.len() {
            0 => Selection::Nothing,
            1 => Selection::One(nodes.remove(0)),
            _ => Selection::Many(nodes),
        }
    }

    /// Jayway's shape, which `$input.path` and `$input.json` return: a definite path gives its
    /// node or nothing; an indefinite one always gives a list (empty when nothing matched).
    pub fn select_jayway<'v>(&self, value: &'v Value) -> Selection<'v> {
        let mut nodes = self.select(value);
        if !self.definite {
            return Selection::Many(nodes);
        }
        if nodes.is_empty() {
            Selection::Nothing
        } else {
            Selection::One(nodes.swap_remove(0))
        }
    }
}

/// Whether `name` is an RFC 9535 member-name-shorthand.
fn is_shorthand(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok =
        matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic() || !c.is_ascii());
    first_ok && chars.all(|c| c == '_' || c.is_ascii_alphanumeric() || !c.is_ascii())
}

/// Rewrites Jayway spellings into RFC 9535 (see the module doc) and tells whether the path is
/// definite. Brackets, parentheses and quoted strings are copied as they are, only counted.
fn normalize(path: &str) -> Result<(String, bool), String> {
    let path = if path.starts_with('$') {
        path.to_owned()
    } else if path.starts_with('[') {
        format!("${path}")
    } else if path.is_empty() {
        return Err("an empty JSONPath".into());
    } else {
        format!("$.{path}")
    };
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len() + 8);
    let mut definite = true;
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            // Inside a string literal: copy up to the closing quote, escapes included.
            let start = i;
            while i < bytes.len() && bytes[i] != q {
                if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'u') {
                    check_unicode_escape(&bytes[i..])?;
                }
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = i.min(bytes.len());
            out.push_str(&path[start..i]);
            if i < bytes.len() {
                out.push(q as char);
                i += 1;
            }
            quote = None;
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(format!("a JSONPath nests at most {MAX_NESTING} deep"));
                }
            }
            b']' | b')' => depth = depth.saturating_sub(1),
            b'*' | b'?' | b':' | b',' => definite = false,
            b'.' if depth == 0 => {
                let descendant = bytes.get(i + 1) == Some(&b'.');
                if descendant {
                    definite = false;
                }
                let name_start = i + if descendant { 2 } else { 1 };
                let name_end = path[name_start..]
                    .find(['.', '['])
                    .map_or(path.len(), |n| name_start + n);
                let name = &path[name_start..name_end];
                out.push_str(if descendant { ".." } else { "." });
                if name.is_empty() || name == "*" || is_shorthand(name) {
                    if name == "*" {
                        definite = false;
                    }
                    out.push_str(name);
                } else {
                    // `.['x']` is not RFC 9535: a bracket follows the dot only for `..`.
                    if !descendant {
                        out.pop();
                    }
                    out.push_str("['");
                    for c in name.chars() {
                        if c == '\'' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push_str("']");
                }
                i = name_end;
                continue;
            }
            _ => {}
        }
        // Multi-byte characters are copied whole.
        let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&path[i..i + ch_len]);
        i += ch_len;
    }
    Ok((out, definite))
}

/// A `\u` escape is four hex digits, and a high surrogate is followed by a second escape.
/// serde_json_path 0.7 panics ("we do not use streaming parsers") when a path ends inside
/// one, so such paths are refused here first.
fn check_unicode_escape(esc: &[u8]) -> Result<(), String> {
    let hex4 = |at: usize| {
        esc.get(at..at + 4)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .map(|h| {
                h[0].eq_ignore_ascii_case(&b'd')
                    && matches!(h[1], b'8' | b'9' | b'a' | b'b' | b'A' | b'B')
            })
    };
    match hex4(2) {
        None => Err("a \\u escape needs four hex digits".into()),
        Some(true) if !(esc.get(6..8) == Some(b"\\u") && hex4(8).is_some()) => {
            Err("a \\u escape of a high surrogate needs a low surrogate after it".into())
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sel(path: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(path)
            .unwrap()
            .select(v)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn aws_forms() {
        let doc = json!({
            "a": {"b": 1},
            "items": [{"price": 5, "b": "x"}, {"price": 15, "b": "y"}, {"price": 8}],
            "content-type": "t",
        });
        assert_eq!(sel("$", &doc), vec![doc.clone()]);
        assert_eq!(sel("$.a.b", &doc), vec![json!(1)]);
        assert_eq!(sel("$['a']['b']", &doc), vec![json!(1)]);
        assert_eq!(sel("$.items[0].price", &doc), vec![json!(5)]);
        assert_eq!(sel("$.items[*].b", &doc), vec![json!("x"), json!("y")]);
        assert_eq!(sel("$..b", &doc), vec![json!(1), json!("x"), json!("y")]);
        assert_eq!(sel("$.items[-1].price", &doc), vec![json!(8)]);
        assert_eq!(sel("$.items[0:2].price", &doc), vec![json!(5), json!(15)]);
        assert_eq!(
            sel("$.items[?(@.price < 10)].price", &doc),
            vec![json!(5), json!(8)]
        );
        assert_eq!(sel("$.items[?@.price > 10].b", &doc), vec![json!("y")]);
        assert_eq!(sel("$.content-type", &doc), vec![json!("t")]);
        assert_eq!(sel("a.b", &doc), vec![json!(1)]);
        assert_eq!(sel("$.missing", &doc), Vec::<Value>::new());
    }

    #[test]
    fn shapes() {
        let doc = json!({"a": [1, 2], "b": 3});
        let one = JsonPath::parse("$.b").unwrap();
        assert!(one.is_definite());
        assert_eq!(one.select_aws(&doc), Selection::One(&json!(3)));
        assert_eq!(one.select_jayway(&doc), Selection::One(&json!(3)));
        let many = JsonPath::parse("$.a[*]").unwrap();
        assert!(!many.is_definite());
        assert_eq!(many.select_aws(&doc).to_value(), Some(json!([1, 2])));
        let first = JsonPath::parse("$.a[?(@ == 1)]").unwrap();
        assert_eq!(first.select_aws(&doc), Selection::One(&json!(1)));
        assert_eq!(first.select_jayway(&doc).to_value(), Some(json!([1])));
        let none = JsonPath::parse("$.zz").unwrap();
        assert_eq!(none.select_aws(&doc), Selection::Nothing);
        assert_eq!(none.select_jayway(&doc), Selection::Nothing);
    }

    #[test]
    fn bounds() {
        let deep = format!("$[?{}@.a{}]", "(".repeat(100), ")".repeat(100));
        assert!(JsonPath::parse(&deep).is_err());
        let ok = format!("$[?{}@.a{}]", "(".repeat(20), ")".repeat(20));
        assert!(JsonPath::parse(&ok).is_ok());
        assert!(JsonPath::parse(&format!("$.{}", "a".repeat(MAX_PATH_LEN))).is_err());
        assert!(JsonPath::parse("").is_err());
        assert!(JsonPath::parse("$.a[").is_err());
        assert!(JsonPath::parse("$['é'].ü-x").is_ok());
    }

    /// Found by the jsonpath fuzz target: serde_json_path panicked on a path ending inside a
    /// `\u` escape (`fuzz/corpus/jsonpath/regression-unicode-escape-at-end`).
    #[test]
    fn fuzz_regression_unicode_escape_at_end() {
        for path in [
            "[\"i\\\\\\u",
            "$['\\u",
            "$['\\u12",
            "$['\\uD800",
            "$['\\uD800\\u",
            "$['\\uD800\\uDC",
        ] {
            assert!(JsonPath::parse(path).is_err(), "{path}");
        }
        let doc = serde_json::json!({"é": 1, "😀": 2});
        assert_eq!(
            JsonPath::parse("$['\\u00e9']").unwrap().select(&doc),
            vec![&serde_json::json!(1)]
        );
        assert_eq!(
            JsonPath::parse("$['\\uD83D\\uDE00']").unwrap().select(&doc),
            vec![&serde_json::json!(2)]
        );
    }
}
