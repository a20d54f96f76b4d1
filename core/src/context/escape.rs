//! How a variable's value is written inside a format: JSON string escaping, XML entities, CSV
//! quoting, or as it is. Literal text of a template is never escaped.
//!
//! Every mode keeps a value on one line: a control byte a client sent (a newline in a
//! `User-Agent`) can never split an access log line or forge a second one.

/// The escaping applied to values (never to a template's literal text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    /// Values as they are, except control bytes (below 0x20, and 0x7f), which are written as
    /// `\xHH` (nginx's habit) so a value cannot break a line.
    #[default]
    None,
    /// For values inside JSON strings (`"ip":"$context.identity.sourceIp"`): `"` and `\`
    /// backslash-escaped, control bytes as `\n`, `\r`, `\t`, `\b`, `\f` or `\u00XX` (RFC 8259
    /// section 7).
    Json,
    /// For values in XML text or attributes: `&amp; &lt; &gt; &quot; &apos;`; tab, newline and
    /// carriage return as character references (`&#10;`); the control bytes XML 1.0 cannot
    /// carry at all as U+FFFD.
    Xml,
    /// For CSV fields (RFC 4180): a value holding `,` or `"` is quoted, its quotes doubled;
    /// control bytes as `\xHH`, so one request stays one record on one line.
    Csv,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn hex_escape(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
}

/// Appends `s` to `out` escaped for `esc`.
pub(crate) fn write_text(out: &mut Vec<u8>, esc: Escape, s: &[u8]) {
    match esc {
        Escape::None => write_plain(out, s),
        Escape::Json => write_json(out, s),
        Escape::Xml => write_xml(out, s),
        Escape::Csv => write_csv(out, s),
    }
}

fn write_plain(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if is_ctl(b) {
            out.extend_from_slice(&s[start..i]);
            hex_escape(out, b);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// `s` as a JSON string, quotes included.
pub fn json_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    write_json(out, s.as_bytes());
    out.push(b'"');
}

/// JSON string content (no surrounding quotes).
pub(crate) fn write_json(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        if short.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

fn write_xml(out: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            b'\r' => b"&#13;",
            // Not allowed in XML 1.0, not even as a character reference.
            0..=0x1f => "\u{fffd}".as_bytes(),
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

fn write_csv(out: &mut Vec<u8>, s: &[u8]) {
    let quote = s.iter().any(|&b| b == b',' || b == b'"');
    if !quote {
        return write_plain(out, s);
    }
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b == b'"' {
            out.extend_from_slice(&s[start..=i]);
            out.push(b'"');
            start = i + 1;
        } else if is_ctl(b) {
            out.extend_from_slice(&s[start..i]);
            hex_escape(out, b);
            start = i + 1;
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// `s` as a JSON string literal, quotes included, then escaped for `esc`: what
/// `$context.error.messageString` renders. Inside a JSON format it goes in as is (it already
/// is JSON); in XML and CSV the literal is escaped like any value.
pub(crate) fn write_quoted(out: &mut Vec<u8>, esc: Escape, s: &[u8]) {
    match esc {
        Escape::None | Escape::Json => {
            out.push(b'"');
            write_json(out, s);
            out.push(b'"');
        }
        Escape::Xml => {
            // The JSON literal has no control bytes left; XML only needs its entities.
            out.extend_from_slice(b"&quot;");
            let from = out.len();
            write_json(out, s);
            let mut i = from;
            while i < out.len() {
                let rep: &[u8] = match out[i] {
                    b'&' => b"&amp;",
                    b'<' => b"&lt;",
                    b'>' => b"&gt;",
                    b'"' => b"&quot;",
                    b'\'' => b"&apos;",
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                out.splice(i..=i, rep.iter().copied());
                i += rep.len();
            }
            out.extend_from_slice(b"&quot;");
        }
        Escape::Csv => {
            // Always holds quotes, so always a quoted field with its quotes doubled.
            out.extend_from_slice(b"\"\"\"");
            let from = out.len();
            write_json(out, s);
            let mut i = from;
            while i < out.len() {
                if out[i] == b'"' {
                    out.insert(i, b'"');
                    i += 1;
                }
                i += 1;
            }
            out.extend_from_slice(b"\"\"\"");
        }
    }
}

/// Appends `n` in decimal.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
