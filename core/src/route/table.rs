//! The route table: a segment trie searched depth-first, static before `{param}` before
//! `{greedy+}`, exact method before `ANY`. Matching allocates nothing: captured parameters are
//! byte ranges into the request path held in a fixed array.

use memchr::memchr;
use rustc_hash::FxHashMap;

use super::key::{MAX_PARAMS, Method, MethodMatch, PathSegment, RouteKey};

const NONE: u32 = u32::MAX;
/// Above this many static children a node indexes them in a hash map; below, a linear scan
/// over short byte strings is faster than hashing.
const LINEAR_CHILDREN: usize = 8;

/// Which route (by insertion index) serves each method at one trie position.
#[derive(Clone)]
struct Leaf {
    methods: [u32; Method::COUNT],
    any: u32,
}

impl Leaf {
    const EMPTY: Leaf = Leaf {
        methods: [NONE; Method::COUNT],
        any: NONE,
    };

    #[inline]
    fn pick(&self, method: Option<Method>) -> Option<u32> {
        if let Some(m) = method {
            let hit = self.methods[m as usize];
            if hit != NONE {
                return Some(hit);
            }
        }
        (self.any != NONE).then_some(self.any)
    }

    fn slot(&mut self, m: MethodMatch) -> &mut u32 {
        match m {
            MethodMatch::Any => &mut self.any,
            MethodMatch::Exact(m) => &mut self.methods[m as usize],
        }
    }
}

#[derive(Clone)]
struct Node {
    statics: Vec<(Box<[u8]>, u32)>,
    static_index: Option<FxHashMap<Box<[u8]>, u32>>,
    param: u32,
    leaf: Leaf,
    greedy: Leaf,
}

impl Node {
    fn new() -> Node {
        Node {
            statics: Vec::new(),
            static_index: None,
            param: NONE,
            leaf: Leaf::EMPTY,
            greedy: Leaf::EMPTY,
        }
    }

    /// Adds a static child, keeping the hash index complete once there are many children.
    fn add_static(&mut self, seg: &[u8], child: u32) {
        self.statics.push((seg.into(), child));
        match &mut self.static_index {
            Some(index) => {
                index.insert(seg.into(), child);
            }
            None if self.statics.len() > LINEAR_CHILDREN => {
                self.static_index = Some(self.statics.iter().cloned().collect());
            }
            None => {}
        }
    }

    #[inline]
    fn static_child(&self, seg: &[u8]) -> Option<u32> {
        match &self.static_index {
            Some(index) => index.get(seg).copied(),
            None => self
                .statics
                .iter()
                .find(|(s, _)| &**s == seg)
                .map(|&(_, n)| n),
        }
    }
}

struct Entry<T> {
    value: T,
    params: Box<[Box<str>]>,
}

/// Routes of one API. `T` is what a match hands back (the gateway stores a route index).
pub struct RouteTable<T> {
    nodes: Vec<Node>,
    entries: Vec<Entry<T>>,
    default: Option<T>,
}

impl<T> Default for RouteTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// A route found for a request path.
pub struct RouteMatch<'t, 'p, T> {
    pub value: &'t T,
    pub params: Params<'t, 'p>,
}

/// Path parameters captured by a match, as slices of the request path.
#[derive(Clone, Copy)]
pub struct Params<'t, 'p> {
    names: &'t [Box<str>],
    spans: [(u32, u32); MAX_PARAMS],
    path: &'p [u8],
}

impl<'t, 'p> Params<'t, 'p> {
    pub const EMPTY: Params<'static, 'static> = Params {
        names: &[],
        spans: [(0, 0); MAX_PARAMS],
        path: b"",
    };

    /// The value of parameter `name` (raw, still percent-encoded as sent).
    #[inline]
    pub fn get(&self, name: &str) -> Option<&'p [u8]> {
        let i = self.names.iter().position(|n| &**n == name)?;
        Some(self.at(i))
    }

    /// The value of the `i`th parameter in path order.
    #[inline]
    pub fn at(&self, i: usize) -> &'p [u8] {
        let (s, e) = self.spans[i];
        &self.path[s as usize..e as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'t str, &'p [u8])> + '_ {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (&**n, self.at(i)))
    }
}

struct Captures {
    spans: [(u32, u32); MAX_PARAMS],
    len: usize,
}

impl Captures {
    #[inline]
    fn push(&mut self, s: usize, e: usize) -> bool {
        if self.len == MAX_PARAMS {
            return false;
        }
        self.spans[self.len] = (s as u32, e as u32);
        self.len += 1;
        true
    }
}

/// Refusal to add a route whose method and path shape another route already has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("same method and path as route #{0}")]
pub struct Conflict(pub usize);

impl<T> RouteTable<T> {
    pub fn new() -> Self {
        RouteTable {
            nodes: vec![Node::new()],
            entries: Vec::new(),
            default: None,
        }
    }

    /// Adds a route. Two routes with the same method and path shape (parameter names aside)
    /// conflict; the second is refused with the index of the first.
    pub fn insert(&mut self, key: &RouteKey, value: T) -> Result<(), Conflict> {
        let (method, path) = match key {
            RouteKey::Default => {
                if self.default.is_some() {
                    return Err(Conflict(usize::MAX));
                }
                self.default = Some(value);
                return Ok(());
            }
            RouteKey::Route { method, path } => (*method, path),
        };
        let mut node = 0usize;
        let mut greedy = false;
        for seg in path {
            node = match seg {
                PathSegment::Static(s) => {
                    let bytes = s.as_bytes();
                    match self.nodes[node].static_child(bytes) {
                        Some(child) => child as usize,
                        None => {
                            let child = self.push_node();
                            self.nodes[node].add_static(bytes, child as u32);
                            child
                        }
                    }
                }
                PathSegment::Param(_) => match self.nodes[node].param {
                    NONE => {
                        let child = self.push_node();
                        self.nodes[node].param = child as u32;
                        child
                    }
                    child => child as usize,
                },
                PathSegment::Greedy(_) => {
                    greedy = true;
                    node
                }
            };
        }
        let index = self.entries.len() as u32;
        let n = &mut self.nodes[node];
        let slot = if greedy {
            n.greedy.slot(method)
        } else {
            n.leaf.slot(method)
        };
        if *slot != NONE {
            return Err(Conflict(*slot as usize));
        }
        *slot = index;
        let params = key.params().into_iter().map(Box::from).collect();
        self.entries.push(Entry { value, params });
        Ok(())
    }

    /// Every node with many static children has them all in its hash index.
    #[cfg(test)]
    pub(crate) fn assert_indexed(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.statics.len() > LINEAR_CHILDREN {
                let indexed = n.static_index.as_ref().map_or(0, |m| m.len());
                assert_eq!(indexed, n.statics.len(), "node {i} is not fully indexed");
            }
        }
    }

    fn push_node(&mut self) -> usize {
        self.nodes.push(Node::new());
        self.nodes.len() - 1
    }

    /// Number of routes, `$default` not counted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.default.is_none()
    }

    /// Finds the route for `method` and `path` (no query string; starts with '/').
    /// `method` is the request method as sent; unknown methods match only `ANY` routes.
    #[inline]
    pub fn find<'t, 'p>(&'t self, method: &[u8], path: &'p [u8]) -> Option<RouteMatch<'t, 'p, T>> {
        let m = Method::from_bytes(method);
        let mut caps = Captures {
            spans: [(0, 0); MAX_PARAMS],
            len: 0,
        };
        let start = match path {
            b"" | b"/" => None,
            [b'/', ..] => Some(1),
            _ => return None,
        };
        if let Some(e) = self.walk(0, path, start, m, &mut caps) {
            let entry = &self.entries[e as usize];
            return Some(RouteMatch {
                value: &entry.value,
                params: Params {
                    names: &entry.params,
                    spans: caps.spans,
                    path,
                },
            });
        }
        self.default.as_ref().map(|value| RouteMatch {
            value,
            params: Params::EMPTY,
        })
    }

    /// Depth-first in priority order. `pos` is where the next segment starts, `None` once the
    /// path is used up. Each node is at a fixed depth, so each is visited at most once.
    fn walk(
        &self,
        node: usize,
        path: &[u8],
        pos: Option<usize>,
        method: Option<Method>,
        caps: &mut Captures,
    ) -> Option<u32> {
        let n = &self.nodes[node];
        let Some(start) = pos else {
            return n.leaf.pick(method);
        };
        let end = memchr(b'/', &path[start..]).map_or(path.len(), |i| start + i);
        let seg = &path[start..end];
        let next = (end < path.len()).then_some(end + 1);
        if let Some(child) = n.static_child(seg)
            && let Some(hit) = self.walk(child as usize, path, next, method, caps)
        {
            return Some(hit);
        }
        if n.param != NONE && !seg.is_empty() {
            let mark = caps.len;
            if caps.push(start, end) {
                if let Some(hit) = self.walk(n.param as usize, path, next, method, caps) {
                    return Some(hit);
                }
                caps.len = mark;
            }
        }
        if start < path.len()
            && let Some(hit) = n.greedy.pick(method)
            && caps.push(start, path.len())
        {
            return Some(hit);
        }
        None
    }
}
