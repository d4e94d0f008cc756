//! Shared helpers of the policy integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use meshup::policy::builtin::EXAMPLES;

mod untrusted;
// Each crate that includes this module (tests, the policy bench) uses a part of it; the
// bench uses none of these, as `dead_code` above allows for the rest.
#[allow(unused_imports)]
pub use untrusted::*;

pub fn example(name: &str) -> PathBuf {
    PathBuf::from(EXAMPLES.iter().find(|(n, _)| *n == name).unwrap().1)
}

/// A fresh scratch directory under cargo's per-target tmp dir.
pub fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("meshup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A compiled-artifact cache shared by all test runs (compiling in a debug build is slow).
pub fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("meshup-cache")
}

/// A realistic precheck context (JSON): 1.7.8 → 1.8.6 by meshup, Kubernetes 1.24.
pub fn context_json() -> serde_json::Value {
    serde_json::json!({
        "phase": "precheck",
        "direction": "upgrade",
        "current_version": "1.7.8",
        "target_version": "1.8.6",
        "revision": "default",
        "install_method": "meshup",
        "namespace": "istio-system",
        "components": [
            {"name": "base", "role": "base"},
            {"name": "istiod", "role": "control-plane"},
            {"name": "istio-ingressgateway", "role": "gateway"}
        ],
        "kubernetes_version": "1.24.3",
        "supported_kubernetes": {"min": "1.22", "max": "1.25"},
        "values_old": {"pilot": {"replicas": 2}},
        "values_new": {"pilot": {"replicas": 2}},
        "profile_defaults_old": {"pilot": {"autoscaleMin": 1, "env": {"PILOT_ENABLE_STATUS": false}}},
        "profile_defaults_new": {"pilot": {"autoscaleMin": 2, "env": {"PILOT_ENABLE_STATUS": false}}},
        "profile_old": "default",
        "profile_new": "default",
        "overlay_old": {"meshConfig": {"accessLogFile": "/dev/stdout"}},
        "overlay_new": {"meshConfig": {"accessLogFile": "/dev/stdout"}},
        "now": "2026-11-25T12:00:00Z"
    })
}

/// Cluster objects of a healthy 1.7.8 control plane (multi-document YAML).
pub const HEALTHY_OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system, labels: {app: istiod}}
spec:
  replicas: 2
  selector: {matchLabels: {app: istiod}}
  template:
    metadata: {labels: {app: istiod, istio: pilot}}
    spec: {containers: [{name: discovery, image: "docker.io/istio/pilot:1.7.8"}]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: istiod, namespace: istio-system}
spec: {minAvailable: 1, selector: {matchLabels: {app: istiod}}}
status: {disruptionsAllowed: 1}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: istio-sidecar-injector, labels: {app: sidecar-injector}}
webhooks:
  - name: sidecar-injector.istio.io
    failurePolicy: Fail
    clientConfig: {service: {namespace: istio-system, name: istiod}}
---
apiVersion: v1
kind: Service
metadata: {name: istiod, namespace: istio-system}
---
apiVersion: v1
kind: Endpoints
metadata: {name: istiod, namespace: istio-system}
subsets: [{addresses: [{ip: 10.0.0.5}]}]
---
apiVersion: v1
kind: Secret
metadata: {name: cacerts, namespace: istio-system}
data: {ca-key.pem: c2VjcmV0}
---
apiVersion: v1
kind: Pod
metadata: {name: shop-1, namespace: shop}
"#;

pub const FROZEN: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: mesh-freeze, namespace: istio-system}
data: {frozen: "true", until: "2026-12-01T00:00:00Z", reason: "year-end freeze"}
"#;
