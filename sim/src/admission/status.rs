//! Status the kubelet and the apiextensions server would write: pods and
//! CRDs.

use super::NODE_IP;
use crate::util::{ensure_map, now_rfc3339};
use serde_json::{Map, Value, json};

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
