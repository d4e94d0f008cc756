//! Server-side printing (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`),
//! so `kubectl get` shows the usual columns.

use crate::registry::ResourceType;
use crate::util::{get_i64, get_str, now_unix, parse_rfc3339};
use serde_json::{Value, json};

pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

fn age(obj: &Value) -> String {
    let Some(t) = get_str(obj, &["metadata", "creationTimestamp"]).and_then(parse_rfc3339) else {
        return "<unknown>".into();
    };
    human((now_unix() - t).max(0))
}

pub fn human(s: i64) -> String {
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", s % 60)
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else {
        format!("{d}d")
    }
}

fn col(name: &str, ty: &str, priority: i64) -> Value {
    json!({"name": name, "type": ty, "format": if name == "Name" { "name" } else { "" }, "description": name, "priority": priority})
}

fn s(v: &Value, path: &[&str]) -> String {
    get_str(v, path).unwrap_or("").to_string()
}

fn n(v: &Value, path: &[&str]) -> i64 {
    get_i64(v, path).unwrap_or(0)
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let mut c = vec![col("Name", "string", 0)];
    let extra: &[(&str, &str, i64)] = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => &[
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        ("apps", "deployments") => &[
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        ("apps", "replicasets") => &[
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
        ],
        ("apps", "daemonsets") => &[
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "services") => &[
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "namespaces") => &[("Status", "string", 0), ("Age", "string", 0)],
        ("", "nodes") => &[
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
        ],
        ("", "endpoints") => &[("Endpoints", "string", 0), ("Age", "string", 0)],
        ("policy", "poddisruptionbudgets") => &[
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "string", 0),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => &[("Created At", "date", 0)],
        _ => &[("Age", "string", 0)],
    };
    c.extend(extra.iter().map(|(n, t, p)| col(n, t, *p)));
    c
}

/// An int-or-string field as kubectl prints it.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(x)) => x.to_string(),
        Some(Value::String(x)) => x.clone(),
        _ => "N/A".into(),
    }
}

/// The array at a JSON pointer, empty when absent.
fn array_at(o: &Value, pointer: &str) -> Vec<Value> {
    o.pointer(pointer)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn name(o: &Value) -> Value {
    json!(s(o, &["metadata", "name"]))
}

fn none_if_empty(items: Vec<String>) -> Value {
    json!(if items.is_empty() {
        "<none>".to_string()
    } else {
        items.join(",")
    })
}

/// The row cells of one object, matching [`columns`] (one printer per kind,
/// as kubectl's server-side printers are).
fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let a = json!(age(o));
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => pod_cells(o, a),
        ("apps", "deployments") => deployment_cells(o, a),
        ("apps", "replicasets") => vec![
            name(o),
            json!(n(o, &["spec", "replicas"])),
            json!(n(o, &["status", "replicas"])),
            json!(n(o, &["status", "readyReplicas"])),
            a,
        ],
        ("apps", "daemonsets") => vec![
            name(o),
            json!(n(o, &["status", "desiredNumberScheduled"])),
            json!(n(o, &["status", "currentNumberScheduled"])),
            json!(n(o, &["status", "numberReady"])),
            json!(n(o, &["status", "updatedNumberScheduled"])),
            json!(n(o, &["status", "numberAvailable"])),
            a,
        ],
        ("", "services") => service_cells(o, a),
        ("", "namespaces") => vec![name(o), json!(s(o, &["status", "phase"])), a],
        ("", "nodes") => vec![
            name(o),
            json!("Ready"),
            json!("control-plane"),
            a,
            json!(s(o, &["status", "nodeInfo", "kubeletVersion"])),
        ],
        ("", "endpoints") => vec![name(o), none_if_empty(endpoint_addresses(o)), a],
        ("policy", "poddisruptionbudgets") => vec![
            name(o),
            json!(int_or_string(o.pointer("/spec/minAvailable"))),
            json!(int_or_string(o.pointer("/spec/maxUnavailable"))),
            json!(n(o, &["status", "disruptionsAllowed"])),
            a,
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name(o), json!(s(o, &["metadata", "creationTimestamp"]))]
        }
        _ => vec![name(o), a],
    }
}

/// READY as ready/total containers; STATUS is the phase unless the pod is
/// terminating or a container waits (e.g. `ImagePullBackOff`).
fn pod_cells(o: &Value, age: Value) -> Vec<Value> {
    let statuses = array_at(o, "/status/containerStatuses");
    let total = o
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|a| a.len())
        .unwrap_or(0);
    let ready = statuses.iter().filter(|c| c["ready"] == true).count();
    let restarts: i64 = statuses
        .iter()
        .map(|c| c["restartCount"].as_i64().unwrap_or(0))
        .sum();
    let mut status = s(o, &["status", "phase"]);
    if o.pointer("/metadata/deletionTimestamp").is_some() {
        status = "Terminating".into();
    } else if let Some(w) = statuses
        .iter()
        .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
    {
        status = w.to_string();
    }
    vec![
        name(o),
        json!(format!("{ready}/{total}")),
        json!(status),
        json!(restarts.to_string()),
        age,
        json!(get_str(o, &["status", "podIP"]).unwrap_or("<none>")),
        json!(get_str(o, &["spec", "nodeName"]).unwrap_or("<none>")),
    ]
}

fn deployment_cells(o: &Value, age: Value) -> Vec<Value> {
    let containers = array_at(o, "/spec/template/spec/containers");
    let field =
        |k: &str| -> Vec<&str> { containers.iter().filter_map(|c| c[k].as_str()).collect() };
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            n(o, &["status", "readyReplicas"]),
            n(o, &["spec", "replicas"])
        )),
        json!(n(o, &["status", "updatedReplicas"])),
        json!(n(o, &["status", "availableReplicas"])),
        age,
        json!(field("name").join(",")),
        json!(field("image").join(",")),
    ]
}

fn service_cells(o: &Value, age: Value) -> Vec<Value> {
    let ports: Vec<String> = o
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    format!(
                        "{}/{}",
                        int_or_string(p.get("port")),
                        p["protocol"].as_str().unwrap_or("TCP")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    vec![
        name(o),
        json!(s(o, &["spec", "type"])),
        json!(get_str(o, &["spec", "clusterIP"]).unwrap_or("<none>")),
        json!("<none>"),
        none_if_empty(ports),
        age,
    ]
}

/// `ip:port` for every ready address and port of every subset.
fn endpoint_addresses(o: &Value) -> Vec<String> {
    let list = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut eps = Vec::new();
    for sub in list(o, "subsets") {
        for ad in list(&sub, "addresses") {
            for p in list(&sub, "ports") {
                eps.push(format!(
                    "{}:{}",
                    ad["ip"].as_str().unwrap_or(""),
                    int_or_string(p.get("port"))
                ));
            }
        }
    }
    eps
}

/// A Table for the given objects.
pub fn table<'a>(
    rt: &ResourceType,
    objs: impl Iterator<Item = &'a Value>,
    rv: &str,
    cont: Option<&str>,
) -> Value {
    let rows: Vec<Value> = objs
        .map(|o| json!({"cells": cells(rt, o), "object": o}))
        .collect();
    let mut meta = json!({"resourceVersion": rv});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(rt),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_status_shows_a_waiting_reason_or_terminating() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Pending", "containerStatuses": [
                {"ready": true, "restartCount": 2},
                {"ready": false, "restartCount": 1, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            ]},
        });
        let row = pod_cells(&pod, json!("1s"));
        assert_eq!(
            row[..4],
            [
                json!("p"),
                json!("1/2"),
                json!("ImagePullBackOff"),
                json!("3")
            ]
        );
        assert_eq!(row[5], json!("<none>"));
        let mut gone = pod.clone();
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(pod_cells(&gone, json!("1s"))[2], json!("Terminating"));
    }

    #[test]
    fn endpoints_list_every_address_and_port() {
        let ep = json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": "http"}],
        }]});
        assert_eq!(
            endpoint_addresses(&ep),
            [
                "10.0.0.1:80",
                "10.0.0.1:http",
                "10.0.0.2:80",
                "10.0.0.2:http"
            ]
        );
        assert_eq!(
            none_if_empty(endpoint_addresses(&json!({}))),
            json!("<none>")
        );
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human(59), "59s");
        assert_eq!(human(150), "2m30s");
        assert_eq!(human(3 * 3600 + 60), "3h1m");
        assert_eq!(human(50 * 3600), "2d2h");
    }
}
