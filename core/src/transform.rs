//! Request and response transformation of REST API non-proxy integrations (AWS's HTTP custom
//! integration, `type: http`, and the mock integration with templates): request mapping
//! templates chosen by content type with AWS's passthrough behaviours, and integration
//! responses chosen by a regular expression on the backend's status code, each with its
//! status, response templates and header mappings.
//!
//! Sources: AWS API Gateway Developer Guide, "Set up data transformations for REST APIs",
//! "Integration passthrough behaviors", "Set up an integration response" and "Set up request
//! and response data mappings" (`method.response.header.X` <- `integration.response.header.Y`,
//! `'static'`, `integration.response.body.JSONPath`).

use std::collections::BTreeMap;

use crate::{
    jsonpath::{JsonPath, Selection},
    template::MappingTemplate,
};

/// What to do with a request body whose content type has no request template (AWS
/// `passthroughBehavior`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassthroughBehavior {
    /// Pass the body through unchanged when no template matches (AWS's default).
    #[default]
    #[serde(alias = "WHEN_NO_MATCH")]
    WhenNoMatch,
    /// Pass through only when the integration has no templates at all; otherwise 415.
    #[serde(alias = "WHEN_NO_TEMPLATES")]
    WhenNoTemplates,
    /// Never pass through: a content type with no template gets 415.
    #[serde(alias = "NEVER")]
    Never,
}

/// The content type a request without one is taken to have (AWS: "API Gateway assumes
/// application/json").
pub const DEFAULT_CONTENT_TYPE: &str = "application/json";

/// Templates by content type (lower case, no parameters), in config order.
#[derive(Debug, Default)]
pub struct Templates(Vec<(Box<str>, MappingTemplate)>);

impl Templates {
    /// Compiles `by_type` (content type -> template text). Errors: (content type, reason).
    pub fn compile(by_type: &BTreeMap<String, String>) -> Result<Templates, Vec<(String, String)>> {
        let mut out = Vec::with_capacity(by_type.len());
        let mut errors = Vec::new();
        for (ct, src) in by_type {
            let key = media_type(ct.as_bytes());
            if key.is_empty() || !key.contains('/') {
                errors.push((
                    ct.clone(),
                    format!("{ct:?} is not a content type (type/subtype)"),
                ));
                continue;
            }
            match MappingTemplate::compile(src) {
                Ok(t) => out.push((key.into(), t)),
                Err(e) => errors.push((ct.clone(), format!("the template does not compile: {e}"))),
            }
        }
        if errors.is_empty() {
            Ok(Templates(out))
        } else {
            Err(errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The template for `content_type` (exact media type, ignoring case and parameters).
    pub fn get(&self, content_type: &str) -> Option<(&str, &MappingTemplate)> {
        self.0
            .iter()
            .find(|(k, _)| **k == *content_type)
            .map(|(k, t)| (&**k, t))
    }

    /// The response template for a client's `Accept` header: its media types in order (no
    /// wildcard matching but `*/*`), then `application/json`, then the first template.
    pub fn for_accept(&self, accept: Option<&[u8]>) -> Option<(&str, &MappingTemplate)> {
        if let Some(accept) = accept {
            for part in accept.split(|&b| b == b',') {
                let mt = media_type(part);
                if let Some(found) = self.get(&mt) {
                    return Some(found);
                }
            }
        }
        self.get(DEFAULT_CONTENT_TYPE)
            .or_else(|| self.0.first().map(|(k, t)| (&**k, t)))
    }
}

/// A media type without parameters, lower case (`Application/JSON; charset=utf-8` ->
/// `application/json`).
pub fn media_type(value: &[u8]) -> String {
    let end = value.iter().position(|&b| b == b';').unwrap_or(value.len());
    String::from_utf8_lossy(&value[..end])
        .trim()
        .to_ascii_lowercase()
}

/// Where a mapped response header's value comes from (AWS REST `responseParameters`).
#[derive(Debug, Clone)]
pub enum HeaderValue {
    /// `'text'`.
    Static(Box<str>),
    /// `integration.response.header.NAME`.
    Header(Box<str>),
    /// `integration.response.body` or `integration.response.body.PATH`.
    Body(Option<JsonPath>),
}

/// One integration response: when it applies and what it sends.
#[derive(Debug)]
pub struct IntegrationResponse {
    /// The status sent to the client (AWS `statusCode` of the method response).
    pub status: u16,
    /// Matched against the whole backend status code; `None`: the default response.
    pattern: Option<regex::Regex>,
    pub templates: Templates,
    /// Response headers set, by name as written.
    pub headers: Vec<(Box<str>, HeaderValue)>,
}

/// How a request template is chosen.
#[derive(Debug)]
pub enum RequestBody<'a> {
    /// Render this template; the request's content type becomes its key.
    Template(&'a str, &'a MappingTemplate),
    /// Send the body as it came.
    Passthrough,
    /// 415 Unsupported Media Type.
    Unsupported,
}

/// A non-proxy integration's transformation.
#[derive(Debug, Default)]
pub struct Transform {
    pub request_templates: Templates,
    pub passthrough: PassthroughBehavior,
    /// Patterned responses in config order, the default one (if any) last.
    responses: Vec<IntegrationResponse>,
}

/// A config error: the field below the integration (`request_templates["application/json"]`,
/// `integration_responses[1].selection_pattern`) and why.
pub type FieldError = (String, String);

/// An integration response as configured (checked by [`Transform::compile`]).
pub struct ResponseSpec<'a> {
    pub status: u16,
    pub selection_pattern: Option<&'a str>,
    pub templates: &'a BTreeMap<String, String>,
    /// `method.response.header.NAME` (or `NAME`) -> `'static'`,
    /// `integration.response.header.NAME`, `integration.response.body[.PATH]`.
    pub parameters: &'a BTreeMap<String, String>,
}

impl Transform {
    /// Compiles request templates and integration responses. Errors name the field below the
    /// integration and the reason: a template that does not compile, a selection pattern that
    /// is not a regular expression, two default responses, a status outside 100-599, a header
    /// mapping it cannot read.
    pub fn compile(
        request_templates: &BTreeMap<String, String>,
        passthrough: PassthroughBehavior,
        responses: &[ResponseSpec<'_>],
    ) -> Result<Transform, Vec<FieldError>> {
        let mut errors = Vec::new();
        let templates = Templates::compile(request_templates).unwrap_or_else(|es| {
            for (ct, why) in es {
                errors.push((format!("request_templates[{ct:?}]"), why));
            }
            Templates::default()
        });
        let mut patterned = Vec::new();
        let mut default = None;
        for (i, r) in responses.iter().enumerate() {
            let at = format!("integration_responses[{i}]");
            if !(200..=599).contains(&r.status) {
                errors.push((
                    format!("{at}.status"),
                    format!("{}: expected 200 to 599", r.status),
                ));
            }
            let mut usable = true;
            let pattern = match r.selection_pattern.filter(|p| !p.is_empty()) {
                None => None,
                Some(p) => match regex::Regex::new(p)
                    .and_then(|_| regex::Regex::new(&format!("^(?:{p})$")))
                {
                    Ok(re) => Some(re),
                    Err(e) => {
                        errors.push((
                            format!("{at}.selection_pattern"),
                            format!("not a regular expression: {e}"),
                        ));
                        usable = false;
                        None
                    }
                },
            };
            let templates = Templates::compile(r.templates).unwrap_or_else(|es| {
                for (ct, why) in es {
                    errors.push((format!("{at}.response_templates[{ct:?}]"), why));
                }
                Templates::default()
            });
            let mut headers = Vec::with_capacity(r.parameters.len());
            for (k, v) in r.parameters {
                let name = k.strip_prefix("method.response.header.").unwrap_or(k);
                if name.is_empty() || !name.bytes().all(crate::h1::head::is_tchar) {
                    errors.push((
                        format!("{at}.response_parameters[{k:?}]"),
                        "a key is method.response.header.NAME".into(),
                    ));
                    continue;
                }
                if let Some(r) = crate::mapping::reserved(name)
                    && !r.starts_with("access-control-")
                {
                    errors.push((
                        format!("{at}.response_parameters[{k:?}]"),
                        format!("{r:?} is set by the gateway itself"),
                    ));
                    continue;
                }
                match header_value(v) {
                    Ok(hv) => headers.push((name.into(), hv)),
                    Err(why) => errors.push((format!("{at}.response_parameters[{k:?}]"), why)),
                }
            }
            let response = IntegrationResponse {
                status: r.status,
                pattern,
                templates,
                headers,
            };
            if !usable {
                continue;
            }
            if response.pattern.is_some() {
                patterned.push(response);
            } else if default.is_some() {
                errors.push((
                    format!("{at}.selection_pattern"),
                    "a second default response: only one integration response may omit \
                     selection_pattern"
                        .into(),
                ));
            } else {
                default = Some(response);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        patterned.extend(default);
        Ok(Transform {
            request_templates: templates,
            passthrough,
            responses: patterned,
        })
    }

    /// How a request with `content_type` (`None`: none sent, taken as `application/json`)
    /// is sent (AWS "Integration passthrough behaviors").
    pub fn request_body(&self, content_type: Option<&[u8]>) -> RequestBody<'_> {
        let ct = content_type.map_or_else(|| DEFAULT_CONTENT_TYPE.to_owned(), media_type);
        if let Some((k, t)) = self.request_templates.get(&ct) {
            return RequestBody::Template(k, t);
        }
        match self.passthrough {
            PassthroughBehavior::WhenNoMatch => RequestBody::Passthrough,
            PassthroughBehavior::WhenNoTemplates if self.request_templates.is_empty() => {
                RequestBody::Passthrough
            }
            _ => RequestBody::Unsupported,
        }
    }

    /// Whether integration responses are configured (without any, the backend's status,
    /// content type and body pass through).
    pub fn has_responses(&self) -> bool {
        !self.responses.is_empty()
    }

    /// The integration response for backend status `status`: the first whose pattern matches
    /// its decimal text, else the default one.
    pub fn response_for(&self, status: u16) -> Option<&IntegrationResponse> {
        let mut text = [0u8; 3];
        let s = status.min(999);
        text[0] = b'0' + (s / 100) as u8;
        text[1] = b'0' + (s / 10 % 10) as u8;
        text[2] = b'0' + (s % 10) as u8;
        let text = std::str::from_utf8(&text).unwrap_or("000");
        self.responses.iter().find(|r| match &r.pattern {
            Some(p) => p.is_match(text),
            None => true,
        })
    }
}

/// `'text'`, `integration.response.header.NAME`, `integration.response.body[.PATH]`.
fn header_value(v: &str) -> Result<HeaderValue, String> {
    if let Some(s) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        if s.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err("a header value cannot hold control characters".into());
        }
        return Ok(HeaderValue::Static(s.into()));
    }
    if let Some(n) = v.strip_prefix("integration.response.header.") {
        if n.is_empty() {
            return Err("empty header name".into());
        }
        return Ok(HeaderValue::Header(n.into()));
    }
    if v == "integration.response.body" {
        return Ok(HeaderValue::Body(None));
    }
    if let Some(p) = v.strip_prefix("integration.response.body.") {
        let path =
            JsonPath::parse(&format!("$.{p}")).map_err(|e| format!("not a JSONPath: {e}"))?;
        return Ok(HeaderValue::Body(Some(path)));
    }
    Err(format!(
        "{v:?}: expected 'static text' (in single quotes), integration.response.header.NAME or \
         integration.response.body[.JSONPATH]"
    ))
}

impl HeaderValue {
    /// This value for a response with headers `header` (by name, any case) and `body`.
    pub fn resolve(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &[u8],
        json: impl Fn() -> Option<serde_json::Value>,
    ) -> Option<String> {
        match self {
            HeaderValue::Static(s) => Some(s.to_string()),
            HeaderValue::Header(n) => header(n),
            HeaderValue::Body(None) => Some(String::from_utf8_lossy(body).into_owned()),
            HeaderValue::Body(Some(path)) => {
                let json = json()?;
                let v = match path.select_aws(&json) {
                    Selection::Nothing => return None,
                    other => other.to_value()?,
                };
                Some(match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                })
            }
        }
        .map(|v| {
            let mut out = Vec::with_capacity(v.len());
            crate::context::escape::write_text(
                &mut out,
                crate::context::Escape::None,
                v.as_bytes(),
            );
            String::from_utf8_lossy(&out).into_owned()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(
        status: u16,
        pattern: Option<&'a str>,
        templates: &'a BTreeMap<String, String>,
        parameters: &'a BTreeMap<String, String>,
    ) -> ResponseSpec<'a> {
        ResponseSpec {
            status,
            selection_pattern: pattern,
            templates,
            parameters,
        }
    }

    #[test]
    fn passthrough_behaviours() {
        let none = BTreeMap::new();
        let json = BTreeMap::from([("application/json".to_owned(), "{}".to_owned())]);
        let t = |templates: &BTreeMap<String, String>, p| {
            Transform::compile(templates, p, &[]).unwrap()
        };
        let is = |r: RequestBody, want: &str| {
            let got = match r {
                RequestBody::Template(k, _) => k.to_owned(),
                RequestBody::Passthrough => "pass".into(),
                RequestBody::Unsupported => "415".into(),
            };
            assert_eq!(got, want);
        };
        let xml = Some(&b"text/xml"[..]);
        let json_ct = Some(&b"Application/JSON; charset=utf-8"[..]);
        is(
            t(&json, PassthroughBehavior::WhenNoMatch).request_body(xml),
            "pass",
        );
        is(
            t(&json, PassthroughBehavior::WhenNoMatch).request_body(json_ct),
            "application/json",
        );
        is(
            t(&json, PassthroughBehavior::WhenNoMatch).request_body(None),
            "application/json",
        );
        is(
            t(&json, PassthroughBehavior::WhenNoTemplates).request_body(xml),
            "415",
        );
        is(
            t(&none, PassthroughBehavior::WhenNoTemplates).request_body(xml),
            "pass",
        );
        is(
            t(&json, PassthroughBehavior::Never).request_body(xml),
            "415",
        );
        is(
            t(&none, PassthroughBehavior::Never).request_body(None),
            "415",
        );
    }

    #[test]
    fn responses_are_selected_by_pattern_then_default() {
        let none = BTreeMap::new();
        let specs = [
            spec(200, None, &none, &none),
            spec(400, Some("4\\d{2}"), &none, &none),
            spec(502, Some("5.*"), &none, &none),
            spec(404, Some("404"), &none, &none),
        ];
        let t = Transform::compile(&none, PassthroughBehavior::default(), &specs).unwrap();
        let status = |s| t.response_for(s).map(|r| r.status);
        assert_eq!(status(200), Some(200));
        assert_eq!(status(201), Some(200));
        assert_eq!(status(404), Some(400), "first match in config order");
        assert_eq!(status(503), Some(502));
        // The pattern matches the whole status text, as Java's String.matches.
        let t = Transform::compile(
            &none,
            PassthroughBehavior::default(),
            &[spec(400, Some("4"), &none, &none)],
        )
        .unwrap();
        assert!(t.response_for(404).is_none());
    }

    #[test]
    fn bad_responses_are_refused_with_their_fields() {
        let none = BTreeMap::new();
        let bad_template = BTreeMap::from([("application/json".to_owned(), "#if($x)".to_owned())]);
        let params = BTreeMap::from([
            (
                "method.response.header.X-Up".to_owned(),
                "integration.response.header.x".to_owned(),
            ),
            (
                "method.response.header.Content-Length".to_owned(),
                "'1'".to_owned(),
            ),
            (
                "method.response.header.X-Bad".to_owned(),
                "nonsense".to_owned(),
            ),
        ]);
        let specs = [
            spec(200, None, &bad_template, &params),
            spec(700, Some("(unclosed"), &none, &none),
            spec(500, None, &none, &none),
            spec(501, None, &none, &none),
        ];
        let errs =
            Transform::compile(&bad_template, PassthroughBehavior::default(), &specs).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "request_templates[\"application/json\"]",
                "integration_responses[0].response_templates[\"application/json\"]",
                "integration_responses[0].response_parameters[\"method.response.header.Content-Length\"]",
                "integration_responses[0].response_parameters[\"method.response.header.X-Bad\"]",
                "integration_responses[1].status",
                "integration_responses[1].selection_pattern",
                "integration_responses[2].selection_pattern",
                "integration_responses[3].selection_pattern",
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn response_templates_follow_accept() {
        let templates = BTreeMap::from([
            ("application/xml".to_owned(), "<a/>".to_owned()),
            ("application/json".to_owned(), "{}".to_owned()),
        ]);
        let t = Templates::compile(&templates).unwrap();
        assert_eq!(
            t.for_accept(Some(b"text/html, application/xml;q=0.9"))
                .unwrap()
                .0,
            "application/xml"
        );
        assert_eq!(
            t.for_accept(Some(b"text/html")).unwrap().0,
            "application/json"
        );
        assert_eq!(t.for_accept(None).unwrap().0, "application/json");
    }

    #[test]
    fn header_values() {
        let body = br#"{"a":{"b":"c"},"n":5}"#;
        let json = || serde_json::from_slice(body).ok();
        let header = |n: &str| (n == "x-up").then(|| "up".to_owned());
        let v = |s: &str| header_value(s).unwrap().resolve(header, body, json);
        assert_eq!(v("'static'").as_deref(), Some("static"));
        assert_eq!(v("integration.response.header.x-up").as_deref(), Some("up"));
        assert_eq!(v("integration.response.header.nope"), None);
        assert_eq!(v("integration.response.body.a.b").as_deref(), Some("c"));
        assert_eq!(v("integration.response.body.n").as_deref(), Some("5"));
        assert_eq!(
            v("integration.response.body.a").as_deref(),
            Some(r#"{"b":"c"}"#)
        );
    }
}
