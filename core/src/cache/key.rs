//! Cache keys: a request's method, path and chosen parameters folded into a 128-bit keyed
//! SipHash fingerprint, so an entry is found with one hash and no stored key to compare.
//! With a per-process random key and 128 bits, a collision (two requests sharing an entry)
//! is out of reach of chance and of a client choosing its parameters.
//!
//! Building a key allocates nothing: the parts are hashed as they are read from the request.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Where a key parameter is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamAt {
    Query,
    Header,
    Path,
}

/// A request parameter that is part of a route's cache key (AWS `cacheKeyParameters`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyParam {
    pub at: ParamAt,
    /// As written; header names are lower-cased (they match without regard to case).
    pub name: Box<str>,
}

impl KeyParam {
    /// `querystring.type`, `header.accept`, `path.id`, with or without AWS's
    /// `method.request.` prefix. Errors: the reason, for the config check.
    pub fn parse(s: &str) -> Result<KeyParam, String> {
        let rest = s.strip_prefix("method.request.").unwrap_or(s);
        let (kind, name) = rest
            .split_once('.')
            .ok_or_else(|| format!("{s:?}: expected querystring.NAME, header.NAME or path.NAME"))?;
        let at = match kind {
            "querystring" => ParamAt::Query,
            "header" => ParamAt::Header,
            "path" => ParamAt::Path,
            _ => {
                return Err(format!(
                    "{s:?}: {kind:?} is not a parameter location (querystring, header or path)"
                ));
            }
        };
        if name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "{s:?}: the parameter's name is missing or not printable"
            ));
        }
        let name = match at {
            ParamAt::Header => name.to_ascii_lowercase().into(),
            _ => name.into(),
        };
        Ok(KeyParam { at, name })
    }
}

/// A cache key: 128 bits of keyed SipHash-1-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u128);

/// Folds a key's parts into a [`Fingerprint`]. Each part is written with its length, so
/// `("ab", "c")` and `("a", "bc")` differ.
pub struct KeyBuilder(SipHasher13);

impl KeyBuilder {
    /// A builder keyed with the process's secret (`k0`, `k1`; random per process).
    #[inline]
    pub fn new(secret: (u64, u64)) -> KeyBuilder {
        KeyBuilder(SipHasher13::new_with_keys(secret.0, secret.1))
    }

    /// Adds one part.
    #[inline]
    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.write_usize(bytes.len());
        self.0.write(bytes);
        self
    }

    /// Adds a part compared without regard to ASCII case (a host name), without allocating.
    #[inline]
    pub fn part_lowercase(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.write_usize(bytes.len());
        let mut buf = [0u8; 64];
        for chunk in bytes.chunks(buf.len()) {
            let lower = &mut buf[..chunk.len()];
            lower.copy_from_slice(chunk);
            lower.make_ascii_lowercase();
            self.0.write(lower);
        }
        self
    }

    /// Adds a part that may be absent (a parameter the request lacks differs from an empty
    /// one).
    #[inline]
    pub fn optional(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(b) => {
                self.0.write_u8(1);
                self.part(b)
            }
            None => {
                self.0.write_u8(0);
                self
            }
        }
    }

    #[inline]
    pub fn finish(&self) -> Fingerprint {
        Fingerprint(self.0.finish128().as_u128())
    }
}

/// The values of query parameter `name` in a raw query string (`a=1&b=2`), compared as
/// written (not percent-decoded), in order. No allocation.
pub fn query_values<'q>(query: &'q [u8], name: &'q [u8]) -> impl Iterator<Item = &'q [u8]> + 'q {
    query.split(|&b| b == b'&').filter_map(move |pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name && !pair.is_empty()).then_some(v)
    })
}

/// A `BuildHasher` for maps keyed by [`Fingerprint`]s: they are already uniformly random
/// (keyed SipHash), so their low bits are the hash.
#[derive(Debug, Clone, Copy, Default)]
pub struct FingerprintHash;

/// The hasher of [`FingerprintHash`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FingerprintHasher(u64);

impl std::hash::BuildHasher for FingerprintHash {
    type Hasher = FingerprintHasher;
    #[inline]
    fn build_hasher(&self) -> FingerprintHasher {
        FingerprintHasher(0)
    }
}

impl Hasher for FingerprintHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Not reached for fingerprints (see write_u128); folds anything else.
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 =
                (self.0.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64 ^ (v >> 64) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_in_both_spellings() {
        let p = KeyParam::parse("method.request.querystring.type").unwrap();
        assert_eq!((p.at, &*p.name), (ParamAt::Query, "type"));
        let p = KeyParam::parse("header.Accept").unwrap();
        assert_eq!((p.at, &*p.name), (ParamAt::Header, "accept"));
        assert!(
            KeyParam::parse("body.x")
                .unwrap_err()
                .contains("not a parameter location")
        );
        assert!(KeyParam::parse("querystring.").is_err());
        assert!(KeyParam::parse("type").is_err());
    }

    #[test]
    fn parts_are_length_delimited() {
        let k = (1, 2);
        let a = KeyBuilder::new(k).part(b"ab").part(b"c").finish();
        let b = KeyBuilder::new(k).part(b"a").part(b"bc").finish();
        assert_ne!(a, b);
        let absent = KeyBuilder::new(k).optional(None).finish();
        let empty = KeyBuilder::new(k).optional(Some(b"")).finish();
        assert_ne!(absent, empty);
        let upper = KeyBuilder::new(k)
            .part_lowercase(b"API.Example.COM")
            .finish();
        assert_eq!(upper, KeyBuilder::new(k).part(b"api.example.com").finish());
        assert_eq!(a, KeyBuilder::new(k).part(b"ab").part(b"c").finish());
        assert_ne!(a, KeyBuilder::new((1, 3)).part(b"ab").part(b"c").finish());
    }

    #[test]
    fn query_values_match_names_exactly() {
        let q = b"type=dog&types=x&type=cat&flag&=v";
        let v: Vec<&[u8]> = query_values(q, b"type").collect();
        assert_eq!(v, [&b"dog"[..], b"cat"]);
        let v: Vec<&[u8]> = query_values(q, b"flag").collect();
        assert_eq!(v, [&b""[..]]);
        assert_eq!(query_values(b"", b"type").count(), 0);
    }
}
