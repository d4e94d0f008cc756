//! Subresources with their own handlers: `pods/log` and the `scale` of
//! Deployments and ReplicaSets (`status` goes through the ordinary verbs).

use super::body::decode_body;
use super::request::{Request, ResourceRequest};
use super::response::json_value;
use crate::cluster::{Cluster, Patch, PatchType, WriteOpts};
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) fn is_pod_log(r: &ResourceRequest) -> bool {
    r.sub() == Some("log")
        && r.rt.group.is_empty()
        && r.rt.plural == "pods"
        && r.req.method == Method::GET
}

pub(super) fn is_scale(r: &ResourceRequest) -> bool {
    r.sub() == Some("scale") && scalable(&r.rt)
}

fn scalable(rt: &ResourceType) -> bool {
    rt.group == "apps" && (rt.plural == "deployments" || rt.plural == "replicasets")
}

/// A one-line log: pods run no containers here.
pub(super) fn pod_log(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let pod = c.get(&r.rt, r.ns(), r.name())?;
    let container = r.query().get("container").cloned().unwrap_or_else(|| {
        pod.value
            .pointer("/spec/containers/0/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    });
    let text = format!(
        "{} simulated log of container {container} in pod {}/{}\n",
        crate::util::now_rfc3339(),
        pod.namespace(),
        pod.name()
    );
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn scale_json(o: &Value) -> Value {
    let sel = o
        .pointer("/spec/selector")
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": o.pointer("/metadata/name"),
            "namespace": o.pointer("/metadata/namespace"),
            "uid": o.pointer("/metadata/uid"),
            "resourceVersion": o.pointer("/metadata/resourceVersion"),
            "creationTimestamp": o.pointer("/metadata/creationTimestamp"),
        },
        "spec": {"replicas": o.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {"replicas": o.pointer("/status/replicas").cloned().unwrap_or(json!(0)), "selector": sel},
    })
}

/// The `/scale` subresource: reads the object as a Scale, writes
/// `spec.replicas` back as a merge patch.
pub(super) fn scale(c: &Cluster, r: &ResourceRequest) -> ApiResult<Response> {
    let current = scale_json(&c.get(&r.rt, r.ns(), r.name())?.full());
    if r.req.method == Method::GET {
        return Ok(json_value(200, &current));
    }
    let wanted = requested_scale(r.req, current)?;
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::invalid("Scale", r.name(), "spec.replicas: Required value"))?;
    let wo = WriteOpts {
        dry_run: r.req.dry_run(),
        manager: r
            .query()
            .get("fieldManager")
            .cloned()
            .unwrap_or_else(|| "kubectl".into()),
        force: false,
        seed: false,
    };
    let patch = json!({"spec": {"replicas": replicas}}).to_string();
    let patch = Patch {
        ty: PatchType::Merge,
        body: patch.as_bytes(),
    };
    let (v, _) = c.patch(&r.rt, r.ns(), r.name(), patch, &wo, None)?;
    Ok(json_value(200, &scale_json(&v)))
}

/// The Scale a client asks for: PUT replaces it, PATCH edits the current one.
fn requested_scale(req: &Request, mut sc: Value) -> ApiResult<Value> {
    match req.method.as_str() {
        "PUT" => decode_body(&req.body, &req.content_type),
        "PATCH" => {
            let p: Value = serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            match req.content_type.split(';').next().unwrap_or("").trim() {
                "application/json-patch+json" => crate::patch::json_patch(&mut sc, &p)
                    .map_err(|e| ApiError::new(422, "Invalid", e))?,
                "application/strategic-merge-patch+json" => {
                    crate::patch::strategic_merge(&mut sc, &p)
                }
                _ => crate::patch::merge_patch(&mut sc, &p),
            }
            Ok(sc)
        }
        method => Err(ApiError::method_not_allowed(format!(
            "{method} is not allowed on scale"
        ))),
    }
}
