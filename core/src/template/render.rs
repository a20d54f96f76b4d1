//! Walking a compiled template over a [`TemplateInput`].
//!
//! Every node, expression, loop turn and copied element is counted against
//! [`RenderLimits::max_steps`]; every buffer is checked against [`RenderLimits::max_output`]
//! after it grows. Recursion follows the template's tree (bounded when compiling) and values'
//! nesting (bounded by [`MAX_DEPTH`]), never the body.

use std::{cell::OnceCell, rc::Rc};

use serde_json::Value as Json;

use super::{
    MappingTemplate, Overrides, RenderError, RenderLimits, TemplateInput,
    ast::{Access, BinOp, Expr, LoopProperty, Node, OverrideKind, PathArg, Ref, Root, Target},
    value::{List, MAX_DEPTH, Map, Str, Value},
};
use crate::{
    context::{RequestTime, VarValue},
    jsonpath::{JsonPath, Selection},
};

/// What a block asks of the blocks around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Stop,
}

struct Loop {
    index: usize,
    count: usize,
}

/// A key on the way to an entry that `#set` or a method like `put` changes.
enum Key<'a> {
    Name(Str<'a>),
    Index(i64),
}

pub(super) struct Renderer<'a> {
    input: &'a TemplateInput<'a>,
    body: &'a OnceCell<Result<Json, String>>,
    locals: Vec<Value<'a>>,
    loops: Vec<Loop>,
    params: Option<Value<'a>>,
    overrides: Overrides,
    steps: u64,
    pub(super) limits: RenderLimits,
}

pub(super) fn render(
    t: &MappingTemplate,
    input: &TemplateInput<'_>,
    out: &mut Vec<u8>,
    limits: &RenderLimits,
) -> Result<Overrides, RenderError> {
    let body = OnceCell::new();
    let mut r = Renderer {
        input,
        body: &body,
        locals: vec![Value::Null; t.locals],
        loops: Vec::new(),
        params: None,
        overrides: Overrides::default(),
        steps: 0,
        limits: *limits,
    };
    let base = out.len();
    r.block(&t.body, out, base)?;
    Ok(r.overrides)
}

impl<'a> Renderer<'a> {
    /// Counts `n` steps against the budget.
    pub(super) fn tick(&mut self, n: usize) -> Result<(), RenderError> {
        self.steps = self.steps.saturating_add(n as u64);
        if self.steps > self.limits.max_steps {
            return Err(RenderError::TooManySteps(self.limits.max_steps));
        }
        Ok(())
    }

    /// Refuses a string or buffer longer than the output limit.
    pub(super) fn check_len(&self, len: usize) -> Result<(), RenderError> {
        if len > self.limits.max_output {
            return Err(RenderError::OutputTooLarge(self.limits.max_output));
        }
        Ok(())
    }

    /// Java's `toString` of `v`, counted (a sixteenth of a step per byte) and bounded by the
    /// output limit.
    pub(super) fn jstr(&mut self, v: &Value<'a>) -> Result<Str<'a>, RenderError> {
        if let Value::Str(s) = v {
            return Ok(s.clone());
        }
        let s = v
            .to_java_string(self.limits.max_output)
            .ok_or(RenderError::OutputTooLarge(self.limits.max_output))?;
        self.tick(s.len() / 16)?;
        Ok(s)
    }

    /// Velocity's `==`, counted against the budget.
    pub(super) fn equals(&mut self, a: &Value<'a>, b: &Value<'a>) -> Result<bool, RenderError> {
        let fuel =
            usize::try_from(self.limits.max_steps.saturating_sub(self.steps)).unwrap_or(usize::MAX);
        let mut left = fuel;
        let eq = a.equals(b, &mut left);
        if left == 0 {
            return Err(RenderError::TooManySteps(self.limits.max_steps));
        }
        self.tick(fuel - left)?;
        Ok(eq)
    }

    pub(super) fn check_depth(v: &Value<'a>) -> Result<(), RenderError> {
        if v.depth() > MAX_DEPTH {
            return Err(RenderError::TooDeep(MAX_DEPTH as usize));
        }
        Ok(())
    }

    fn block(
        &mut self,
        nodes: &'a [Node],
        out: &mut Vec<u8>,
        base: usize,
    ) -> Result<Flow, RenderError> {
        for node in nodes {
            self.tick(1)?;
            match node {
                Node::Text(t) => out.extend_from_slice(t.as_bytes()),
                Node::Ref(r) => self.write_ref(r, out)?,
                Node::Set(target, e) => {
                    let v = self.eval(e)?;
                    // Velocity 1.7 (`directive.set.null.allowed = false`): a null right-hand
                    // side leaves the left-hand side as it was.
                    if !v.is_null() {
                        self.set(target, v)?;
                    }
                }
                Node::If(branches, otherwise) => {
                    let mut chosen = otherwise.as_deref();
                    for (cond, body) in branches {
                        if self.eval(cond)?.truthy() {
                            chosen = Some(body);
                            break;
                        }
                    }
                    if let Some(body) = chosen {
                        let flow = self.block(body, out, base)?;
                        if flow != Flow::Normal {
                            return Ok(flow);
                        }
                    }
                }
                Node::Foreach(slot, iter, body) => {
                    if self.foreach(*slot, iter, body, out, base)? == Flow::Stop {
                        return Ok(Flow::Stop);
                    }
                }
                Node::Break => return Ok(Flow::Break),
                Node::Stop => return Ok(Flow::Stop),
            }
            self.check_len(out.len() - base)?;
        }
        Ok(Flow::Normal)
    }

    fn foreach(
        &mut self,
        slot: usize,
        iter: &'a Expr,
        body: &'a [Node],
        out: &mut Vec<u8>,
        base: usize,
    ) -> Result<Flow, RenderError> {
        let coll = self.eval(iter)?;
        let count = match &coll {
            Value::List(_) | Value::Map(_) | Value::Json(_) => coll.len().unwrap_or(0),
            _ => 0,
        };
        if count == 0 {
            return Ok(Flow::Normal);
        }
        // An object's values, once, so each turn is O(1).
        let object_values: Vec<&'a Json> = match &coll {
            Value::Json(Json::Object(o)) => {
                self.tick(o.len())?;
                o.values().collect()
            }
            _ => Vec::new(),
        };
        let saved = std::mem::take(&mut self.locals[slot]);
        self.loops.push(Loop { index: 0, count });
        let mut flow = Flow::Normal;
        for i in 0..count {
            self.tick(1)?;
            let item = match &coll {
                Value::List(l) => l.items[i].clone(),
                Value::Map(m) => m.entries[i].1.clone(),
                Value::Json(Json::Array(a)) => Value::json(&a[i]),
                Value::Json(Json::Object(_)) => Value::json(object_values[i]),
                _ => Value::Null,
            };
            self.locals[slot] = item;
            if let Some(l) = self.loops.last_mut() {
                l.index = i;
            }
            match self.block(body, out, base)? {
                Flow::Normal => {}
                Flow::Break => break,
                Flow::Stop => {
                    flow = Flow::Stop;
                    break;
                }
            }
        }
        self.loops.pop();
        self.locals[slot] = saved;
        Ok(flow)
    }

    fn write_ref(&mut self, r: &'a Ref, out: &mut Vec<u8>) -> Result<(), RenderError> {
        if let (Root::InputJson(arg), true) = (&r.root, r.chain.is_empty()) {
            return self.input_json(arg, out);
        }
        let v = self.eval_ref(r)?;
        if let Value::List(_) | Value::Map(_) | Value::Json(_) = v {
            // Printing walks every element: count them.
            self.tick(v.len().unwrap_or(0))?;
        }
        let limit = out.len() + self.limits.max_output;
        if !v.write_java(out, true, limit) {
            return Err(RenderError::OutputTooLarge(self.limits.max_output));
        }
        Ok(())
    }

    fn set(&mut self, target: &'a Target, v: Value<'a>) -> Result<(), RenderError> {
        Self::check_depth(&v)?;
        match target {
            Target::Local(slot, path) if path.is_empty() => self.locals[*slot] = v,
            Target::Local(slot, path) => {
                let mut keys = self.keys(path)?;
                let Some(last) = keys.pop() else {
                    return Ok(());
                };
                self.mutate(*slot, &keys, move |r, place| {
                    r.make_native(place)?;
                    match (place, last) {
                        (Value::Map(m), key) => {
                            let key = match key {
                                Key::Name(n) => n,
                                Key::Index(i) => Str::Owned(i.to_string().into()),
                            };
                            r.tick(m.entries.len())?;
                            r.unshare_map(m)?.insert(key, v);
                        }
                        (Value::List(l), Key::Index(i)) => {
                            if let Ok(i) = usize::try_from(i)
                                && i < l.items.len()
                            {
                                let l = r.unshare_list(l)?;
                                l.depth = l.depth.max(v.depth() + 1);
                                l.items[i] = v;
                            }
                        }
                        _ => {}
                    }
                    Ok(Value::Null)
                })?;
            }
            Target::OverrideStatus => {
                if let Some(s) = v.as_i64().and_then(|s| u16::try_from(s).ok()) {
                    self.overrides.status = Some(s);
                }
            }
            Target::Override(kind, name) => {
                let value = self.jstr(&v)?.to_string();
                let list = match kind {
                    OverrideKind::ResponseHeader => &mut self.overrides.header,
                    OverrideKind::RequestHeader => &mut self.overrides.request_header,
                    OverrideKind::RequestQuerystring => &mut self.overrides.querystring,
                    OverrideKind::RequestPath => &mut self.overrides.path,
                };
                match list.iter_mut().find(|(n, _)| n == &**name) {
                    Some(entry) => entry.1 = value,
                    None => list.push((name.to_string(), value)),
                }
            }
        }
        Ok(())
    }

    fn keys(&mut self, path: &'a [Access]) -> Result<Vec<Key<'a>>, RenderError> {
        let mut keys = Vec::with_capacity(path.len());
        for a in path {
            keys.push(match a {
                Access::Property(p) => Key::Name(Str::Borrowed(p)),
                Access::Index(e) => match self.eval(e)? {
                    Value::Int(i) => Key::Index(i),
                    other => Key::Name(self.jstr(&other)?),
                },
                Access::Call(..) => return Ok(keys),
            });
        }
        Ok(keys)
    }

    /// Runs `f` on the value at `keys` inside variable `slot`, changing it in place (copying
    /// only what is shared). `None` when the path leads nowhere.
    fn mutate(
        &mut self,
        slot: usize,
        keys: &[Key<'a>],
        f: impl FnOnce(&mut Self, &mut Value<'a>) -> Result<Value<'a>, RenderError>,
    ) -> Result<Option<Value<'a>>, RenderError> {
        let mut root = std::mem::take(&mut self.locals[slot]);
        let r = self.mutate_in(&mut root, keys, f);
        self.locals[slot] = root;
        r
    }

    fn mutate_in(
        &mut self,
        v: &mut Value<'a>,
        keys: &[Key<'a>],
        f: impl FnOnce(&mut Self, &mut Value<'a>) -> Result<Value<'a>, RenderError>,
    ) -> Result<Option<Value<'a>>, RenderError> {
        let Some((first, rest)) = keys.split_first() else {
            let r = f(self, v)?;
            Self::check_depth(v)?;
            return Ok(Some(r));
        };
        self.make_native(v)?;
        match (v, first) {
            (Value::Map(m), key) => {
                let name = match key {
                    Key::Name(n) => n.to_string(),
                    Key::Index(i) => i.to_string(),
                };
                self.tick(m.entries.len())?;
                let m = self.unshare_map(m)?;
                let Some(i) = m.position(&name) else {
                    return Ok(None);
                };
                let r = self.mutate_in(&mut m.entries[i].1, rest, f)?;
                m.depth = m.depth.max(m.entries[i].1.depth() + 1);
                Ok(r)
            }
            (Value::List(l), Key::Index(i)) => {
                let Ok(i) = usize::try_from(*i) else {
                    return Ok(None);
                };
                if i >= l.items.len() {
                    return Ok(None);
                }
                let l = self.unshare_list(l)?;
                let r = self.mutate_in(&mut l.items[i], rest, f)?;
                l.depth = l.depth.max(l.items[i].depth() + 1);
                Ok(r)
            }
            _ => Ok(None),
        }
    }

    /// A JSON array or object about to change becomes a list or map (one level: its elements
    /// stay borrowed).
    pub(super) fn make_native(&mut self, v: &mut Value<'a>) -> Result<(), RenderError> {
        match v {
            Value::Json(Json::Array(a)) => {
                self.tick(a.len())?;
                *v = Value::list(a.iter().map(Value::json).collect());
            }
            Value::Json(Json::Object(o)) => {
                self.tick(o.len())?;
                let mut m = Map::default();
                for (k, x) in o.iter() {
                    let x = Value::json(x);
                    m.depth = m.depth.max(x.depth() + 1);
                    m.entries.push((Str::Borrowed(k), x));
                }
                *v = Value::Map(Rc::new(m));
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn unshare_list<'m>(
        &mut self,
        l: &'m mut Rc<List<'a>>,
    ) -> Result<&'m mut List<'a>, RenderError> {
        if Rc::strong_count(l) > 1 {
            self.tick(l.items.len())?;
        }
        Ok(Rc::make_mut(l))
    }

    pub(super) fn unshare_map<'m>(
        &mut self,
        m: &'m mut Rc<Map<'a>>,
    ) -> Result<&'m mut Map<'a>, RenderError> {
        if Rc::strong_count(m) > 1 {
            self.tick(m.entries.len())?;
        }
        Ok(Rc::make_mut(m))
    }

    pub(super) fn eval(&mut self, e: &'a Expr) -> Result<Value<'a>, RenderError> {
        self.tick(1)?;
        Ok(match e {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::str(s),
            Expr::Interpolated(nodes) => {
                let mut buf = Vec::new();
                self.block(nodes, &mut buf, 0)?;
                self.tick(buf.len() / 16)?;
                Value::string(String::from_utf8_lossy(&buf).into_owned())
            }
            Expr::List(items) => {
                let mut vs = Vec::with_capacity(items.len());
                for item in items {
                    vs.push(self.eval(item)?);
                }
                let v = Value::list(vs);
                Self::check_depth(&v)?;
                v
            }
            Expr::Range(from, to) => {
                let (Some(a), Some(b)) = (self.eval(from)?.as_i64(), self.eval(to)?.as_i64())
                else {
                    return Ok(Value::Null);
                };
                let len = a.abs_diff(b).saturating_add(1);
                self.tick(usize::try_from(len).unwrap_or(usize::MAX))?;
                let items: Vec<Value> = if a <= b {
                    (a..=b).map(Value::Int).collect()
                } else {
                    (b..=a).rev().map(Value::Int).collect()
                };
                Value::list(items)
            }
            Expr::Map(entries) => {
                let mut m = Map::default();
                for (k, v) in entries {
                    let k = self.eval(k)?;
                    let k = self.jstr(&k)?;
                    let v = self.eval(v)?;
                    self.tick(m.entries.len())?;
                    m.insert(k, v);
                }
                let v = Value::Map(Rc::new(m));
                Self::check_depth(&v)?;
                v
            }
            Expr::Ref(r) => self.eval_ref(r)?,
            Expr::Not(e) => Value::Bool(!self.eval(e)?.truthy()),
            Expr::Neg(e) => match self.eval(e)? {
                Value::Int(i) => i
                    .checked_neg()
                    .map_or(Value::Float(-(i as f64)), Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            Expr::Binary(op, l, r) => self.binary(*op, l, r)?,
        })
    }

    fn binary(&mut self, op: BinOp, l: &'a Expr, r: &'a Expr) -> Result<Value<'a>, RenderError> {
        match op {
            BinOp::And => {
                let v = self.eval(l)?.truthy() && self.eval(r)?.truthy();
                return Ok(Value::Bool(v));
            }
            BinOp::Or => {
                let v = self.eval(l)?.truthy() || self.eval(r)?.truthy();
                return Ok(Value::Bool(v));
            }
            _ => {}
        }
        let a = self.eval(l)?;
        let b = self.eval(r)?;
        Ok(match op {
            BinOp::Eq | BinOp::Ne => Value::Bool(self.equals(&a, &b)? == (op == BinOp::Eq)),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let ord = match (&a, &b) {
                    (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
                    _ => match (a.as_f64(), b.as_f64()) {
                        (Some(x), Some(y)) => x.partial_cmp(&y),
                        _ => None,
                    },
                };
                Value::Bool(ord.is_some_and(|o| match op {
                    BinOp::Lt => o.is_lt(),
                    BinOp::Le => o.is_le(),
                    BinOp::Gt => o.is_gt(),
                    _ => o.is_ge(),
                }))
            }
            BinOp::Add if matches!(a, Value::Str(_)) || matches!(b, Value::Str(_)) => {
                if a.is_null() || b.is_null() {
                    return Ok(Value::Null);
                }
                let (x, y) = (self.jstr(&a)?, self.jstr(&b)?);
                self.check_len(x.len() + y.len())?;
                self.tick((x.len() + y.len()) / 16)?;
                Value::string(format!("{}{}", &*x, &*y))
            }
            _ => arith(op, &a, &b),
        })
    }

    pub(super) fn eval_ref(&mut self, r: &'a Ref) -> Result<Value<'a>, RenderError> {
        let mut start = 0;
        let mut v = Value::Null;
        let mut done = false;
        if let Root::Local(slot) = r.root
            && let Some(k) = r.chain.iter().position(|a| match a {
                Access::Call(n, _) => super::methods::is_mutating(n),
                _ => false,
            })
            && !r.chain[..k].iter().any(|a| matches!(a, Access::Call(..)))
        {
            let keys = self.keys(&r.chain[..k])?;
            let Access::Call(name, args) = &r.chain[k] else {
                return Ok(Value::Null);
            };
            let args = self.args(args)?;
            v = self
                .mutate(slot, &keys, |me, place| me.call_mut(place, name, args))?
                .unwrap_or(Value::Null);
            start = k + 1;
            done = true;
        }
        if !done {
            v = self.root(&r.root)?;
        }
        for a in &r.chain[start..] {
            if v.is_null() {
                return Ok(Value::Null);
            }
            self.tick(1)?;
            v = match a {
                Access::Property(p) => self.property(&v, p),
                Access::Index(e) => {
                    let i = self.eval(e)?;
                    match (&v, &i) {
                        (Value::Map(_) | Value::Json(Json::Object(_)), _) => {
                            let key = self.jstr(&i)?;
                            v.get(&key).unwrap_or(Value::Null)
                        }
                        _ => i
                            .as_i64()
                            .and_then(|i| usize::try_from(i).ok())
                            .and_then(|i| v.index(i))
                            .unwrap_or(Value::Null),
                    }
                }
                Access::Call(name, args) => {
                    let args = self.args(args)?;
                    if super::methods::is_mutating(name) {
                        let mut tmp = v;
                        self.call_mut(&mut tmp, name, args)?
                    } else {
                        self.call(v, name, args)?
                    }
                }
            };
        }
        Ok(v)
    }

    fn args(&mut self, args: &'a [Expr]) -> Result<Vec<Value<'a>>, RenderError> {
        let mut vs = Vec::with_capacity(args.len());
        for a in args {
            vs.push(self.eval(a)?);
        }
        Ok(vs)
    }

    /// `.name` on a value: a map's entry, else a Java bean property.
    fn property(&mut self, v: &Value<'a>, name: &str) -> Value<'a> {
        match v {
            Value::Map(m) => {
                // A linear search: count it.
                let _ = self.tick(m.entries.len() / 8);
                v.get(name).unwrap_or(Value::Null)
            }
            Value::Json(Json::Object(_)) => v.get(name).unwrap_or(Value::Null),
            _ => match name {
                "empty" => self
                    .call(v.clone(), "isEmpty", Vec::new())
                    .unwrap_or(Value::Null),
                "class" => Value::Null,
                _ => Value::Null,
            },
        }
    }

    fn body_json(&self) -> Result<&'a Json, RenderError> {
        let parsed = self.body.get_or_init(|| {
            let body = self.input.body;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Json::Object(serde_json::Map::new()));
            }
            serde_json::from_slice(body).map_err(|e| e.to_string())
        });
        parsed
            .as_ref()
            .map_err(|e| RenderError::BodyNotJson(e.clone()))
    }

    fn path(&mut self, arg: &'a PathArg) -> Result<Option<Selection<'a>>, RenderError> {
        let doc = self.body_json()?;
        Ok(match arg {
            PathArg::Literal(p) => Some(p.select_jayway(doc)),
            PathArg::Dynamic(e) => {
                let s = self.eval(e)?;
                let s = self.jstr(&s)?;
                JsonPath::parse(&s).ok().map(|p| p.select_jayway(doc))
            }
        })
    }

    fn input_json(&mut self, arg: &'a PathArg, out: &mut Vec<u8>) -> Result<(), RenderError> {
        let before = out.len();
        let written = match self.path(arg)? {
            None | Some(Selection::Nothing) => serde_json::to_writer(&mut *out, &Json::Null),
            Some(Selection::One(v)) => serde_json::to_writer(&mut *out, v),
            Some(Selection::Many(vs)) => serde_json::to_writer(&mut *out, &vs),
        };
        if written.is_err() {
            out.truncate(before);
        }
        self.tick((out.len() - before) / 64)
    }

    fn root(&mut self, root: &'a Root) -> Result<Value<'a>, RenderError> {
        let input = self.input;
        let ctx = input.context;
        Ok(match root {
            Root::Local(slot) => self.locals[*slot].clone(),
            Root::InputBody => match std::str::from_utf8(input.body) {
                Ok(s) => Value::str(s),
                Err(_) => Value::string(String::from_utf8_lossy(input.body).into_owned()),
            },
            Root::InputJson(arg) => {
                let mut buf = Vec::new();
                self.input_json(arg, &mut buf)?;
                self.check_len(buf.len())?;
                Value::string(String::from_utf8_lossy(&buf).into_owned())
            }
            Root::InputPath(arg) => match self.path(arg)? {
                None | Some(Selection::Nothing) => Value::Null,
                Some(Selection::One(v)) => Value::json(v),
                Some(Selection::Many(vs)) => {
                    self.tick(vs.len())?;
                    Value::list(vs.into_iter().map(Value::json).collect())
                }
            },
            Root::InputParams(None) => self.params()?,
            Root::InputParams(Some(name)) => {
                let name = self.eval(name)?;
                let name = self.jstr(&name)?;
                let found = last(input.path, |n| n == &*name)
                    .or_else(|| last(input.querystring, |n| n == &*name))
                    .or_else(|| last(input.header, |n| n.eq_ignore_ascii_case(&name)));
                found.map_or(Value::Null, Value::str)
            }
            Root::Util(u, args) => {
                let arg = match args.first() {
                    Some(a) => self.eval(a)?,
                    None => Value::Null,
                };
                self.util(*u, arg)?
            }
            Root::Context(var) => match var.value(ctx) {
                VarValue::Missing => Value::Null,
                VarValue::Text(s) => Value::str(s),
                VarValue::Num(n) => i64::try_from(n).map_or(Value::Float(n as f64), Value::Int),
                VarValue::Ip(ip) => Value::string(ip.to_string()),
                VarValue::Time(ms) => {
                    Value::string(RequestTime::from_epoch_ms(ms).as_str().to_owned())
                }
                VarValue::Quoted(s) => {
                    let mut buf = Vec::with_capacity(s.len() + 2);
                    crate::context::escape::json_string(s, &mut buf);
                    Value::string(String::from_utf8_lossy(&buf).into_owned())
                }
            },
            Root::Claim(name) => ctx
                .authorizer
                .and_then(|a| a.0.claim(name))
                .map_or(Value::Null, Value::str),
            Root::AuthorizerProperty(name) => ctx
                .authorizer
                .and_then(|a| a.0.property(name))
                .map_or(Value::Null, Value::str),
            Root::OverrideStatus => self
                .overrides
                .status
                .or(input.status)
                .map_or(Value::Null, |s| Value::Int(s.into())),
            Root::Override(kind, name) => {
                let list = match kind {
                    OverrideKind::ResponseHeader => &self.overrides.header,
                    OverrideKind::RequestHeader => &self.overrides.request_header,
                    OverrideKind::RequestQuerystring => &self.overrides.querystring,
                    OverrideKind::RequestPath => &self.overrides.path,
                };
                list.iter()
                    .find(|(n, _)| n == &**name)
                    .map_or(Value::Null, |(_, v)| Value::string(v.clone()))
            }
            Root::StageVariable(name) => {
                last(input.stage_variables, |n| n == &**name).map_or(Value::Null, Value::str)
            }
            Root::StageVariables => {
                self.tick(input.stage_variables.len())?;
                pairs_map(input.stage_variables, false)
            }
            Root::Foreach(prop) => match self.loops.last() {
                None => Value::Null,
                Some(l) => match prop {
                    LoopProperty::HasNext => Value::Bool(l.index + 1 < l.count),
                    LoopProperty::Index => Value::Int(l.index as i64),
                    LoopProperty::Count => Value::Int(l.index as i64 + 1),
                    LoopProperty::First => Value::Bool(l.index == 0),
                    LoopProperty::Last => Value::Bool(l.index + 1 == l.count),
                },
            },
            Root::VelocityCount => self
                .loops
                .last()
                .map_or(Value::Null, |l| Value::Int(l.index as i64 + 1)),
            Root::Null => Value::Null,
        })
    }

    /// `$input.params()`: `{path={..}, querystring={..}, header={..}}`, built once per render.
    fn params(&mut self) -> Result<Value<'a>, RenderError> {
        if let Some(p) = &self.params {
            return Ok(p.clone());
        }
        let input = self.input;
        let n = input.path.len() + input.querystring.len() + input.header.len();
        self.tick(n.saturating_mul(n) / 16 + 3)?;
        let mut m = Map::default();
        m.insert(Str::Borrowed("path"), pairs_map(input.path, false));
        m.insert(
            Str::Borrowed("querystring"),
            pairs_map(input.querystring, false),
        );
        m.insert(Str::Borrowed("header"), pairs_map(input.header, true));
        let v = Value::Map(Rc::new(m));
        self.params = Some(v.clone());
        Ok(v)
    }
}

/// The last value of a name in a list of pairs.
fn last<'a>(pairs: &'a [(&'a str, &'a str)], hit: impl Fn(&str) -> bool) -> Option<&'a str> {
    pairs.iter().rev().find(|(n, _)| hit(n)).map(|(_, v)| *v)
}

/// Pairs as a map, the last value of a repeated name winning.
fn pairs_map<'a>(pairs: &'a [(&'a str, &'a str)], ci: bool) -> Value<'a> {
    let mut m = Map {
        ci,
        ..Map::default()
    };
    for (k, v) in pairs {
        m.insert(Str::Borrowed(k), Value::str(v));
    }
    Value::Map(Rc::new(m))
}

/// `+ - * / %` on numbers, as Velocity's `MathUtils`: integers stay integers (widening to
/// a double on overflow), division by zero is null.
fn arith<'a>(op: BinOp, a: &Value<'a>, b: &Value<'a>) -> Value<'a> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let r = match op {
            BinOp::Add => x.checked_add(*y),
            BinOp::Sub => x.checked_sub(*y),
            BinOp::Mul => x.checked_mul(*y),
            BinOp::Div if *y == 0 => return Value::Null,
            BinOp::Div => x.checked_div(*y),
            BinOp::Rem if *y == 0 => return Value::Null,
            BinOp::Rem => x.checked_rem(*y),
            _ => None,
        };
        if let Some(r) = r {
            return Value::Int(r);
        }
    }
    let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
        return Value::Null;
    };
    match op {
        BinOp::Add => Value::Float(x + y),
        BinOp::Sub => Value::Float(x - y),
        BinOp::Mul => Value::Float(x * y),
        BinOp::Div if y == 0.0 => Value::Null,
        BinOp::Div => Value::Float(x / y),
        BinOp::Rem if y == 0.0 => Value::Null,
        BinOp::Rem => Value::Float(x % y),
        _ => Value::Null,
    }
}
