//! What a gateway's pods look like once Istio's injector has filled them in: the one check
//! the simulator's charts tests and the real tier's both make, on what kubectl read.

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
