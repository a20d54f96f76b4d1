//! Checks of WebSocket APIs (`protocol: websocket`): route keys, the route selection
//! expression, two-way routes, authorizers only on `$connect` (as AWS), and the
//! `websocket:` limits. HTTP-only fields are refused on a WebSocket API and the other way
//! round.

use std::{sync::Arc, time::Duration};

use rustc_hash::FxHashMap;

use super::{
    check::Checker,
    file::{ApiFile, Protocol, RouteFile},
    model::Route,
};
use crate::{
    auth::model::{Authorizer, RouteAuth},
    websocket::{
        FrameLimits,
        api::{WebsocketApi, WebsocketFile, WebsocketSettings},
        route::SelectionExpression,
    },
};

impl Checker {
    /// One route of a WebSocket API; `None` when it is refused.
    pub(super) fn websocket_route(
        &mut self,
        rat: &str,
        route: &RouteFile,
        a: &ApiFile,
        integration: u32,
        authorizers: &[Authorizer],
    ) -> Option<Route> {
        let key = route.key.as_str();
        let before = self.errors.len();
        let builtin = matches!(key, "$connect" | "$disconnect" | "$default");
        if key.is_empty() || key.len() > 128 || (key.starts_with('$') && !builtin) {
            self.err(
                format!("{rat}.key"),
                format!(
                    "{key:?}: a WebSocket route key is $connect, $disconnect, $default or a value of 1-128 characters not starting with '$'"
                ),
            );
        } else if matches!(key, "connect" | "disconnect" | "default") {
            self.warn(
                format!("{rat}.key"),
                format!(
                    "{key:?} is a custom route key, taken by messages whose selected value is \
                     {key:?}; did you mean \"${key}\"?"
                ),
            );
        } else if key.contains(' ')
            && key.split_once(' ').is_some_and(|(m, p)| {
                p.starts_with('/') && m.bytes().all(|b| b.is_ascii_uppercase())
            })
        {
            self.warn(
                format!("{rat}.key"),
                format!(
                    "{key:?} looks like an HTTP route key; a WebSocket API's routes are chosen by \
                     the route selection expression's value (`sendmessage`), not by method and path"
                ),
            );
        }
        if !route.request_models.is_empty()
            || !route.required_parameters.is_empty()
            || route.request_validator.is_some()
            || route.api_key_required
        {
            self.err(
                rat.to_owned(),
                "request validation and API keys are not supported on WebSocket routes",
            );
        }
        if route.cache.is_some() {
            self.err(
                format!("{rat}.cache"),
                "WebSocket messages are not cached: response caching is for HTTP routes",
            );
        }
        if let Some(e) = &route.route_response_selection_expression
            && e != "$default"
        {
            self.err(
                format!("{rat}.route_response_selection_expression"),
                format!("{e:?}: WebSocket APIs support only $default (AWS)"),
            );
        }
        let auth = self.route_auth(rat, route, a, authorizers);
        if key != "$connect" && !matches!(auth, RouteAuth::None) {
            self.err(
                format!("{rat}.authorizer"),
                "a WebSocket API authorizes only its $connect route (AWS)",
            );
        }
        (self.errors.len() == before).then(|| Route {
            key: route.key.clone(),
            integration,
            api_key_required: false,
            auth,
            validation: None,
            cache: None,
        })
    }

    /// The API's WebSocket model from its checked routes (same order as `file.routes` minus
    /// refused ones; `routes` are all WebSocket routes).
    pub(super) fn websocket_api(
        &mut self,
        at: &str,
        a: &ApiFile,
        routes: &[Route],
        route_at: &[usize],
    ) -> Option<Arc<WebsocketApi>> {
        if a.protocol != Protocol::Websocket {
            if a.route_selection_expression.is_some() {
                self.err(
                    format!("{at}.route_selection_expression"),
                    "only WebSocket APIs (protocol: websocket) select routes by expression",
                );
            }
            if a.websocket.is_some() {
                self.err(
                    format!("{at}.websocket"),
                    "only for WebSocket APIs (protocol: websocket)",
                );
            }
            for (r, route) in a.routes.iter().enumerate() {
                if route.route_response_selection_expression.is_some() {
                    self.err(
                        format!("{at}.routes[{r}].route_response_selection_expression"),
                        "only WebSocket routes have route responses",
                    );
                }
            }
            return None;
        }
        if a.cors.is_some() {
            self.err(
                format!("{at}.cors"),
                "CORS does not apply to WebSocket APIs",
            );
        }
        let selection = match &a.route_selection_expression {
            None => SelectionExpression::default(),
            Some(s) => match SelectionExpression::parse(s) {
                Ok(e) => e,
                Err(e) => {
                    self.err(format!("{at}.route_selection_expression"), e);
                    SelectionExpression::default()
                }
            },
        };
        let file = a.websocket.clone().unwrap_or_default();
        let settings = self.websocket_settings(&format!("{at}.websocket"), &file);
        let mut ws = WebsocketApi {
            selection,
            connect: None,
            disconnect: None,
            default: None,
            keys: FxHashMap::default(),
            two_way: Vec::with_capacity(routes.len()),
            settings,
        };
        for (i, route) in routes.iter().enumerate() {
            let file_index = route_at.get(i).copied().unwrap_or(i);
            let rf = &a.routes[file_index];
            ws.two_way
                .push(rf.route_response_selection_expression.as_deref() == Some("$default"));
            let slot = match route.key.as_str() {
                "$connect" => &mut ws.connect,
                "$disconnect" => &mut ws.disconnect,
                "$default" => &mut ws.default,
                key => {
                    if ws.keys.insert(key.into(), i as u32).is_some() {
                        self.err(
                            format!("{at}.routes[{file_index}].key"),
                            format!("{key:?}: a second route with this key"),
                        );
                    }
                    continue;
                }
            };
            if slot.replace(i as u32).is_some() {
                self.err(
                    format!("{at}.routes[{file_index}].key"),
                    format!("{:?}: a second route with this key", route.key),
                );
            }
        }
        Some(Arc::new(ws))
    }

    fn websocket_settings(&mut self, at: &str, f: &WebsocketFile) -> WebsocketSettings {
        for (field, v) in [
            ("idle_timeout_ms", f.idle_timeout_ms),
            ("max_duration_ms", f.max_duration_ms),
            ("max_message_bytes", f.max_message_bytes),
            ("max_frame_bytes", f.max_frame_bytes),
        ] {
            self.range(&format!("{at}.{field}"), v, 0, u64::MAX);
        }
        if f.max_frame_bytes > f.max_message_bytes {
            self.err(
                format!("{at}.max_frame_bytes"),
                format!(
                    "{} is more than max_message_bytes ({}): a frame is part of a message",
                    f.max_frame_bytes, f.max_message_bytes
                ),
            );
        }
        WebsocketSettings {
            idle_timeout: Duration::from_millis(f.idle_timeout_ms),
            max_duration: Duration::from_millis(f.max_duration_ms),
            limits: FrameLimits {
                max_frame_bytes: f.max_frame_bytes as usize,
                max_message_bytes: f.max_message_bytes as usize,
            },
        }
    }
}
