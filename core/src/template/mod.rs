//! Mapping templates: API Gateway's subset of Apache Velocity (VTL 1.7) over a request or an
//! integration response, with `$input`, `$context`, `$stageVariables` and `$util`.
//!
//! A template is compiled once, when a config is applied ([`MappingTemplate::compile`]), into a
//! tree the renderer walks; rendering never parses the template again and never does I/O.
//! Sources: AWS's "Variables for data transformations for API Gateway"
//! (`api-gateway-mapping-template-reference`), "Override your API's request and response
//! parameters and status codes" (`apigateway-override-request-response-parameters`) and the
//! Velocity 1.7 user guide.
//!
//! What it must never do: panic or recurse without bound on a body or a template. Compiling
//! bounds nesting ([`MAX_NESTING`]); rendering counts its steps and output ([`RenderLimits`])
//! and bounds how deep values nest, and answers a [`RenderError`] when a limit is reached.
//!
//! - `parse.rs`: template text -> tree (`ast.rs`), Velocity 1.7's whitespace rules;
//! - `value.rs`: the values a template computes with and how Java prints them;
//! - `render.rs`: walking the tree over a [`TemplateInput`];
//! - `methods.rs`: Java methods on values and the `$util` functions.
//!
//! Differences from AWS worth knowing (tested in `tests.rs`):
//! - a reference that is null renders as nothing, as API Gateway does (plain Velocity would
//!   print its source text); `$!x` is accepted and means the same;
//! - values have value semantics: `#set($b = $a)` then `$b.put(..)` leaves `$a` alone, and
//!   changing `$input.path('$')` does not change what `$input.json('$')` returns;
//! - map literals and JSON objects keep insertion order (Velocity's `{}` is a `HashMap`);
//! - `\` is plain text (no `\$x` escapes); `#macro`, `#parse`, `#include`, `#evaluate` and
//!   `#define` are refused at compile time.

mod ast;
mod methods;
mod parse;
mod render;
mod value;

#[cfg(test)]
mod tests;

use crate::context::RequestContext;

/// How deep directives, expressions and string interpolations may nest in a template.
pub const MAX_NESTING: usize = 64;

/// A compiled mapping template. Immutable and `Send + Sync`: compile it when a config is
/// applied and share it between workers.
#[derive(Debug)]
pub struct MappingTemplate {
    body: Vec<ast::Node>,
    locals: usize,
    uses_body: bool,
}

/// A template that does not compile, and where: `line` and `column` are 1-based, the column
/// counted in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct TemplateError {
    /// 1-based line of the offending text.
    pub line: usize,
    /// 1-based column (characters) of the offending text.
    pub column: usize,
    /// What is wrong (`#if without #end`, `unknown directive #macro`, ...).
    pub reason: String,
}

/// Why a render stopped. API Gateway answers these with a 500 (an integration response
/// template) or a 400/500 (a request template); the proxy decides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template took more than [`RenderLimits::max_steps`] steps (a loop over a large
    /// body, a runaway `#foreach` over a range).
    #[error("the mapping template took more than {0} steps")]
    TooManySteps(u64),
    /// The output, or a string the template built, grew past [`RenderLimits::max_output`].
    #[error("the mapping template's output is larger than {0} bytes")]
    OutputTooLarge(usize),
    /// A list or map the template built nests deeper than the renderer allows.
    #[error("a value in the mapping template nests deeper than {0} levels")]
    TooDeep(usize),
    /// The template reads the body as JSON (`$input.path`, `$input.json`) and it is not JSON.
    #[error("the body is not valid JSON: {0}")]
    BodyNotJson(String),
}

/// Bounds on one render.
#[derive(Debug, Clone, Copy)]
pub struct RenderLimits {
    /// Steps (directives, expressions, loop turns, elements copied or scanned) a render may
    /// take. Default 1,000,000 (a few milliseconds); building a string counts a sixteenth of a step per byte.
    pub max_steps: u64,
    /// Bytes of output, and of any one string built during the render. Default 10 MiB (API
    /// Gateway's payload limit).
    pub max_output: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            max_steps: 1_000_000,
            max_output: 10 << 20,
        }
    }
}

/// What a template renders over, borrowed for the time of a render.
#[derive(Debug, Clone, Copy)]
pub struct TemplateInput<'a> {
    /// `$input.body`, raw. Parsed as JSON at most once per render, and only when the template
    /// reads it as JSON (`$input.path`, `$input.json`); an empty body reads as `{}`, as in
    /// API Gateway.
    pub body: &'a [u8],
    /// Path parameters (`$input.params().path`).
    pub path: &'a [(&'a str, &'a str)],
    /// Decoded query parameters in order; a name may repeat, the last value wins
    /// (`$input.params().querystring`).
    pub querystring: &'a [(&'a str, &'a str)],
    /// Request (or integration response) headers; names are matched case-insensitively.
    pub header: &'a [(&'a str, &'a str)],
    /// `$stageVariables.x`.
    pub stage_variables: &'a [(&'a str, &'a str)],
    /// `$context.x`: every [`crate::context::Var`], plus `$context.authorizer.claims.x` and
    /// `$context.authorizer.x` from the request's authorizer.
    pub context: &'a RequestContext<'a>,
    /// An integration response template's backend status: what `$context.responseOverride
    /// .status` reads before the template sets it. `None` for a request template.
    pub status: Option<u16>,
}

/// What a template set through `$context.requestOverride` and `$context.responseOverride`
/// (AWS "Override your API's request and response parameters and status codes"). Headers,
/// query strings and paths are in the order the template first set them; setting a name again
/// replaces its value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `#set($context.responseOverride.status = 400)`: the status sent to the client.
    pub status: Option<u16>,
    /// `#set($context.responseOverride.header.X = "v")`: response headers.
    pub header: Vec<(String, String)>,
    /// `#set($context.requestOverride.header.X = "v")`: headers sent to the integration.
    pub request_header: Vec<(String, String)>,
    /// `#set($context.requestOverride.querystring.x = "v")`: query parameters sent to the
    /// integration.
    pub querystring: Vec<(String, String)>,
    /// `#set($context.requestOverride.path.x = "v")`: path parameters for the integration.
    pub path: Vec<(String, String)>,
}

impl MappingTemplate {
    /// Compiles a template. Errors say where the template is wrong: an unterminated comment,
    /// string or directive, a `#if` or `#foreach` without `#end`, an `#end` or `#else` without
    /// a block, a malformed expression, a literal JSONPath that does not parse, a directive
    /// turnpike does not support, nesting deeper than [`MAX_NESTING`].
    pub fn compile(src: &str) -> Result<MappingTemplate, TemplateError> {
        parse::compile(src)
    }

    /// Whether rendering may read the body as JSON: when false, a render never parses it.
    pub fn uses_body_json(&self) -> bool {
        self.uses_body
    }

    /// Renders the template over `input`, appending to `out`, with the default
    /// [`RenderLimits`]. Returns the overrides the template set. On an error, `out` holds what
    /// was rendered before it.
    pub fn render(
        &self,
        input: &TemplateInput<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Overrides, RenderError> {
        self.render_with(input, out, &RenderLimits::default())
    }

    /// [`MappingTemplate::render`] with explicit limits.
    pub fn render_with(
        &self,
        input: &TemplateInput<'_>,
        out: &mut Vec<u8>,
        limits: &RenderLimits,
    ) -> Result<Overrides, RenderError> {
        render::render(self, input, out, limits)
    }
}
