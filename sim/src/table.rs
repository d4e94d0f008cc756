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

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(s(o, &["metadata", "name"]));
    let a = json!(age(o));
    let ios = |v: Option<&Value>| match v {
        Some(Value::Number(x)) => x.to_string(),
        Some(Value::String(x)) => x.clone(),
        _ => "N/A".into(),
    };
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
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
                name,
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                a,
                json!(get_str(o, &["status", "podIP"]).unwrap_or("<none>")),
                json!(get_str(o, &["spec", "nodeName"]).unwrap_or("<none>")),
            ]
        }
        ("apps", "deployments") => {
            let containers = o
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<&str> = containers
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            let images: Vec<&str> = containers
                .iter()
                .filter_map(|c| c["image"].as_str())
                .collect();
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(o, &["status", "readyReplicas"]),
                    n(o, &["spec", "replicas"])
                )),
                json!(n(o, &["status", "updatedReplicas"])),
                json!(n(o, &["status", "availableReplicas"])),
                a,
                json!(names.join(",")),
                json!(images.join(",")),
            ]
        }
        ("apps", "replicasets") => vec![
            name,
            json!(n(o, &["spec", "replicas"])),
            json!(n(o, &["status", "replicas"])),
            json!(n(o, &["status", "readyReplicas"])),
            a,
        ],
        ("apps", "daemonsets") => vec![
            name,
            json!(n(o, &["status", "desiredNumberScheduled"])),
            json!(n(o, &["status", "currentNumberScheduled"])),
            json!(n(o, &["status", "numberReady"])),
            json!(n(o, &["status", "updatedNumberScheduled"])),
            json!(n(o, &["status", "numberAvailable"])),
            a,
        ],
        ("", "services") => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                ios(p.get("port")),
                                p["protocol"].as_str().unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(s(o, &["spec", "type"])),
                json!(get_str(o, &["spec", "clusterIP"]).unwrap_or("<none>")),
                json!("<none>"),
                json!(if ports.is_empty() {
                    "<none>".to_string()
                } else {
                    ports.join(",")
                }),
                a,
            ]
        }
        ("", "namespaces") => vec![name, json!(s(o, &["status", "phase"])), a],
        ("", "nodes") => vec![
            name,
            json!("Ready"),
            json!("control-plane"),
            a,
            json!(s(o, &["status", "nodeInfo", "kubeletVersion"])),
        ],
        ("", "endpoints") => {
            let mut eps = Vec::new();
            for sub in o
                .get("subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                for ad in sub
                    .get("addresses")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    for p in sub
                        .get("ports")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                    {
                        eps.push(format!(
                            "{}:{}",
                            ad["ip"].as_str().unwrap_or(""),
                            ios(p.get("port"))
                        ));
                    }
                }
            }
            vec![
                name,
                json!(if eps.is_empty() {
                    "<none>".to_string()
                } else {
                    eps.join(",")
                }),
                a,
            ]
        }
        ("policy", "poddisruptionbudgets") => vec![
            name,
            json!(ios(o.pointer("/spec/minAvailable"))),
            json!(ios(o.pointer("/spec/maxUnavailable"))),
            json!(n(o, &["status", "disruptionsAllowed"])),
            a,
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name, json!(s(o, &["metadata", "creationTimestamp"]))]
        }
        _ => vec![name, a],
    }
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
