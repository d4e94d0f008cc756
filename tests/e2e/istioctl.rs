//! Installs that look like what `istioctl install` left in a cluster, and meshup taking over.
//!
//! The seeds are `common::istioctl_seed`: what istioctl leaves for a user's IstioOperator.

use serde_json::{Value, json};

use crate::common::*;

fn findings(doc: &Value, policy: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == policy)
        .map(|f| {
            (
                f["code"].as_str().unwrap_or_default().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn changed(path: &str) -> (String, String) {
    ("profile-defaults.changed".to_string(), path.to_string())
}

/// The default-profile values that really differ between the 1.7 and 1.8 bundles (as
/// between Istio's 1.7 and 1.8 charts): one finding each, whichever way the move goes.
fn defaults_1_7_vs_1_8() -> Vec<(String, String)> {
    vec![
        changed("components.ingressGateways[name:istio-ingressgateway].k8s.service"),
        changed("meshConfig.disableMixerHttpReports"),
        changed("values.global.controlPlaneSecurityEnabled"),
        changed("values.global.externalIstiod"),
        changed("values.global.trustDomain"),
    ]
}

/// The values of `USER_IOP`, which a run without the user's file would revert: one
/// finding each.
fn users_values_reverted() -> Vec<(String, String)> {
    let revert = |p: &str| ("values-revert.reverted".to_string(), p.to_string());
    vec![
        revert("components.pilot.k8s.replicaCount"),
        revert("meshConfig.accessLogFile"),
        revert("values.pilot.traceSampling"),
    ]
}

/// Likewise between 1.8 and 1.9.
fn defaults_1_8_vs_1_9() -> Vec<(String, String)> {
    vec![
        changed("meshConfig.defaultConfig.proxyMetadata.DNS_AGENT"),
        changed("values.global.configValidation"),
        changed("values.sidecarInjectorWebhook.objectSelector.enabled"),
    ]
}

/// The precheck of an istioctl 1.7.8 install against 1.8.6 finds what is true and no more:
/// the two values the user set and this run drops, and the real default changes.
#[test]
fn istioctl_install_of_the_previous_minor_prechecks_without_false_findings() {
    let sim = Sim::start_with(Some(&istioctl_seed("1.7.8", USER_IOP)), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["plan"]["install_method"], "istioctl", "{doc}");
    assert_eq!(doc["current_version"], "1.7.8");
    // What the user set, not what the profile set: the values this run would revert are
    // exactly the user's three, with the values the user gave.
    let reverted: Vec<(String, Value)> = doc["plan"]["reverted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["path"].as_str().unwrap().to_string(), v["old"].clone()))
        .collect();
    assert_eq!(
        reverted,
        vec![
            ("components.pilot.k8s.replicaCount".to_string(), json!(2)),
            ("meshConfig.accessLogFile".to_string(), json!("/dev/stdout")),
            ("values.pilot.traceSampling".to_string(), json!(5.0)),
        ]
    );
    assert_eq!(findings(&doc, "values-revert"), users_values_reverted());
    assert_eq!(findings(&doc, "profile-defaults"), defaults_1_7_vs_1_8());
    // No plan refusal: the selectors are istioctl's own.
    let rejected: Vec<&Value> = doc["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["rejected"].is_null())
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

fn exists(sim: &Sim, path: &str) -> bool {
    let (code, _) = sim.http("GET", path, None);
    assert!(code == 200 || code == 404, "GET {path}: {code}");
    code == 200
}

const CRB: &str = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/";
const EF: &str = "/apis/networking.istio.io/v1alpha3/namespaces/istio-system/envoyfilters/";

/// The objects one release has and the others' versions do not (all kept CRDs aside).
fn own_objects(version: &str) -> Vec<String> {
    let (crb, proxies): (&str, &[&str]) = match version {
        "1.7.8" => ("istiod-pilot-istio-system", &["1.6", "1.7"]),
        "1.8.6" => ("istiod-istio-system", &["1.6", "1.7", "1.8"]),
        _ => ("istiod-istio-system", &["1.8", "1.9"]),
    };
    let mut out = vec![format!("{CRB}{crb}")];
    for p in proxies {
        for f in [
            "metadata-exchange",
            "tcp-metadata-exchange",
            "stats-filter",
            "tcp-stats-filter",
        ] {
            out.push(format!("{EF}{f}-{p}"));
        }
    }
    out
}

fn all_objects() -> std::collections::BTreeSet<String> {
    ["1.7.8", "1.8.6", "1.9.5"]
        .iter()
        .flat_map(|v| own_objects(v))
        .collect()
}

/// From what istioctl 1.7.8 left, up one minor at a time to 1.9.5 and back down, with the
/// same -f as at install time.
#[test]
fn istioctl_1_7_install_goes_up_two_minors_and_back_keeping_the_users_values() {
    let sim = Sim::start_with(Some(&istioctl_seed("1.7.8", USER_IOP)), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let iop = sim.dir.path().join("iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    let (to_1_7, to_1_9) = (defaults_1_7_vs_1_8(), defaults_1_8_vs_1_9());
    step(&sim, &iop, "1.8.6", to_1_7.clone());
    step(&sim, &iop, "1.9.5", to_1_9.clone());
    step(&sim, &iop, "1.8.6", to_1_9);
    step(&sim, &iop, "1.7.8", to_1_7);
}

/// From what istioctl 1.8.6 left: the precheck without the user's file names exactly the
/// user's values it would revert and the real default changes; then up and down with it.
#[test]
fn istioctl_1_8_install_goes_up_and_down_to_1_7() {
    let sim = Sim::start_with(Some(&istioctl_seed("1.8.6", USER_IOP)), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.9.5"), "-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["current_version"], "1.8.6");
    assert_eq!(findings(&doc, "values-revert"), users_values_reverted());
    assert_eq!(findings(&doc, "profile-defaults"), defaults_1_8_vs_1_9());
    let iop = sim.dir.path().join("iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    step(&sim, &iop, "1.9.5", defaults_1_8_vs_1_9());
    step(&sim, &iop, "1.8.6", defaults_1_8_vs_1_9());
    step(&sim, &iop, "1.7.8", defaults_1_7_vs_1_8());
}

/// One move with the user's IstioOperator file: the precheck's findings are exactly
/// `expected`; afterwards every control-plane workload runs `target` and is ready (read
/// with kubectl), nothing of another version is left (renamed RBAC, dropped EnvoyFilters),
/// the user's values are in place and istioctl's installed-state describes what runs.
fn step(sim: &Sim, iop: &std::path::Path, target: &str, expected: Vec<(String, String)>) {
    let iop = iop.to_str().unwrap();
    let bundle = b(&format!("istio-{target}"));
    let pre = sim.meshup(&["precheck", "--bundle", &bundle, "-f", iop, "-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    let mut got: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected, "precheck findings towards {target}");
    assert!(
        doc["plan"]["reverted_values"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    sim.meshup(&["upgrade", "--bundle", &bundle, "-f", iop, "-y"])
        .expect(0);
    // Every control-plane Deployment and pod on the target, ready, read independently
    // (kubectl; the simulator's API only where kubectl is missing, never in CI).
    assert_eq!(
        sim.control_plane_problems(target),
        Vec::<String>::new(),
        "after the move to {target}"
    );
    let own: std::collections::BTreeSet<String> = own_objects(target).into_iter().collect();
    for path in all_objects() {
        assert_eq!(
            exists(sim, &path),
            own.contains(&path),
            "{path} at {target}"
        );
    }
    // The user's values, as the cluster has them.
    let istiod = sim.get("/apis/apps/v1/namespaces/istio-system/deployments/istiod");
    assert_eq!(istiod["spec"]["replicas"], 2);
    assert_eq!(
        istiod["spec"]["selector"],
        json!({"matchLabels": {"istio": "pilot"}})
    );
    let env = &istiod["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!({"name": "PILOT_TRACE_SAMPLING", "value": "5.0"})),
        "{env}"
    );
    let mesh = sim.get("/api/v1/namespaces/istio-system/configmaps/istio");
    assert!(
        mesh["data"]["mesh"]
            .as_str()
            .unwrap()
            .contains("/dev/stdout"),
        "{mesh}"
    );
    assert_eq!(
        istiod["metadata"]["labels"]["operator.istio.io/version"],
        target
    );
    // istioctl's record follows, so the user can go back to istioctl.
    let state = sim.get(
        "/apis/install.istio.io/v1alpha1/namespaces/istio-system/istiooperators/installed-state",
    );
    assert_eq!(state["spec"]["tag"], target);
    assert_eq!(state["spec"]["profile"], "default");
    assert_eq!(state["spec"]["values"]["pilot"]["traceSampling"], 5.0);
}

/// An EnvoyFilter in `istio-system` with the given labels.
fn envoy_filter(name: &str, labels: Value) -> String {
    let f = json!({
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {"name": name, "namespace": "istio-system", "labels": labels},
        "spec": {"configPatches": []}
    });
    serde_yaml::to_string(&f).unwrap()
}

/// What an install left that no release renders any more is found through istioctl's
/// ownership labels and pruned; objects without them, or of another revision, stay.
#[test]
fn objects_an_istioctl_install_left_are_pruned_through_its_labels() {
    let seed = [
        istioctl_seed("1.7.8", USER_IOP),
        // Istio 1.7's operator snapshot still shipped the 1.5 proxies' filters.
        envoy_filter(
            "stats-filter-1.5",
            json!({"operator.istio.io/component": "Pilot", "istio.io/rev": "default"}),
        ),
        envoy_filter("my-filter", json!({"app": "mine"})),
        envoy_filter(
            "stats-filter-canary",
            json!({"operator.istio.io/component": "Pilot", "istio.io/rev": "canary"}),
        ),
    ]
    .join("---\n");
    let sim = Sim::start_with(Some(&seed), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let iop = sim.dir.path().join("iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    let iop = iop.to_str().unwrap();
    let pre = sim.meshup(&[
        "precheck",
        "--bundle",
        &b("istio-1.8.6"),
        "-f",
        iop,
        "-o",
        "json",
    ]);
    pre.expect(0);
    let prunes: Vec<String> = pre.json()["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "prune")
        .map(|c| c["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        prunes,
        vec![
            "ClusterRoleBinding istiod-pilot-istio-system",
            "EnvoyFilter istio-system/stats-filter-1.5"
        ]
    );
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-f", iop, "-y"])
        .expect(0);
    assert!(!exists(&sim, &format!("{EF}stats-filter-1.5")));
    assert!(exists(&sim, &format!("{EF}my-filter")));
    assert!(exists(&sim, &format!("{EF}stats-filter-canary")));
    assert!(!exists(&sim, &format!("{CRB}istiod-pilot-istio-system")));
}
