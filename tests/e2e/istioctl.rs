//! Installs that look like what `istioctl install` left in a cluster, and meshup taking over.
//!
//! The seeds are `common::istioctl_seed`: what istioctl leaves for a user's IstioOperator.

use serde_json::{Value, json};

use crate::common::*;

fn changed(path: &str) -> (String, String) {
    ("profile-defaults.changed".to_string(), path.to_string())
}

const INGRESS: &str = "components.ingressGateways[name:istio-ingressgateway]";
const EGRESS: &str = "components.egressGateways[name:istio-egressgateway]";

/// The defaults that really differ between Istio 1.7's and 1.8's (profile over charts,
/// the same for default, demo and minimal): the gateways' router mode (`sni-dnat` →
/// `standard`), the ingress gateway's new `tcp-istiod` port, and the trust domain value.
/// One finding each, whichever way the move goes.
fn defaults_1_7_vs_1_8() -> Vec<(String, String)> {
    vec![
        changed(&format!("{EGRESS}.k8s.env")),
        changed(&format!("{INGRESS}.k8s.env")),
        changed(&format!("{INGRESS}.k8s.service")),
        changed("values.global.trustDomain"),
    ]
}

/// Likewise between 1.8 and 1.9: the injector's object selector, on in 1.9.
fn defaults_1_8_vs_1_9() -> Vec<(String, String)> {
    vec![changed(
        "values.sidecarInjectorWebhook.objectSelector.enabled",
    )]
}

/// What `USER_IOP` sets beyond Istio's default profile, with the values it gives: what a
/// run without the user's file reverts.
fn users_values() -> Vec<(&'static str, Value)> {
    vec![
        ("components.pilot.k8s.replicaCount", json!(2)),
        ("meshConfig.accessLogFile", json!("/dev/stdout")),
        ("values.pilot.traceSampling", json!(5.0)),
    ]
}

/// Beyond Istio's demo profile, which sets `accessLogFile: /dev/stdout` itself.
fn users_values_over_demo() -> Vec<(&'static str, Value)> {
    users_values()
        .into_iter()
        .filter(|(p, _)| *p != "meshConfig.accessLogFile")
        .collect()
}

fn reverted(values: &[(&str, Value)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(p, _)| ("values-revert.reverted".to_string(), p.to_string()))
        .collect()
}

/// The findings about values: what reverts, which defaults change, what istioctl chose
/// from the cluster (the pdb policy's, for one, speak of the cluster, not of values).
fn value_findings(doc: &Value) -> Vec<(String, String)> {
    let about_values = ["values-revert", "profile-defaults", "plan.cluster-specific"];
    let mut got: Vec<(String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            let code = f["code"].as_str().unwrap_or_default();
            about_values.iter().any(|p| code.starts_with(p))
        })
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    got.sort();
    got
}

/// A precheck of what `install` left towards `target`, without the user's file: its
/// findings about values are exactly the `reverts` and `others` (nothing a profile set,
/// nothing istioctl chose, never the release's own tag), and the plan's reverted values are
/// `reverts`, with the values the user gave.
fn precheck_finds_exactly(
    install: &IstioctlInstall,
    target: &str,
    reverts: &[(&str, Value)],
    others: Vec<(String, String)>,
) {
    let Some(seed) = install.seed() else { return };
    let sim = Sim::start_with(Some(&seed), &[]);
    for (name, replicas) in seeded_deployments(&seed) {
        wait_ready(&sim, "istio-system", &name, replicas);
    }
    let pre = sim.meshup(&[
        "precheck",
        "--bundle",
        &b(&format!("istio-{target}")),
        "-o",
        "json",
    ]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["plan"]["install_method"], "istioctl", "{doc}");
    assert_eq!(doc["current_version"], install.running.as_str());
    let mut expected = plus(reverted(reverts), others);
    expected.sort();
    let what = format!(
        "{} {} ({}) → {target}",
        install.running, install.profile, install.jwt_policy
    );
    assert_eq!(value_findings(&doc), expected, "{what}");
    let got: Vec<(String, Value)> = doc["plan"]["reverted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["path"].as_str().unwrap().to_string(), v["old"].clone()))
        .collect();
    let want: Vec<(String, Value)> = reverts
        .iter()
        .map(|(p, v)| (p.to_string(), v.clone()))
        .collect();
    assert_eq!(got, want, "{what}");
    // No plan refusal: the selectors are istioctl's own.
    let rejected: Vec<&Value> = doc["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["rejected"].is_null())
        .collect();
    assert!(rejected.is_empty(), "{rejected:?}");
}

fn plus(mut a: Vec<(String, String)>, b: Vec<(String, String)>) -> Vec<(String, String)> {
    a.extend(b);
    a
}

/// The precheck of an istioctl 1.7.8 install (default profile) against 1.8.6 finds what is
/// true and no more: the user's three values this run drops, and the real default changes.
#[test]
fn istioctl_install_of_the_previous_minor_prechecks_without_false_findings() {
    let install = IstioctlInstall::new("1.7.8", USER_IOP);
    precheck_finds_exactly(&install, "1.8.6", &users_values(), defaults_1_7_vs_1_8());
}

/// As measured on a real istioctl 1.8 install (demo profile, istioctl 1.8.4, a cluster
/// without third-party tokens): what Istio's demo and default profiles set, the running
/// patch's tag and the JWT policy istioctl chose are never taken for the user's values. The
/// JWT policy this cluster gets is a change of its own, said once.
#[test]
fn istioctl_1_8_demo_install_reports_only_the_users_values() {
    let install = IstioctlInstall {
        running: "1.8.4".into(),
        profile: "demo".into(),
        jwt_policy: "first-party-jwt".into(),
        ..IstioctlInstall::new("1.8.6", USER_IOP)
    };
    let others = plus(
        defaults_1_8_vs_1_9(),
        vec![(
            "plan.cluster-specific".into(),
            "values.global.jwtPolicy".into(),
        )],
    );
    precheck_finds_exactly(&install, "1.9.5", &users_values_over_demo(), others);
}

/// With nothing set by the user, an install of either profile reverts nothing, up or down.
#[test]
fn istioctl_installs_without_user_values_revert_nothing() {
    let empty = "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nspec: {}\n";
    for (version, running, profile, target, defaults) in [
        ("1.8.6", "1.8.6", "demo", "1.9.5", defaults_1_8_vs_1_9()),
        ("1.9.5", "1.9.2", "default", "1.8.6", defaults_1_8_vs_1_9()),
        ("1.7.8", "1.7.8", "demo", "1.8.6", defaults_1_7_vs_1_8()),
    ] {
        let install = IstioctlInstall {
            running: running.into(),
            profile: profile.into(),
            ..IstioctlInstall::new(version, empty)
        };
        precheck_finds_exactly(&install, target, &[], defaults);
    }
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
    let Some(seed) = istioctl_seed("1.7.8", USER_IOP) else {
        return;
    };
    let sim = Sim::start_with(Some(&seed), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let iop = sim.dir.path().join("iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    let (to_1_7, to_1_9) = (defaults_1_7_vs_1_8(), defaults_1_8_vs_1_9());
    step(&sim, &iop, "1.8.6", to_1_7.clone());
    step(&sim, &iop, "1.9.5", to_1_9.clone());
    step(&sim, &iop, "1.8.6", to_1_9);
    step(&sim, &iop, "1.7.8", to_1_7);
}

/// From what istioctl 1.8.6 left, up one minor and back down two, with the same -f as at
/// install time.
#[test]
fn istioctl_1_8_install_goes_up_and_down_to_1_7() {
    let Some(seed) = istioctl_seed("1.8.6", USER_IOP) else {
        return;
    };
    let sim = Sim::start_with(Some(&seed), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
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
    let Some(installed) = istioctl_seed("1.7.8", USER_IOP) else {
        return;
    };
    let seed = [
        installed,
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

/// Today's istioctl (1.21 and later) keeps no installed-state, and what it applies carries
/// the labels of Istio's charts, `app.kubernetes.io/managed-by: Helm` among them, beside its
/// own (as istioctl 1.31 left them on the real tier): it is an istioctl install, not Helm's.
#[test]
fn a_modern_istioctl_install_is_told_from_helm_by_its_own_labels() {
    let marks = "  labels:
    app: istiod
    app.kubernetes.io/managed-by: Helm
    helm.sh/chart: istiod-1.0.0
    operator.istio.io/component: Pilot
    operator.istio.io/version: 1.31-dev
    install.operator.istio.io/owning-resource: unknown
";
    let sim = Sim::start_with(Some(&istiod_seed("1.31-dev", marks)), &[]);
    let status = sim.meshup(&["status", "-o", "json"]);
    status.expect(0);
    assert_eq!(
        status.json()["install_method"],
        "istioctl",
        "{}",
        status.stdout
    );
    // What was set at install cannot be read back: the precheck says so, and how to check.
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.9.5"), "-o", "json"]);
    let doc = pre.json();
    let finding = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "plan.reverts-unknown")
        .unwrap_or_else(|| panic!("no plan.reverts-unknown: {doc}"));
    assert_eq!(finding["severity"], "warning", "{finding}");
    assert!(
        finding["remediation"]
            .as_str()
            .unwrap()
            .contains("--diff changes"),
        "{finding}"
    );
    // Helm's own annotation still settles it for a Helm install of the same charts.
    let helm = format!(
        "{marks}  annotations: {{meta.helm.sh/release-name: istiod, meta.helm.sh/release-namespace: istio-system}}\n"
    );
    let sim = Sim::start_with(Some(&istiod_seed("1.31-dev", &helm)), &[]);
    let status = sim.meshup(&["status", "-o", "json"]);
    status.expect(0);
    assert_eq!(status.json()["install_method"], "helm", "{}", status.stdout);
}
