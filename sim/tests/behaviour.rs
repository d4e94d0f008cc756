//! Simulator behaviour over HTTP: faults, request log, GC, rollouts,
//! PDBs, DaemonSets, seeding, status subresource, 410 Gone.

mod common;

use common::{ahttp, start, start_with};
use meshup_sim::{FaultConfig, SimConfig};
use serde_json::{Value, json};
use std::time::Duration;

const J: &str = "application/json";
const APPLY: &str = "application/apply-patch+yaml";

async fn wait_for(
    sim: &meshup_sim::Sim,
    path: &str,
    what: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let (code, v) = ahttp(sim, "GET", path, None).await;
        if code == 200 && f(&v) {
            return v;
        }
        last = v;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what} at {path}; last: {last}");
}

fn deployment(name: &str, replicas: i64, image: &str) -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": image}]}}}
    })
    .to_string()
}

async fn apply(sim: &meshup_sim::Sim, path: &str, body: &str) -> (u16, Value) {
    ahttp(
        sim,
        "PATCH",
        &format!("{path}?fieldManager=test&force=true"),
        Some((APPLY, body)),
    )
    .await
}

async fn ns(sim: &meshup_sim::Sim, name: &str, labels: Value) {
    let (code, v) = apply(sim, &format!("/api/v1/namespaces/{name}"), &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}).to_string()).await;
    assert!(code == 200 || code == 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_request_log() {
    let sim = start().await;
    let cfg: FaultConfig = serde_json::from_value(json!({
        "errors": [{"method": "GET", "path": "/api/v1/namespaces/default/configmaps", "count": 2, "status": 503}],
        "throttle": [{"path": "/api/v1/secrets", "count": 1, "retry_after_seconds": 7}],
        "conflicts": [{"path": "/configmaps/c", "count": 1}],
        "latency": [{"path": "/api/v1/nodes", "ms": 150}],
        "kubernetes_version": "v1.29.3",
    }))
    .unwrap();
    let (code, _) = ahttp(
        &sim,
        "PUT",
        "/sim/v1/faults",
        Some((J, &serde_json::to_string(&cfg).unwrap())),
    )
    .await;
    assert_eq!(code, 200);
    let (_, got) = ahttp(&sim, "GET", "/sim/v1/faults", None).await;
    assert_eq!(got["errors"][0]["count"], 2);
    let (_, _) = ahttp(&sim, "DELETE", "/sim/v1/requests", None).await;
    let p = "/api/v1/namespaces/default/configmaps";
    let (c1, v1) = ahttp(&sim, "GET", p, None).await;
    let (c2, _) = ahttp(&sim, "GET", p, None).await;
    let (c3, _) = ahttp(&sim, "GET", p, None).await;
    assert_eq!((c1, c2, c3), (503, 503, 200));
    assert_eq!(v1["kind"], "Status");
    assert_eq!(v1["reason"], "ServiceUnavailable");
    let (_, _, headers) = {
        let fake = common::FakeSim {
            addr: sim.addr(),
            url: sim.url(),
        };
        tokio::task::spawn_blocking(move || {
            common::http_addr(&fake, "GET", "/api/v1/secrets", None)
        })
        .await
        .unwrap()
    };
    assert!(
        headers.iter().any(|(k, v)| k == "retry-after" && v == "7"),
        "{headers:?}"
    );
    let (c, v) = ahttp(&sim, "GET", "/api/v1/secrets", None).await;
    assert_eq!(c, 200, "{v}");
    let (_, ver) = ahttp(&sim, "GET", "/version", None).await;
    assert_eq!(ver["gitVersion"], "v1.29.3");
    assert_eq!(ver["minor"], "29");
    // conflicts on update
    let (c, _) = ahttp(
        &sim,
        "POST",
        p,
        Some((J, r#"{"metadata":{"name":"c"},"data":{"a":"1"}}"#)),
    )
    .await;
    assert_eq!(c, 201);
    let (c, v) = ahttp(
        &sim,
        "PATCH",
        &format!("{p}/c"),
        Some(("application/merge-patch+json", r#"{"data":{"a":"2"}}"#)),
    )
    .await;
    assert_eq!((c, v["reason"].as_str()), (409, Some("Conflict")));
    let (c, _) = ahttp(
        &sim,
        "PATCH",
        &format!("{p}/c"),
        Some(("application/merge-patch+json", r#"{"data":{"a":"2"}}"#)),
    )
    .await;
    assert_eq!(c, 200);
    let (_, _) = ahttp(&sim, "GET", "/api/v1/nodes", None).await;
    // request log
    let (_, log) = ahttp(&sim, "GET", "/sim/v1/requests", None).await;
    let reqs = log["requests"].as_array().unwrap();
    assert!(
        reqs.iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/sim/"))
    );
    let first = &reqs[0];
    assert_eq!(
        (
            first["method"].as_str(),
            first["verb"].as_str(),
            first["status"].as_u64()
        ),
        (Some("GET"), Some("list"), Some(503))
    );
    let nodes = reqs.iter().find(|r| r["path"] == "/api/v1/nodes").unwrap();
    assert!(nodes["duration_ms"].as_f64().unwrap() >= 150.0);
    let (_, m) = ahttp(&sim, "GET", "/sim/v1/requests?mutating=true", None).await;
    let verbs: Vec<&str> = m["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["verb"].as_str().unwrap())
        .collect();
    assert_eq!(verbs, vec!["create", "patch", "patch"]);
    // reset, then only reads → nothing mutating
    ahttp(&sim, "DELETE", "/sim/v1/requests", None).await;
    ahttp(&sim, "GET", "/api/v1/namespaces", None).await;
    ahttp(
        &sim,
        "POST",
        &format!("{p}?dryRun=All"),
        Some((J, r#"{"metadata":{"name":"dry"}}"#)),
    )
    .await;
    let (_, m) = ahttp(&sim, "GET", "/sim/v1/requests?mutating=true", None).await;
    assert_eq!(m["requests"].as_array().unwrap().len(), 0);
    let (c, _) = ahttp(&sim, "GET", &format!("{p}/dry"), None).await;
    assert_eq!(c, 404, "dry-run create stored nothing");
    // outage: every API request fails, /sim endpoints keep working
    let (c, _) = ahttp(
        &sim,
        "PUT",
        "/sim/v1/faults",
        Some((J, r#"{"outage":{"duration_seconds":60}}"#)),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(ahttp(&sim, "GET", "/version", None).await.0, 503);
    assert_eq!(ahttp(&sim, "GET", "/api/v1/pods", None).await.0, 503);
    assert_eq!(ahttp(&sim, "GET", "/sim/v1/requests", None).await.0, 200);
    assert_eq!(ahttp(&sim, "DELETE", "/sim/v1/faults", None).await.0, 200);
    assert_eq!(ahttp(&sim, "GET", "/version", None).await.0, 200);
    // refusing outage: API connections are closed without a response
    let (c, _) = ahttp(
        &sim,
        "PUT",
        "/sim/v1/faults",
        Some((J, r#"{"outage":{"duration_seconds":60,"refuse":true}}"#)),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        ahttp(&sim, "GET", "/version", None).await.0,
        0,
        "no HTTP response"
    );
    assert_eq!(ahttp(&sim, "GET", "/sim/v1/faults", None).await.0, 200);
    assert_eq!(ahttp(&sim, "DELETE", "/sim/v1/faults", None).await.0, 200);
    assert_eq!(ahttp(&sim, "GET", "/version", None).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watches_and_gone() {
    let sim = start_with(SimConfig {
        watch_history: 5,
        ..SimConfig::default()
    })
    .await;
    for i in 0..10 {
        ahttp(
            &sim,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some((J, &format!(r#"{{"metadata":{{"name":"c{i}"}}}}"#))),
        )
        .await;
    }
    let (c, v) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2",
        None,
    )
    .await;
    assert_eq!(c, 410, "{v}");
    assert_eq!(v["code"], 410);
    sim.set_faults(FaultConfig {
        drop_watches_after_events: Some(3),
        ..Default::default()
    });
    // a watch from "now" replays 10 ADDED events but is cut after 3
    let (c, v) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=5",
        None,
    )
    .await;
    assert_eq!(c, 200);
    let text = v
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| v.to_string());
    assert_eq!(
        text.lines().filter(|l| l.contains("\"ADDED\"")).count(),
        3,
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_policies() {
    let sim = start().await;
    let d = "/apis/apps/v1/namespaces/default/deployments";
    for name in ["bg", "orphan", "fg"] {
        apply(&sim, &format!("{d}/{name}"), &deployment(name, 2, "app:1")).await;
        wait_for(&sim, &format!("{d}/{name}"), "ready", |v| {
            v["status"]["readyReplicas"] == 2
        })
        .await;
    }
    let pods_of =
        |name: &'static str| format!("/api/v1/namespaces/default/pods?labelSelector=app%3D{name}");
    let rs_of = |name: &'static str| {
        format!("/apis/apps/v1/namespaces/default/replicasets?labelSelector=app%3D{name}")
    };
    // background
    let (c, _) = ahttp(&sim, "DELETE", &format!("{d}/bg"), None).await;
    assert_eq!(c, 200);
    wait_for(&sim, &pods_of("bg"), "pods gone", |v| {
        v["items"].as_array().unwrap().is_empty()
    })
    .await;
    wait_for(&sim, &rs_of("bg"), "rs gone", |v| {
        v["items"].as_array().unwrap().is_empty()
    })
    .await;
    // orphan: the ReplicaSet stays, without an owner
    let (c, _) = ahttp(
        &sim,
        "DELETE",
        &format!("{d}/orphan?propagationPolicy=Orphan"),
        None,
    )
    .await;
    assert_eq!(c, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, rs) = ahttp(&sim, "GET", &rs_of("orphan"), None).await;
    assert_eq!(rs["items"].as_array().unwrap().len(), 1);
    assert!(
        rs["items"][0]["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    let (_, pods) = ahttp(&sim, "GET", &pods_of("orphan"), None).await;
    assert_eq!(pods["items"].as_array().unwrap().len(), 2);
    // foreground: the owner is kept (deletionTimestamp) until dependents are gone
    let (c, v) = ahttp(
        &sim,
        "DELETE",
        &format!("{d}/fg"),
        Some((J, r#"{"propagationPolicy":"Foreground"}"#)),
    )
    .await;
    assert!(c == 200 || c == 202, "{v}");
    assert!(v["metadata"]["deletionTimestamp"].is_string());
    assert!(
        v["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    wait_for(&sim, d, "fg gone", |v| {
        !v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "fg")
    })
    .await;
    let (_, pods) = ahttp(&sim, "GET", &pods_of("fg"), None).await;
    assert!(pods["items"].as_array().unwrap().is_empty());
    // namespace deletion removes its contents
    ns(&sim, "tmp", json!({})).await;
    ahttp(
        &sim,
        "POST",
        "/api/v1/namespaces/tmp/configmaps",
        Some((J, r#"{"metadata":{"name":"x"}}"#)),
    )
    .await;
    let (c, v) = ahttp(&sim, "DELETE", "/api/v1/namespaces/tmp", None).await;
    assert!(c == 200 || c == 202);
    assert_eq!(v["status"]["phase"], "Terminating");
    wait_for(&sim, "/api/v1/namespaces", "ns gone", |v| {
        !v["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["name"] == "tmp")
    })
    .await;
    let (c, _) = ahttp(&sim, "GET", "/api/v1/namespaces/tmp/configmaps/x", None).await;
    assert_eq!(c, 404);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_respects_surge_and_unavailable() {
    let sim = start().await;
    let path = "/apis/apps/v1/namespaces/default/deployments/r";
    let dep = |image: &str| {
        let mut v: Value = serde_json::from_str(&deployment("r", 4, image)).unwrap();
        v["spec"]["strategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
        v.to_string()
    };
    apply(&sim, path, &dep("app:1")).await;
    let v = wait_for(&sim, path, "complete", |v| {
        v["status"]["availableReplicas"] == 4
    })
    .await;
    let progressing = v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Progressing")
        .unwrap()
        .clone();
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    // follow every pod event in-process while rolling out
    let mut rx = sim.cluster().store.subscribe();
    apply(&sim, path, &dep("app:2")).await;
    let mut pods = std::collections::HashMap::<String, bool>::new();
    for p in sim
        .cluster()
        .store
        .list("/pods", Some("default"), None, 0, &|_| true)
        .0
    {
        pods.insert(
            p.name().to_string(),
            meshup_sim::admission::pod_ready(&p.value),
        );
    }
    let mut max_total = 0;
    let mut min_ready = usize::MAX;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("rollout finishes")
            .unwrap();
        if &*ev.key == "/pods" {
            match ev.ty {
                meshup_sim::store::EventType::Deleted => {
                    pods.remove(ev.obj.name());
                }
                _ => {
                    pods.insert(
                        ev.obj.name().to_string(),
                        meshup_sim::admission::pod_ready(&ev.obj.value),
                    );
                }
            }
            max_total = max_total.max(pods.len());
            min_ready = min_ready.min(pods.values().filter(|r| **r).count());
        }
        if &*ev.key == "apps/deployments" {
            let s = &ev.obj.value["status"];
            if s["updatedReplicas"] == 4
                && s["availableReplicas"] == 4
                && s["replicas"] == 4
                && s["observedGeneration"] == 2
            {
                break;
            }
        }
    }
    assert!(max_total <= 5, "maxSurge 1 exceeded: {max_total} pods");
    assert!(
        min_ready >= 4,
        "maxUnavailable 0 violated: {min_ready} ready"
    );
    let (_, v) = ahttp(&sim, "GET", path, None).await;
    assert_eq!(
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    // rolling back to the first template reuses its ReplicaSet as revision 3
    apply(&sim, path, &dep("app:1")).await;
    let v = wait_for(&sim, path, "rolled back", |v| {
        v["status"]["observedGeneration"] == 3
            && v["status"]["updatedReplicas"] == 4
            && v["status"]["replicas"] == 4
            && v["status"]["availableReplicas"] == 4
    })
    .await;
    assert_eq!(
        v["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    let (_, rs) = ahttp(
        &sim,
        "GET",
        "/apis/apps/v1/namespaces/default/replicasets",
        None,
    )
    .await;
    assert_eq!(
        rs["items"].as_array().unwrap().len(),
        2,
        "the old ReplicaSet was reused"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_deadline_and_never_ready_fault() {
    let sim = start().await;
    sim.set_faults(FaultConfig {
        never_ready: vec!["stuck".into()],
        ..Default::default()
    });
    let path = "/apis/apps/v1/namespaces/default/deployments/stuck";
    let mut v: Value = serde_json::from_str(&deployment("stuck", 2, "app:1")).unwrap();
    v["spec"]["progressDeadlineSeconds"] = json!(1);
    apply(&sim, path, &v.to_string()).await;
    let d = wait_for(&sim, path, "deadline exceeded", |v| {
        v["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Progressing"
                    && c["reason"] == "ProgressDeadlineExceeded"
                    && c["status"] == "False"
            })
        })
    })
    .await;
    let avail = d["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Available")
        .unwrap()
        .clone();
    assert_eq!(avail["status"], "False");
    assert_eq!(avail["reason"], "MinimumReplicasUnavailable");
    assert_eq!(d["status"]["readyReplicas"], 0);
    assert_eq!(d["status"]["unavailableReplicas"], 2);
    let (_, pods) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dstuck",
        None,
    )
    .await;
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["status"]["phase"], "Running");
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdb_daemonset_endpoints_and_status_subresource() {
    let sim = start().await;
    apply(
        &sim,
        "/apis/apps/v1/namespaces/default/deployments/istiod",
        &deployment("istiod", 2, "pilot:1"),
    )
    .await;
    apply(&sim, "/apis/policy/v1/namespaces/default/poddisruptionbudgets/istiod",
        &json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "istiod"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "istiod"}}}}).to_string()).await;
    let pdb = wait_for(
        &sim,
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets/istiod",
        "pdb",
        |v| v["status"]["currentHealthy"] == 2,
    )
    .await;
    assert_eq!(pdb["status"]["desiredHealthy"], 1);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 1);
    assert_eq!(pdb["status"]["expectedPods"], 2);
    apply(&sim, "/apis/apps/v1/namespaces/default/daemonsets/cni",
        &json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "cni"},
                "spec": {"selector": {"matchLabels": {"app": "cni"}}, "template": {"metadata": {"labels": {"app": "cni"}}, "spec": {"containers": [{"name": "c", "image": "cni:1"}]}}}}).to_string()).await;
    let ds = wait_for(
        &sim,
        "/apis/apps/v1/namespaces/default/daemonsets/cni",
        "ds",
        |v| v["status"]["numberReady"] == 1,
    )
    .await;
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1);
    assert_eq!(ds["status"]["updatedNumberScheduled"], 1);
    apply(&sim, "/api/v1/namespaces/default/services/istiod",
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "istiod"}, "spec": {"selector": {"app": "istiod"}, "ports": [{"name": "https-webhook", "port": 443, "targetPort": 15017}]}}).to_string()).await;
    let ep = wait_for(
        &sim,
        "/api/v1/namespaces/default/endpoints/istiod",
        "endpoints",
        |v| {
            v["subsets"][0]["addresses"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        },
    )
    .await;
    apply(&sim, "/api/v1/namespaces/default/services/gw", &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "gw"}, "spec": {"type": "LoadBalancer", "selector": {"app": "gw"}, "ports": [{"port": 80}]}}).to_string()).await;
    wait_for(
        &sim,
        "/api/v1/namespaces/default/services/gw",
        "lb ip",
        |v| v["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1",
    )
    .await;
    let slices = wait_for(&sim, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Distiod", "slices", |v| {
        v["items"][0]["endpoints"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|e| e["conditions"]["ready"] == true))
    })
    .await;
    assert_eq!(slices["items"][0]["ports"][0]["port"], 15017);
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 15017);
    // status subresource: main resource ignores status, /status ignores spec
    let cm_path = "/apis/apps/v1/namespaces/default/deployments/istiod";
    let (_, cur) = ahttp(&sim, "GET", cm_path, None).await;
    let (c, v) = ahttp(
        &sim,
        "PATCH",
        cm_path,
        Some((
            "application/merge-patch+json",
            r#"{"status":{"replicas":99}}"#,
        )),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(v["status"]["replicas"], cur["status"]["replicas"]);
    assert_eq!(v["metadata"]["generation"], 1);
    let (c, v) = ahttp(
        &sim,
        "PATCH",
        &format!("{cm_path}/status"),
        Some((
            "application/merge-patch+json",
            r#"{"spec":{"replicas":7},"status":{"observedGeneration":1}}"#,
        )),
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(v["spec"]["replicas"], 2);
    // strategic merge keeps other containers, merges by name
    let (c, v) = ahttp(
        &sim,
        "PATCH",
        cm_path,
        Some((
            "application/strategic-merge-patch+json",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"pilot:2"}]}}}}"#,
        )),
    )
    .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(
        v["spec"]["template"]["spec"]["containers"][0]["image"],
        "pilot:2"
    );
    assert_eq!(v["metadata"]["generation"], 2);
    // immutable selector → 422; bad patch type → 415; unknown resource → 404; bad method → 405
    let (c, v) = ahttp(&sim, "PATCH", cm_path, Some(("application/merge-patch+json", r#"{"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}}}}}"#))).await;
    assert_eq!((c, v["reason"].as_str()), (422, Some("Invalid")));
    let (c, _) = ahttp(&sim, "PATCH", cm_path, Some(("text/plain", "x"))).await;
    assert_eq!(c, 415);
    let (c, v) = ahttp(
        &sim,
        "GET",
        "/apis/apps/v1/namespaces/default/widgets",
        None,
    )
    .await;
    assert_eq!((c, v["reason"].as_str()), (404, Some("NotFound")));
    let (c, v) = ahttp(
        &sim,
        "PUT",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some((J, "{}")),
    )
    .await;
    assert_eq!((c, v["reason"].as_str()), (405, Some("MethodNotAllowed")));
    let (c, v) = ahttp(
        &sim,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some((J, "{not json")),
    )
    .await;
    assert_eq!((c, v["reason"].as_str()), (400, Some("BadRequest")));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_reviews_honour_denied_set() {
    let sim = start().await;
    sim.set_faults(FaultConfig {
        denied: vec![meshup_sim::faults::Denied {
            verb: "delete".into(),
            resource: "customresourcedefinitions".into(),
            group: None,
            namespace: None,
        }],
        ..Default::default()
    });
    let review = |verb: &str, res: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": res, "group": "apiextensions.k8s.io"}}}).to_string()
    };
    let p = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (c, v) = ahttp(
        &sim,
        "POST",
        p,
        Some((J, &review("delete", "customresourcedefinitions"))),
    )
    .await;
    assert_eq!(c, 201);
    assert_eq!(v["status"]["allowed"], false);
    let (_, v) = ahttp(
        &sim,
        "POST",
        p,
        Some((J, &review("get", "customresourcedefinitions"))),
    )
    .await;
    assert_eq!(v["status"]["allowed"], true);
    // The requests themselves are refused as the reviews say.
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let (c, v) = ahttp(&sim, "DELETE", &format!("{crds}/x.example.com"), None).await;
    assert_eq!((c, v["reason"].as_str()), (403, Some("Forbidden")), "{v}");
    let (c, _) = ahttp(&sim, "GET", crds, None).await;
    assert_eq!(c, 200);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_file_keeps_status() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.yaml");
    std::fs::write(&seed, r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: istiod, namespace: istio-system}
spec:
  replicas: 1
  selector: {matchLabels: {app: istiod}}
  template:
    metadata: {labels: {app: istiod}}
    spec: {containers: [{name: discovery, image: "docker.io/istio/pilot:1.7.8"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: shop, labels: {app: shop}}
spec: {containers: [{name: app, image: app:1}, {name: istio-proxy, image: "docker.io/istio/proxyv2:1.7.8"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: failing, namespace: shop}
spec: {containers: [{name: app, image: app:1}]}
status: {phase: Failed}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {istio-injection: enabled}}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-abc, namespace: shop, uid: 11111111-2222-4333-8444-555555555555}
spec:
  replicas: 2
  selector: {matchLabels: {app: web, pod-template-hash: abc}}
  template:
    metadata: {labels: {app: web, pod-template-hash: abc}}
    spec: {containers: [{name: app, image: app:1}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: web-abc-1
  namespace: shop
  labels: {app: web, pod-template-hash: abc}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, uid: 11111111-2222-4333-8444-555555555555, controller: true}]
spec: {containers: [{name: app, image: app:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-abc-2, namespace: shop, labels: {app: web, pod-template-hash: abc}}
spec: {containers: [{name: app, image: app:1}]}
"#).unwrap();
    let sim = start_with(SimConfig {
        seed: Some(seed),
        ..SimConfig::default()
    })
    .await;
    let (c, p) = ahttp(&sim, "GET", "/api/v1/namespaces/shop/pods/old", None).await;
    assert_eq!(c, 200);
    assert_eq!(p["status"]["phase"], "Running");
    assert!(meshup_sim::admission::pod_ready(&p));
    assert_eq!(
        p["spec"]["containers"].as_array().unwrap().len(),
        2,
        "seeded pods are not re-injected"
    );
    // seeded uids are kept and orphans matching a ReplicaSet are adopted: no new pods
    let rs = wait_for(
        &sim,
        "/apis/apps/v1/namespaces/shop/replicasets/web-abc",
        "rs status",
        |v| v["status"]["readyReplicas"] == 2,
    )
    .await;
    assert_eq!(
        rs["metadata"]["uid"],
        "11111111-2222-4333-8444-555555555555"
    );
    let (_, pods) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb",
        None,
    )
    .await;
    let names: Vec<&str> = pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["web-abc-1", "web-abc-2"]);
    let (_, p) = ahttp(&sim, "GET", "/api/v1/namespaces/shop/pods/failing", None).await;
    assert_eq!(p["status"]["phase"], "Failed");
    let (_, n) = ahttp(&sim, "GET", "/api/v1/namespaces/shop", None).await;
    assert_eq!(n["metadata"]["labels"]["istio-injection"], "enabled");
    wait_for(
        &sim,
        "/apis/apps/v1/namespaces/istio-system/deployments/istiod",
        "seeded deployment rolls out",
        |v| v["status"]["readyReplicas"] == 1,
    )
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_selector_sees_objects_leave_and_enter() {
    let sim = start().await;
    let p = "/api/v1/namespaces/default/configmaps";
    ahttp(
        &sim,
        "POST",
        p,
        Some((J, r#"{"metadata":{"name":"a","labels":{"team":"x"}}}"#)),
    )
    .await;
    let (_, list) = ahttp(&sim, "GET", p, None).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let fake = common::FakeSim {
        addr: sim.addr(),
        url: sim.url(),
    };
    let path =
        format!("{p}?watch=true&labelSelector=team%3Dx&resourceVersion={rv}&timeoutSeconds=2");
    let watch = tokio::task::spawn_blocking(move || common::http_addr(&fake, "GET", &path, None).1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ahttp(
        &sim,
        "PATCH",
        &format!("{p}/a"),
        Some((
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"team":"y"}}}"#,
        )),
    )
    .await;
    ahttp(
        &sim,
        "POST",
        p,
        Some((J, r#"{"metadata":{"name":"b","labels":{"team":"y"}}}"#)),
    )
    .await;
    ahttp(
        &sim,
        "PATCH",
        &format!("{p}/b"),
        Some((
            "application/merge-patch+json",
            r#"{"metadata":{"labels":{"team":"x"}}}"#,
        )),
    )
    .await;
    let text = watch.await.unwrap();
    let events: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["type"].as_str().unwrap().to_string(),
                v["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .filter(|(t, _)| t != "BOOKMARK")
        .collect();
    assert_eq!(
        events,
        vec![
            ("DELETED".to_string(), "a".to_string()),
            ("ADDED".to_string(), "b".to_string())
        ],
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_daemonset_update_crd_removal_and_deletecollection() {
    let sim = start().await;
    // Recreate: old pods go before new ones come
    let path = "/apis/apps/v1/namespaces/default/deployments/rc";
    let dep = |image: &str| {
        let mut v: Value = serde_json::from_str(&deployment("rc", 2, image)).unwrap();
        v["spec"]["strategy"] = json!({"type": "Recreate"});
        v.to_string()
    };
    apply(&sim, path, &dep("app:1")).await;
    wait_for(&sim, path, "ready", |v| {
        v["status"]["availableReplicas"] == 2
    })
    .await;
    let mut rx = sim.cluster().store.subscribe();
    apply(&sim, path, &dep("app:2")).await;
    let mut images = std::collections::HashMap::<String, String>::new();
    for p in sim
        .cluster()
        .store
        .list("/pods", Some("default"), None, 0, &|_| true)
        .0
    {
        images.insert(
            p.name().to_string(),
            p.value["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("recreate finishes")
            .unwrap();
        if &*ev.key == "/pods" {
            if ev.ty == meshup_sim::store::EventType::Deleted {
                images.remove(ev.obj.name());
            } else {
                images.insert(
                    ev.obj.name().to_string(),
                    ev.obj.value["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            let kinds: std::collections::HashSet<&String> = images.values().collect();
            assert!(
                kinds.len() <= 1,
                "old and new pods ran together: {images:?}"
            );
        }
        if &*ev.key == "apps/deployments"
            && ev.obj.value["status"]["updatedReplicas"] == 2
            && ev.obj.value["status"]["availableReplicas"] == 2
            && ev.obj.value["status"]["observedGeneration"] == 2
        {
            break;
        }
    }
    // DaemonSet template change replaces its pod
    let ds_path = "/apis/apps/v1/namespaces/default/daemonsets/agent";
    let ds = |image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": image}]}}}}).to_string()
    };
    apply(&sim, ds_path, &ds("agent:1")).await;
    wait_for(&sim, ds_path, "ds ready", |v| {
        v["status"]["numberReady"] == 1
    })
    .await;
    apply(&sim, ds_path, &ds("agent:2")).await;
    wait_for(&sim, ds_path, "ds updated", |v| {
        v["status"]["observedGeneration"] == 2
            && v["status"]["updatedNumberScheduled"] == 1
            && v["status"]["numberReady"] == 1
    })
    .await;
    let (_, pods) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dagent",
        None,
    )
    .await;
    let items = pods["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["spec"]["containers"][0]["image"], "agent:2");
    // deleting a CRD removes its objects and its type
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}}).to_string();
    let (c, v) = ahttp(
        &sim,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some((J, &crd)),
    )
    .await;
    assert_eq!(c, 201, "{v}");
    let conds: Vec<&str> = v["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "True")
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert!(conds.contains(&"Established") && conds.contains(&"NamesAccepted"));
    let (_, disc) = ahttp(&sim, "GET", "/apis/example.com/v1", None).await;
    assert_eq!(disc["resources"][0]["name"], "widgets");
    let (c, _) = ahttp(&sim, "POST", "/apis/example.com/v1/namespaces/default/widgets", Some((J, r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":1}}"#))).await;
    assert_eq!(c, 201);
    let (c, _) = ahttp(
        &sim,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        None,
    )
    .await;
    assert_eq!(c, 200);
    let (c, _) = ahttp(
        &sim,
        "GET",
        "/apis/example.com/v1/namespaces/default/widgets/w",
        None,
    )
    .await;
    assert_eq!(c, 404);
    let (_, groups) = ahttp(&sim, "GET", "/apis", None).await;
    assert!(
        !groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );
    // deletecollection with a selector
    for (n, l) in [("a", "x"), ("b", "x"), ("c", "y")] {
        ahttp(
            &sim,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some((
                J,
                &format!(r#"{{"metadata":{{"name":"{n}","labels":{{"k":"{l}"}}}}}}"#),
            )),
        )
        .await;
    }
    let (c, v) = ahttp(
        &sim,
        "DELETE",
        "/api/v1/namespaces/default/configmaps?labelSelector=k%3Dx",
        None,
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let (_, left) = ahttp(
        &sim,
        "GET",
        "/api/v1/namespaces/default/configmaps?labelSelector=k",
        None,
    )
    .await;
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    sim.shutdown().await;
}
