//! Paths that are not resources: version, health, discovery, OpenAPI.

use super::App;
use super::response::{json_value, not_found};
use crate::discovery;
use crate::error::ApiResult;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The answer for a non-resource path `p` (no trailing slash); `None` when
/// `p` may be a resource path.
pub(super) fn serve(app: &App, p: &str) -> Option<ApiResult<Response>> {
    let c = &app.cluster;
    let found = |d: Option<Value>| d.map(|d| json_value(200, &d)).ok_or_else(not_found);
    match p {
        "/version" => return Some(Ok(json_value(200, &version_json(&k8s_version(app))))),
        "/healthz" | "/readyz" | "/livez" => {
            return Some(Ok((StatusCode::OK, "ok").into_response()));
        }
        "/api" => return Some(Ok(json_value(200, &discovery::api_versions(&app.addr)))),
        "/apis" => return Some(Ok(json_value(200, &discovery::api_group_list(&c.registry)))),
        "/openapi/v3" => {
            return Some(Ok(json_value(200, &discovery::openapi_index(&c.registry))));
        }
        _ => {}
    }
    if let Some(gv) = p.strip_prefix("/openapi/v3/") {
        let segs: Vec<&str> = gv.split('/').collect();
        let (g, v) = match segs.as_slice() {
            ["api", v] => ("", *v),
            ["apis", g, v] => (*g, *v),
            _ => return Some(Err(not_found())),
        };
        return Some(found(discovery::openapi_gv(
            &c.registry,
            g,
            v,
            &k8s_version(app),
        )));
    }
    if let Some(g) = p.strip_prefix("/apis/")
        && !g.contains('/')
    {
        return Some(found(discovery::api_group(&c.registry, g)));
    }
    None
}

/// The resources of one group/version (`/api/v1`, `/apis/apps/v1`).
pub(super) fn resource_list(app: &App, group: &str, version: &str) -> ApiResult<Response> {
    discovery::resource_list(&app.cluster.registry, group, version)
        .map(|d| json_value(200, &d))
        .ok_or_else(not_found)
}

/// The Kubernetes version reported: a fault may pretend another one.
fn k8s_version(app: &App) -> String {
    let f = app.cluster.faults.lock().unwrap_or_else(|e| e.into_inner());
    f.cfg
        .kubernetes_version
        .clone()
        .unwrap_or_else(|| app.cluster.version.read().expect("version lock").clone())
}

pub fn version_json(v: &str) -> Value {
    let trimmed = v.trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().unwrap_or("1");
    let minor = parts.next().unwrap_or("30");
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{trimmed}"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64"
    })
}
