//! `/v1/apis/{api}/stages/{stage}/cache`: a stage cache (AWS `FlushStageCache`).
//!
//! | request | answer |
//! |---|---|
//! | `DELETE` | 202: every core empties its cache of the stage (within a tick, 50 ms, and before it serves from it again), as AWS answers a flush; 404 for an unknown API or stage, or a stage without a cache |
//! | `GET` | 200 `{api, stage, mode, capacity_bytes, ttl_seconds, entries, bytes, workers: [{worker, entries, bytes}]}` (sizes as of each core's last tick); 404 as above |

use serde_json::json;
use turnpike_core::cache::{
    CacheMode,
    settings::{DEFAULT_CAPACITY_BYTES, DEFAULT_TTL_SECONDS},
};

use super::{Request, Response, State};
use crate::plane::DataPlane;

/// The path's API and stage names (decoded), if it is a stage cache's.
pub(super) fn names(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v1/apis/")?.strip_suffix("/cache")?;
    let (api, stage) = rest.split_once("/stages/")?;
    if api.is_empty() || stage.is_empty() || api.contains('/') || stage.contains('/') {
        return None;
    }
    Some((
        crate::resources::percent_decode(api)?,
        crate::resources::percent_decode(stage)?,
    ))
}

pub(super) fn stage_cache<P: DataPlane>(st: &State<P>, req: &Request) -> Response {
    let Some((api, stage)) = names(req.path) else {
        return Response::message(404, "Not Found");
    };
    let (api, stage) = (api.as_str(), stage.as_str());
    let Some(a) = st.current.apis.iter().find(|a| a.name == api) else {
        return Response::message(404, format!("no API {api:?}"));
    };
    let Some(s) = a.stages.iter().find(|s| s.name == stage) else {
        return Response::message(404, format!("no stage {stage:?} in API {api:?}"));
    };
    let Some(cache) = s.cache.as_ref().filter(|c| c.enabled) else {
        return Response::message(404, format!("stage {stage:?} of API {api:?} has no cache"));
    };
    match req.method {
        "DELETE" => {
            st.plane.flush_stage_cache(api, stage);
            Response::json(202, &json!({ "api": api, "stage": stage, "flushed": true }))
        }
        "GET" | "HEAD" => {
            let sizes = st.plane.stage_cache_sizes(api, stage).unwrap_or_default();
            let workers: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(i, (n, b))| json!({ "worker": i, "entries": n, "bytes": b }))
                .collect();
            Response::json(
                200,
                &json!({
                    "api": api,
                    "stage": stage,
                    "mode": match cache.mode.unwrap_or_default() {
                        CacheMode::Aws => "aws",
                        CacheMode::Http => "http",
                    },
                    "capacity_bytes": cache.capacity_bytes.unwrap_or(DEFAULT_CAPACITY_BYTES),
                    "ttl_seconds": cache.ttl_seconds.unwrap_or(u64::from(DEFAULT_TTL_SECONDS)),
                    "entries": sizes.iter().map(|s| s.0).sum::<u64>(),
                    "bytes": sizes.iter().map(|s| s.1).sum::<u64>(),
                    "workers": workers,
                }),
            )
        }
        _ => Response::message(405, "Method Not Allowed"),
    }
}
