//! Per-kind defaulting, validation and Istio-style sidecar injection.

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;
use crate::selector::LabelSelector;
use crate::store::Store;
use crate::util::{base64_encode, ensure_map, get_str, now_rfc3339};
use serde_json::{Map, Value, json};

pub const NODE_NAME: &str = "sim-node";
pub const NODE_IP: &str = "10.0.0.10";

pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn default_pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec.and_then(Value::as_object_mut) else {
        return;
    };
    for key in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in cs.iter_mut() {
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        p.entry("protocol").or_insert(json!("TCP"));
                    }
                }
            }
        }
    }
}

/// Defaults applied on every write (create and update).
pub fn default(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => default_pod_spec(obj.get_mut("spec")),
        ("apps", _) => default_pod_spec(obj.pointer_mut("/spec/template/spec")),
        _ => {}
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") => {
            let spec = ensure_map(obj, &["spec"]);
            spec.entry("replicas").or_insert(json!(1));
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            let strategy = spec
                .entry("strategy")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(s) = strategy {
                s.entry("type").or_insert(json!("RollingUpdate"));
                if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("maxSurge").or_insert(json!("25%"));
                        ru.entry("maxUnavailable").or_insert(json!("25%"));
                    }
                }
            }
        }
        ("apps", "replicasets") => {
            ensure_map(obj, &["spec"])
                .entry("replicas")
                .or_insert(json!(1));
        }
        ("apps", "daemonsets") => {
            let spec = ensure_map(obj, &["spec"]);
            spec.entry("revisionHistoryLimit").or_insert(json!(10));
            let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
            if let Some(s) = us.as_object_mut() {
                s.entry("type").or_insert(json!("RollingUpdate"));
                if s.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                    let ru = s.entry("rollingUpdate").or_insert_with(|| json!({}));
                    if let Some(ru) = ru.as_object_mut() {
                        ru.entry("maxUnavailable").or_insert(json!(1));
                        ru.entry("maxSurge").or_insert(json!(0));
                    }
                }
            }
        }
        ("", "services") => {
            let spec = ensure_map(obj, &["spec"]);
            spec.entry("type").or_insert(json!("ClusterIP"));
            spec.entry("sessionAffinity").or_insert(json!("None"));
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    p.entry("protocol").or_insert(json!("TCP"));
                    if let Some(port) = p.get("port").cloned() {
                        p.entry("targetPort").or_insert(port);
                    }
                }
            }
        }
        ("", "secrets") => {
            let m = obj.as_object_mut().expect("object");
            m.entry("type").or_insert(json!("Opaque"));
            if let Some(Value::Object(sd)) = m.remove("stringData") {
                let data = m.entry("data").or_insert_with(|| json!({}));
                if let Some(d) = data.as_object_mut() {
                    for (k, v) in sd {
                        d.insert(
                            k,
                            json!(base64_encode(v.as_str().unwrap_or_default().as_bytes())),
                        );
                    }
                }
            }
        }
        ("", "namespaces") => {
            let name = get_str(obj, &["metadata", "name"])
                .unwrap_or_default()
                .to_string();
            ensure_map(obj, &["metadata", "labels"])
                .insert("kubernetes.io/metadata.name".into(), json!(name));
            ensure_map(obj, &["spec"])
                .entry("finalizers")
                .or_insert(json!(["kubernetes"]));
            let status = ensure_map(obj, &["status"]);
            if !status.contains_key("phase") {
                status.insert("phase".into(), json!("Active"));
            }
        }
        _ => {}
    }
}

fn check_template(kind: &str, name: &str, obj: &Value) -> ApiResult<()> {
    let sel = obj
        .pointer("/spec/selector")
        .ok_or_else(|| ApiError::invalid(kind, name, "spec.selector: Required value"))?;
    let sel = LabelSelector::from_object(sel).map_err(|e| ApiError::invalid(kind, name, e))?;
    if sel.is_empty() {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.selector: Invalid value: empty selector is invalid for deployment",
        ));
    }
    let labels = obj
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object);
    if !sel.matches(labels) {
        return Err(ApiError::invalid(
            kind,
            name,
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`",
        ));
    }
    check_containers(
        kind,
        name,
        obj.pointer("/spec/template/spec"),
        "spec.template.spec",
    )
}

fn check_containers(kind: &str, name: &str, spec: Option<&Value>, at: &str) -> ApiResult<()> {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::invalid(kind, name, format!("{at}.containers: Required value")))?;
    for (i, c) in containers.iter().enumerate() {
        if c.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::invalid(
                kind,
                name,
                format!("{at}.containers[{i}].name: Required value"),
            ));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::invalid(
                kind,
                name,
                format!("{at}.containers[{i}].image: Required value"),
            ));
        }
    }
    Ok(())
}

/// Validation on create and update (`old` is the stored object on update).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> ApiResult<()> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or_default();
    let kind = rt.kind.as_str();
    if !valid_name(name) && !rt.virtual_create {
        return Err(ApiError::invalid(
            kind,
            name,
            format!(
                "metadata.name: Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    if let Some(l) = obj.pointer("/metadata/labels")
        && let Some(m) = l.as_object()
        && let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string())
    {
        return Err(ApiError::bad_request(format!(
            "metadata.labels.{k}: label values must be strings"
        )));
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("apps", "deployments") | ("apps", "replicasets") | ("apps", "daemonsets") => {
            check_template(kind, name, obj)?;
            if let Some(old) = old
                && old.pointer("/spec/selector") != obj.pointer("/spec/selector")
            {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    "spec.selector: Invalid value: field is immutable",
                ));
            }
            if obj
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .is_some_and(|r| r < 0)
            {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    "spec.replicas: Invalid value: must be greater than or equal to 0",
                ));
            }
        }
        ("", "configmaps") | ("", "secrets")
            if old.is_some_and(|o| o.get("immutable") == Some(&Value::Bool(true))) =>
        {
            let old = old.unwrap_or(obj);
            for field in ["data", "binaryData", "immutable"] {
                if old.get(field) != obj.get(field) {
                    return Err(ApiError::invalid(
                        kind,
                        name,
                        format!("{field}: Forbidden: field is immutable when `immutable` is set"),
                    ));
                }
            }
        }
        ("", "pods") if old.is_none() => {
            check_containers(kind, name, obj.get("spec"), "spec")?;
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let types = crate::registry::types_from_crd(obj)
                .map_err(|e| ApiError::invalid(kind, name, e))?;
            let t = &types[0];
            let expected = format!("{}.{}", t.plural, t.group);
            if name != expected {
                return Err(ApiError::invalid(
                    kind,
                    name,
                    format!(
                        "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// CRD status: names accepted and established.
pub fn crd_status(obj: &mut Value) {
    let now = now_rfc3339();
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    let status = ensure_map(obj, &["status"]);
    let keep_time = |status: &Map<String, Value>, ty: &str| {
        status
            .get("conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == ty))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now))
    };
    let t1 = keep_time(status, "NamesAccepted");
    let t2 = keep_time(status, "Established");
    status.insert("acceptedNames".into(), names);
    status.insert("storedVersions".into(), Value::Array(stored));
    status.insert(
        "conditions".into(),
        json!([
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": t1},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": t2}
        ]),
    );
}

/// Pod status for a pod that is pending, running-not-ready, or ready.
pub fn pod_status(pod: &Value, pod_ip: &str, running: bool, ready: bool) -> Value {
    let now = now_rfc3339();
    let b = |x: bool| if x { "True" } else { "False" };
    let statuses = |key: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{key}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let name = c.get("name").cloned().unwrap_or(json!(""));
                        let image = c.get("image").cloned().unwrap_or(json!(""));
                        let init = key == "initContainers";
                        let state = if init && running {
                            json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}})
                        } else if running {
                            json!({"running": {"startedAt": now}})
                        } else {
                            json!({"waiting": {"reason": "ContainerCreating"}})
                        };
                        json!({
                            "name": name,
                            "image": image,
                            "imageID": "",
                            "containerID": format!("containerd://{:016x}", crate::util::rand_u64()),
                            "ready": if init { running } else { ready },
                            "started": running && !init,
                            "restartCount": 0,
                            "state": state,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut st = json!({
        "phase": if running { "Running" } else { "Pending" },
        "hostIP": NODE_IP,
        "hostIPs": [{"ip": NODE_IP}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": pod.pointer("/status/startTime").cloned().unwrap_or(json!(now)),
        "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodReadyToStartContainers", "status": b(running), "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Initialized", "status": b(running), "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "Ready", "status": b(ready), "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "ContainersReady", "status": b(ready), "lastProbeTime": null, "lastTransitionTime": now},
            {"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}
        ],
        "containerStatuses": statuses("containers"),
    });
    let init = statuses("initContainers");
    if !init.is_empty() {
        st["initContainerStatuses"] = Value::Array(init);
    }
    st
}

pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Istio-style injection: returns true when a sidecar was added.
pub fn inject_sidecar(store: &Store, ns_obj: Option<&Value>, pod: &mut Value) -> bool {
    let Some(ns_obj) = ns_obj else { return false };
    let ns_label = |k: &str| {
        ns_obj
            .pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
    };
    let pod_meta = |k: &str, which: &str| {
        pod.pointer(&format!("/metadata/{which}"))
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(String::from)
    };
    if pod_meta("sidecar.istio.io/inject", "labels").as_deref() == Some("false")
        || pod_meta("sidecar.istio.io/inject", "annotations").as_deref() == Some("false")
    {
        return false;
    }
    let rev = match (ns_label("istio-injection"), ns_label("istio.io/rev")) {
        (Some("enabled"), _) => "default".to_string(),
        (Some(_), _) => return false,
        (None, Some(r)) => r.to_string(),
        (None, None) => return false,
    };
    let already = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["name"] == "istio-proxy"));
    if already {
        return false;
    }
    let wanted: Vec<String> = if rev == "default" {
        vec!["istiod".into(), "istiod-default".into()]
    } else {
        vec![format!("istiod-{rev}")]
    };
    let (istiods, _, _) = store.list("apps/deployments", None, None, 0, &|o| {
        wanted.iter().any(|w| w == o.name())
    });
    let image = istiods.iter().find_map(|d| {
        d.value
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)?
            .iter()
            .find(|c| c["name"] == "discovery")?
            .get("image")?
            .as_str()
            .map(String::from)
    });
    let Some(image) = image else { return false };
    let tag = image
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| "latest".into());
    let proxy_image = format!("docker.io/istio/proxyv2:{tag}");
    let spec = ensure_map(pod, &["spec"]);
    if let Some(cs) = spec.get_mut("containers").and_then(Value::as_array_mut) {
        cs.push(json!({
            "name": "istio-proxy",
            "image": proxy_image,
            "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local"],
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}
        }));
    }
    let inits = spec.entry("initContainers").or_insert_with(|| json!([]));
    if let Some(a) = inits.as_array_mut() {
        a.push(json!({"name": "istio-init", "image": proxy_image, "args": ["istio-iptables"]}));
    }
    let status = json!({
        "initContainers": ["istio-init"],
        "containers": ["istio-proxy"],
        "volumes": ["istio-envoy", "istio-data", "istio-podinfo", "istio-token", "istiod-ca-cert"],
        "imagePullSecrets": null,
        "revision": rev,
    });
    ensure_map(pod, &["metadata", "annotations"])
        .insert("sidecar.istio.io/status".into(), json!(status.to_string()));
    let labels = ensure_map(pod, &["metadata", "labels"]);
    labels.insert("security.istio.io/tlsMode".into(), json!("istio"));
    labels
        .entry("service.istio.io/canonical-revision")
        .or_insert(json!("latest"));
    if rev != "default" {
        labels.insert("istio.io/rev".into(), json!(rev));
    }
    true
}
