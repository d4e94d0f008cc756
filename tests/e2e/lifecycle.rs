//! History, rollback, permissions, leftover webhooks, canaries and data-plane restarts.

use serde_json::Value;

use crate::common::*;

fn releases(sim: &Sim) -> Vec<Value> {
    sim.meshup(&["history", "-o", "json"]).expect(0).json()["releases"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn rollback_to_previous_and_to_a_named_revision_and_history_is_bounded() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
    let back = sim
        .meshup(&["rollback", "-y", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(back["restored_revision"], 1);
    assert_eq!(sim.istiod_versions(), vec!["1.7.8"]);
    // The pruned 1.7-only object (istiod's ClusterRoleBinding, renamed in 1.8) is back.
    assert_eq!(
        sim.http(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/istiod-pilot-istio-system",
            None
        )
        .0,
        200
    );
    sim.meshup(&["rollback", "--to", "2", "-y"]).expect(0);
    assert_eq!(sim.istiod_versions(), vec!["1.8.6"]);
    let hist = releases(&sim);
    let actions: Vec<&str> = hist.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["install", "upgrade", "rollback", "rollback"]);
    assert_eq!(hist.last().unwrap()["status"], "deployed");
    let bad = sim.meshup(&["rollback", "--to", "9", "-y"]);
    bad.expect(2);
    assert!(bad.stderr.contains("no revision 9"), "{}", bad.stderr);

    // --history-max keeps the newest N records.
    sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--history-max",
        "2",
    ])
    .expect(0);
    let hist = releases(&sim);
    assert_eq!(hist.len(), 2, "{hist:?}");
    assert_eq!(hist[1]["status"], "deployed");
    // Records are compressed Secrets, one per revision.
    let secrets = sim.get("/api/v1/namespaces/istio-system/secrets?labelSelector=owner%3Dmeshup");
    assert_eq!(secrets["items"].as_array().unwrap().len(), 2);
    assert_eq!(secrets["items"][0]["type"], "meshup.dev/release.v1");
}

#[test]
fn missing_permissions_are_listed_before_anything_is_applied() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.set_faults(&serde_json::json!({"denied": [{"verb": "patch", "resource": "deployments", "group": "apps"}]}));
    sim.clear_requests();
    let run = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y", "-o", "json"]);
    run.expect(3);
    let doc = run.json();
    assert!(
        codes(&doc).contains(&"permissions.missing".to_string()),
        "{doc}"
    );
    let msg = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "permissions.missing")
        .unwrap()["message"]
        .clone();
    assert!(
        msg.as_str()
            .unwrap()
            .contains("patch deployments.apps in istio-system"),
        "{msg}"
    );
    assert!(sim.mutations().is_empty());
}

/// What a user bound to the built-in `view` ClusterRole may not do, as the simulator's
/// `denied` faults (the access reviews say no, and the requests get 403): no writes at all,
/// and no Secrets.
fn view_role() -> Value {
    let mut denied: Vec<Value> = ["create", "update", "patch", "delete", "deletecollection"]
        .iter()
        .map(|v| serde_json::json!({"verb": v, "resource": "*", "group": "*"}))
        .collect();
    denied.extend(
        ["get", "list", "watch"]
            .iter()
            .map(|v| serde_json::json!({"verb": v, "resource": "secrets", "group": ""})),
    );
    serde_json::json!({ "denied": denied })
}

#[test]
fn a_reader_without_secrets_gets_a_plan_and_the_missing_permissions() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.set_faults(&view_role());
    sim.clear_requests();
    let run = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"]);
    run.expect(3);
    let doc = run.json();
    assert_eq!(doc["blocked"], true, "{doc}");
    let missing: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "permissions.missing")
        .collect();
    let of = |subject: &str| {
        missing
            .iter()
            .find(|f| f["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject} finding: {doc}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // What it could not read, and what for: the history first.
    let read = of("read");
    assert!(
        read.contains("list secrets in istio-system (meshup's release history"),
        "{read}"
    );
    assert!(!read.contains("deployments"), "{read}");
    // What an upgrade would need besides.
    let write = of("upgrade");
    assert!(
        write.contains("patch deployments.apps in istio-system"),
        "{write}"
    );
    assert!(write.contains("create secrets in istio-system"), "{write}");
    assert_eq!(missing[0]["severity"], "error", "{doc}");
    // What it may read it did: the running control plane, and the objects (whose
    // changes it may not dry-run).
    assert_eq!(doc["current_version"], "1.7.8", "{doc}");
    assert!(doc["plan"]["unknown"].as_u64().unwrap_or(0) > 0, "{doc}");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());

    // The text says the same, and that history is unknown.
    let text = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6")]);
    text.expect(3);
    let all = text.all();
    assert!(
        all.contains("meshup's release history in istio-system could not be read"),
        "{all}"
    );
    assert!(all.contains("permissions.missing"), "{all}");
    assert!(
        all.contains("list secrets in istio-system (meshup's release history"),
        "{all}"
    );
    // Nothing waives an incomplete plan.
    sim.meshup(&[
        "precheck",
        "--bundle",
        &b("istio-1.8.6"),
        "--ignore",
        "permissions.missing",
    ])
    .expect(3);
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}

const LEFTOVER_WEBHOOK: &str = r#"{"apiVersion":"admissionregistration.k8s.io/v1","kind":"MutatingWebhookConfiguration",
  "metadata":{"name":"istio-sidecar-injector-1-6","labels":{"app":"sidecar-injector","istio.io/rev":"1-6"}},
  "webhooks":[{"name":"rev.sidecar-injector.istio.io","clientConfig":{"service":{"name":"istiod-1-6","namespace":"istio-system","path":"/inject"}},
  "sideEffects":"None","admissionReviewVersions":["v1"],"failurePolicy":"Ignore",
  "rules":[{"operations":["CREATE"],"apiGroups":[""],"apiVersions":["v1"],"resources":["pods"]}]}]}"#;

#[test]
fn webhooks_left_by_a_removed_control_plane_are_reported() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    let (code, body) = sim.http(
        "POST",
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        Some(LEFTOVER_WEBHOOK),
    );
    assert_eq!(code, 201, "{body}");
    let doc = sim
        .meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"])
        .expect(0)
        .json();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "webhooks.orphaned")
        .cloned();
    let f = f.unwrap_or_else(|| panic!("{doc}"));
    assert!(f["message"].as_str().unwrap().contains("istiod-1-6"), "{f}");
}

const CANARY: &str = r#"{"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"istiod-canary","namespace":"istio-system","labels":{"app":"istiod","istio.io/rev":"canary"}},
  "spec":{"replicas":1,"selector":{"matchLabels":{"app":"istiod","istio.io/rev":"canary"}},
  "template":{"metadata":{"labels":{"app":"istiod","istio.io/rev":"canary"}},
  "spec":{"containers":[{"name":"discovery","image":"docker.io/istio/pilot:1.8.6"}]}}}}"#;

#[test]
fn a_canary_beside_the_default_control_plane_is_reported_and_left_alone() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    let (code, body) = sim.http(
        "POST",
        "/apis/apps/v1/namespaces/istio-system/deployments",
        Some(CANARY),
    );
    assert_eq!(code, 201, "{body}");
    wait_ready(&sim, "istio-system", "istiod-canary", 1);
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6")]);
    pre.expect(0);
    assert!(
        pre.stdout.contains(
            "revision `canary` (istiod-canary) at 1.8.6 runs beside it and is left alone"
        ),
        "{}",
        pre.stdout
    );
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
    let st = sim.meshup(&["status", "-o", "json"]).expect(0).json();
    let cps = st["control_planes"].as_array().unwrap();
    assert_eq!(cps.len(), 2);
    assert_eq!(
        (cps[0]["revision"].as_str(), cps[0]["version"].as_str()),
        (Some("default"), Some("1.8.6"))
    );
    assert_eq!(
        (cps[1]["revision"].as_str(), cps[1]["version"].as_str()),
        (Some("canary"), Some("1.8.6"))
    );
    let canary = sim.get("/apis/apps/v1/namespaces/istio-system/deployments/istiod-canary");
    assert!(
        canary["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["manager"] != "meshup"),
        "meshup did not touch the canary"
    );
}

#[test]
fn dataplane_restart_dry_run_changes_nothing() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    deploy_cart(&sim, 1);
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
    sim.clear_requests();
    let dry = sim
        .meshup(&["dataplane", "restart", "--dry-run", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(dry["not_restarted"][0], "shop/deployment/cart");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}
