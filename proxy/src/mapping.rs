//! The parameter mapping step (AWS HTTP API `requestParameters` / `responseParameters`, see
//! [`turnpike_core::mapping`]): the values a mapping reads, taken from the parsed request or
//! response head, and the edits applied to the upstream request head, the function event or
//! the response head. A route whose integration has no mapping never reaches this module.

use std::{cell::OnceCell, collections::BTreeMap, ops::Range};

use turnpike_core::{
    context::RequestContext,
    h1::head::Header,
    mapping::{Edits, ParameterMapping, Source},
};

use crate::{
    auth::Refused,
    conn::{Client, RequestState},
    exchange::RequestCtx,
    plan::RoutePlan,
    worker::Worker,
};

/// AWS applies a body JSONPath to the first 100 KB of a body ("Transform API requests and
/// responses for HTTP APIs": "API Gateway truncates the request body at 100 KB").
pub const JSON_BODY_LIMIT: usize = 100 * 1024;

/// Header fields a mapping's values read.
#[derive(Clone, Copy)]
pub enum Fields<'a> {
    /// Parsed from a head in `buf`.
    Head(&'a [u8], &'a [Header]),
    /// Checked (name, value) pairs: a function's response.
    Pairs(&'a [(String, String)]),
}

impl Fields<'_> {
    fn each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match *self {
            Fields::Head(buf, headers) => {
                for h in headers {
                    f(h.name.get(buf), h.value.get(buf));
                }
            }
            Fields::Pairs(pairs) => {
                for (k, v) in pairs {
                    f(k.as_bytes(), v.as_bytes());
                }
            }
        }
    }
}

/// What a mapping's values read: header fields, and the rest of the request.
struct Values<'a> {
    headers: Fields<'a>,
    query: &'a [u8],
    body: &'a [u8],
    json: OnceCell<Option<serde_json::Value>>,
    path: &'a [u8],
    params: &'a [(Box<str>, Box<str>)],
    vars: Option<&'a BTreeMap<String, String>>,
    ctx: RequestContext<'a>,
}

impl Source for Values<'_> {
    fn header(&self, name: &str, out: &mut Vec<u8>) -> bool {
        let mut found = false;
        self.headers.each(|n, v| {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                if found {
                    out.push(b',');
                }
                out.extend_from_slice(v);
                found = true;
            }
        });
        found
    }

    fn querystring(&self, name: &str, out: &mut Vec<u8>) -> bool {
        let query = String::from_utf8_lossy(self.query);
        let mut found = false;
        for (n, v) in turnpike_core::auth::request_authorizer::query_pairs(&query) {
            if n == name {
                if found {
                    out.push(b',');
                }
                out.extend_from_slice(v.as_bytes());
                found = true;
            }
        }
        found
    }

    fn body(&self) -> &[u8] {
        self.body
    }

    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| {
                let b = &self.body[..self.body.len().min(JSON_BODY_LIMIT)];
                serde_json::from_slice(b).ok()
            })
            .as_ref()
    }

    fn path(&self) -> &[u8] {
        self.path
    }

    fn path_parameter(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }

    fn stage_variable(&self, name: &str) -> Option<&str> {
        self.vars?.get(name).map(String::as_str)
    }

    fn context(&self) -> &RequestContext<'_> {
        &self.ctx
    }
}

/// Evaluates the request mapping of `m`. Reads the body whole first (up to `plan.body_limit`)
/// when a value reads it; a body that cannot be read is refused as reading it for the
/// integration would be.
#[allow(clippy::too_many_arguments)]
pub async fn map_request(
    worker: &Worker,
    c: &mut Client,
    st: &mut RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    m: &ParameterMapping,
    path: Range<usize>,
    params: &[(Box<str>, Box<str>)],
) -> Result<Edits, Refused> {
    let body = if m.reads_request_body() {
        crate::body::read_whole_any(worker, c, st, plan.body_limit).await?
    } else {
        0..0
    };
    let snap = worker.snapshot();
    let buf = &st.rbuf;
    let values = Values {
        headers: Fields::Head(buf, &st.head.headers),
        query: st.head.query.map_or(&b""[..], |q| q.get(buf)),
        body: &buf[body],
        json: OnceCell::new(),
        path: &buf[path],
        params,
        vars: snap.stage_of(plan).map(|s| &s.variables),
        ctx: crate::exchange::context(c, st, x, plan),
    };
    Ok(m.request_edits(&values))
}

/// Evaluates the response mapping of `m` for a response with `headers` (`body`: as much of
/// its body as was read). `None` when its status is not mapped.
#[allow(clippy::too_many_arguments)]
pub fn map_response(
    worker: &Worker,
    c: &Client,
    st: &RequestState,
    x: &RequestCtx,
    plan: &RoutePlan,
    m: &ParameterMapping,
    status: u16,
    headers: Fields<'_>,
    body: &[u8],
) -> Option<Edits> {
    if !m.maps_response(status) {
        return None;
    }
    let snap = worker.snapshot();
    let values = Values {
        headers,
        query: b"",
        body,
        json: OnceCell::new(),
        path: b"",
        params: &[],
        vars: snap.stage_of(plan).map(|s| &s.variables),
        ctx: crate::exchange::context(c, st, x, plan),
    };
    m.response_edits(status, &values)
}

/// Applies request edits to an upstream request head written by
/// [`crate::upstream::request::write_head`]: the request-target's path and query, then the
/// header lines.
pub fn edit_upstream_head(out: &mut Vec<u8>, edits: &Edits) {
    let Some(line_end) = memchr::memmem::find(out, b"\r\n") else {
        return;
    };
    if edits.path.is_some() || !edits.query.is_empty() {
        let line = &out[..line_end];
        let (Some(sp1), Some(sp2)) = (memchr::memchr(b' ', line), memchr::memrchr(b' ', line))
        else {
            return;
        };
        let target = &line[sp1 + 1..sp2];
        let (path, query) = match memchr::memchr(b'?', target) {
            Some(q) => (&target[..q], &target[q + 1..]),
            None => (target, &b""[..]),
        };
        let mut new = Vec::with_capacity(line_end + 64);
        new.extend_from_slice(&line[..=sp1]);
        match &edits.path {
            Some(p) => new.extend_from_slice(p.as_bytes()),
            None => new.extend_from_slice(path),
        }
        let query = if edits.query.is_empty() {
            String::from_utf8_lossy(query).into_owned()
        } else {
            let mut q = String::new();
            turnpike_core::mapping::edit_query(
                &String::from_utf8_lossy(query),
                &edits.query,
                &mut q,
            );
            q
        };
        if !query.is_empty() {
            new.push(b'?');
            new.extend_from_slice(query.as_bytes());
        }
        new.extend_from_slice(&line[sp2..]);
        let old_len = line_end;
        out.splice(..old_len, new);
    }
    let from = memchr::memmem::find(out, b"\r\n").map_or(out.len(), |i| i + 2);
    if !edits.headers.is_empty() {
        turnpike_core::mapping::edit_header_lines(out, from, &edits.headers);
    }
}

/// Applies response edits to a response head in `out` that starts at `start` (status line,
/// then header lines; not yet ended): the status line when the status is overwritten, then
/// the headers. Returns the status sent.
pub fn edit_response_head(out: &mut Vec<u8>, start: usize, status: u16, edits: &Edits) -> u16 {
    let Some(line_len) = memchr::memmem::find(&out[start..], b"\r\n") else {
        return status;
    };
    let mut sent = status;
    if let Some(s) = edits.status
        && s != status
    {
        let mut line = Vec::with_capacity(line_len + 2);
        crate::h1::encode::status_line(&mut line, s, crate::h1::encode::reason(s).as_bytes());
        out.splice(start..start + line_len + 2, line);
        sent = s;
    }
    let from = start + memchr::memmem::find(&out[start..], b"\r\n").map_or(0, |i| i + 2);
    if !edits.headers.is_empty() {
        turnpike_core::mapping::edit_header_lines(out, from, &edits.headers);
    }
    sent
}
