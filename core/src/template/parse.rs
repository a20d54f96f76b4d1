//! Template text -> [`Node`] tree, with Velocity 1.7's lexical rules:
//!
//! - `$name`, `${name}`, `$!name`, `$!{name}`; a name is `[A-Za-z_][A-Za-z0-9_-]*` (1.7 allows
//!   `-`); `.prop`, `.method(args)` and `[index]` follow. A `$` that starts no name is text.
//! - `#set`, `#if`, `#elseif`, `#else`, `#end`, `#foreach`, `#break`, `#stop`, braced or not
//!   (`#{else}`); an unknown `#word` is text.
//! - `##` comments run to the end of the line, newline included; `#* *#` comments; `#[[ ]]#`
//!   is copied unparsed.
//! - Whitespace: the `)` that closes a directive's arguments, and `#else`, `#end`, `#break`,
//!   `#stop`, eat the spaces and tabs after them up to and including one newline, when only
//!   spaces and tabs stand before that newline; `#set` also eats the spaces and tabs just
//!   before it. Everything else, indentation before `#if` or `#foreach` included, is output.

use super::{
    MAX_NESTING, MappingTemplate, TemplateError,
    ast::{
        Access, BinOp, Expr, LoopProperty, Node, OverrideKind, PathArg, Ref, Root, Target, Util,
    },
};
use crate::{context::Var, jsonpath::JsonPath};

pub(super) fn compile(src: &str) -> Result<MappingTemplate, TemplateError> {
    let mut p = Parser {
        src,
        b: src.as_bytes(),
        pos: 0,
        end: src.len(),
        depth: 0,
        locals: Vec::new(),
        uses_body: false,
    };
    let (body, end) = p.block()?;
    match end {
        Close::Eof => {}
        Close::End(at) => return Err(p.error_at(at, "#end without #if or #foreach")),
        Close::Else(at) | Close::ElseIf(at, _) => {
            return Err(p.error_at(at, "#else or #elseif without #if"));
        }
    }
    Ok(MappingTemplate {
        body,
        locals: p.locals.len(),
        uses_body: p.uses_body,
    })
}

/// How a block ended.
enum Close {
    Eof,
    End(usize),
    Else(usize),
    ElseIf(usize, Expr),
}

/// What `#` started.
enum Directive {
    /// Not a directive: the `#` is text.
    None,
    /// A comment or unparsed text, already handled.
    Skip,
    Node(Node),
    End(Close),
}

struct Parser<'s> {
    src: &'s str,
    b: &'s [u8],
    pos: usize,
    /// Where the current block's text ends (the closing quote of an interpolated string).
    end: usize,
    depth: usize,
    locals: Vec<Box<str>>,
    uses_body: bool,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

impl Parser<'_> {
    fn error_at(&self, at: usize, reason: impl Into<String>) -> TemplateError {
        let at = at.min(self.src.len());
        let mut at = at;
        while !self.src.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.src[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        TemplateError {
            line,
            column: before[line_start..].chars().count() + 1,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        (self.pos < self.end).then(|| self.b[self.pos])
    }

    fn peek_at(&self, off: usize) -> Option<u8> {
        let i = self.pos + off;
        (i < self.end).then(|| self.b[i])
    }

    fn enter(&mut self) -> Result<(), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error_at(self.pos, format!("nested deeper than {MAX_NESTING}")));
        }
        Ok(())
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(i) = self.locals.iter().position(|n| &**n == name) {
            return i;
        }
        self.locals.push(name.into());
        self.locals.len() - 1
    }

    /// Text and directives up to the end of the block's range or a closing directive.
    fn block(&mut self) -> Result<(Vec<Node>, Close), TemplateError> {
        self.enter()?;
        let mut nodes = Vec::new();
        let mut text = String::new();
        let end = loop {
            let Some(c) = self.peek() else {
                break Close::Eof;
            };
            match c {
                b'#' => match self.directive(&mut text)? {
                    Directive::None => {
                        text.push('#');
                        self.pos += 1;
                    }
                    Directive::Skip => {}
                    Directive::Node(n) => {
                        flush(&mut nodes, &mut text);
                        nodes.push(n);
                    }
                    Directive::End(e) => break e,
                },
                b'$' => match self.reference(true)? {
                    Some(r) => {
                        flush(&mut nodes, &mut text);
                        nodes.push(Node::Ref(r));
                    }
                    None => {
                        text.push('$');
                        self.pos += 1;
                    }
                },
                _ => {
                    let rest = &self.b[self.pos..self.end];
                    let n = memchr::memchr2(b'#', b'$', rest).unwrap_or(rest.len());
                    text.push_str(&self.src[self.pos..self.pos + n]);
                    self.pos += n;
                }
            }
        };
        flush(&mut nodes, &mut text);
        self.depth -= 1;
        Ok((nodes, end))
    }

    /// Eats `[ \t]*` and one newline, if a newline follows the spaces.
    fn eat_line_end(&mut self) {
        let mut i = self.pos;
        while i < self.end && matches!(self.b[i], b' ' | b'\t') {
            i += 1;
        }
        if i < self.end && self.b[i] == b'\n' {
            self.pos = i + 1;
        } else if i < self.end && self.b[i] == b'\r' {
            self.pos = if i + 1 < self.end && self.b[i + 1] == b'\n' {
                i + 2
            } else {
                i + 1
            };
        }
    }

    fn directive(&mut self, text: &mut String) -> Result<Directive, TemplateError> {
        let start = self.pos;
        match self.peek_at(1) {
            Some(b'#') => {
                let rest = &self.b[self.pos..self.end];
                self.pos += memchr::memchr(b'\n', rest).map_or(rest.len(), |n| n + 1);
                return Ok(Directive::Skip);
            }
            Some(b'*') => {
                let rest = &self.src[self.pos + 2..self.end];
                let n = rest
                    .find("*#")
                    .ok_or_else(|| self.error_at(start, "unterminated #* comment"))?;
                self.pos += 2 + n + 2;
                return Ok(Directive::Skip);
            }
            Some(b'[') if self.peek_at(2) == Some(b'[') => {
                let rest = &self.src[self.pos + 3..self.end];
                let n = rest
                    .find("]]#")
                    .ok_or_else(|| self.error_at(start, "unterminated #[[ ]]# text"))?;
                text.push_str(&rest[..n]);
                self.pos += 3 + n + 3;
                return Ok(Directive::Skip);
            }
            _ => {}
        }
        let braced = self.peek_at(1) == Some(b'{');
        let name_start = self.pos + 1 + usize::from(braced);
        let mut i = name_start;
        while i < self.end && self.b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let name = &self.src[name_start..i];
        if braced {
            if i >= self.end || self.b[i] != b'}' {
                return Ok(Directive::None);
            }
            i += 1;
        }
        let known = matches!(
            name,
            "set" | "if" | "elseif" | "else" | "end" | "foreach" | "break" | "stop"
        );
        if matches!(name, "macro" | "parse" | "include" | "evaluate" | "define") {
            return Err(self.error_at(start, format!("#{name} is not supported")));
        }
        if !known {
            return Ok(Directive::None);
        }
        self.pos = i;
        match name {
            "else" => {
                self.eat_line_end();
                Ok(Directive::End(Close::Else(start)))
            }
            "end" => {
                self.eat_line_end();
                Ok(Directive::End(Close::End(start)))
            }
            "break" => {
                self.eat_line_end();
                Ok(Directive::Node(Node::Break))
            }
            "stop" => {
                self.eat_line_end();
                Ok(Directive::Node(Node::Stop))
            }
            "set" => {
                let kept = text.trim_end_matches([' ', '\t']).len();
                text.truncate(kept);
                self.open_paren(name, start)?;
                let target = self.set_target()?;
                self.skip_ws();
                if self.peek() != Some(b'=') {
                    return Err(self.error_at(self.pos, "expected = in #set"));
                }
                self.pos += 1;
                let value = self.expr()?;
                self.close_paren(name, start)?;
                Ok(Directive::Node(Node::Set(target, value)))
            }
            "elseif" => {
                self.open_paren(name, start)?;
                let cond = self.expr()?;
                self.close_paren(name, start)?;
                Ok(Directive::End(Close::ElseIf(start, cond)))
            }
            "if" => {
                self.open_paren(name, start)?;
                let mut cond = self.expr()?;
                self.close_paren(name, start)?;
                let mut branches = Vec::new();
                loop {
                    let (body, end) = self.block()?;
                    branches.push((cond, body));
                    match end {
                        Close::End(_) => return Ok(Directive::Node(Node::If(branches, None))),
                        Close::ElseIf(_, next) => cond = next,
                        Close::Else(_) => {
                            let (otherwise, end) = self.block()?;
                            return match end {
                                Close::End(_) => {
                                    Ok(Directive::Node(Node::If(branches, Some(otherwise))))
                                }
                                Close::Eof => Err(self.error_at(start, "#if without #end")),
                                Close::Else(at) | Close::ElseIf(at, _) => {
                                    Err(self.error_at(at, "#else or #elseif after #else"))
                                }
                            };
                        }
                        Close::Eof => return Err(self.error_at(start, "#if without #end")),
                    }
                }
            }
            _ => {
                // foreach
                self.open_paren(name, start)?;
                self.skip_ws();
                let at = self.pos;
                let var = match self.reference(false)? {
                    Some(Ref {
                        root: Root::Local(slot),
                        chain,
                    }) if chain.is_empty() => slot,
                    _ => {
                        return Err(
                            self.error_at(at, "#foreach needs a variable: #foreach($x in ...)")
                        );
                    }
                };
                self.skip_ws();
                if !self.src[self.pos..self.end].starts_with("in")
                    || self.peek_at(2).is_some_and(is_name_byte)
                {
                    return Err(self.error_at(self.pos, "expected `in` in #foreach"));
                }
                self.pos += 2;
                let iter = self.expr()?;
                self.close_paren(name, start)?;
                let (body, end) = self.block()?;
                match end {
                    Close::End(_) => Ok(Directive::Node(Node::Foreach(var, iter, body))),
                    Close::Eof => Err(self.error_at(start, "#foreach without #end")),
                    Close::Else(at) | Close::ElseIf(at, _) => {
                        Err(self.error_at(at, "#else or #elseif in #foreach"))
                    }
                }
            }
        }
    }

    fn open_paren(&mut self, name: &str, start: usize) -> Result<(), TemplateError> {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        if self.peek() != Some(b'(') {
            return Err(self.error_at(start, format!("expected ( after #{name}")));
        }
        self.pos += 1;
        Ok(())
    }

    fn close_paren(&mut self, name: &str, start: usize) -> Result<(), TemplateError> {
        self.skip_ws();
        if self.peek() != Some(b')') {
            return Err(self.error_at(self.pos.max(start), format!("expected ) closing #{name}")));
        }
        self.pos += 1;
        self.eat_line_end();
        Ok(())
    }

    fn set_target(&mut self) -> Result<Target, TemplateError> {
        self.skip_ws();
        let at = self.pos;
        let Some(r) = self.reference(false)? else {
            return Err(self.error_at(at, "#set needs a reference on the left"));
        };
        match r.root {
            Root::Local(slot) if !r.chain.iter().any(|a| matches!(a, Access::Call(..))) => {
                Ok(Target::Local(slot, r.chain))
            }
            Root::OverrideStatus if r.chain.is_empty() => Ok(Target::OverrideStatus),
            Root::Override(kind, name) if r.chain.is_empty() => Ok(Target::Override(kind, name)),
            _ => Err(self.error_at(
                at,
                "#set can assign a variable, an entry in one, or a $context override",
            )),
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn name(&mut self) -> Option<&str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while self.peek().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        Some(&self.src[start..self.pos])
    }

    /// A reference at `$`; `None` when `$` starts none (then nothing is consumed). In text
    /// (`in_text`), a `[` that does not start a valid index ends the reference.
    fn reference(&mut self, in_text: bool) -> Result<Option<Ref>, TemplateError> {
        let start = self.pos;
        if self.peek() != Some(b'$') {
            return Ok(None);
        }
        self.pos += 1;
        if self.peek() == Some(b'!') {
            self.pos += 1;
        }
        let braced = self.peek() == Some(b'{');
        if braced {
            self.pos += 1;
        }
        let Some(root) = self.name().map(str::to_owned) else {
            self.pos = start;
            return Ok(None);
        };
        self.enter()?;
        let mut chain = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') if self.peek_at(1).is_some_and(is_name_start) => {
                    self.pos += 1;
                    let name: Box<str> = self.name().unwrap_or_default().into();
                    if self.peek() == Some(b'(') {
                        self.pos += 1;
                        let args = self.args(b')')?;
                        chain.push(Access::Call(name, args));
                    } else {
                        chain.push(Access::Property(name));
                    }
                }
                Some(b'[') => {
                    let save = self.pos;
                    self.pos += 1;
                    let index = if in_text {
                        match self.expr() {
                            Ok(e) => e,
                            Err(_) => {
                                self.pos = save;
                                break;
                            }
                        }
                    } else {
                        self.expr()?
                    };
                    self.skip_ws();
                    if self.peek() != Some(b']') {
                        if in_text {
                            self.pos = save;
                            break;
                        }
                        return Err(self.error_at(self.pos, "expected ] after an index"));
                    }
                    self.pos += 1;
                    chain.push(Access::Index(Box::new(index)));
                }
                _ => break,
            }
        }
        if braced {
            if self.peek() != Some(b'}') {
                return Err(self.error_at(start, "expected } closing ${"));
            }
            self.pos += 1;
        }
        self.depth -= 1;
        let r = self.resolve(&root, chain, start)?;
        Ok(Some(r))
    }

    fn args(&mut self, close: u8) -> Result<Vec<Expr>, TemplateError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(args);
                }
                _ => {
                    return Err(self.error_at(
                        self.pos,
                        format!("expected , or {} in a list of arguments", close as char),
                    ));
                }
            }
        }
    }

    /// Resolves a reference's root: `$input`, `$util`, `$context`, `$stageVariables`,
    /// `$foreach`, `$velocityCount`, or a variable.
    fn resolve(
        &mut self,
        root: &str,
        mut chain: Vec<Access>,
        at: usize,
    ) -> Result<Ref, TemplateError> {
        let take = |chain: &mut Vec<Access>, n: usize| {
            chain.drain(..n.min(chain.len()));
        };
        let root = match root {
            "input" => {
                let first = if chain.is_empty() {
                    None
                } else {
                    Some(chain.remove(0))
                };
                match first {
                    Some(Access::Property(p)) if &*p == "body" => Root::InputBody,
                    Some(Access::Call(m, mut args)) if args.len() <= 1 => match (&*m, args.pop()) {
                        ("json", Some(a)) | ("path", Some(a)) => {
                            self.uses_body = true;
                            let arg = match a {
                                Expr::Str(s) => {
                                    PathArg::Literal(Box::new(JsonPath::parse(&s).map_err(
                                        |e| self.error_at(at, format!("JSONPath {s:?}: {e}")),
                                    )?))
                                }
                                other => PathArg::Dynamic(Box::new(other)),
                            };
                            if &*m == "json" {
                                Root::InputJson(arg)
                            } else {
                                Root::InputPath(arg)
                            }
                        }
                        ("params", a) => Root::InputParams(a.map(Box::new)),
                        _ => Root::Null,
                    },
                    _ => Root::Null,
                }
            }
            "util" => {
                let first = if chain.is_empty() {
                    None
                } else {
                    Some(chain.remove(0))
                };
                match first {
                    Some(Access::Call(m, args)) => {
                        let util = match &*m {
                            "escapeJavaScript" => Some(Util::EscapeJavaScript),
                            "parseJson" => Some(Util::ParseJson),
                            "urlEncode" => Some(Util::UrlEncode),
                            "urlDecode" => Some(Util::UrlDecode),
                            "base64Encode" => Some(Util::Base64Encode),
                            "base64Decode" => Some(Util::Base64Decode),
                            _ => None,
                        };
                        match util {
                            Some(u) if args.len() == 1 => Root::Util(u, args),
                            _ => Root::Null,
                        }
                    }
                    _ => Root::Null,
                }
            }
            "context" => {
                let names: Vec<&str> = chain
                    .iter()
                    .map_while(|a| match a {
                        Access::Property(p) => Some(&**p),
                        _ => None,
                    })
                    .collect();
                let var = (1..=names.len())
                    .rev()
                    .find_map(|k| Var::parse(&names[..k].join(".")).map(|v| (v, k)));
                let (root, used) = if let Some((var, k)) = var {
                    (Root::Context(var), k)
                } else {
                    match names.as_slice() {
                        ["authorizer", "claims", name, ..] => (Root::Claim((*name).into()), 3),
                        ["authorizer", name, ..] => (Root::AuthorizerProperty((*name).into()), 2),
                        ["responseOverride", "status", ..] => (Root::OverrideStatus, 2),
                        [over, kind, name, ..] => {
                            let kind = match (*over, *kind) {
                                ("responseOverride", "header") => {
                                    Some(OverrideKind::ResponseHeader)
                                }
                                ("requestOverride", "header") => Some(OverrideKind::RequestHeader),
                                ("requestOverride", "querystring") => {
                                    Some(OverrideKind::RequestQuerystring)
                                }
                                ("requestOverride", "path") => Some(OverrideKind::RequestPath),
                                _ => None,
                            };
                            match kind {
                                Some(k) => (Root::Override(k, (*name).into()), 3),
                                None => (Root::Null, names.len()),
                            }
                        }
                        _ => (Root::Null, names.len()),
                    }
                };
                take(&mut chain, used);
                root
            }
            "stageVariables" => match chain.first() {
                Some(Access::Property(p)) => {
                    let name = p.clone();
                    take(&mut chain, 1);
                    Root::StageVariable(name)
                }
                _ => Root::StageVariables,
            },
            "foreach" => {
                let prop = match chain.first() {
                    Some(Access::Property(p)) => match &**p {
                        "hasNext" => Some(LoopProperty::HasNext),
                        "index" => Some(LoopProperty::Index),
                        "count" => Some(LoopProperty::Count),
                        "first" => Some(LoopProperty::First),
                        "last" => Some(LoopProperty::Last),
                        _ => None,
                    },
                    Some(Access::Call(m, a)) if a.is_empty() => match &**m {
                        "hasNext" => Some(LoopProperty::HasNext),
                        "getIndex" => Some(LoopProperty::Index),
                        "getCount" => Some(LoopProperty::Count),
                        "isFirst" => Some(LoopProperty::First),
                        "isLast" => Some(LoopProperty::Last),
                        _ => None,
                    },
                    _ => None,
                };
                match prop {
                    Some(p) => {
                        take(&mut chain, 1);
                        Root::Foreach(p)
                    }
                    None => Root::Local(self.slot("foreach")),
                }
            }
            "velocityCount" => Root::VelocityCount,
            other => Root::Local(self.slot(other)),
        };
        Ok(Ref { root, chain })
    }

    // Expressions, loosest first: || && == != < <= > >= + - * / % ! -

    fn expr(&mut self) -> Result<Expr, TemplateError> {
        self.enter()?;
        let e = self.binary(0)?;
        self.depth -= 1;
        Ok(e)
    }

    fn word_op(&self, word: &str) -> bool {
        self.src[self.pos..self.end].starts_with(word)
            && !self.peek_at(word.len()).is_some_and(is_name_byte)
    }

    fn operator(&mut self, level: u8) -> Option<BinOp> {
        self.skip_ws();
        let rest = &self.src[self.pos..self.end];
        let ops: &[(&str, BinOp, bool)] = match level {
            0 => &[("||", BinOp::Or, false), ("or", BinOp::Or, true)],
            1 => &[("&&", BinOp::And, false), ("and", BinOp::And, true)],
            2 => &[
                ("==", BinOp::Eq, false),
                ("!=", BinOp::Ne, false),
                ("eq", BinOp::Eq, true),
                ("ne", BinOp::Ne, true),
            ],
            3 => &[
                ("<=", BinOp::Le, false),
                (">=", BinOp::Ge, false),
                ("<", BinOp::Lt, false),
                (">", BinOp::Gt, false),
                ("le", BinOp::Le, true),
                ("ge", BinOp::Ge, true),
                ("lt", BinOp::Lt, true),
                ("gt", BinOp::Gt, true),
            ],
            4 => &[("+", BinOp::Add, false), ("-", BinOp::Sub, false)],
            _ => &[
                ("*", BinOp::Mul, false),
                ("/", BinOp::Div, false),
                ("%", BinOp::Rem, false),
            ],
        };
        for &(text, op, word) in ops {
            if (word && self.word_op(text)) || (!word && rest.starts_with(text)) {
                self.pos += text.len();
                return Some(op);
            }
        }
        None
    }

    fn binary(&mut self, level: u8) -> Result<Expr, TemplateError> {
        if level > 5 {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.operator(level) {
            let right = self.binary(level + 1)?;
            left = Expr::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, TemplateError> {
        self.skip_ws();
        if self.peek() == Some(b'!') && self.peek_at(1) != Some(b'=') {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if self.word_op("not") {
            self.pos += 3;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        if self.peek() == Some(b'-') {
            self.pos += 1;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(match e {
                Expr::Int(i) => Expr::Int(i.wrapping_neg()),
                Expr::Float(f) => Expr::Float(-f),
                e => Expr::Neg(Box::new(e)),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, TemplateError> {
        self.skip_ws();
        let at = self.pos;
        match self.peek() {
            Some(b'$') => match self.reference(false)? {
                Some(r) => Ok(Expr::Ref(Box::new(r))),
                None => Err(self.error_at(at, "expected a reference after $")),
            },
            Some(q @ (b'\'' | b'"')) => {
                // Velocity 1.7: a doubled quote stands for one; in "..." a backslash escapes
                // the next character (kept as written).
                let mut i = self.pos + 1;
                let mut doubled = false;
                loop {
                    if i >= self.end {
                        return Err(self.error_at(at, "unterminated string"));
                    }
                    let c = self.b[i];
                    if c == q {
                        if i + 1 < self.end && self.b[i + 1] == q {
                            doubled = true;
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += if c == b'\\' && q == b'"' { 2 } else { 1 };
                }
                let content = &self.src[self.pos + 1..i.min(self.end)];
                if q == b'\'' || doubled || !content.contains(['$', '#']) {
                    self.pos = i + 1;
                    let text = if doubled {
                        let one = if q == b'"' { "\"" } else { "'" };
                        content.replace(if q == b'"' { "\"\"" } else { "''" }, one)
                    } else {
                        content.to_owned()
                    };
                    return Ok(Expr::Str(text.into()));
                }
                let (saved_end, after) = (self.end, i + 1);
                self.pos += 1;
                self.end = i;
                let (nodes, end) = self.block()?;
                self.end = saved_end;
                match end {
                    Close::Eof => {}
                    Close::End(p) | Close::Else(p) | Close::ElseIf(p, _) => {
                        return Err(self.error_at(p, "#end or #else without a block in a string"));
                    }
                }
                self.pos = after;
                // "$" or "a#b": nothing to interpolate after all.
                match nodes.as_slice() {
                    [] => Ok(Expr::Str("".into())),
                    [Node::Text(t)] => Ok(Expr::Str(t.clone())),
                    _ => Ok(Expr::Interpolated(nodes)),
                }
            }
            Some(b'0'..=b'9') => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let float = self.peek() == Some(b'.')
                    && self.peek_at(1).is_some_and(|c| c.is_ascii_digit());
                if float {
                    self.pos += 1;
                    while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        self.pos += 1;
                    }
                    if matches!(self.peek(), Some(b'e' | b'E')) {
                        let save = self.pos;
                        self.pos += 1;
                        if matches!(self.peek(), Some(b'+' | b'-')) {
                            self.pos += 1;
                        }
                        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                                self.pos += 1;
                            }
                        } else {
                            self.pos = save;
                        }
                    }
                    let text = &self.src[start..self.pos];
                    return text
                        .parse()
                        .map(Expr::Float)
                        .map_err(|_| self.error_at(start, "bad number"));
                }
                self.src[start..self.pos]
                    .parse()
                    .map(Expr::Int)
                    .map_err(|_| self.error_at(start, "integer too large"))
            }
            Some(b'[') => {
                self.pos += 1;
                self.enter()?;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                self.skip_ws();
                if self.src[self.pos..self.end].starts_with("..") {
                    self.pos += 2;
                    let last = self.expr()?;
                    self.skip_ws();
                    if self.peek() != Some(b']') {
                        return Err(self.error_at(self.pos, "expected ] closing a range"));
                    }
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                let mut items = vec![first];
                loop {
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => {
                            self.pos += 1;
                            items.push(self.expr()?);
                        }
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.error_at(self.pos, "expected , or ] in a list")),
                    }
                }
                self.depth -= 1;
                Ok(Expr::List(items))
            }
            Some(b'{') => {
                self.pos += 1;
                self.enter()?;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let key = self.expr()?;
                    self.skip_ws();
                    if self.peek() != Some(b':') {
                        return Err(self.error_at(self.pos, "expected : in a map"));
                    }
                    self.pos += 1;
                    let value = self.expr()?;
                    entries.push((key, value));
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.error_at(self.pos, "expected , or } in a map")),
                    }
                }
                self.depth -= 1;
                Ok(Expr::Map(entries))
            }
            Some(b'(') => {
                self.pos += 1;
                let e = self.expr()?;
                self.skip_ws();
                if self.peek() != Some(b')') {
                    return Err(self.error_at(self.pos, "expected )"));
                }
                self.pos += 1;
                Ok(e)
            }
            _ => {
                for (word, e) in [("true", 1), ("false", 2), ("null", 3)] {
                    if self.word_op(word) {
                        self.pos += word.len();
                        return Ok(match e {
                            1 => Expr::Bool(true),
                            2 => Expr::Bool(false),
                            _ => Expr::Null,
                        });
                    }
                }
                Err(self.error_at(at, "expected an expression"))
            }
        }
    }
}

fn flush(nodes: &mut Vec<Node>, text: &mut String) {
    if !text.is_empty() {
        nodes.push(Node::Text(std::mem::take(text).into_boxed_str()));
    }
}
