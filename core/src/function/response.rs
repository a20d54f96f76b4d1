//! What a function returned, read into a status, headers, cookies and body (AWS "Working with
//! AWS Lambda proxy integrations for HTTP APIs", "Lambda function response for format 1.0"
//! and "... for format 2.0").
//!
//! Everything here is controlled by the function, so every header name and value is checked
//! before it can reach the client: a name must be an RFC 9110 token and a value must hold no
//! control character but HTAB (no CR/LF injection of extra headers or a second response).
//! Hop-by-hop and framing headers (`content-length`, `transfer-encoding`, `connection`,
//! `keep-alive`, `te`, `trailer`, `upgrade`, `proxy-*`) are dropped, not refused: the gateway
//! frames the body itself and owns the client connection.

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::auth::request_authorizer::PayloadFormat;
use crate::h1::head::{HeaderKind, is_tchar};

/// A function's answer, ready to be written to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionResponse {
    pub status: u16,
    /// Checked names and values, hop-by-hop and framing headers removed.
    pub headers: Vec<(String, String)>,
    /// 2.0 `cookies`: one `set-cookie` header each.
    pub cookies: Vec<String>,
    pub body: Vec<u8>,
}

/// Why a function's answer cannot be used. The client gets a 500 (AWS answers a malformed
/// Lambda proxy response with `{"message":"Internal Server Error"}`); the log gets this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    #[error("the response is not a JSON object (payload format 1.0 requires one)")]
    NotAnObject,
    #[error("the response has no statusCode (payload format 1.0 requires one)")]
    NoStatusCode,
    #[error("statusCode {0} is not an integer from 200 to 599")]
    BadStatusCode(String),
    #[error("{0} is not an object")]
    NotAnObjectField(&'static str),
    #[error("{field}.{name}: only strings, numbers and booleans are allowed")]
    HeaderValueType { field: &'static str, name: String },
    #[error("header name {0:?} is not a valid HTTP token")]
    BadHeaderName(String),
    #[error("header {0}: the value holds a control character (CR, LF, NUL...)")]
    BadHeaderValue(String),
    #[error("cookies is not an array of strings")]
    CookiesNotStrings,
    #[error("a cookie holds a control character (CR, LF, NUL...)")]
    BadCookie,
    #[error("body is not a string")]
    BodyNotAString,
    #[error("isBase64Encoded is not a boolean")]
    Base64FlagNotABool,
    #[error("body is not valid base64: {0}")]
    BadBase64(String),
}

/// Reads a function's answer.
///
/// 2.0: a JSON object with `statusCode` is a full response (`statusCode`, `headers`,
/// `multiValueHeaders`, `cookies`, `body`, `isBase64Encoded`); no `content-type` is added
/// when it has none (AWS documents that default only for the next case). Any other valid
/// JSON (an object without `statusCode`, an array, a number, a string...) is the body of a
/// 200 with `content-type: application/json`: the payload as returned, except that a JSON
/// string is its text (AWS's example: `"Hello from Lambda!"` becomes the body
/// `Hello from Lambda!`). AWS documents only `headers` for 2.0; `multiValueHeaders` is read
/// as in 1.0 so a function written for either format keeps its repeated headers.
///
/// 1.0: the answer must be an object with `statusCode`. `headers` and `multiValueHeaders`
/// are merged; a name in both takes only the `multiValueHeaders` values (AWS "Set up Lambda
/// proxy integrations in API Gateway": "only the values from multiValueHeaders will appear").
///
/// `statusCode` must be a JSON integer from 200 to 599: a 1xx is an interim response and
/// cannot end an exchange. Header values may be strings, numbers or booleans (as text);
/// `null` leaves the header out.
pub fn parse_response(
    payload: &[u8],
    format: PayloadFormat,
) -> Result<FunctionResponse, ResponseError> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| ResponseError::NotJson(e.to_string()))?;
    let object = match value {
        Value::Object(o) if o.contains_key("statusCode") => o,
        Value::Object(_) if format == PayloadFormat::V1 => return Err(ResponseError::NoStatusCode),
        _ if format == PayloadFormat::V1 => return Err(ResponseError::NotAnObject),
        Value::String(text) => return Ok(inferred(text.into_bytes())),
        _ => return Ok(inferred(payload.to_vec())),
    };
    let status = status(&object["statusCode"])?;
    let mut headers = Vec::new();
    let multi = object_field(&object, "multiValueHeaders")?;
    if let Some(single) = object_field(&object, "headers")? {
        for (name, value) in single {
            let in_multi = multi.is_some_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case(name)));
            if !in_multi {
                push_header(&mut headers, "headers", name, value)?;
            }
        }
    }
    for (name, values) in multi.into_iter().flatten() {
        match values {
            Value::Array(values) => {
                for value in values {
                    push_header(&mut headers, "multiValueHeaders", name, value)?;
                }
            }
            Value::Null => {}
            _ => {
                return Err(ResponseError::HeaderValueType {
                    field: "multiValueHeaders",
                    name: name.clone(),
                });
            }
        }
    }
    let cookies = match format {
        PayloadFormat::V2 => cookies(object.get("cookies"))?,
        PayloadFormat::V1 => Vec::new(),
    };
    Ok(FunctionResponse {
        status,
        headers,
        cookies,
        body: body(&object)?,
    })
}

/// The 2.0 response AWS infers from JSON without `statusCode`.
fn inferred(body: Vec<u8>) -> FunctionResponse {
    FunctionResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        cookies: Vec::new(),
        body,
    }
}

fn status(v: &Value) -> Result<u16, ResponseError> {
    v.as_u64()
        .filter(|s| (200..=599).contains(s))
        .map(|s| s as u16)
        .ok_or_else(|| ResponseError::BadStatusCode(v.to_string()))
}

fn object_field<'a>(
    o: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a Map<String, Value>>, ResponseError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ResponseError::NotAnObjectField(field)),
    }
}

fn push_header(
    out: &mut Vec<(String, String)>,
    field: &'static str,
    name: &str,
    value: &Value,
) -> Result<(), ResponseError> {
    let value = match value {
        Value::Null => return Ok(()),
        Value::String(s) => s.clone(),
        Value::Number(_) | Value::Bool(_) => value.to_string(),
        Value::Array(_) | Value::Object(_) => {
            return Err(ResponseError::HeaderValueType {
                field,
                name: name.to_owned(),
            });
        }
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(ResponseError::BadHeaderName(name.to_owned()));
    }
    if !is_field_value(&value) {
        return Err(ResponseError::BadHeaderValue(name.to_owned()));
    }
    if HeaderKind::of(name.as_bytes()).is_hop_by_hop() {
        return Ok(());
    }
    out.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    Ok(())
}

/// RFC 9110 `field-value` characters: visible ASCII, SP, HTAB and anything non-ASCII
/// (`obs-text`); no other control character.
fn is_field_value(v: &str) -> bool {
    !v.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn cookies(v: Option<&Value>) -> Result<Vec<String>, ResponseError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ResponseError::CookiesNotStrings),
    };
    items
        .iter()
        .map(|c| match c {
            Value::String(c) if is_field_value(c) => Ok(c.clone()),
            Value::String(_) => Err(ResponseError::BadCookie),
            _ => Err(ResponseError::CookiesNotStrings),
        })
        .collect()
}

/// Padding optional: encoders differ, and the bytes are the same either way.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn body(o: &Map<String, Value>) -> Result<Vec<u8>, ResponseError> {
    let encoded = match o.get("isBase64Encoded") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ResponseError::Base64FlagNotABool),
    };
    let text = match o.get("body") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s,
        Some(_) => return Err(ResponseError::BodyNotAString),
    };
    if !encoded {
        return Ok(text.clone().into_bytes());
    }
    LENIENT
        .decode(text)
        .map_err(|e| ResponseError::BadBase64(e.to_string()))
}
