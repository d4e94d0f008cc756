//! The simulator's own endpoints under `/sim/v1/`: faults, the request log,
//! health. They are never faulted or logged.

use super::App;
use super::query::parse_query;
use super::response::json_value;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::faults::{FaultConfig, Faults};
use axum::body::Bytes;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) fn serve(
    app: &App,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &Bytes,
) -> Response {
    let c = &app.cluster;
    match (method.as_str(), path.trim_end_matches('/')) {
        ("GET", "/sim/v1/faults") => get_faults(c),
        ("PUT", "/sim/v1/faults") | ("POST", "/sim/v1/faults") => set_faults(c, body),
        ("DELETE", "/sim/v1/faults") => {
            *c.faults.lock().unwrap_or_else(|e| e.into_inner()) =
                Faults::new(FaultConfig::default());
            json_value(200, &json!({}))
        }
        ("GET", "/sim/v1/requests") => requests(c, query),
        ("DELETE", "/sim/v1/requests") => {
            c.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entries
                .clear();
            json_value(200, &json!({"requests": []}))
        }
        ("GET", "/sim/v1/healthz") => json_value(200, &json!({"ok": true})),
        _ => ApiError::new(
            404,
            "NotFound",
            format!("no simulator endpoint {method} {path}"),
        )
        .into_response(),
    }
}

fn get_faults(c: &Cluster) -> Response {
    let f = c.faults.lock().unwrap_or_else(|e| e.into_inner());
    json_value(200, &serde_json::to_value(&f.cfg).unwrap_or_default())
}

/// Replaces the fault configuration (JSON or YAML) and wakes the
/// controllers, since never-ready faults change what they do.
fn set_faults(c: &Cluster, body: &Bytes) -> Response {
    let cfg: FaultConfig =
        match serde_json::from_slice(body).or_else(|_| serde_yaml::from_slice(body)) {
            Ok(c) => c,
            Err(e) => {
                return ApiError::bad_request(format!("invalid fault configuration: {e}"))
                    .into_response();
            }
        };
    *c.faults.lock().unwrap_or_else(|e| e.into_inner()) = Faults::new(cfg.clone());
    let _ = c.wake.send(String::new());
    json_value(200, &serde_json::to_value(&cfg).unwrap_or_default())
}

/// The request log, `?mutating=true` for writes only.
fn requests(c: &Cluster, query: Option<&str>) -> Response {
    let q = parse_query(query);
    let only_mutating = q.get("mutating").is_some_and(|v| v == "true");
    let log = c.log.lock().unwrap_or_else(|e| e.into_inner());
    let items: Vec<_> = log
        .entries
        .iter()
        .filter(|r| !only_mutating || r.mutating)
        .collect();
    json_value(200, &json!({"requests": items}))
}
