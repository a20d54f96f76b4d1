//! JSONPath selection over a parsed JSON body: `$`, `.name`, `['name']`, `[n]` and `[*]`.

use serde_json::Value;

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Name(String),
    Index(i64),
    All,
}

impl JsonPath {
    /// Parses `$`, `$.a.b`, `$['a']`, `$.a[0]`, `$.a[*]`.
    ///
    /// Errors: a path that does not start with `$`, or a step it cannot read.
    pub fn parse(src: &str) -> Result<JsonPath, String> {
        let rest = src
            .strip_prefix('$')
            .ok_or_else(|| format!("{src:?}: a JSONPath starts with `$`"))?;
        let b = rest.as_bytes();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < b.len() && b[end] != b'.' && b[end] != b'[' {
                        end += 1;
                    }
                    let name = &rest[start..end];
                    if name.is_empty() {
                        return Err(format!("{src:?}: empty name at byte {}", start + 1));
                    }
                    steps.push(if name == "*" {
                        Step::All
                    } else {
                        Step::Name(name.to_owned())
                    });
                    i = end;
                }
                b'[' => {
                    let close = rest[i..]
                        .find(']')
                        .ok_or_else(|| format!("{src:?}: `[` without `]`"))?;
                    let inner = rest[i + 1..i + close].trim();
                    let step = if inner == "*" {
                        Step::All
                    } else if let Some(q) = inner
                        .strip_prefix('\'')
                        .and_then(|s| s.strip_suffix('\''))
                        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                    {
                        Step::Name(q.to_owned())
                    } else {
                        Step::Index(
                            inner
                                .parse()
                                .map_err(|_| format!("{src:?}: [{inner}] is not an index"))?,
                        )
                    };
                    steps.push(step);
                    i += close + 1;
                }
                _ => return Err(format!("{src:?}: unexpected {:?}", b[i] as char)),
            }
        }
        Ok(JsonPath { steps })
    }

    /// The nodes of `root` this path selects, in document order.
    pub fn select<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut nodes = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for n in nodes {
                match (step, n) {
                    (Step::Name(k), Value::Object(m)) => next.extend(m.get(k)),
                    (Step::Index(i), Value::Array(a)) => {
                        let at = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(at).ok().and_then(|at| a.get(at)));
                    }
                    (Step::All, Value::Array(a)) => next.extend(a.iter()),
                    (Step::All, Value::Object(m)) => next.extend(m.values()),
                    _ => {}
                }
            }
            nodes = next;
        }
        nodes
    }
}
