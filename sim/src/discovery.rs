//! Discovery documents and the minimal OpenAPI v3 kubectl needs.

use crate::registry::{Registry, ResourceType};
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn api_versions(addr: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]
    })
}

/// group -> versions (in registration order).
fn groups(reg: &Registry) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in reg.all() {
        if t.group.is_empty() {
            continue;
        }
        let vs = out.entry(t.group.clone()).or_default();
        if !vs.contains(&t.version) {
            vs.push(t.version.clone());
        }
    }
    out
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

pub fn api_group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = groups(reg)
        .iter()
        .map(|(g, vs)| group_json(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(reg: &Registry, group: &str) -> Option<Value> {
    let gs = groups(reg);
    let vs = gs.get(group)?;
    let mut v = group_json(group, vs);
    v["kind"] = json!("APIGroup");
    v["apiVersion"] = json!("v1");
    Some(v)
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for t in &types {
        resources.push(t.api_resource_json());
        if t.group == "apps" && (t.plural == "deployments" || t.plural == "replicasets") {
            resources.push(json!({
                "name": format!("{}/scale", t.plural),
                "singularName": "",
                "namespaced": true,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        // Listed as every API server since 1.20 lists it: clients choose their service
        // account token mode by it (creating tokens is not served: sim/README.md).
        if t.group.is_empty() && t.plural == "serviceaccounts" {
            resources.push(json!({
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": true,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }));
        }
        if t.status {
            resources.push(json!({
                "name": format!("{}/status", t.plural),
                "singularName": "",
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }))
}

fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

pub fn openapi_index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let all = reg.all();
    let hash = crate::util::stable_hash(&json!(
        all.iter()
            .map(|t| format!("{}/{}/{}", t.group, t.version, t.plural))
            .collect::<Vec<_>>()
    ));
    for t in &all {
        let p = gv_path(t);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

fn op(t: &ResourceType, action: &str, params: &[&str]) -> Value {
    let params: Vec<Value> = params
        .iter()
        .map(|p| json!({"name": p, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
        .collect();
    json!({
        "operationId": format!("{action}{}", t.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", schema_name(t))}}}}}
    })
}

fn schema_name(t: &ResourceType) -> String {
    let g = if t.group.is_empty() { "core" } else { &t.group };
    format!("{g}.{}.{}", t.version, t.kind)
}

/// Per group-version OpenAPI v3 document: paths with GVK extensions and the
/// `fieldValidation` parameter kubectl looks for; schemas are open objects.
pub fn openapi_gv(reg: &Registry, group: &str, version: &str, k8s_version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let patch = ["dryRun", "fieldManager", "fieldValidation", "force"];
    for t in &types {
        let base = format!("/{}", gv_path(t));
        let coll = if t.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", t.plural)
        } else {
            format!("{base}/{}", t.plural)
        };
        let item = format!("{coll}/{{name}}");
        if t.virtual_create {
            paths.insert(coll, json!({"post": op(t, "post", &write)}));
        } else {
            paths.insert(
                coll,
                json!({"get": op(t, "list", &[]), "post": op(t, "post", &write), "delete": op(t, "deletecollection", &[])}),
            );
            paths.insert(
                item,
                json!({"get": op(t, "get", &[]), "put": op(t, "put", &write), "patch": op(t, "patch", &patch), "delete": op(t, "delete", &["dryRun"])}),
            );
        }
        schemas.insert(
            schema_name(t),
            json!({
                "type": "object",
                "x-kubernetes-group-version-kind": [{"group": t.group, "version": t.version, "kind": t.kind}],
                "x-kubernetes-preserve-unknown-fields": true
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": k8s_version},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}
