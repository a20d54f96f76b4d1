//! Byte spans into a connection's buffer, and header names the gateway acts on.

/// A range of a connection buffer. Heads are kept as spans so the buffer can keep receiving
/// while the parsed head is in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[inline]
    pub fn of(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }

    #[inline]
    pub fn get<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        &buf[self.start as usize..self.end as usize]
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

/// Headers with a meaning to the gateway; everything else is `Other` and passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    /// `Proxy-*` (Proxy-Authorization, Proxy-Authenticate, ...): hop-by-hop.
    ProxyOther,
    Te,
    Trailer,
    Upgrade,
    Http2Settings,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedPort,
    Forwarded,
}

impl HeaderKind {
    /// Classifies a header name (case-insensitive), by length first so most names cost one
    /// comparison or none.
    #[inline]
    pub fn of(name: &[u8]) -> HeaderKind {
        let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
        match name.len() {
            2 if eq(b"te") => HeaderKind::Te,
            4 if eq(b"host") => HeaderKind::Host,
            6 if eq(b"expect") => HeaderKind::Expect,
            7 if eq(b"upgrade") => HeaderKind::Upgrade,
            7 if eq(b"trailer") => HeaderKind::Trailer,
            9 if eq(b"forwarded") => HeaderKind::Forwarded,
            10 if eq(b"connection") => HeaderKind::Connection,
            10 if eq(b"keep-alive") => HeaderKind::KeepAlive,
            14 if eq(b"content-length") => HeaderKind::ContentLength,
            14 if eq(b"http2-settings") => HeaderKind::Http2Settings,
            15 if eq(b"x-forwarded-for") => HeaderKind::XForwardedFor,
            16 if eq(b"proxy-connection") => HeaderKind::ProxyConnection,
            16 if eq(b"x-forwarded-port") => HeaderKind::XForwardedPort,
            17 if eq(b"transfer-encoding") => HeaderKind::TransferEncoding,
            17 if eq(b"x-forwarded-proto") => HeaderKind::XForwardedProto,
            n if n > 6 && name[..6].eq_ignore_ascii_case(b"proxy-") => HeaderKind::ProxyOther,
            _ => HeaderKind::Other,
        }
    }

    /// Hop-by-hop: meaningful for one connection only, never forwarded as received.
    #[inline]
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            HeaderKind::Connection
                | HeaderKind::KeepAlive
                | HeaderKind::ProxyConnection
                | HeaderKind::ProxyOther
                | HeaderKind::Te
                | HeaderKind::Trailer
                | HeaderKind::Upgrade
                | HeaderKind::Http2Settings
                | HeaderKind::TransferEncoding
                | HeaderKind::ContentLength
        )
    }
}

/// One header field as spans, with its kind.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub name: Span,
    pub value: Span,
    pub kind: HeaderKind,
}

/// Most `Connection` options one message may carry.
pub const MAX_CONNECTION_TOKENS: usize = 16;

/// What a `Connection` header said: close / keep-alive / upgrade, and the other header names
/// it nominates as hop-by-hop.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionOptions {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    names: [Span; MAX_CONNECTION_TOKENS],
    count: u8,
}

impl ConnectionOptions {
    /// Adds the tokens of one `Connection` value. `false` if a token is not a token or there
    /// are too many.
    pub fn add(&mut self, buf: &[u8], value: Span) -> bool {
        let v = value.get(buf);
        for raw in v.split(|&b| b == b',') {
            let t = trim_ows(raw);
            if t.is_empty() {
                continue;
            }
            if !t.iter().all(|&b| is_tchar(b)) {
                return false;
            }
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else {
                if self.count as usize == MAX_CONNECTION_TOKENS {
                    return false;
                }
                self.names[self.count as usize] = Span::of(buf, t);
                self.count += 1;
            }
        }
        true
    }

    /// Whether `name` was nominated hop-by-hop by the Connection header.
    #[inline]
    pub fn nominates(&self, buf: &[u8], name: &[u8]) -> bool {
        self.names[..self.count as usize]
            .iter()
            .any(|s| s.get(buf).eq_ignore_ascii_case(name))
    }

    #[inline]
    pub fn has_names(&self) -> bool {
        self.count > 0
    }

    pub fn clear(&mut self) {
        *self = ConnectionOptions::default();
    }
}

/// Optional whitespace (SP / HTAB) trimmed from both ends.
#[inline]
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// RFC 9110 `tchar`.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[b as usize]
}

static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Parses a Content-Length value strictly: digits only, no sign, no list, no overflow.
#[inline]
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names_case_insensitively() {
        assert_eq!(HeaderKind::of(b"CONTENT-length"), HeaderKind::ContentLength);
        assert_eq!(
            HeaderKind::of(b"Proxy-Authorization"),
            HeaderKind::ProxyOther
        );
        assert_eq!(HeaderKind::of(b"proxy-"), HeaderKind::Other);
        assert_eq!(
            HeaderKind::of(b"X-Forwarded-For"),
            HeaderKind::XForwardedFor
        );
        assert_eq!(HeaderKind::of(b"Accept"), HeaderKind::Other);
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_content_length(b"003"), Some(3));
        assert_eq!(
            parse_content_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1,1",
            b"1 1",
            b"0x10",
            b"10000000000000000000",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn connection_tokens() {
        let buf = b"close, X-Secret ,keep-alive, Upgrade";
        let mut c = ConnectionOptions::default();
        assert!(c.add(
            buf,
            Span {
                start: 0,
                end: buf.len() as u32
            }
        ));
        assert!(c.close && c.keep_alive && c.upgrade);
        assert!(c.nominates(buf, b"x-secret"));
        assert!(!c.nominates(buf, b"close"));
        let bad = b"a b";
        assert!(!ConnectionOptions::default().add(bad, Span { start: 0, end: 3 }));
    }
}
