//! Istio-style sidecar injection, standing in for the mutating webhook a
//! mesh control plane serves (the simulator runs no webhook servers).
//!
//! This is the one place the simulator knows a mesh's conventions (label
//! names, the injector Deployment, the proxy image); everything else in it is
//! plain Kubernetes.

use crate::store::Store;
use crate::util::ensure_map;
use serde_json::{Value, json};

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
