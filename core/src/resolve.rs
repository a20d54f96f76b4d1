//! A request's Host, method and path -> the API, stage and route that serve it.
//!
//! Host first: a custom domain fixes API and stage (and strips its base path). Otherwise the
//! default API serves, and the first path segment names the stage (`/prod/users`), or the
//! `$default` stage serves at the root. Then the stage's route table picks the route.

use crate::{
    config::{Api, Config, Route, Stage},
    route::Params,
};

/// What serves a request.
pub struct Resolved<'c, 'p> {
    pub api_index: usize,
    pub api: &'c Api,
    pub stage_index: usize,
    pub stage: &'c Stage,
    pub route_index: usize,
    pub route: &'c Route,
    pub params: Params<'c, 'p>,
    /// The path below the stage prefix or domain base path (what an integration URI without a
    /// path forwards). Empty means `/`.
    pub path: &'p [u8],
}

impl Config {
    /// Finds the API and stage a request goes to, and the path below the stage prefix or the
    /// domain's base path: what a request that then matches no route is still answered and
    /// logged under. `None`: no API or stage serves this Host and path.
    #[inline]
    pub fn locate<'p>(&self, host: &[u8], path: &'p [u8]) -> Option<(usize, usize, &'p [u8])> {
        match self.domains.lookup(host) {
            Some(domain) => {
                let (m, rest) = domain.map(path)?;
                Some((m.api as usize, m.stage as usize, rest))
            }
            None => {
                let api_index = self.default_api?;
                let (stage, rest) = self.apis[api_index].stage_for(path)?;
                Some((api_index, stage, rest))
            }
        }
    }

    /// Finds the route for a request. `path` is the request path without its query string.
    #[inline]
    pub fn resolve<'c, 'p>(
        &'c self,
        host: &[u8],
        method: &[u8],
        path: &'p [u8],
    ) -> Option<Resolved<'c, 'p>> {
        let (api_index, stage_index, rest) = self.locate(host, path)?;
        let api = &self.apis[api_index];
        let found = api.table.find(method, rest)?;
        let route_index = *found.value as usize;
        Some(Resolved {
            api_index,
            api,
            stage_index,
            stage: &api.stages[stage_index],
            route_index,
            route: &api.routes[route_index],
            params: found.params,
            path: rest,
        })
    }
}

impl Api {
    /// The stage named by the first path segment, else `$default`; with the path below it.
    #[inline]
    fn stage_for<'p>(&self, path: &'p [u8]) -> Option<(usize, &'p [u8])> {
        if !self.stage_by_name.is_empty() {
            let below = path.strip_prefix(b"/").unwrap_or(path);
            let end = memchr::memchr(b'/', below).unwrap_or(below.len());
            if let Some(&s) = self.stage_by_name.get(&below[..end]) {
                return Some((s as usize, &below[end..]));
            }
        }
        self.default_stage.map(|s| (s as usize, path))
    }
}
