//! Requests as bytes: every request the run can send is serialized once, before the load
//! starts, and reused for every send.
//!
//! One serialized variant exists per (request, credential) pair, so choosing a request on the
//! hot path is a weighted pick and an index, never a format or an allocation. The bytes are
//! leaked to `'static`: they live for the whole run anyway, and a `&'static [u8]` is a buffer
//! io_uring can own without reference counting.

/// One request of the mix, as the user described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTemplate {
    pub method: String,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub weight: u32,
    /// Whether a credential is injected (when the scenario has any).
    pub credentials: bool,
}

/// Values injected into `header` (after `prefix`), one drawn at random per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub header: String,
    pub prefix: String,
    pub values: Vec<String>,
}

/// More pre-built request bytes than this is almost surely a mistake (a big body times a long
/// credential list), so it is refused instead of eating the machine's memory.
const MAX_PREBUILT_BYTES: usize = 512 << 20;

/// Why a request could not be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the request mix expands to {0} bytes of pre-built requests (limit 512 MiB): use fewer \
         credentials or a smaller body"
    )]
    TooBig(usize),
}

/// An HTTP token (method, header name): RFC 9110 `tchar`s only.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub fn check_method(m: &str) -> Result<(), String> {
    if is_token(m) {
        Ok(())
    } else {
        Err(format!("{m:?} is not a valid HTTP method"))
    }
}

pub fn check_path(p: &str) -> Result<(), String> {
    if !p.starts_with('/') {
        return Err(format!("{p:?} must start with /"));
    }
    if p.bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "{p:?} contains whitespace or control bytes (percent-encode them)"
        ));
    }
    Ok(())
}

pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !is_token(name) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    if value
        .bytes()
        .any(|b| (b.is_ascii_control() && b != b'\t') || b == 0x7f)
    {
        return Err(format!(
            "the value of {name} contains control bytes (CR, LF, ...)"
        ));
    }
    let lower = name.to_ascii_lowercase();
    if lower == "content-length" || lower == "transfer-encoding" {
        return Err(format!(
            "{name} is computed from the body; set the body instead of this header"
        ));
    }
    Ok(())
}

/// Parses a `-H 'Name: value'` argument.
pub fn parse_header_arg(arg: &str) -> Result<(String, String), String> {
    let Some((name, value)) = arg.split_once(':') else {
        return Err(format!("header {arg:?} must look like 'Name: value'"));
    };
    let (name, value) = (name.trim(), value.trim());
    check_header(name, value)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Reads header values from a file, one per line: surrounding whitespace is trimmed, blank
/// lines and lines starting with `#` are skipped, and every value is checked as a value of
/// `header`. Errors name the line.
pub fn read_values_file(header: &str, path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let v = line.trim();
        if v.is_empty() || v.starts_with('#') {
            continue;
        }
        check_header(header, v).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
        values.push(v.to_owned());
    }
    Ok(values)
}

/// Parses a `--header-values NAME=FILE` argument into the header's [`Credentials`]: the
/// values of FILE (see [`read_values_file`]), one drawn per request.
pub fn parse_header_values_arg(arg: &str) -> Result<Credentials, String> {
    let Some((name, path)) = arg.split_once('=') else {
        return Err(format!(
            "{arg:?} must look like NAME=FILE (x-api-key=keys.txt)"
        ));
    };
    let (name, path) = (name.trim(), path.trim());
    check_header(name, "")?;
    if path.is_empty() {
        return Err(format!("{arg:?} names no file"));
    }
    let values = read_values_file(name, std::path::Path::new(path))?;
    if values.is_empty() {
        return Err(format!("{path} holds no value (one per line)"));
    }
    Ok(Credentials {
        header: name.to_owned(),
        prefix: String::new(),
        values,
    })
}

/// One serialized request.
#[derive(Debug, Clone, Copy)]
pub struct Variant {
    pub bytes: &'static [u8],
    /// HEAD responses carry no body whatever their headers say.
    pub head: bool,
}

/// Every request the run may send, with the weighted pick over them.
#[derive(Debug)]
pub struct RequestSet {
    variants: Vec<Variant>,
    /// Per template: cumulative weight, first variant, variant count.
    picks: Vec<(u64, usize, usize)>,
    total_weight: u64,
    /// `pipeline` copies of the only variant back to back, when there is only one: a closed
    /// loop with a single request then writes one static buffer per batch.
    batch: Option<&'static [u8]>,
    /// How many requests `batch` holds.
    batch_len: usize,
}

impl RequestSet {
    /// Serializes every (template, credential) pair. `close` adds `Connection: close` (the
    /// new-connection-per-request mode), `pipeline` sizes the pre-built batch.
    pub fn build(
        authority: &str,
        templates: &[RequestTemplate],
        credentials: Option<&Credentials>,
        close: bool,
        pipeline: usize,
    ) -> Result<Self, RequestError> {
        let mut total_bytes = 0usize;
        let mut variants = Vec::new();
        let mut picks = Vec::with_capacity(templates.len());
        let mut total_weight = 0u64;
        for t in templates {
            check_method(&t.method).map_err(RequestError::Invalid)?;
            check_path(&t.path).map_err(RequestError::Invalid)?;
            let first = variants.len();
            let creds: Vec<Option<(&str, &str, &str)>> = match credentials {
                Some(c) if t.credentials => c
                    .values
                    .iter()
                    .map(|v| Some((c.header.as_str(), c.prefix.as_str(), v.as_str())))
                    .collect(),
                _ => vec![None],
            };
            for cred in creds {
                let bytes = serialize(authority, t, cred, close)?;
                total_bytes = total_bytes.saturating_add(bytes.len());
                if total_bytes > MAX_PREBUILT_BYTES {
                    return Err(RequestError::TooBig(total_bytes));
                }
                variants.push(Variant {
                    bytes: Box::leak(bytes.into_boxed_slice()),
                    head: t.method.eq_ignore_ascii_case("HEAD"),
                });
            }
            total_weight += u64::from(t.weight.max(1));
            picks.push((total_weight, first, variants.len() - first));
        }
        if variants.is_empty() {
            return Err(RequestError::Invalid("no request to send".into()));
        }
        let batch = match variants.as_slice() {
            [only] if pipeline > 1 => {
                let bytes = only.bytes.repeat(pipeline);
                Some(&*Box::leak(bytes.into_boxed_slice()))
            }
            _ => None,
        };
        Ok(Self {
            variants,
            picks,
            total_weight,
            batch,
            batch_len: pipeline,
        })
    }

    /// Draws the next request to send.
    #[inline]
    pub fn pick(&self, rng: &mut Rng) -> Variant {
        if self.variants.len() == 1 {
            return self.variants[0];
        }
        let w = rng.below(self.total_weight);
        let i = self.picks.partition_point(|&(cum, _, _)| cum <= w);
        let (_, first, count) = self.picks[i.min(self.picks.len() - 1)];
        let k = if count == 1 {
            0
        } else {
            rng.below(count as u64) as usize
        };
        self.variants[first + k]
    }

    /// The pre-built batch of `n` identical requests: only when the mix has a single request
    /// and `n` is the `pipeline` the set was built for.
    #[inline]
    pub fn batch(&self, n: usize) -> Option<&'static [u8]> {
        self.batch.filter(|_| n == self.batch_len)
    }
}

fn serialize(
    authority: &str,
    t: &RequestTemplate,
    cred: Option<(&str, &str, &str)>,
    close: bool,
) -> Result<Vec<u8>, RequestError> {
    let mut has_host = false;
    let mut has_connection = false;
    let mut head = format!("{} {} HTTP/1.1\r\n", t.method, t.path);
    for (name, value) in &t.headers {
        check_header(name, value).map_err(RequestError::Invalid)?;
        has_host |= name.eq_ignore_ascii_case("host");
        has_connection |= name.eq_ignore_ascii_case("connection");
    }
    if !has_host {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    for (name, value) in &t.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((name, prefix, value)) = cred {
        head.push_str(&format!("{name}: {prefix}{value}\r\n"));
    }
    let wants_length = matches!(
        t.method.to_ascii_uppercase().as_str(),
        "POST" | "PUT" | "PATCH"
    );
    if !t.body.is_empty() || wants_length {
        head.push_str(&format!("Content-Length: {}\r\n", t.body.len()));
    }
    if close && !has_connection {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&t.body);
    Ok(bytes)
}

/// xorshift64*: a few cycles per draw, good enough to spread a request mix, seeded per
/// connection so runs are repeatable.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Mix the seed (splitmix64 step) so neighbouring seeds do not give neighbouring streams.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`); the multiply-shift keeps it unbiased enough for load mixes.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(method: &str, path: &str, body: &[u8], weight: u32) -> RequestTemplate {
        RequestTemplate {
            method: method.into(),
            path: path.into(),
            headers: vec![("accept".into(), "*/*".into())],
            body: body.to_vec(),
            weight,
            credentials: true,
        }
    }

    #[test]
    fn serializes_requests_once() {
        let set = RequestSet::build("h:1", &[template("POST", "/u", b"abc", 1)], None, false, 2)
            .expect("build");
        let v = set.pick(&mut Rng::new(1));
        assert_eq!(
            v.bytes,
            b"POST /u HTTP/1.1\r\nHost: h:1\r\naccept: */*\r\nContent-Length: 3\r\n\r\nabc"
        );
        assert_eq!(set.batch(2).expect("batch").len(), v.bytes.len() * 2);
        assert_eq!(set.batch(1), None);
    }

    #[test]
    fn close_mode_and_credentials() {
        let creds = Credentials {
            header: "Authorization".into(),
            prefix: "Bearer ".into(),
            values: vec!["t1".into(), "t2".into()],
        };
        let set = RequestSet::build("h", &[template("GET", "/", b"", 1)], Some(&creds), true, 1)
            .expect("build");
        let mut rng = Rng::new(7);
        let mut seen = [false; 2];
        for _ in 0..100 {
            let text = String::from_utf8_lossy(set.pick(&mut rng).bytes).into_owned();
            assert!(text.contains("Connection: close\r\n"));
            seen[0] |= text.contains("Authorization: Bearer t1\r\n");
            seen[1] |= text.contains("Authorization: Bearer t2\r\n");
        }
        assert_eq!(seen, [true, true]);
    }

    #[test]
    fn weights_are_respected() {
        let set = RequestSet::build(
            "h",
            &[template("GET", "/a", b"", 3), template("GET", "/b", b"", 1)],
            None,
            false,
            1,
        )
        .expect("build");
        let mut rng = Rng::new(3);
        let a = (0..40_000)
            .filter(|_| set.pick(&mut rng).bytes.starts_with(b"GET /a "))
            .count();
        assert!((29_000..31_000).contains(&a), "{a}");
    }

    #[test]
    fn header_values_come_from_a_file_one_per_line() {
        let dir = std::env::temp_dir().join(format!("turnpike-load-values-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("keys.txt");
        std::fs::write(&file, "# keys\nk1\n\n  k2  \nk3\n").expect("write");
        let arg = format!("x-api-key={}", file.display());
        let c = parse_header_values_arg(&arg).expect("valid");
        assert_eq!((c.header.as_str(), c.prefix.as_str()), ("x-api-key", ""));
        assert_eq!(c.values, ["k1", "k2", "k3"]);
        // Each value gets its own serialized request, and every one is drawn.
        let mut t = template("GET", "/", b"", 1);
        t.headers.clear();
        let set = RequestSet::build("h", &[t], Some(&c), false, 1).expect("build");
        let mut rng = Rng::new(5);
        let seen: std::collections::BTreeSet<&[u8]> =
            (0..200).map(|_| set.pick(&mut rng).bytes).collect();
        assert_eq!(seen.len(), 3);
        assert!(seen.contains(&b"GET / HTTP/1.1\r\nHost: h\r\nx-api-key: k2\r\n\r\n"[..]));

        std::fs::write(&file, "k1\nbad\x07value\n").expect("write");
        let e = parse_header_values_arg(&arg).expect_err("control byte");
        assert!(e.contains("line 2"), "{e}");
        std::fs::write(&file, "\n# nothing\n").expect("write");
        assert!(
            parse_header_values_arg(&arg)
                .expect_err("empty")
                .contains("no value")
        );
        assert!(parse_header_values_arg("x-api-key").is_err());
        assert!(parse_header_values_arg("x-api-key=").is_err());
        assert!(parse_header_values_arg(&format!("a b={}", file.display())).is_err());
        assert!(
            parse_header_values_arg(&format!("k={}", dir.join("none").display()))
                .expect_err("missing")
                .contains("cannot read")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn header_arguments() {
        assert_eq!(
            parse_header_arg("X-A:  b c "),
            Ok(("X-A".into(), "b c".into()))
        );
        assert!(parse_header_arg("nocolon").is_err());
        assert!(parse_header_arg("Content-Length: 5").is_err());
        assert!(parse_header_arg("a: b\r\nc").is_err());
    }
}
