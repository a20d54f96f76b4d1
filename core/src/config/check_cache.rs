//! The cache part of a config check: `stages[].cache` and `routes[].cache`, refused with
//! their field paths when out of range or not meaningful.

use super::{check::Checker, file::RouteFile};
use crate::cache::{
    KeyParam, ParamAt, RouteCache, StageCache, StageCacheFile,
    settings::{DEFAULT_CAPACITY_BYTES, DEFAULT_MAX_ENTRY_BYTES, DEFAULT_TTL_SECONDS},
};

impl Checker {
    /// A stage's cache, `None` when it is not enabled. `sat`: the stage's field path.
    pub(super) fn stage_cache(
        &mut self,
        sat: &str,
        f: Option<&StageCacheFile>,
    ) -> Option<StageCache> {
        let f = f?;
        let at = format!("{sat}.cache");
        let capacity_bytes = f.capacity_bytes.unwrap_or(DEFAULT_CAPACITY_BYTES);
        self.range(&format!("{at}.capacity_bytes"), capacity_bytes, 0, u64::MAX);
        let ttl = f.ttl_seconds.unwrap_or(u64::from(DEFAULT_TTL_SECONDS));
        self.range(&format!("{at}.ttl_seconds"), ttl, 0, 3600);
        let max_entry_bytes = f.max_entry_bytes.unwrap_or(DEFAULT_MAX_ENTRY_BYTES);
        self.range(
            &format!("{at}.max_entry_bytes"),
            max_entry_bytes,
            1,
            u64::MAX,
        );
        if max_entry_bytes > capacity_bytes {
            self.err(
                format!("{at}.max_entry_bytes"),
                format!(
                    "{max_entry_bytes} is more than capacity_bytes ({capacity_bytes}): no response that large could be kept"
                ),
            );
        }
        if !f.enabled {
            let set = f.capacity_bytes.is_some()
                || f.ttl_seconds.is_some()
                || f.mode.is_some()
                || f.max_entry_bytes.is_some()
                || f.require_authorization_for_cache_control.is_some()
                || f.unauthorized_cache_control.is_some();
            if set {
                self.warn(
                    &at,
                    "the stage cache is off until `enabled: true`: these settings do nothing",
                );
            }
            return None;
        }
        Some(StageCache {
            capacity_bytes,
            ttl_seconds: ttl.min(3600) as u32,
            mode: f.mode.unwrap_or_default(),
            max_entry_bytes,
            require_authorization_for_cache_control: f
                .require_authorization_for_cache_control
                .unwrap_or(true),
            unauthorized: f.unauthorized_cache_control.unwrap_or_default(),
        })
    }

    /// A route's own cache settings. `path_params`: the route key's parameters, which a
    /// `path.NAME` key parameter must be one of.
    pub(super) fn route_cache(
        &mut self,
        rat: &str,
        route: &RouteFile,
        path_params: &[&str],
    ) -> Option<RouteCache> {
        let f = route.cache.as_ref()?;
        let at = format!("{rat}.cache");
        let ttl_seconds = f.ttl_seconds.map(|t| {
            self.range(&format!("{at}.ttl_seconds"), t, 0, 3600);
            t.min(3600) as u32
        });
        let mut key_parameters: Vec<KeyParam> = Vec::with_capacity(f.key_parameters.len());
        for (i, p) in f.key_parameters.iter().enumerate() {
            let pat = format!("{at}.key_parameters[{i}]");
            match KeyParam::parse(p) {
                Ok(k) if k.at == ParamAt::Path && !path_params.contains(&&*k.name) => {
                    self.err(
                        pat,
                        format!("route {:?} has no path parameter {{{}}}", route.key, k.name),
                    );
                }
                Ok(k) if key_parameters.contains(&k) => {
                    self.err(pat, format!("{p:?} is listed twice"));
                }
                Ok(k) => key_parameters.push(k),
                Err(e) => self.err(pat, e),
            }
        }
        Some(RouteCache {
            enabled: f.enabled,
            ttl_seconds,
            key_parameters,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cache::{CacheMode, ParamAt, UnauthorizedStrategy};
    use crate::config::load;

    const BASE: &str = r#"
apis:
  - name: shop
    integrations:
      pets: { type: mock, status: 200, body: "[]" }
    routes:
      - key: GET /pets/{id}
        integration: pets
        cache: ROUTE
    stages:
      - name: prod
        cache: STAGE
"#;

    fn doc(stage: &str, route: &str) -> String {
        BASE.replace("STAGE", stage).replace("ROUTE", route)
    }

    fn errors(text: &str) -> Vec<String> {
        match load(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn defaults_are_aws_ones() {
        let (_, c) = load(&doc("{ enabled: true }", "{}")).unwrap();
        let s = c.apis[0].stages[0].cache.clone().unwrap();
        assert_eq!(s.capacity_bytes, 64 << 20);
        assert_eq!(s.ttl_seconds, 300);
        assert_eq!(s.mode, CacheMode::Aws);
        assert_eq!(s.max_entry_bytes, 1 << 20);
        assert!(s.require_authorization_for_cache_control);
        assert_eq!(
            s.unauthorized,
            UnauthorizedStrategy::SucceedWithResponseHeader
        );
        let (_, c) = load(&doc("{ enabled: false }", "{}")).unwrap();
        assert!(c.apis[0].stages[0].cache.is_none());
    }

    #[test]
    fn every_setting_reads_in_both_spellings() {
        let (_, c) = load(&doc(
            "{ enabled: true, capacity_bytes: 1048576, ttl_seconds: 0, mode: http, max_entry_bytes: 1000, require_authorization_for_cache_control: false, unauthorized_cache_control: FAIL_WITH_403 }",
            "{ enabled: true, ttl_seconds: 60, key_parameters: [method.request.querystring.type, header.Accept, path.id] }",
        ))
        .unwrap();
        let s = c.apis[0].stages[0].cache.clone().unwrap();
        assert_eq!(
            (s.capacity_bytes, s.ttl_seconds, s.mode),
            (1 << 20, 0, CacheMode::Http)
        );
        assert_eq!(s.unauthorized, UnauthorizedStrategy::FailWith403);
        assert!(!s.require_authorization_for_cache_control);
        let (_, lower) = load(&doc(
            "{ enabled: true, unauthorized_cache_control: fail_with_403 }",
            "{}",
        ))
        .unwrap();
        let s = lower.apis[0].stages[0].cache.clone().unwrap();
        assert_eq!(s.unauthorized, UnauthorizedStrategy::FailWith403);
        let r = c.apis[0].routes[0].cache.clone().unwrap();
        assert_eq!((r.enabled, r.ttl_seconds), (Some(true), Some(60)));
        let at: Vec<_> = r.key_parameters.iter().map(|k| (k.at, &*k.name)).collect();
        assert_eq!(
            at,
            [
                (ParamAt::Query, "type"),
                (ParamAt::Header, "accept"),
                (ParamAt::Path, "id")
            ]
        );
    }

    #[test]
    fn bad_values_are_refused_with_their_paths() {
        let e = errors(&doc(
            "{ enabled: true, ttl_seconds: 3601, capacity_bytes: 10, mode: lru, unauthorized_cache_control: nope }",
            "{}",
        ));
        assert!(
            e.iter()
                .any(|e| e.starts_with("apis[0].stages[0].cache.mode")),
            "{e:?}"
        );
        let e = errors(&doc(
            "{ enabled: true, ttl_seconds: 3601, capacity_bytes: 10 }",
            "{}",
        ));
        assert!(
            e.iter().any(|e| e.starts_with(
                "apis[0].stages[0].cache.ttl_seconds: must be a whole number of seconds, 0 to 3600"
            )),
            "{e:?}"
        );
        assert!(
            e.iter().any(|e| e.starts_with(
                "apis[0].stages[0].cache.capacity_bytes: must be a whole number of bytes"
            )),
            "{e:?}"
        );
        let e = errors(&doc(
            "{ enabled: true, capacity_bytes: 65536, max_entry_bytes: 1048576 }",
            "{}",
        ));
        assert!(
            e.iter()
                .any(|e| e.starts_with("apis[0].stages[0].cache.max_entry_bytes")
                    && e.contains("more than capacity_bytes")),
            "{e:?}"
        );
        let e = errors(&doc("{ enabled: true, ttl_seconds: -1 }", "{}"));
        assert!(
            e.iter()
                .any(|e| e.contains("ttl_seconds") && e.contains("0 to 3600")),
            "{e:?}"
        );
        let e = errors(&doc(
            "{ enabled: true }",
            "{ ttl_seconds: 7200, key_parameters: [body.x, path.nope, header.a, header.A] }",
        ));
        for (path, needle) in [
            ("apis[0].routes[0].cache.ttl_seconds", "0 to 3600"),
            (
                "apis[0].routes[0].cache.key_parameters[0]",
                "not a parameter location",
            ),
            (
                "apis[0].routes[0].cache.key_parameters[1]",
                "no path parameter {nope}",
            ),
            ("apis[0].routes[0].cache.key_parameters[3]", "listed twice"),
        ] {
            assert!(
                e.iter().any(|e| e.starts_with(path) && e.contains(needle)),
                "{path}: {e:?}"
            );
        }
        let e = errors(&doc("{ enabled: true, size: 5 }", "{}"));
        assert!(
            e.iter().any(|e| e.contains("unknown field `size`")),
            "{e:?}"
        );
    }
}
