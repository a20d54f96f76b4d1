//! Routes: keys as operators write them (`GET /users/{id}`, `ANY /{proxy+}`, `$default`) and
//! the table that matches a request to one of them.
//!
//! Matching follows AWS HTTP API rules: a static segment beats a `{param}`, which beats a
//! greedy `{proxy+}`; at the same path an exact method beats `ANY`; `$default` catches what
//! nothing else does. The table is a segment trie walked depth-first in that priority order,
//! so each trie node is visited at most once per request whatever the route set.

mod key;
mod table;
#[cfg(test)]
mod tests;

pub(crate) use key::is_pchar;
pub use key::{KeyError, MAX_PARAMS, Method, MethodMatch, PathSegment, RouteKey};
pub use table::{Conflict, Params, RouteMatch, RouteTable};
