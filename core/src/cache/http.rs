//! RFC 9111 (HTTP Caching) for a shared cache, sans I/O: `Cache-Control` directives of
//! requests and responses (section 5.2), whether a response may be stored (section 3), its
//! freshness lifetime (4.2.1, 4.2.2 heuristics), its age (4.2.3), and whether a stored response
//! may answer a request, must be validated first, or must not be used (4.2, 4.2.4, 5.2.1).
//! Times are given by the caller: seconds or milliseconds since the Unix epoch, never read
//! here.

/// The device token turnpike announces in `Surrogate-Capability` (Edge Architecture 1.0):
/// `Surrogate-Control` directives targeted at it (`max-age=60;turnpike`) win over untargeted
/// ones.
pub const SURROGATE_TOKEN: &str = "turnpike";

/// Delta-seconds past what fits are taken as 2^31 (RFC 9111 section 1.2.2).
pub const DELTA_MAX: u64 = 1 << 31;

/// Status codes whose responses are heuristically cacheable (RFC 9110 section 15.1).
pub const HEURISTIC_STATUSES: [u16; 12] =
    [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// Status codes this cache understands: with `must-understand` only these are stored (RFC 9111
/// section 5.2.2.3). Without it any final status with explicit freshness may be, but 206 (no
/// range support) and 304.
pub const UNDERSTOOD_STATUSES: [u16; 23] = [
    200, 201, 202, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 421, 451,
    500, 501, 502, 503,
];

/// `Cache-Control` directives (of a response or of a request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub must_understand: bool,
    /// Request: `max-stale` (without a value: any staleness, [`u64::MAX`]).
    pub max_stale: Option<u64>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
    /// A directive value that does not parse (a negative or text `max-age`): the response is
    /// taken as stale.
    pub invalid: bool,
}

impl Directives {
    /// Parses every `Cache-Control` field line's value. Names match without regard to case;
    /// a value may be a token or a quoted string; the first occurrence of a directive wins
    /// (RFC 9111 section 4.2.1).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Directives {
        let mut d = Directives::default();
        for value in values {
            for item in split_list(value) {
                let (name, arg) = match item.iter().position(|&b| b == b'=') {
                    Some(i) => (trim(&item[..i]), Some(unquote(trim(&item[i + 1..])))),
                    None => (trim(item), None),
                };
                d.apply(name, arg);
            }
        }
        d
    }

    fn apply(&mut self, name: &[u8], arg: Option<&[u8]>) {
        let secs = |d: &mut Directives| match arg.map(delta_seconds) {
            Some(Some(n)) => Some(n),
            _ => {
                d.invalid = true;
                Some(0)
            }
        };
        // Compared without allocating: directives are parsed on the request path.
        let is = |d: &[u8]| name.eq_ignore_ascii_case(d);
        if is(b"max-age") {
            if self.max_age.is_none() {
                self.max_age = secs(self);
            }
        } else if is(b"s-maxage") {
            if self.s_maxage.is_none() {
                self.s_maxage = secs(self);
            }
        } else if is(b"min-fresh") {
            if self.min_fresh.is_none() {
                self.min_fresh = arg.and_then(delta_seconds).or(Some(0));
            }
        } else if is(b"max-stale") {
            if self.max_stale.is_none() {
                self.max_stale = Some(match arg {
                    None => u64::MAX,
                    Some(a) => delta_seconds(a).unwrap_or(0),
                });
            }
        } else if is(b"no-store") {
            self.no_store = true;
        } else if is(b"no-cache") {
            self.no_cache = true;
        } else if is(b"private") {
            self.private = true;
        } else if is(b"public") {
            self.public = true;
        } else if is(b"must-revalidate") {
            self.must_revalidate = true;
        } else if is(b"proxy-revalidate") {
            self.proxy_revalidate = true;
        } else if is(b"must-understand") {
            self.must_understand = true;
        } else if is(b"only-if-cached") {
            self.only_if_cached = true;
        }
    }
}

/// Splits a comma-separated list, leaving commas inside quoted strings alone.
fn split_list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < v.len() {
            let b = v[i];
            i += 1;
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == b',' && !quoted {
                let item = &v[start..i - 1];
                start = i;
                if !trim(item).is_empty() {
                    return Some(item);
                }
            }
        }
        if start < v.len() {
            let item = &v[start..];
            start = v.len();
            if !trim(item).is_empty() {
                return Some(item);
            }
        }
        None
    })
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

fn unquote(b: &[u8]) -> &[u8] {
    if b.len() >= 2 && b[0] == b'"' && b[b.len() - 1] == b'"' {
        &b[1..b.len() - 1]
    } else {
        b
    }
}

/// `delta-seconds` (RFC 9111 section 1.2.2): digits only; too large is 2^31.
pub fn delta_seconds(b: &[u8]) -> Option<u64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in b {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        if n > DELTA_MAX {
            return Some(DELTA_MAX);
        }
    }
    Some(n)
}

/// An HTTP-date (RFC 9110 section 5.6.7, all three forms) as seconds since the Unix epoch.
pub fn http_date(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(b)).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// What of a response's header fields RFC 9111 reads.
#[derive(Debug, Clone, Default)]
pub struct ResponseFields<'a> {
    pub cache_control: Directives,
    /// `Pragma: no-cache`, read only when there is no `Cache-Control`. RFC 9111 section 5.4
    /// deprecates `Pragma` and gives it no meaning: reuse does not look at it.
    pub pragma_no_cache: bool,
    /// `Date`, seconds since the epoch.
    pub date: Option<u64>,
    /// `Expires`: `Some(None)` when present but not a valid date (it is then in the past).
    pub expires: Option<Option<u64>>,
    pub last_modified: Option<u64>,
    pub age: Option<u64>,
    /// `Age` is not one non-negative integer (a list, a fraction, a parameter, several
    /// lines): the response is taken as stale.
    pub age_invalid: bool,
    /// `Surrogate-Control` (the Edge Architecture's header for reverse proxies, which a
    /// gateway is): its `no-store` and `max-age` win over `Cache-Control`'s.
    pub surrogate: Directives,
    pub etag: Option<&'a [u8]>,
    pub last_modified_raw: Option<&'a [u8]>,
    /// `Vary` field names (raw list values).
    pub vary: Vec<&'a [u8]>,
    /// `Vary: *`: never reused.
    pub vary_any: bool,
}

impl<'a> ResponseFields<'a> {
    /// Reads the fields RFC 9111 needs from `(name, value)` pairs. Names match without regard
    /// to case; the first `Date`, `Expires`, `Age`, `ETag` and `Last-Modified` count.
    pub fn read(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> ResponseFields<'a> {
        let mut f = ResponseFields::default();
        let mut cc: Vec<&[u8]> = Vec::new();
        let mut pragma = false;
        let mut untargeted: Vec<&[u8]> = Vec::new();
        let mut targeted: Vec<&[u8]> = Vec::new();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"cache-control") {
                cc.push(value);
            } else if name.eq_ignore_ascii_case(b"pragma") {
                pragma |= split_list(value).any(|d| trim(d).eq_ignore_ascii_case(b"no-cache"));
            } else if name.eq_ignore_ascii_case(b"date") && f.date.is_none() {
                f.date = http_date(value);
            } else if name.eq_ignore_ascii_case(b"expires") && f.expires.is_none() {
                f.expires = Some(http_date(value));
            } else if name.eq_ignore_ascii_case(b"last-modified") && f.last_modified_raw.is_none() {
                f.last_modified = http_date(value);
                f.last_modified_raw = Some(trim(value));
            } else if name.eq_ignore_ascii_case(b"age") {
                f.age_invalid |= f.age.is_some();
                f.age = delta_seconds(trim(value));
                f.age_invalid |= f.age.is_none();
            } else if name.eq_ignore_ascii_case(b"surrogate-control") {
                // Untargeted directives, and those targeted at this cache (`max-age=60;turnpike`);
                // those targeted at another device are not ours.
                for item in split_list(value) {
                    match item.iter().position(|&b| b == b';') {
                        None => untargeted.push(item),
                        Some(i)
                            if trim(&item[i + 1..])
                                .eq_ignore_ascii_case(SURROGATE_TOKEN.as_bytes()) =>
                        {
                            targeted.push(&item[..i])
                        }
                        Some(_) => {}
                    }
                }
            } else if name.eq_ignore_ascii_case(b"etag") && f.etag.is_none() {
                f.etag = Some(trim(value));
            } else if name.eq_ignore_ascii_case(b"vary") {
                for item in split_list(value) {
                    let item = trim(item);
                    if item == b"*" {
                        f.vary_any = true;
                    } else if !f.vary.iter().any(|v| v.eq_ignore_ascii_case(item)) {
                        f.vary.push(item);
                    }
                }
            }
        }
        f.pragma_no_cache = pragma && cc.is_empty();
        f.cache_control = Directives::parse(cc);
        f.surrogate = Directives::parse(if targeted.is_empty() {
            untargeted
        } else {
            targeted
        });
        f
    }
}

/// What a cache may do with a response (RFC 9111 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storable {
    /// Store it; freshness and validation decide reuse.
    Yes,
    /// Do not store it (the reason, for `Cache-Status` and debugging).
    No(&'static str),
}

/// Whether a shared cache may store the response `status`/`resp` to a GET request whose
/// `Cache-Control` is `req` and that carried `Authorization` when `authorization`.
pub fn storable(
    status: u16,
    resp: &ResponseFields<'_>,
    req: &Directives,
    authorization: bool,
) -> Storable {
    let cc = &resp.cache_control;
    if status < 200 || status == 206 || status == 304 || status > 599 {
        return Storable::No("status not stored");
    }
    if cc.must_understand && !UNDERSTOOD_STATUSES.contains(&status) {
        return Storable::No("status not understood");
    }
    if req.no_store {
        return Storable::No("request no-store");
    }
    if resp.surrogate.no_store {
        return Storable::No("Surrogate-Control: no-store");
    }
    if resp.surrogate.max_age.is_some() {
        return Storable::Yes;
    }
    // `must-understand` with an understood status overrides `no-store` (section 5.2.2.3).
    if cc.no_store && !cc.must_understand {
        return Storable::No("no-store");
    }
    if cc.private {
        return Storable::No("private");
    }
    if resp.vary_any {
        return Storable::No("Vary: *");
    }
    if authorization && !(cc.must_revalidate || cc.public || cc.s_maxage.is_some()) {
        return Storable::No("request had Authorization");
    }
    let explicit = cc.public
        || cc.max_age.is_some()
        || cc.s_maxage.is_some()
        || resp.expires.is_some()
        || HEURISTIC_STATUSES.contains(&status);
    if !explicit {
        return Storable::No("no explicit freshness and not heuristically cacheable");
    }
    Storable::Yes
}

/// A response's freshness lifetime in seconds (RFC 9111 section 4.2.1): `s-maxage`, else
/// `max-age`, else `Expires` minus `Date` (the response time when `Date` is missing), else a
/// heuristic of 10% of the time since `Last-Modified`, at most `heuristic_max`, for
/// heuristically cacheable statuses or `public` responses (section 4.2.2); else 0.
pub fn freshness_lifetime(
    status: u16,
    resp: &ResponseFields<'_>,
    response_time_s: u64,
    heuristic_max: u64,
) -> u64 {
    let cc = &resp.cache_control;
    if resp.age_invalid {
        return 0;
    }
    if let Some(s) = resp.surrogate.max_age {
        return if resp.surrogate.invalid { 0 } else { s };
    }
    if cc.invalid {
        return 0;
    }
    if let Some(s) = cc.s_maxage {
        return s;
    }
    if let Some(m) = cc.max_age {
        return m;
    }
    if let Some(expires) = resp.expires {
        let date = resp.date.unwrap_or(response_time_s);
        return expires.map_or(0, |e| e.saturating_sub(date));
    }
    if HEURISTIC_STATUSES.contains(&status) || cc.public {
        let date = resp.date.unwrap_or(response_time_s);
        if let Some(lm) = resp.last_modified
            && lm < date
        {
            return ((date - lm) / 10).min(heuristic_max);
        }
    }
    0
}

/// What a stored response keeps for judging its reuse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freshness {
    /// When the request that got it was sent, and when the response arrived (ms since the
    /// epoch).
    pub request_ms: u64,
    pub response_ms: u64,
    /// `Date`, seconds since the epoch.
    pub date_s: Option<u64>,
    /// The `Age` it came with.
    pub age_s: u64,
    pub lifetime_s: u64,
    /// `no-cache` (or `Pragma: no-cache`): validate before every use.
    pub no_cache: bool,
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale.
    pub must_revalidate: bool,
    pub etag: Option<Box<[u8]>>,
    pub last_modified: Option<Box<[u8]>>,
}

impl Freshness {
    /// From a response's fields, received at `response_ms` for a request sent at
    /// `request_ms`.
    pub fn of(
        status: u16,
        resp: &ResponseFields<'_>,
        request_ms: u64,
        response_ms: u64,
        heuristic_max: u64,
    ) -> Freshness {
        let cc = &resp.cache_control;
        Freshness {
            request_ms,
            response_ms,
            date_s: resp.date,
            age_s: resp.age.unwrap_or(0),
            lifetime_s: freshness_lifetime(status, resp, response_ms / 1000, heuristic_max),
            no_cache: cc.no_cache,
            must_revalidate: cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some(),
            etag: resp.etag.map(Into::into),
            last_modified: resp.last_modified_raw.map(Into::into),
        }
    }

    /// Whether the origin can be asked whether it is still current (a validator is known).
    pub fn has_validator(&self) -> bool {
        self.etag.is_some() || self.last_modified.is_some()
    }

    /// The response's current age in seconds at `now_ms` (RFC 9111 section 4.2.3).
    pub fn current_age(&self, now_ms: u64) -> u64 {
        let response_s = self.response_ms / 1000;
        let apparent = self.date_s.map_or(0, |d| response_s.saturating_sub(d));
        let delay = self.response_ms.saturating_sub(self.request_ms) / 1000;
        let corrected_age = self.age_s.saturating_add(delay);
        let initial = apparent.max(corrected_age);
        let resident = now_ms.saturating_sub(self.response_ms) / 1000;
        initial.saturating_add(resident)
    }
}

/// What a stored response can do for a request (RFC 9111 sections 4, 4.2.4, 5.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Fresh enough for the request: answer with it.
    Fresh,
    /// Stale, and the request accepts that (`max-stale`): answer with it.
    Stale,
    /// Ask the origin first (conditionally when a validator is known).
    Validate,
}

/// Whether the stored response `f` answers a request with `req` directives (`pragma_no_cache`:
/// the request has `Pragma: no-cache` and no `Cache-Control`) at `now_ms`.
pub fn reuse(f: &Freshness, req: &Directives, pragma_no_cache: bool, now_ms: u64) -> Reuse {
    if req.no_cache || pragma_no_cache || f.no_cache {
        return Reuse::Validate;
    }
    let age = f.current_age(now_ms);
    let mut fresh = f.lifetime_s > age;
    if let Some(max_age) = req.max_age
        && age > max_age
    {
        fresh = false;
    }
    if req.max_age == Some(0) {
        fresh = false;
    }
    if let Some(min_fresh) = req.min_fresh
        && f.lifetime_s.saturating_sub(age) < min_fresh
    {
        fresh = false;
    }
    if fresh {
        return Reuse::Fresh;
    }
    if f.must_revalidate {
        return Reuse::Validate;
    }
    let staleness = age.saturating_sub(f.lifetime_s);
    match req.max_stale {
        Some(max) if staleness <= max && req.max_age != Some(0) => Reuse::Stale,
        _ => Reuse::Validate,
    }
}

#[cfg(test)]
mod tests;
