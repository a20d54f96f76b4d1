//! The event a WebSocket API's function integration gets (AWS's WebSocket Lambda event):
//! `requestContext` with `eventType` (`CONNECT`, `MESSAGE`, `DISCONNECT`), `routeKey`,
//! `connectionId`, `messageId`, `domainName`, `stage`, `connectedAt`, ...; on `$connect`
//! the handshake's headers and query; on messages the `body` (base64 for binary frames);
//! `requestTime` in AWS's `dd/Mon/yyyy:HH:mm:ss +0000`.

use base64::Engine;
use serde_json::{Map, Value, json};

/// CONNECT, MESSAGE or DISCONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Connect,
    Message,
    Disconnect,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Connect => "CONNECT",
            EventType::Message => "MESSAGE",
            EventType::Disconnect => "DISCONNECT",
        }
    }
}

/// What one WebSocket event says.
pub struct WsEvent<'a> {
    pub event_type: EventType,
    pub route_key: &'a str,
    pub connection_id: &'a str,
    /// MESSAGE: the message's id (unique per connection).
    pub message_id: Option<&'a str>,
    pub request_id: &'a str,
    pub api_id: &'a str,
    pub stage: &'a str,
    pub domain_name: &'a str,
    /// Milliseconds since the epoch.
    pub connected_at: u64,
    pub request_time_epoch: u64,
    pub source_ip: &'a str,
    pub user_agent: &'a str,
    /// CONNECT: the handshake's header fields (repeats joined by `,` in `headers`).
    pub headers: &'a [(String, String)],
    /// CONNECT: the handshake's query parameters.
    pub query: &'a [(String, String)],
    /// MESSAGE: the payload, and whether it came in a binary frame.
    pub body: Option<(&'a [u8], bool)>,
    /// DISCONNECT: the close code and reason.
    pub disconnect: Option<(u16, &'a str)>,
    /// The `$connect` authorizer's context (`requestContext.authorizer`), kept for every
    /// event of the connection as AWS does.
    pub authorizer: Option<&'a Value>,
}

/// The event as JSON.
pub fn to_json(e: &WsEvent<'_>) -> Vec<u8> {
    let mut ctx = json!({
        "routeKey": e.route_key,
        "eventType": e.event_type.as_str(),
        "extendedRequestId": e.request_id,
        "requestId": e.request_id,
        "messageDirection": "IN",
        "stage": e.stage,
        "connectedAt": e.connected_at,
        "requestTimeEpoch": e.request_time_epoch,
        "requestTime": crate::context::time::RequestTime::from_epoch_ms(e.request_time_epoch).as_str(),
        "identity": { "sourceIp": e.source_ip, "userAgent": e.user_agent },
        "domainName": e.domain_name,
        "connectionId": e.connection_id,
        "apiId": e.api_id,
    });
    if let Value::Object(m) = &mut ctx {
        if let Some(id) = e.message_id {
            m.insert("messageId".into(), id.into());
        }
        if let Some((code, reason)) = e.disconnect {
            m.insert("disconnectStatusCode".into(), code.into());
            m.insert("disconnectReason".into(), reason.into());
        }
        if let Some(a) = e.authorizer {
            m.insert("authorizer".into(), a.clone());
        }
    }
    let mut event = Map::new();
    if e.event_type == EventType::Disconnect {
        // AWS's DISCONNECT events carry a few headers of the connection; the handshake's are
        // not kept after the upgrade, so the Host it came for stands for them.
        event.insert("headers".into(), json!({ "Host": e.domain_name }));
        event.insert(
            "multiValueHeaders".into(),
            json!({ "Host": [e.domain_name] }),
        );
    }
    if e.event_type == EventType::Connect {
        let mut headers = Map::new();
        let mut multi = Map::new();
        for (k, v) in e.headers {
            match headers.get_mut(k) {
                Some(Value::String(s)) => {
                    s.push(',');
                    s.push_str(v);
                }
                _ => {
                    headers.insert(k.clone(), v.clone().into());
                }
            }
            if let Value::Array(a) = multi.entry(k.clone()).or_insert_with(|| json!([])) {
                a.push(v.clone().into());
            }
        }
        event.insert("headers".into(), headers.into());
        event.insert("multiValueHeaders".into(), multi.into());
        if !e.query.is_empty() {
            let mut q = Map::new();
            let mut mq = Map::new();
            for (k, v) in e.query {
                q.insert(k.clone(), v.clone().into());
                if let Value::Array(a) = mq.entry(k.clone()).or_insert_with(|| json!([])) {
                    a.push(v.clone().into());
                }
            }
            event.insert("queryStringParameters".into(), q.into());
            event.insert("multiValueQueryStringParameters".into(), mq.into());
        }
    }
    event.insert("requestContext".into(), ctx);
    match e.body {
        Some((b, false)) => {
            event.insert(
                "body".into(),
                String::from_utf8_lossy(b).into_owned().into(),
            );
            event.insert("isBase64Encoded".into(), false.into());
        }
        Some((b, true)) => {
            let s = base64::engine::general_purpose::STANDARD.encode(b);
            event.insert("body".into(), s.into());
            event.insert("isBase64Encoded".into(), true.into());
        }
        None => {
            event.insert("isBase64Encoded".into(), false.into());
        }
    }
    serde_json::to_vec(&Value::Object(event)).unwrap_or_default()
}

/// A function's answer to a WebSocket event, as [`parse_answer`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionAnswer {
    /// `statusCode` (200 when absent).
    pub status: u16,
    /// `body`: what a two-way route sends back.
    pub body: Option<Vec<u8>>,
    /// The `Sec-WebSocket-Protocol` of the answer's `headers` (or the first of its
    /// `multiValueHeaders`), any case: the subprotocol a `$connect` function chose (AWS "Set
    /// up a `$connect` route that requires a WebSocket subprotocol").
    pub subprotocol: Option<String>,
}

/// A function's answer to a WebSocket event: `{statusCode, body, headers}` (all optional; a
/// status defaults to 200). `body` is what a two-way route sends back; a non-string body is
/// sent as its JSON text. An answer that is not a JSON object is a body by itself (as AWS
/// passes a bare string or number through).
pub fn parse_answer(payload: &[u8]) -> Result<FunctionAnswer, &'static str> {
    let v: Value = serde_json::from_slice(payload).map_err(|_| "not JSON")?;
    let Value::Object(m) = v else {
        return Ok(FunctionAnswer {
            status: 200,
            body: match v {
                Value::Null => None,
                Value::String(s) => Some(s.into_bytes()),
                other => Some(other.to_string().into_bytes()),
            },
            subprotocol: None,
        });
    };
    let status = match m.get("statusCode") {
        None => 200,
        Some(s) => s
            .as_u64()
            .filter(|s| (100..=599).contains(s))
            .ok_or("statusCode is not a status")? as u16,
    };
    let body = match m.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if m.get("isBase64Encoded") == Some(&Value::Bool(true)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| "body is not base64")?,
        ),
        Some(Value::String(s)) => Some(s.clone().into_bytes()),
        Some(other) => Some(other.to_string().into_bytes()),
    };
    let header = |field: &str| {
        m.get(field)?
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, v)| v)
    };
    let subprotocol = match header("headers") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => match header("multiValueHeaders") {
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        },
    };
    Ok(FunctionAnswer {
        status,
        body,
        subprotocol,
    })
}
