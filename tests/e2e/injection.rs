//! Sidecar injection as `meshup sim` simulates it: the bundles' MutatingWebhookConfiguration
//! (or the one today's istiod chart renders) decides which pods the injector is called for,
//! bundles/sim-webhooks.yaml (built into `meshup sim`) what the injector adds.

use crate::common::*;
use serde_json::{Value, json};
use std::time::Duration;

fn namespace(sim: &Sim, name: &str, labels: Value) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
    create(sim, "/api/v1/namespaces", &ns);
}

fn create(sim: &Sim, path: &str, obj: &Value) -> Value {
    let (code, body) = sim.http("POST", path, Some(&obj.to_string()));
    assert_eq!(code, 201, "POST {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A new pod `name` in `ns`; the pod as the API server stored it.
fn pod(sim: &Sim, ns: &str, name: &str) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    create(sim, &format!("/api/v1/namespaces/{ns}/pods"), &pod)
}

fn images(pod: &Value) -> Vec<&str> {
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap())
        .collect()
}

/// A revision `canary` beside the installed control plane, as Istio installs one: its own
/// Deployment and Service (`istiod-canary`) and its own injector webhook for namespaces
/// labelled `istio.io/rev=canary`.
fn canary_revision(sim: &Sim, tag: &str) {
    let labels = json!({"app": "istiod", "istio.io/rev": "canary"});
    let ns = "/api/v1/namespaces/istio-system";
    create(
        sim,
        &format!("{ns}/services"),
        &json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "istiod-canary"},
        "spec": {"selector": labels, "ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017}]}}),
    );
    create(
        sim,
        "/apis/apps/v1/namespaces/istio-system/deployments",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "istiod-canary", "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "discovery", "image": format!("docker.io/istio/pilot:{tag}"),
                "env": [{"name": "REVISION", "value": "canary"}]}]}}}}),
    );
    create(
        sim,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector-canary", "labels": {"istio.io/rev": "canary"}},
        "webhooks": [{"name": "sidecar-injector.istio.io",
            "clientConfig": {"service": {"name": "istiod-canary", "namespace": "istio-system", "path": "/inject"}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": {"matchExpressions": [
                {"key": "istio-injection", "operator": "DoesNotExist"},
                {"key": "istio.io/rev", "operator": "In", "values": ["canary"]}]}}]}),
    );
}

#[test]
fn sidecar_injection_follows_control_plane_version() {
    let sim = Sim::start();
    namespace(&sim, "shop", json!({"istio-injection": "enabled"}));
    namespace(&sim, "plain", json!({}));
    namespace(&sim, "canary", json!({"istio.io/rev": "canary"}));
    // no control plane (and no injector webhook): no injection
    assert_eq!(images(&pod(&sim, "shop", "p0")), vec!["app:1"]);

    install(&sim, "istio-1.7.8", &[]);
    let p1 = pod(&sim, "shop", "p1");
    assert_eq!(images(&p1), vec!["app:1", "docker.io/istio/proxyv2:1.7.8"]);
    let status: Value = serde_json::from_str(
        p1["metadata"]["annotations"]["sidecar.istio.io/status"]
            .as_str()
            .expect("status annotation"),
    )
    .unwrap();
    assert_eq!(status["revision"], "default");
    assert_eq!(
        p1["metadata"]["labels"]["security.istio.io/tlsMode"],
        "istio"
    );
    assert!(p1["metadata"]["labels"]["istio.io/rev"].is_null(), "{p1}");
    assert_eq!(
        p1["spec"]["initContainers"][0]["image"],
        "docker.io/istio/proxyv2:1.7.8"
    );
    assert_eq!(images(&pod(&sim, "plain", "p")), vec!["app:1"]);
    // the pod becomes Running/Ready with container statuses carrying images
    let path = "/api/v1/namespaces/shop/pods/p1";
    eventually("p1 ready", Duration::from_secs(20), || {
        sim.get(path)["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    });
    assert_eq!(
        sim.get(path)["status"]["containerStatuses"][1]["image"],
        "docker.io/istio/proxyv2:1.7.8"
    );

    // upgrade the control plane: new pods get the new proxy, running ones keep theirs
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
    assert_eq!(
        images(&pod(&sim, "shop", "p2")),
        vec!["app:1", "docker.io/istio/proxyv2:1.8.6"]
    );
    assert_eq!(
        images(&sim.get(path)),
        vec!["app:1", "docker.io/istio/proxyv2:1.7.8"]
    );

    // a revision's webhook injects its own proxy version in its namespaces
    assert_eq!(
        images(&pod(&sim, "canary", "c")),
        vec!["app:1"],
        "no canary revision yet"
    );
    canary_revision(&sim, "1.9.0");
    let c2 = pod(&sim, "canary", "c2");
    assert_eq!(images(&c2), vec!["app:1", "docker.io/istio/proxyv2:1.9.0"]);
    assert_eq!(c2["metadata"]["labels"]["istio.io/rev"], "canary");
    assert_eq!(
        images(&pod(&sim, "shop", "p3")),
        vec!["app:1", "docker.io/istio/proxyv2:1.8.6"],
        "the default revision's namespaces keep the default injector"
    );
}

/// Today's injector as the istiod chart configures it (`namespace.` and `object.` webhooks
/// of `istio-sidecar-injector`, Service istiod), served by istiod at `tag` from `hub`.
fn modern_control_plane(sim: &Sim, hub: &str, tag: &str) {
    namespace(sim, "istio-system", json!({}));
    let labels = json!({"app": "istiod", "istio.io/rev": "default"});
    create(
        sim,
        "/api/v1/namespaces/istio-system/services",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istiod"},
            "spec": {"selector": labels, "ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017}]}}),
    );
    create(
        sim,
        "/apis/apps/v1/namespaces/istio-system/deployments",
        &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "istiod", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "discovery", "image": format!("{hub}/pilot:{tag}"),
                    "env": [{"name": "REVISION", "value": "default"}]}]}}}}),
    );
    let webhook = |prefix: &str, namespace_selector: Value, object_selector: Value| {
        json!({"name": format!("{prefix}sidecar-injector.istio.io"),
            "clientConfig": {"service": {"name": "istiod", "namespace": "istio-system", "path": "/inject", "port": 443}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "namespaceSelector": namespace_selector, "objectSelector": object_selector})
    };
    let not_disabled = json!({"matchExpressions": [
        {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}]});
    create(
        sim,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "istio-sidecar-injector"},
        "webhooks": [
            webhook("namespace.",
                json!({"matchExpressions": [{"key": "istio-injection", "operator": "In", "values": ["enabled"]}]}),
                not_disabled),
            webhook("object.",
                json!({"matchExpressions": [
                    {"key": "istio-injection", "operator": "DoesNotExist"},
                    {"key": "istio.io/rev", "operator": "DoesNotExist"}]}),
                json!({"matchExpressions": [
                    {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
                    {"key": "istio.io/rev", "operator": "DoesNotExist"}]})),
        ]}),
    );
}

/// A pod as the gateway chart makes it: its own `istio-proxy` container with `image: auto`,
/// asking for the `gateway` template.
fn gateway_pod(sim: &Sim, name: &str, inject: &str) -> Value {
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "istio-ingress", "sidecar.istio.io/inject": inject},
            "annotations": {"inject.istio.io/templates": "gateway", "sidecar.istio.io/inject": inject}},
        "spec": {"containers": [{"name": "istio-proxy", "image": "auto",
            "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}]}});
    create(sim, "/api/v1/namespaces/istio-ingress/pods", &pod)
}

#[test]
fn todays_injector_fills_in_gateways_and_injects_sidecars() {
    let sim = Sim::start();
    modern_control_plane(&sim, "registry.example.com/istio", "1.30.3");
    namespace(&sim, "istio-ingress", json!({}));
    namespace(&sim, "shop", json!({"istio-injection": "enabled"}));
    let proxy = "registry.example.com/istio/proxyv2:1.30.3";

    // the gateway template: the pod's own container gets the control plane's proxy
    let gw = gateway_pod(&sim, "gw", "true");
    assert_eq!(images(&gw), [proxy]);
    let container = &gw["spec"]["containers"][0];
    assert_eq!(container["args"][1], "router");
    assert_eq!(
        container["ports"][0]["containerPort"], 15090,
        "its own fields kept"
    );
    assert!(gw["spec"]["initContainers"].is_null(), "{gw}");
    let annotations = &gw["metadata"]["annotations"];
    assert_eq!(annotations["istio.io/rev"], "default");
    let status: Value =
        serde_json::from_str(annotations["sidecar.istio.io/status"].as_str().unwrap()).unwrap();
    assert_eq!(status["containers"], json!(["istio-proxy"]));
    assert_eq!(status["initContainers"], Value::Null);
    assert_eq!(status["revision"], "default");
    let volumes = gw["spec"]["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["name"] == "istio-envoy"), "{gw}");
    // opted out: neither webhook is called, the image stays `auto`
    assert_eq!(images(&gateway_pod(&sim, "off", "false")), ["auto"]);

    // the sidecar template, for every other pod
    let p = pod(&sim, "shop", "p");
    assert_eq!(images(&p), ["app:1", proxy]);
    assert_eq!(p["spec"]["initContainers"][0]["image"], proxy);
    assert_eq!(
        p["metadata"]["labels"]["security.istio.io/tlsMode"],
        "istio"
    );
    assert_eq!(p["metadata"]["annotations"]["istio.io/rev"], "default");
    assert_eq!(images(&pod(&sim, "istio-ingress", "plain")), ["app:1"]);

    // istiod moves to another version and hub: later pods follow it
    modern_istiod_image(&sim, "docker.io/istio/pilot:1.31.0");
    assert_eq!(
        images(&gateway_pod(&sim, "gw2", "true")),
        ["docker.io/istio/proxyv2:1.31.0"]
    );
    assert_eq!(
        images(&pod(&sim, "shop", "p2")),
        ["app:1", "docker.io/istio/proxyv2:1.31.0"]
    );
}

/// Changes istiod's `discovery` image (its pod template).
fn modern_istiod_image(sim: &Sim, image: &str) {
    let path = "/apis/apps/v1/namespaces/istio-system/deployments/istiod";
    let mut istiod = sim.get(path);
    istiod["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
    let (code, body) = sim.http("PUT", path, Some(&istiod.to_string()));
    assert_eq!(code, 200, "{body}");
}

#[test]
fn sim_refuses_a_bad_webhook_backends_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backends.yaml");
    std::fs::write(
        &file,
        "backends:\n  - webhooks: [agent.example.com]\n    add: {metadata: {labels: {v: \"${version}\"}}}\n",
    )
    .unwrap();
    let run = run(
        &[
            "sim",
            "--port",
            "0",
            "--webhook-backends",
            file.to_str().unwrap(),
        ],
        None,
    );
    run.expect(2);
    assert!(
        run.stderr.contains("backend #0") && run.stderr.contains("${version}"),
        "{}",
        run.stderr
    );
}
