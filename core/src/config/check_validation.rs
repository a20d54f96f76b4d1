//! The request validation part of a config check: an API's `models` (JSON Schemas, compiled
//! here once) and each route's `request_models`, `required_parameters` and
//! `request_validator`.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    check::Checker,
    file::{ApiFile, RequestValidatorKind, RouteFile},
};
use crate::validation::{Model, ParamIn, RequestValidation, RequiredParam};

impl Checker {
    /// Compiles the API's models; a schema that does not compile is an error at its path (and
    /// `None` here, so routes naming it are not told it does not exist).
    pub(super) fn models(&mut self, at: &str, a: &ApiFile) -> BTreeMap<String, Option<Arc<Model>>> {
        let mut out = BTreeMap::new();
        for (name, m) in &a.models {
            if !super::check::is_name(name) {
                self.err(
                    format!("{at}.models.{name}"),
                    "model names use 1-128 letters, digits, '_', '-' or '.'",
                );
            }
            let model = match Model::compile(name, &m.schema) {
                Ok(model) => Some(Arc::new(model)),
                Err(e) => {
                    self.err(
                        format!("{at}.models.{name}.schema"),
                        format!("not a usable JSON Schema: {e}"),
                    );
                    None
                }
            };
            out.insert(name.clone(), model);
        }
        out
    }

    /// The route's request validation, `None` when it validates nothing.
    pub(super) fn route_validation(
        &mut self,
        rat: &str,
        route: &RouteFile,
        models: &BTreeMap<String, Option<Arc<Model>>>,
        path_params: &[&str],
    ) -> Option<Arc<RequestValidation>> {
        let mut required = Vec::with_capacity(route.required_parameters.len());
        for (i, p) in route.required_parameters.iter().enumerate() {
            let at = format!("{rat}.required_parameters[{i}]");
            match RequiredParam::parse(p) {
                Ok(r) if r.at == ParamIn::Path && !path_params.contains(&r.name.as_str()) => {
                    self.err(
                        at,
                        format!("route {:?} has no path parameter {{{}}}", route.key, r.name),
                    );
                }
                Ok(r) => required.push(r),
                Err(e) => self.err(at, e),
            }
        }
        let mut by_type = Vec::with_capacity(route.request_models.len());
        for (content_type, name) in &route.request_models {
            let at = format!("{rat}.request_models.{content_type}");
            let media_ok = content_type == "$default"
                || content_type
                    .split_once('/')
                    .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty() && !s.contains(';'));
            if !media_ok {
                self.err(
                    &at,
                    format!(
                        "{content_type:?}: expected a media type (application/json) or $default"
                    ),
                );
                continue;
            }
            match models.get(name) {
                Some(Some(m)) => by_type.push((content_type.to_ascii_lowercase(), m.clone())),
                // Its schema's own error says what is wrong.
                Some(None) => {}
                None => self.err(
                    at,
                    super::terms::unknown_name(
                        "model",
                        name,
                        "in this API's models",
                        models.keys().map(String::as_str),
                    ),
                ),
            }
        }
        let (body, params) = match route.request_validator {
            None => (true, true),
            Some(RequestValidatorKind::All) => (true, true),
            Some(RequestValidatorKind::Body) => (true, false),
            Some(RequestValidatorKind::Parameters) => (false, true),
            Some(RequestValidatorKind::None) => (false, false),
        };
        if body && route.request_validator.is_some() && route.request_models.is_empty() {
            self.warn(
                format!("{rat}.request_validator"),
                "validates bodies but the route has no request_models: nothing to check them against",
            );
        }
        let v = RequestValidation {
            required: if params { required } else { Vec::new() },
            models: if body { by_type } else { Vec::new() },
        };
        (!v.required.is_empty() || !v.models.is_empty()).then(|| Arc::new(v))
    }
}
