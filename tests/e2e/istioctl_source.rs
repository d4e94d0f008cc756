//! The release's own istioctl as the renderer (`--istioctl PATH`), on the simulator, over
//! what a real `istioctl install` left there: meshup renders exactly what that install
//! applied (its components, ownership labels and revision tag), upgrades a stand-in 1.30.3
//! install (istioctl 1.31-dev with 1.30.3's manifests, `tests/real/README.md`) to 1.31-dev,
//! and prunes what istioctl of another version left. Bad input exits 2 and changes nothing.
//!
//! Needs a real istioctl (`MESHUP_ISTIOCTL`, else the pinned 1.31-dev that `tests/real/
//! istioctl` builds with Go) and, for the stand-in, `../shared/istio-releases`: without them
//! the tests say SKIPPED, and under CI=true they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::*;

/// A Kubernetes version istioctl 1.30 and 1.31 support (1.32–1.36).
const KUBE: &str = "v1.34.2";

fn skip(why: &str) -> Option<PathBuf> {
    crate::common::skip("--istioctl", why)
}

/// The real istioctl: `MESHUP_ISTIOCTL`, else the pinned 1.31-dev (built once, cached).
fn istioctl() -> Option<PathBuf> {
    static ISTIOCTL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    pinned_tool(
        &ISTIOCTL,
        "MESHUP_ISTIOCTL",
        "istioctl",
        "1.31-dev",
        "--istioctl",
    )
}

/// A real release's manifests (`../shared/istio-releases/istio-VERSION/manifests`).
fn manifests(version: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../../shared/istio-releases/istio-{version}/manifests"
    ));
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!("{} does not exist", dir.display()))
}

/// The stand-in for istioctl 1.30.3: 1.31-dev with 1.30.3's manifests, hub and tag.
fn stand_in(manifests: &Path) -> Vec<String> {
    vec![
        "--manifests".into(),
        manifests.display().to_string(),
        "--set".into(),
        "hub=docker.io/istio".into(),
        "--set".into(),
        "tag=1.30.3".into(),
    ]
}

/// `istioctl install -y` against the simulator, as a user runs it.
fn istioctl_install(sim: &Sim, istioctl: &Path, extra: &[String]) {
    let out = Command::new(istioctl)
        .args([
            "install",
            "-y",
            "--readiness-timeout",
            "60s",
            "--kubeconfig",
        ])
        .arg(&sim.kubeconfig)
        .args(extra)
        .output()
        .expect("run istioctl install");
    assert!(
        out.status.success(),
        "istioctl install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn meshup_istioctl(sim: &Sim, cmd: &str, istioctl: &Path, extra: &[String]) -> Run {
    let mut args = vec![
        cmd.to_string(),
        "--istioctl".into(),
        istioctl.display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sim.meshup(&refs)
}

fn changes(doc: &Value, action: &str) -> Vec<String> {
    let mut out: Vec<String> = doc["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == action)
        .map(|c| c["object"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// What meshup renders with `--istioctl` is what `istioctl install` applied, object for
/// object: the precheck over a real install finds nothing to create, change or prune, and
/// `template` labels every object as istioctl's, with the revision tag install adds.
#[test]
fn istioctl_source_renders_what_istioctl_install_leaves() {
    let Some(istioctl) = istioctl() else { return };
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    istioctl_install(&sim, &istioctl, &[]);

    let template = run(
        &["template", "--istioctl", istioctl.to_str().unwrap()],
        None,
    );
    template.expect(0);
    let objects = docs(&template.stdout);
    for o in &objects {
        let labels = &o["metadata"]["labels"];
        let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
        assert_eq!(labels["operator.istio.io/version"], "1.31-dev", "{what}");
        assert_eq!(labels["operator.istio.io/managed"], "Reconcile", "{what}");
        assert!(
            labels["operator.istio.io/component"].is_string(),
            "{what}: {labels}"
        );
    }
    let named = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
    };
    let tag = named("MutatingWebhookConfiguration", "istio-revision-tag-default");
    assert_eq!(
        tag["metadata"]["labels"]["install.operator.istio.io/owning-resource-not-pruned"],
        "true"
    );
    named("ValidatingWebhookConfiguration", "istiod-default-validator");
    named("Service", "istiod-revision-tag-default");

    let pre = meshup_istioctl(&sim, "precheck", &istioctl, &["-o".into(), "json".into()]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["plan"]["install_method"], "istioctl", "{doc}");
    assert_eq!(doc["current_version"], "1.31-dev");
    assert_eq!(doc["target_version"], "1.31.0");
    // istioctl reads its 1.31-dev build as 1.31.0: the same release again.
    assert_eq!(doc["direction"], "reinstall");
    for action in ["create", "update", "prune", "unknown"] {
        assert_eq!(changes(&doc, action), Vec::<String>::new(), "{action}");
    }
    assert_eq!(changes(&doc, "unchanged").len(), objects.len());
}

/// Leftovers of istioctl 1.29.6 (any component, even one the target lacks), seeded beside
/// the stand-in 1.30.3 install.
const LEFTOVERS: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-leftover-1-29
  namespace: istio-system
  labels: {operator.istio.io/component: Pilot, operator.istio.io/version: 1.29.6, operator.istio.io/managed: Reconcile, istio.io/rev: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: istio-egressgateway-leftover-1-29
  labels: {operator.istio.io/component: EgressGateways, operator.istio.io/version: 1.29.6, operator.istio.io/managed: Reconcile}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-kept-1-29
  namespace: istio-system
  labels: {operator.istio.io/component: Pilot, operator.istio.io/version: 1.29.6, install.operator.istio.io/owning-resource-not-pruned: \"true\"}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-canary-1-29
  namespace: istio-system
  labels: {operator.istio.io/component: Pilot, operator.istio.io/version: 1.29.6, istio.io/rev: canary}
";

/// The stand-in 1.30.3 install, up to 1.31-dev with `--istioctl`: the precheck names the
/// leftovers of istioctl 1.29.6 it prunes (and the version that left them), never what
/// istioctl marks not-pruned or another revision's; the upgrade ends with every workload on
/// 1.31-dev and ready, the leftovers gone and the revision tag in place.
#[test]
fn istioctl_source_upgrades_a_stand_in_install_and_prunes_other_versions_leftovers() {
    let Some(istioctl) = istioctl() else { return };
    let Some(m130) = manifests("1.30.3") else {
        return;
    };
    let sim = Sim::start_with(Some(LEFTOVERS), &["--kubernetes-version", KUBE]);
    istioctl_install(&sim, &istioctl, &stand_in(&m130));
    assert!(sim.control_plane_problems("1.30.3").is_empty());

    let pre = meshup_istioctl(&sim, "precheck", &istioctl, &["-o".into(), "json".into()]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["current_version"], "1.30.3");
    assert_eq!(doc["target_version"], "1.31.0");
    assert_eq!(
        changes(&doc, "prune"),
        vec![
            "ClusterRole istio-egressgateway-leftover-1-29",
            "ConfigMap istio-system/istio-leftover-1-29",
        ]
    );
    let said: Vec<&Value> = doc["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "prune")
        .collect();
    for c in &said {
        assert!(
            c["summary"][0]
                .as_str()
                .unwrap()
                .contains("istioctl 1.29.6"),
            "{c}"
        );
    }
    let text = meshup_istioctl(&sim, "precheck", &istioctl, &[]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("- prune  ClusterRole istio-egressgateway-leftover-1-29"),
        "{}",
        text.stdout
    );

    meshup_istioctl(&sim, "upgrade", &istioctl, &["-y".into()]).expect(0);
    assert_eq!(sim.control_plane_problems("1.31-dev"), Vec::<String>::new());
    let path_of = |p: &str| {
        let (code, _) = sim.http("GET", p, None);
        code
    };
    assert_eq!(
        path_of("/api/v1/namespaces/istio-system/configmaps/istio-leftover-1-29"),
        404
    );
    assert_eq!(
        path_of(
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/istio-egressgateway-leftover-1-29"
        ),
        404
    );
    for kept in ["istio-kept-1-29", "istio-canary-1-29"] {
        assert_eq!(
            path_of(&format!(
                "/api/v1/namespaces/istio-system/serviceaccounts/{kept}"
            )),
            200,
            "{kept}"
        );
    }
    let tag = sim.get(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-revision-tag-default",
    );
    assert_eq!(
        tag["metadata"]["labels"]["operator.istio.io/version"],
        "1.31-dev"
    );
    // Injection goes through the tag alone, as after `istioctl install`.
    let injector = sim.get(
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/istio-sidecar-injector",
    );
    for w in injector["webhooks"].as_array().unwrap() {
        assert_eq!(
            w["namespaceSelector"]["matchLabels"]["istio.io/deactivated"], "never-match",
            "{w}"
        );
    }
    // A second run over its own work changes nothing.
    let again = meshup_istioctl(&sim, "precheck", &istioctl, &["-o".into(), "json".into()]);
    again.expect(0);
    let doc = again.json();
    for action in ["create", "update", "prune"] {
        assert_eq!(changes(&doc, action), Vec::<String>::new(), "{action}");
    }
}

/// A value istioctl refuses, an index into a list, a missing istioctl: exit 2 with the
/// reason, and the cluster untouched.
#[test]
fn istioctl_source_bad_input_exits_2_and_changes_nothing() {
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    let missing = meshup_istioctl(
        &sim,
        "upgrade",
        Path::new("/nonexistent/istioctl"),
        &["-y".into()],
    );
    missing.expect(2);
    assert!(
        missing
            .stderr
            .contains("--istioctl /nonexistent/istioctl: cannot run it"),
        "{}",
        missing.stderr
    );
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());

    let Some(istioctl) = istioctl() else { return };
    istioctl_install(&sim, &istioctl, &[]);
    sim.clear_requests();
    for (set, says) in [
        ("values.pilot.bogus=1", "unknown field \"bogus\""),
        (
            "components.pilot.k8s.replicaCount=many",
            "cannot unmarshal string",
        ),
        ("profile=nope", "profile \"nope\" not found"),
        (
            "components.ingressGateways[0].enabled=false",
            "[name:istio-ingressgateway]",
        ),
    ] {
        for cmd in ["precheck", "upgrade"] {
            let mut args = vec!["--set".to_string(), set.into()];
            if cmd == "upgrade" {
                args.push("-y".into());
            }
            let out = meshup_istioctl(&sim, cmd, &istioctl, &args);
            out.expect(2);
            assert!(
                out.stderr.contains(says),
                "{cmd} --set {set}: {}",
                out.stderr
            );
        }
    }
    let bad_manifests = meshup_istioctl(
        &sim,
        "template",
        &istioctl,
        &["--manifests".into(), "/nonexistent/manifests".into()],
    );
    bad_manifests.expect(2);
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}
