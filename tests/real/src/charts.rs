//! The end state of a `--charts` run as kubectl reads it: the checks the simulator's charts
//! tests and the real tier's both make (gateway pods injected, nothing of another release
//! left, the CRDs all there).

use serde_json::{Value, json};

/// The pods of a gateway (`kubectl get pods -o json`): at least one not terminating, each
/// ready, its `istio-proxy` container (`image: auto` in the chart) running `proxy`, and
/// marked as Istio's injector marks what it injected (`sidecar.istio.io/status` naming
/// `istio-proxy`, revision `default` there and in `istio.io/rev`).
#[track_caller]
pub fn assert_gateway_pods_injected(pods: &Value, proxy: &str) {
    let pods: Vec<&Value> = pods["items"]
        .as_array()
        .expect("a pod list")
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    assert!(!pods.is_empty(), "no gateway pods");
    for p in pods {
        let name = &p["metadata"]["name"];
        let image = p["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "istio-proxy")
            .map(|c| &c["image"]);
        assert_eq!(image, Some(&json!(proxy)), "gateway pod {name}");
        let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
        assert!(ready, "gateway pod {name} not ready: {}", p["status"]);
        let annotations = &p["metadata"]["annotations"];
        assert_eq!(annotations["istio.io/rev"], "default", "{name}");
        let status = annotations["sidecar.istio.io/status"]
            .as_str()
            .unwrap_or_else(|| panic!("gateway pod {name} has no injection status"));
        let status: Value = serde_json::from_str(status).expect("injection status is JSON");
        assert_eq!(status["containers"], json!(["istio-proxy"]), "{name}");
        assert_eq!(status["revision"], "default", "{name}");
    }
}

/// The kinds Istio's charts install (besides CRDs), for `kubectl get KINDS -A`.
pub const KINDS: &str = "deployments,services,configmaps,serviceaccounts,roles,rolebindings,clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations,horizontalpodautoscalers,poddisruptionbudgets";

/// Of Istio's objects (`kubectl get KINDS -A -l app.kubernetes.io/part-of=istio -o json`),
/// those of a release other than `version`; none after a verified run.
#[track_caller]
pub fn assert_all_at(objects: &Value, version: &str) {
    let stale: Vec<String> = objects["items"]
        .as_array()
        .expect("an object list")
        .iter()
        .filter(|o| o["metadata"]["labels"]["app.kubernetes.io/version"] != version)
        .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
        .collect();
    assert!(
        stale.is_empty(),
        "objects of another release at {version}: {stale:?}"
    );
}

/// Istio's CRDs (`kubectl get crds -o json`): at least `expected`, none pruned.
#[track_caller]
pub fn assert_crds_kept(crds: &Value, expected: usize) {
    let got = crds["items"]
        .as_array()
        .expect("a CRD list")
        .iter()
        .filter(|c| {
            c["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("istio.io"))
        })
        .count();
    assert!(got >= expected, "CRDs pruned: {got} < {expected}");
}
