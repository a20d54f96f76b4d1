//! Request validation, as AWS REST APIs' request validators do it (API Gateway developer
//! guide, "Request validation for REST APIs"): required request parameters (query strings,
//! headers, path) and a request body checked against the route's model for its content type.
//!
//! A model is a JSON Schema: draft 4 unless its `$schema` names another draft, as AWS's models
//! are draft 4. Schemas are compiled once, when a config is checked; references to other
//! documents are not fetched (no network at run time). Sans I/O: the caller hands over the
//! request's parts.

use std::sync::Arc;

/// A compiled model.
pub struct Model {
    pub name: String,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("name", &self.name).finish()
    }
}

impl Model {
    /// Compiles `schema`; the error says why it is not a usable JSON Schema.
    pub fn compile(name: &str, schema: &serde_json::Value) -> Result<Model, String> {
        let built = if schema.get("$schema").is_some() {
            jsonschema::validator_for(schema)
        } else {
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .build(schema)
        };
        built
            .map(|validator| Model {
                name: name.to_owned(),
                validator,
            })
            .map_err(|e| e.to_string())
    }

    /// The errors `instance` has against the model, each with where it is
    /// (`/items/0/price: -1 is less than the minimum of 0`); empty when it conforms.
    pub fn errors(&self, instance: &serde_json::Value) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect()
    }
}

/// Where a required parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    Query,
    Header,
    Path,
}

/// A parameter the request must carry (AWS `method.request.{querystring|header|path}.NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredParam {
    pub at: ParamIn,
    /// As written (headers are matched without regard to case).
    pub name: String,
}

impl RequiredParam {
    /// `querystring.limit`, `header.x-id`, `path.id`, with or without AWS's
    /// `method.request.` prefix.
    pub fn parse(s: &str) -> Result<RequiredParam, String> {
        let rest = s.strip_prefix("method.request.").unwrap_or(s);
        let (kind, name) = rest
            .split_once('.')
            .ok_or_else(|| format!("{s:?}: expected querystring.NAME, header.NAME or path.NAME"))?;
        let at = match kind {
            "querystring" => ParamIn::Query,
            "header" => ParamIn::Header,
            "path" => ParamIn::Path,
            _ => {
                return Err(format!(
                    "{s:?}: {kind:?} is not a parameter location (querystring, header or path)"
                ));
            }
        };
        if name.is_empty() {
            return Err(format!("{s:?}: the parameter's name is missing"));
        }
        Ok(RequiredParam {
            at,
            name: name.to_owned(),
        })
    }
}

/// A route's request validation.
#[derive(Debug, Clone)]
pub struct RequestValidation {
    /// AWS `validateRequestParameters`: these must be present (a query string or header may
    /// be empty, as AWS accepts `?limit=`).
    pub required: Vec<RequiredParam>,
    /// AWS `validateRequestBody`: the model per content type (lower-case media type, or
    /// `$default` for any other); empty when bodies are not validated.
    pub models: Vec<(String, Arc<Model>)>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// 400 `BAD_REQUEST_PARAMETERS`: the missing names (`[limit, x-id]`).
    MissingParameters(String),
    /// 415 `UNSUPPORTED_MEDIA_TYPE`: no model for the request's content type.
    UnsupportedMediaType,
    /// 400 `BAD_REQUEST_BODY`: what is wrong (`[/price: -1 is less than the minimum of 0]`),
    /// AWS's `$context.error.validationErrorString`.
    Body(String),
}

impl Invalid {
    /// `$context.error.validationErrorString`.
    pub fn validation_error_string(&self) -> String {
        match self {
            Invalid::MissingParameters(names) => {
                format!("Missing required request parameters: {names}")
            }
            Invalid::UnsupportedMediaType => "Unsupported Media Type".to_owned(),
            Invalid::Body(errors) => errors.clone(),
        }
    }
}

/// The most errors listed for one body (a large invalid document would list thousands).
const MAX_ERRORS: usize = 10;

impl RequestValidation {
    /// Whether the body must be read and checked.
    pub fn checks_body(&self) -> bool {
        !self.models.is_empty()
    }

    /// The required parameters `present` does not find, as AWS lists them.
    pub fn check_parameters(&self, present: impl Fn(ParamIn, &str) -> bool) -> Result<(), Invalid> {
        let missing: Vec<&str> = self
            .required
            .iter()
            .filter(|p| !present(p.at, &p.name))
            .map(|p| p.name.as_str())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Invalid::MissingParameters(format!(
                "[{}]",
                missing.join(", ")
            )))
        }
    }

    /// The model for a `Content-Type` (none: `application/json`, AWS's default).
    pub fn model_for(&self, content_type: Option<&[u8]>) -> Option<&Model> {
        let media = content_type
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .filter(|v| !v.is_empty())
            .unwrap_or("application/json");
        self.models
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(media))
            .or_else(|| self.models.iter().find(|(t, _)| t == "$default"))
            .map(|(_, m)| m.as_ref())
    }

    /// Checks a whole body against the model for its content type.
    pub fn check_body(&self, content_type: Option<&[u8]>, body: &[u8]) -> Result<(), Invalid> {
        if self.models.is_empty() {
            return Ok(());
        }
        let model = self
            .model_for(content_type)
            .ok_or(Invalid::UnsupportedMediaType)?;
        let instance: serde_json::Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                let what = if body.is_empty() {
                    "the body is empty".to_owned()
                } else {
                    format!("the body is not JSON: {e}")
                };
                return Err(Invalid::Body(format!("[{what}]")));
            }
        };
        let mut errors = model.errors(&instance);
        if errors.is_empty() {
            return Ok(());
        }
        let more = errors.len().saturating_sub(MAX_ERRORS);
        errors.truncate(MAX_ERRORS);
        if more > 0 {
            errors.push(format!("and {more} more"));
        }
        Err(Invalid::Body(format!("[{}]", errors.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pet() -> Arc<Model> {
        Arc::new(
            Model::compile(
                "Pet",
                &json!({
                    "type": "object",
                    "required": ["name", "price"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "price": {"type": "number", "minimum": 0, "exclusiveMinimum": true},
                        "type": {"enum": ["dog", "cat", "fish"]}
                    },
                    "additionalProperties": false
                }),
            )
            .expect("schema"),
        )
    }

    fn validation() -> RequestValidation {
        RequestValidation {
            required: vec![
                RequiredParam::parse("method.request.querystring.limit").expect("q"),
                RequiredParam::parse("header.x-id").expect("h"),
            ],
            models: vec![("application/json".into(), pet())],
        }
    }

    #[test]
    fn draft_4_by_default_and_later_drafts_by_schema() {
        // Draft 4's boolean exclusiveMinimum: 0 itself is refused.
        let v = validation();
        assert!(v.check_body(None, br#"{"name":"a","price":0}"#).is_err());
        assert!(v.check_body(None, br#"{"name":"a","price":0.5}"#).is_ok());
        // Draft 2020-12's numeric exclusiveMinimum, named by $schema.
        let later = Model::compile(
            "N",
            &json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "exclusiveMinimum": 1}),
        )
        .expect("2020-12");
        assert!(later.errors(&json!(1)).len() == 1 && later.errors(&json!(2)).is_empty());
        assert!(Model::compile("bad", &json!({"type": "nonsense"})).is_err());
    }

    #[test]
    fn bodies_are_checked_against_the_model_for_their_content_type() {
        let v = validation();
        assert_eq!(
            v.check_body(
                Some(b"application/json; charset=utf-8"),
                br#"{"name":"Rex","price":9.5,"type":"dog"}"#
            ),
            Ok(())
        );
        let Err(Invalid::Body(e)) = v.check_body(
            Some(b"Application/JSON"),
            br#"{"price":-1,"type":"cow","x":1}"#,
        ) else {
            panic!("invalid")
        };
        assert!(e.starts_with('[') && e.ends_with(']'), "{e}");
        for needle in ["name", "/price", "/type", "x"] {
            assert!(e.contains(needle), "{needle} in {e}");
        }
        assert!(
            matches!(v.check_body(None, b"not json"), Err(Invalid::Body(e)) if e.contains("not JSON"))
        );
        assert!(matches!(v.check_body(None, b""), Err(Invalid::Body(e)) if e.contains("empty")));
        assert_eq!(
            v.check_body(Some(b"text/plain"), b"hello"),
            Err(Invalid::UnsupportedMediaType)
        );
        let mut any = validation();
        any.models.push(("$default".into(), pet()));
        assert!(matches!(
            any.check_body(Some(b"text/plain"), b"{}"),
            Err(Invalid::Body(_))
        ));
    }

    #[test]
    fn missing_parameters_are_listed_as_aws_lists_them() {
        let v = validation();
        let none = v.check_parameters(|_, _| false);
        assert_eq!(
            none,
            Err(Invalid::MissingParameters("[limit, x-id]".into()))
        );
        assert_eq!(
            none.expect_err("missing").validation_error_string(),
            "Missing required request parameters: [limit, x-id]"
        );
        assert_eq!(
            v.check_parameters(|at, n| at == ParamIn::Query && n == "limit"),
            Err(Invalid::MissingParameters("[x-id]".into()))
        );
        assert_eq!(v.check_parameters(|_, _| true), Ok(()));
        assert!(RequiredParam::parse("cookie.a").is_err());
        assert!(RequiredParam::parse("querystring.").is_err());
        assert_eq!(
            RequiredParam::parse("path.id").expect("path").at,
            ParamIn::Path
        );
    }

    #[test]
    fn a_huge_invalid_body_lists_a_bounded_number_of_errors() {
        let m = Arc::new(
            Model::compile(
                "Ints",
                &json!({"type": "array", "items": {"type": "integer"}}),
            )
            .expect("schema"),
        );
        let v = RequestValidation {
            required: vec![],
            models: vec![("application/json".into(), m)],
        };
        let body = serde_json::to_vec(&vec!["x"; 500]).expect("json");
        let Err(Invalid::Body(e)) = v.check_body(None, &body) else {
            panic!()
        };
        assert!(e.contains("and 490 more"), "{e}");
    }
}
