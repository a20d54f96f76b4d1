//! Response framing: where a response's head ends and how long its body is (Content-Length,
//! chunked, or until the server closes).
//!
//! Takes bytes and returns positions; never reads a socket and never copies the body, which the
//! generator only needs to skip and count. The connection driver feeds it whatever one read
//! returned, so every state here must resume in the middle of any byte sequence.

/// Why a response could not be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("malformed response head: {0}")]
    Head(&'static str),
    #[error("malformed chunked body: {0}")]
    Chunked(&'static str),
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or Content-Length 0).
    Empty,
    Length(u64),
    Chunked,
    /// No length given: the body ends when the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The server will close after this response.
    pub close: bool,
    /// Bytes the head took, including the blank line.
    pub len: usize,
}

/// Parses a response head from the start of `buf`; `Ok(None)` means more bytes are needed.
/// `head_request` says the request was a HEAD, whose response has no body.
pub fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<Head>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut res = httparse::Response::new(&mut headers);
    let len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::Head("over 64 headers")),
        Err(_) => return Err(ResponseError::Head("not an HTTP/1.x response")),
    };
    let status = res.code.unwrap_or(0);
    let mut close = res.version == Some(0);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut other_coding = false;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = parse_length(h.value).ok_or(ResponseError::Head("bad Content-Length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(ResponseError::Head("conflicting Content-Length headers"));
            }
            length = Some(v);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides whether the body is chunked.
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            other_coding = !chunked;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && res.version == Some(0) {
                    close = false;
                }
            }
        }
    }
    let framing = if head_request || (100..200).contains(&status) || status == 204 || status == 304
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if other_coding {
        Framing::UntilClose
    } else {
        match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    };
    if framing == Framing::UntilClose {
        close = true;
    }
    Ok(Some(Head {
        status,
        framing,
        close,
        len,
    }))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Where a body decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    UntilClose,
    /// Reading a chunk-size line: the value so far and the digit count.
    Size(u64, u8),
    /// Skipping a chunk extension up to the line end; holds the chunk size.
    Extension(u64),
    /// Saw CR after a chunk size; holds the chunk size.
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    /// Start of a trailer line (or the final blank line).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    Done,
}

/// Skips a body, resuming across reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    state: State,
}

impl Body {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size(0, 0),
            Framing::UntilClose => State::UntilClose,
        };
        Self { state }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// True when the server closing the connection ends this body cleanly.
    pub fn ends_at_close(&self) -> bool {
        self.state == State::UntilClose
    }

    /// Consumes body bytes from the start of `data`; returns how many belonged to the body.
    /// After it returns, either [`Body::is_done`] or all of `data` was consumed.
    pub fn consume(&mut self, data: &[u8]) -> Result<usize, ResponseError> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Done => break,
                State::UntilClose => return Ok(data.len()),
                State::Length(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == n {
                        State::Done
                    } else {
                        State::Length(n - take)
                    };
                }
                State::Data(n) => {
                    let take = n.min((data.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == n {
                        State::DataCr
                    } else {
                        State::Data(n - take)
                    };
                }
                state => {
                    self.state = chunk_byte(state, data[i])?;
                    i += 1;
                }
            }
        }
        Ok(i)
    }
}

/// One step of the chunked framing for the byte-at-a-time states.
fn chunk_byte(state: State, b: u8) -> Result<State, ResponseError> {
    // A size line ends: a zero size starts the trailer, anything else the data.
    let line_end = |n: u64| {
        if n == 0 {
            State::TrailerStart
        } else {
            State::Data(n)
        }
    };
    Ok(match state {
        State::Size(n, digits) => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                if digits >= 15 {
                    return Err(ResponseError::Chunked("chunk size too large"));
                }
                let d = (b as char).to_digit(16).unwrap_or(0);
                State::Size(n * 16 + u64::from(d), digits + 1)
            }
            _ if digits == 0 => return Err(ResponseError::Chunked("missing chunk size")),
            b';' | b' ' | b'\t' => State::Extension(n),
            b'\r' => State::SizeLf(n),
            b'\n' => line_end(n),
            _ => return Err(ResponseError::Chunked("bad chunk size")),
        },
        State::Extension(n) => match b {
            b'\n' => line_end(n),
            _ => State::Extension(n),
        },
        State::SizeLf(n) => match b {
            b'\n' => line_end(n),
            _ => return Err(ResponseError::Chunked("bad line end after chunk size")),
        },
        State::DataCr => match b {
            b'\r' => State::DataLf,
            b'\n' => State::Size(0, 0),
            _ => return Err(ResponseError::Chunked("missing CRLF after chunk data")),
        },
        State::DataLf => match b {
            b'\n' => State::Size(0, 0),
            _ => return Err(ResponseError::Chunked("missing LF after chunk data")),
        },
        State::TrailerStart => match b {
            b'\r' => State::TrailerLf,
            b'\n' => State::Done,
            _ => State::TrailerLine,
        },
        State::TrailerLine => match b {
            b'\n' => State::TrailerStart,
            _ => State::TrailerLine,
        },
        State::TrailerLf => match b {
            b'\n' => State::Done,
            _ => return Err(ResponseError::Chunked("bad line end in trailer")),
        },
        // Bulk states are handled by the caller.
        other @ (State::Length(_) | State::UntilClose | State::Data(_) | State::Done) => other,
    })
}

#[cfg(test)]
mod tests;
