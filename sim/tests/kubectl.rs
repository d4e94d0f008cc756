//! Real `kubectl` against the simulator. Each test prints a SKIPPED message to
//! stderr when kubectl is not on PATH.

mod common;

use common::{Kubectl, WEB, ahttp, start};
use serde_json::Value;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gateways.networking.istio.io
spec:
  group: networking.istio.io
  names: {kind: Gateway, plural: gateways, singular: gateway, shortNames: [gw]}
  scope: Namespaced
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

const GW: &str = r#"apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  selector: {istio: ingressgateway}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_all_and_api_resources() {
    let sim = start().await;
    let Some(k) = Kubectl::new(&sim) else { return };
    let out = k.ok(&["version", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["serverVersion"]["gitVersion"], "v1.30.4");
    let out = k.ok(&["get", "-A", "namespaces,services,pods"]).await;
    assert!(out.contains("kube-system"), "{out}");
    assert!(out.contains("kubernetes"), "{out}");
    let out = k.ok(&["api-resources"]).await;
    for needle in [
        "deployments",
        "deploy",
        "poddisruptionbudgets",
        "horizontalpodautoscalers",
        "leases",
        "mutatingwebhookconfigurations",
        "customresourcedefinitions",
        "selfsubjectaccessreviews",
        "clusterrolebindings",
    ] {
        assert!(out.contains(needle), "api-resources lacks {needle}:\n{out}");
    }
    let out = k.ok(&["get", "nodes", "-o", "name"]).await;
    assert!(out.contains("node/sim-node"));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_server_side_crd_then_custom_resource() {
    let sim = start().await;
    let Some(k) = Kubectl::new(&sim) else { return };
    let web = k.file("web.yaml", WEB);
    let out = k.ok(&["apply", "--server-side", "-f", &k.path(&web)]).await;
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let crd = k.file("crd.yaml", CRD);
    k.ok(&["apply", "--server-side", "-f", &k.path(&crd)]).await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/gateways.networking.istio.io",
        "--timeout=10s",
    ])
    .await;
    let gw = k.file("gw.yaml", GW);
    let out = k.ok(&["apply", "--server-side", "-f", &k.path(&gw)]).await;
    assert!(
        out.contains("gateway.networking.istio.io/gw serverside-applied"),
        "{out}"
    );
    let out = k
        .ok(&[
            "get",
            "gw",
            "-n",
            "shop",
            "-o",
            "jsonpath={.items[0].spec.selector.istio}",
        ])
        .await;
    assert_eq!(out, "ingressgateway");
    let out = k
        .ok(&["api-resources", "--api-group=networking.istio.io"])
        .await;
    assert!(out.contains("gateways"), "{out}");
    // a second manager changing an owned field conflicts, --force-conflicts wins
    let scaled = k.file("scaled.yaml", &WEB.replace("replicas: 3", "replicas: 5"));
    let out = k
        .run(&[
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            &k.path(&scaled),
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict") && err.contains(".spec.replicas"),
        "{err}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        &k.path(&scaled),
    ])
    .await;
    let out = k
        .ok(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.replicas}",
        ])
        .await;
    assert_eq!(out, "5");
    // fieldValidation=Strict: unknown fields are refused
    let typo = k.file("typo.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: t, namespace: shop}\ndata: {a: b}\ndatta: {c: d}\n");
    let out = k
        .run(&["apply", "--server-side", "-f", &k.path(&typo)])
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown field \"datta\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // client-side apply and dry-run also work
    let out = k
        .ok(&["apply", "--dry-run=server", "-f", &k.path(&web)])
        .await;
    assert!(out.contains("server dry run"), "{out}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_restart_rollout_status_wait_delete() {
    let sim = start().await;
    let Some(k) = Kubectl::new(&sim) else { return };
    let web = k.file("web.yaml", WEB);
    k.ok(&["apply", "--server-side", "-f", &k.path(&web)]).await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=30s",
    ])
    .await;
    k.ok(&[
        "-n",
        "shop",
        "wait",
        "--for=condition=Available",
        "deploy/web",
        "--timeout=30s",
    ])
    .await;
    // server-side tables: the usual columns
    let out = k.ok(&["-n", "shop", "get", "deploy,pods"]).await;
    assert!(out.contains("UP-TO-DATE") && out.contains("3/3"), "{out}");
    assert!(
        out.contains("STATUS") && out.contains("Running") && out.contains("1/1"),
        "{out}"
    );
    k.ok(&["-n", "shop", "scale", "deploy/web", "--replicas=4"])
        .await;
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=30s",
    ])
    .await;
    let out = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ])
        .await;
    assert_eq!(out, "4");
    k.ok(&["-n", "shop", "scale", "deploy/web", "--replicas=3"])
        .await;
    let out = k.ok(&["-n", "shop", "describe", "deploy", "web"]).await;
    assert!(
        out.contains("ScalingReplicaSet") && out.contains("MinimumReplicasAvailable"),
        "{out}"
    );
    let out = k.ok(&["-n", "shop", "logs", "deploy/web"]).await;
    assert!(out.contains("simulated log of container web"), "{out}");
    k.ok(&["-n", "shop", "label", "deploy", "web", "tier=frontend"])
        .await;
    let out = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "deploy",
            "-l",
            "tier=frontend",
            "-o",
            "name",
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web");
    k.ok(&["-n", "shop", "annotate", "deploy", "web", "note=x"])
        .await;
    let before = k.ok(&["-n", "shop", "get", "rs", "-o", "name"]).await;
    let out = k
        .ok(&["-n", "shop", "rollout", "restart", "deploy/web"])
        .await;
    assert!(out.contains("restarted"), "{out}");
    k.ok(&[
        "-n",
        "shop",
        "rollout",
        "status",
        "deploy/web",
        "--timeout=60s",
    ])
    .await;
    let after = k.ok(&["-n", "shop", "get", "rs", "-o", "name"]).await;
    assert_eq!(before.lines().count(), 1);
    assert_eq!(after.lines().count(), 2, "{after}");
    let pods = k.ok(&["-n", "shop", "get", "pods", "-o", "name"]).await;
    assert_eq!(pods.lines().count(), 3, "{pods}");
    let eps = k
        .ok(&[
            "-n",
            "shop",
            "get",
            "endpoints",
            "web",
            "-o",
            "jsonpath={.subsets[0].addresses[*].ip}",
        ])
        .await;
    assert_eq!(eps.split_whitespace().count(), 3, "{eps}");
    k.ok(&[
        "-n",
        "shop",
        "delete",
        "deploy",
        "web",
        "--wait=true",
        "--timeout=20s",
    ])
    .await;
    // background GC removes the ReplicaSets and pods
    let mut gone = false;
    for _ in 0..50 {
        let pods = k.ok(&["-n", "shop", "get", "pods,rs", "-o", "name"]).await;
        if pods.trim().is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(gone, "dependents were not garbage-collected");
    k.ok(&["delete", "namespace", "shop", "--timeout=20s"])
        .await;
    let out = k.run(&["get", "namespace", "shop"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound")
            || String::from_utf8_lossy(&out.stderr).contains("not found")
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_times_out_for_never_ready_workload() {
    let sim = start().await;
    let Some(k) = Kubectl::new(&sim) else { return };
    let web = k.file(
        "web.yaml",
        &WEB.replace("labels: {app: web}\n    spec:", "labels: {app: web}\n      annotations: {sim.meshup.dev/never-ready: \"true\"}\n    spec:"),
    );
    k.ok(&["apply", "--server-side", "-f", &k.path(&web)]).await;
    let out = k
        .run(&[
            "-n",
            "shop",
            "rollout",
            "status",
            "deploy/web",
            "--timeout=2s",
        ])
        .await;
    assert!(!out.status.success(), "rollout status should time out");
    let (code, v) = ahttp(
        &sim,
        "GET",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(v["status"]["readyReplicas"], 0);
    assert_eq!(v["status"]["unavailableReplicas"], 3);
    sim.shutdown().await;
}
