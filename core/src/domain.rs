//! Custom domains: the Host header picks an API and stage, and a base path can split one
//! domain across several APIs (`api.example.com/v1` -> shop/prod, `/v2` -> shop2/prod).
//!
//! Exact names win over `*.` wildcards; among wildcards the longest suffix wins; among a
//! domain's mappings the longest base path that matches whole segments wins.

use rustc_hash::FxHashMap;

/// One base-path mapping of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Without leading or trailing '/'; empty maps the whole domain.
    pub base_path: Box<str>,
    pub api: u32,
    pub stage: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Domain {
    /// Longest base path first.
    mappings: Vec<Mapping>,
}

impl Domain {
    pub fn new(mut mappings: Vec<Mapping>) -> Domain {
        mappings.sort_by_key(|m| std::cmp::Reverse(m.base_path.len()));
        Domain { mappings }
    }

    /// Picks the mapping for `path` and returns the path below its base path (always starting
    /// with '/', or empty for the root).
    #[inline]
    pub fn map<'p>(&self, path: &'p [u8]) -> Option<(&Mapping, &'p [u8])> {
        let below_slash = path.strip_prefix(b"/").unwrap_or(path);
        for m in &self.mappings {
            let base = m.base_path.as_bytes();
            if base.is_empty() {
                return Some((m, path));
            }
            if let Some(rest) = below_slash.strip_prefix(base)
                && (rest.is_empty() || rest[0] == b'/')
            {
                return Some((m, rest));
            }
        }
        None
    }
}

/// All custom domains of a config.
pub type DomainTable = NameTable<Domain>;

/// Values by host name: exact names, then `*.` wildcards matching any depth of subdomain
/// (longest suffix first). The one matching rule for everything chosen by name, so that a
/// Host header and a TLS server name (SNI) always pick the same domain.
#[derive(Debug, Clone)]
pub struct NameTable<T> {
    exact: FxHashMap<Box<[u8]>, T>,
    /// (suffix starting with '.', value), longest suffix first.
    wildcard: Vec<(Box<[u8]>, T)>,
}

impl<T> Default for NameTable<T> {
    fn default() -> Self {
        NameTable {
            exact: FxHashMap::default(),
            wildcard: Vec::new(),
        }
    }
}

/// Longest Host header value compared against domain names; longer ones match nothing.
const MAX_HOST: usize = 255;

impl<T> NameTable<T> {
    /// Builds the table; `name` is lower-case, either a host name or `*.` + a host name.
    pub fn new(domains: Vec<(String, T)>) -> NameTable<T> {
        let mut table = NameTable::default();
        for (name, domain) in domains {
            match name.strip_prefix('*') {
                Some(suffix) => table.wildcard.push((suffix.as_bytes().into(), domain)),
                None => {
                    table.exact.insert(name.into_bytes().into(), domain);
                }
            }
        }
        table.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        table
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty()
    }

    /// Finds the value for a Host header value or a TLS server name (any case, with or
    /// without port, trailing dot allowed).
    #[inline]
    pub fn lookup(&self, host: &[u8]) -> Option<&T> {
        if self.is_empty() {
            return None;
        }
        let mut buf = [0u8; MAX_HOST];
        let name = normalize_host(host, &mut buf)?;
        if let Some(d) = self.exact.get(name) {
            return Some(d);
        }
        self.wildcard
            .iter()
            .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))
            .map(|(_, d)| d)
    }
}

/// Host header value -> lower-case name without port or trailing dot, in `buf`.
fn normalize_host<'b>(host: &[u8], buf: &'b mut [u8; MAX_HOST]) -> Option<&'b [u8]> {
    let name = if host.first() == Some(&b'[') {
        let end = memchr::memchr(b']', host)?;
        &host[..=end]
    } else {
        match memchr::memrchr(b':', host) {
            Some(i) => &host[..i],
            None => host,
        }
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.len() > MAX_HOST {
        return None;
    }
    let out = &mut buf[..name.len()];
    for (o, &b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(base: &str, api: u32) -> Mapping {
        Mapping {
            base_path: base.into(),
            api,
            stage: 0,
        }
    }

    #[test]
    fn exact_beats_wildcard_and_longest_wildcard_wins() {
        let t = DomainTable::new(vec![
            ("api.example.com".into(), Domain::new(vec![m("", 1)])),
            ("*.example.com".into(), Domain::new(vec![m("", 2)])),
            ("*.eu.example.com".into(), Domain::new(vec![m("", 3)])),
        ]);
        let api = |h: &str| {
            t.lookup(h.as_bytes())
                .and_then(|d| d.map(b"/"))
                .map(|(m, _)| m.api)
        };
        assert_eq!(api("api.example.com"), Some(1));
        assert_eq!(api("API.Example.COM:8443"), Some(1));
        assert_eq!(api("api.example.com."), Some(1));
        assert_eq!(api("shop.example.com"), Some(2));
        assert_eq!(api("a.b.example.com"), Some(2));
        assert_eq!(api("x.eu.example.com"), Some(3));
        assert_eq!(
            api("example.com"),
            None,
            "a wildcard needs a label in front"
        );
        assert_eq!(api("other.org"), None);
        assert_eq!(api(&"a".repeat(300)), None);
    }

    #[test]
    fn base_paths_match_whole_segments_longest_first() {
        let d = Domain::new(vec![m("", 0), m("v1", 1), m("v1/orders", 2)]);
        let pick = |p: &str| d.map(p.as_bytes()).map(|(m, rest)| (m.api, rest.to_vec()));
        assert_eq!(pick("/v1/users"), Some((1, b"/users".to_vec())));
        assert_eq!(pick("/v1"), Some((1, b"".to_vec())));
        assert_eq!(pick("/v1/orders/7"), Some((2, b"/7".to_vec())));
        assert_eq!(pick("/v10/x"), Some((0, b"/v10/x".to_vec())));
        let only = Domain::new(vec![m("v1", 1)]);
        assert!(only.map(b"/v2/x").is_none());
    }
}
