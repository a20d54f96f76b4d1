//! The compiled form of a template: what `parse.rs` builds and `render.rs` walks.

use crate::{context::Var, jsonpath::JsonPath};

/// One piece of a template.
#[derive(Debug)]
pub(crate) enum Node {
    /// Text copied to the output (after Velocity's whitespace rules).
    Text(Box<str>),
    /// `$x...`: rendered with Java's `toString`, nothing when null.
    Ref(Ref),
    /// `#set(target = value)`.
    Set(Target, Expr),
    /// `#if / #elseif / #else / #end`: the first branch whose condition holds; `otherwise`
    /// when none does.
    If(Vec<(Expr, Vec<Node>)>, Option<Vec<Node>>),
    /// `#foreach($slot in iter) body #end`.
    Foreach(usize, Expr, Vec<Node>),
    /// `#break`: leaves the innermost `#foreach` (or the template).
    Break,
    /// `#stop`: ends the render.
    Stop,
}

/// A reference: where it starts and what is applied to it, left to right.
#[derive(Debug)]
pub(crate) struct Ref {
    pub root: Root,
    pub chain: Vec<Access>,
}

/// What a reference starts from, resolved when compiling.
#[derive(Debug)]
pub(crate) enum Root {
    /// A template variable (`#set`, `#foreach`), by slot.
    Local(usize),
    /// `$input.body`.
    InputBody,
    /// `$input.json(path)`: the selection as JSON text.
    InputJson(PathArg),
    /// `$input.path(path)`: the selection as an object.
    InputPath(PathArg),
    /// `$input.params()` (`None`) or `$input.params(name)`.
    InputParams(Option<Box<Expr>>),
    /// `$util.name(args)`.
    Util(Util, Vec<Expr>),
    /// `$context.<var>`.
    Context(Var),
    /// `$context.authorizer.claims.<name>`.
    Claim(Box<str>),
    /// `$context.authorizer.<name>`.
    AuthorizerProperty(Box<str>),
    /// `$context.responseOverride.status`.
    OverrideStatus,
    /// `$context.{request,response}Override.<kind>.<name>`.
    Override(OverrideKind, Box<str>),
    /// `$stageVariables.<name>`.
    StageVariable(Box<str>),
    /// `$stageVariables`.
    StageVariables,
    /// `$foreach.<property>` of the innermost loop.
    Foreach(LoopProperty),
    /// `$velocityCount`: the innermost loop's 1-based count.
    VelocityCount,
    /// Anything else under `$input`, `$util` or `$context`: null.
    Null,
}

/// A JSONPath argument: compiled once when it is a literal.
#[derive(Debug)]
pub(crate) enum PathArg {
    Literal(Box<JsonPath>),
    Dynamic(Box<Expr>),
}

/// The `$util` functions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Util {
    EscapeJavaScript,
    ParseJson,
    UrlEncode,
    UrlDecode,
    Base64Encode,
    Base64Decode,
}

/// The name tables of `$context.requestOverride` / `responseOverride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OverrideKind {
    ResponseHeader,
    RequestHeader,
    RequestQuerystring,
    RequestPath,
}

/// `$foreach.x`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LoopProperty {
    HasNext,
    Index,
    Count,
    First,
    Last,
}

/// One step after a reference's root.
#[derive(Debug)]
pub(crate) enum Access {
    /// `.name`: a map's entry (or a Java bean property such as `empty`).
    Property(Box<str>),
    /// `[expr]`: a list's element or a map's entry.
    Index(Box<Expr>),
    /// `.name(args)`.
    Call(Box<str>, Vec<Expr>),
}

/// What `#set` assigns to.
#[derive(Debug)]
pub(crate) enum Target {
    /// A variable, or an entry inside it (`$map.key`, `$list[0]`).
    Local(usize, Vec<Access>),
    /// `$context.responseOverride.status`.
    OverrideStatus,
    /// `$context.{request,response}Override.<kind>.<name>`.
    Override(OverrideKind, Box<str>),
}

/// An expression (in directives and method arguments).
#[derive(Debug)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// `'text'`, or `"text"` without references.
    Str(Box<str>),
    /// `"text with $refs"`: rendered, then used as a string.
    Interpolated(Vec<Node>),
    List(Vec<Expr>),
    /// `[from..to]`, both ends included, counting down when `from > to`.
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Ref(Box<Ref>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
}

/// Binary operators, in Velocity's spellings (`&&`/`and`, `==`/`eq`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}
