//! WebSocket API route selection (AWS `routeSelectionExpression`): which route a message
//! goes to, from a value in its JSON body.
//!
//! An expression is `$request.body.PATH` (`PATH`: dot-separated member names,
//! `$request.body.message.type`), or text with `${request.body.PATH}` references
//! (`${request.body.service}/${request.body.action}`). A message that is not JSON, or lacks a
//! referenced value, selects nothing and goes to `$default`. A string value is used as is,
//! numbers and booleans as their JSON text; objects, arrays and `null` count as missing.

use serde_json::Value;

/// The default expression, AWS's example.
pub const DEFAULT_EXPRESSION: &str = "$request.body.action";

/// One piece of a selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// Member names from the body's root.
    Body(Vec<String>),
}

/// A parsed route selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionExpression {
    parts: Vec<Part>,
}

fn body_path(path: &str, whole: &str) -> Result<Part, String> {
    let Some(rest) = path.strip_prefix("request.body.") else {
        return Err(format!(
            "{whole:?}: only $request.body.NAME values can select a WebSocket route"
        ));
    };
    let names: Vec<String> = rest.split('.').map(str::to_owned).collect();
    if names
        .iter()
        .any(|n| n.is_empty() || n.contains(['$', '{', '}', ' ', '[', ']']))
    {
        return Err(format!(
            "{whole:?}: {path:?} is not a dotted path of member names"
        ));
    }
    Ok(Part::Body(names))
}

impl SelectionExpression {
    /// Parses an expression; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<SelectionExpression, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if !s.contains("${") {
            let Some(path) = s.strip_prefix('$') else {
                return Err(format!(
                    "{s:?}: write $request.body.NAME, or text with ${{request.body.NAME}}"
                ));
            };
            return Ok(SelectionExpression {
                parts: vec![body_path(path, s)?],
            });
        }
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("${") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find('}') else {
                return Err(format!("{s:?}: ${{ without }}"));
            };
            parts.push(body_path(&after[..close], s)?);
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(SelectionExpression { parts })
    }

    /// The selected value for a message; `None`: not JSON, or a referenced value missing.
    pub fn select(&self, message: &[u8]) -> Option<String> {
        let body: Value = serde_json::from_slice(message).ok()?;
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Body(names) => {
                    let mut v = &body;
                    for n in names {
                        v = v.as_object()?.get(n)?;
                    }
                    match v {
                        Value::String(s) => out.push_str(s),
                        Value::Number(n) => out.push_str(&n.to_string()),
                        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                        _ => return None,
                    }
                }
            }
        }
        Some(out)
    }
}

impl Default for SelectionExpression {
    fn default() -> SelectionExpression {
        SelectionExpression {
            parts: vec![Part::Body(vec!["action".into()])],
        }
    }
}
