//! The built-in bundles against what Istio's own tooling renders.
//!
//! `<repo>/../shared/reference/istio-1.X/` holds real output of Istio 1.7.8, 1.8.6 and 1.9.5
//! (see its README): `helm-base.yaml` (the base chart), `helm-istiod.yaml` (the istiod
//! chart) and `golden-all-on.yaml` (`istioctl manifest generate` with base, pilot and both
//! gateways on). Each bundle is rendered with the same inputs (its default profile plus
//! the egress gateway) and compared object by object, per istioctl component:
//!
//! - Base: the objects of the base chart; Pilot: those of the istiod chart (the release's
//!   charts; the golden is rendered from the operator's test `data-snapshot`, which in 1.7
//!   still carries `-1.5` EnvoyFilters and in 1.8 a `dns-tls` istiod port the release
//!   dropped);
//! - IngressGateways / EgressGateways: the golden's `istio-{ingress,egress}gateway*` objects.
//!
//! The golden's other components (mixer, prometheus, istiocoredns and their config) are not
//! modelled by meshup and are ignored. The Namespace a bundle renders is ignored too:
//! istioctl creates the namespace before it applies the manifest.
//!
//! Compared: the set of objects per component; kind/namespace/name and API group; every
//! label the reference sets (but `install.operator.istio.io/owning-resource`, which is
//! `unknown` in rendered output and set when istioctl applies); Deployment, Service and
//! PodDisruptionBudget selectors; pod template labels; Service ports; replicas (none while
//! autoscaling is on); HPA bounds; webhook names and services; RBAC references; CRD names,
//! scope, versions and storage version.
//!
//! Skipped (with a SKIPPED line) when the reference directory does not exist; under
//! CI=true that is a failure, since CI has a copy of shared/ beside the clone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[path = "reference/profiles.rs"]
mod profiles;

use meshup::release::bundle::Bundle;
use serde_json::Value;

const OWNING: &str = "install.operator.istio.io/owning-resource";
const COMPONENT: &str = "operator.istio.io/component";

fn reference_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference");
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!("{} does not exist", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("reference comparison cannot run under CI=true: {why}");
    }
    println!("SKIPPED: reference comparison: {why}");
    None
}

fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

type Key = (String, String, String); // kind, namespace, name

fn key(v: &Value) -> Key {
    let m = &v["metadata"];
    (
        v["kind"].as_str().unwrap_or_default().to_string(),
        m["namespace"].as_str().unwrap_or_default().to_string(),
        m["name"].as_str().unwrap_or_default().to_string(),
    )
}

fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// The reference objects of each istioctl component meshup models.
fn expected(dir: &Path) -> BTreeMap<&'static str, BTreeMap<Key, Value>> {
    let mut out: BTreeMap<&str, BTreeMap<Key, Value>> = BTreeMap::new();
    for d in docs(&dir.join("helm-base.yaml")) {
        out.entry("Base").or_default().insert(key(&d), d);
    }
    for d in docs(&dir.join("helm-istiod.yaml")) {
        out.entry("Pilot").or_default().insert(key(&d), d);
    }
    for d in docs(&dir.join("golden-all-on.yaml")) {
        let name = d["metadata"]["name"].as_str().unwrap_or_default();
        let component = if name.starts_with("istio-ingressgateway") {
            "IngressGateways"
        } else if name.starts_with("istio-egressgateway") {
            "EgressGateways"
        } else {
            continue; // Base and Pilot come from the release's charts; the rest is not modelled
        };
        out.entry(component).or_default().insert(key(&d), d);
    }
    out
}

/// What the bundle renders with the golden's inputs (the profile with the egress gateway
/// on), by istioctl component.
fn rendered(bundle: &Bundle, profile: &str) -> BTreeMap<String, BTreeMap<Key, Value>> {
    let inputs = meshup::release::source::Inputs {
        profile: Some(profile.to_string()),
        value_files: vec![],
        set: vec!["components.egressGateways[0].enabled=true".to_string()],
        ..Default::default()
    };
    let (_, r, _) = meshup::engine::plan::values_and_render(
        bundle,
        &inputs,
        None,
        meshup::release::source::RenderContext {
            revision: "default",
            kubernetes: None,
            upgrade: false,
        },
        serde_json::json!({}),
    )
    .unwrap();
    let mut out: BTreeMap<String, BTreeMap<Key, Value>> = BTreeMap::new();
    for o in r.objects {
        if o.kind() == "Namespace" {
            continue;
        }
        let component = o.value["metadata"]["labels"][COMPONENT]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no {COMPONENT} label", o.key()))
            .to_string();
        out.entry(component)
            .or_default()
            .insert(key(&o.value), o.value);
    }
    out
}

/// Every difference between one reference object and the bundle's, as readable lines.
fn compare(want: &Value, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    fn eq(errs: &mut Vec<String>, what: &str, w: &Value, g: &Value) {
        if w != g {
            errs.push(format!("{what}: reference {w}, bundle {g}"));
        }
    }
    eq(
        &mut errs,
        "API group",
        &group(want["apiVersion"].as_str().unwrap_or_default()).into(),
        &group(got["apiVersion"].as_str().unwrap_or_default()).into(),
    );
    let subset = |what: &str, w: &Value, g: &Value, errs: &mut Vec<String>| {
        for (k, v) in w.as_object().into_iter().flatten() {
            if k != OWNING && &g[k] != v {
                errs.push(format!("{what} {k}: reference {v}, bundle {}", g[k]));
            }
        }
    };
    subset(
        "label",
        &want["metadata"]["labels"],
        &got["metadata"]["labels"],
        &mut errs,
    );
    let (ws, gs) = (&want["spec"], &got["spec"]);
    match want["kind"].as_str().unwrap_or_default() {
        "Deployment" => {
            eq(&mut errs, "spec.selector", &ws["selector"], &gs["selector"]);
            eq(&mut errs, "spec.replicas", &ws["replicas"], &gs["replicas"]);
            let (wl, gl) = (
                &ws["template"]["metadata"]["labels"],
                &gs["template"]["metadata"]["labels"],
            );
            subset("pod label", wl, gl, &mut errs);
            eq(
                &mut errs,
                "serviceAccountName",
                &ws["template"]["spec"]["serviceAccountName"],
                &gs["template"]["spec"]["serviceAccountName"],
            );
        }
        "Service" => {
            eq(&mut errs, "spec.selector", &ws["selector"], &gs["selector"]);
            eq(
                &mut errs,
                "spec.ports",
                &ports(&ws["ports"]),
                &ports(&gs["ports"]),
            );
        }
        "PodDisruptionBudget" => eq(&mut errs, "spec.selector", &ws["selector"], &gs["selector"]),
        "HorizontalPodAutoscaler" => {
            eq(
                &mut errs,
                "minReplicas",
                &ws["minReplicas"],
                &gs["minReplicas"],
            );
            eq(
                &mut errs,
                "maxReplicas",
                &ws["maxReplicas"],
                &gs["maxReplicas"],
            );
            eq(
                &mut errs,
                "scaleTargetRef",
                &ws["scaleTargetRef"],
                &gs["scaleTargetRef"],
            );
        }
        "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration" => {
            eq(&mut errs, "webhooks", &webhooks(want), &webhooks(got));
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            eq(&mut errs, "roleRef", &want["roleRef"], &got["roleRef"]);
            eq(&mut errs, "subjects", &want["subjects"], &got["subjects"]);
        }
        "CustomResourceDefinition" => {
            eq(&mut errs, "group", &ws["group"], &gs["group"]);
            eq(&mut errs, "scope", &ws["scope"], &gs["scope"]);
            eq(
                &mut errs,
                "names.kind",
                &ws["names"]["kind"],
                &gs["names"]["kind"],
            );
            eq(&mut errs, "versions", &crd_versions(ws), &crd_versions(gs));
        }
        _ => {}
    }
    errs
}

/// (name, port, targetPort) per port; targetPort defaults to port.
fn ports(list: &Value) -> Value {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let target = if p["targetPort"].is_null() {
                p["port"].clone()
            } else {
                p["targetPort"].clone()
            };
            serde_json::json!([p["name"], p["port"], target])
        })
        .collect()
}

fn webhooks(v: &Value) -> Value {
    v["webhooks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            let s = &w["clientConfig"]["service"];
            serde_json::json!([
                w["name"],
                s["name"],
                s["namespace"],
                s["path"],
                w["failurePolicy"]
            ])
        })
        .collect()
}

/// Served versions and the storage one (v1beta1 CRDs list them under `versions` too).
fn crd_versions(spec: &Value) -> Value {
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| serde_json::json!([v["name"], v["storage"]]))
        .collect()
}

/// The differences for one profile. A component the profile does not install is not
/// compared (`minimal` has no gateways); every one it installs must match object by object.
fn check(version: &str, minor: &str, profile: &str) -> Vec<String> {
    let Some(dir) = reference_dir() else {
        return vec![];
    };
    let bundle_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bundles")
        .join(format!("istio-{version}"));
    let bundle = Bundle::load(&bundle_dir).unwrap();
    let want = expected(&dir.join(format!("istio-{minor}")));
    let got = rendered(&bundle, profile);
    let want = without_autoscaling(want, &bundle, profile, &got);
    let want = with_profile_ports(want, &bundle, profile);
    let mut errs = discovery_errors(&bundle, &dir.join(format!("istio-{minor}")));
    let components: BTreeSet<&str> = got.keys().map(String::as_str).collect();
    for c in components {
        let (w, g) = (
            want.get(c).cloned().unwrap_or_default(),
            got.get(c).cloned().unwrap_or_default(),
        );
        for k in w.keys().filter(|k| !g.contains_key(*k)) {
            errs.push(format!("{c}: {k:?} is missing from the bundle"));
        }
        for k in g.keys().filter(|k| !w.contains_key(*k)) {
            errs.push(format!("{c}: {k:?} is not in Istio {minor}'s {c}"));
        }
        for (k, wv) in &w {
            if let Some(gv) = g.get(k) {
                errs.extend(
                    compare(wv, gv)
                        .into_iter()
                        .map(|e| format!("{c} {k:?}: {e}")),
                );
            }
        }
    }
    errs
}

/// Whether the facts the bundle's `discovery:` declares hold in the release's own output:
/// its control-plane Deployment matches the selector, carries the revision label and runs
/// the version container; its gateways run the proxy container; the golden serves the
/// installed-state kind (a CRD), and the bundle labels its components with the component
/// label.
fn discovery_errors(bundle: &Bundle, dir: &Path) -> Vec<String> {
    let d = &bundle.manifest.discovery;
    let mut errs = Vec::new();
    let selector: Vec<(&str, &str)> = d
        .control_plane
        .selector
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let has_container = |o: &Value, name: &str| {
        o["spec"]["template"]["spec"]["containers"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["name"] == name))
    };
    let deployments: Vec<Value> = docs(&dir.join("helm-istiod.yaml"))
        .into_iter()
        .filter(|o| o["kind"] == "Deployment")
        .collect();
    let control_planes: Vec<&Value> = deployments
        .iter()
        .filter(|o| {
            selector
                .iter()
                .all(|(k, v)| o["metadata"]["labels"][*k] == *v)
        })
        .collect();
    if control_planes.is_empty() {
        errs.push(format!(
            "discovery: no Deployment matches {}",
            d.control_plane.selector
        ));
    }
    for o in control_planes {
        if !has_container(o, &d.control_plane.container) {
            errs.push(format!(
                "discovery: {:?} has no container {}",
                key(o),
                d.control_plane.container
            ));
        }
        if !o["metadata"]["labels"][&d.revision_label].is_string() {
            errs.push(format!(
                "discovery: {:?} has no label {}",
                key(o),
                d.revision_label
            ));
        }
    }
    let golden = docs(&dir.join("golden-all-on.yaml"));
    let gateways: Vec<&Value> = golden
        .iter()
        .filter(|o| o["kind"] == "Deployment" && key(o).2.contains("gateway"))
        .collect();
    if gateways.is_empty()
        || !gateways
            .iter()
            .all(|o| has_container(o, &d.proxy_container))
    {
        errs.push(format!(
            "discovery: the gateways do not all run {}",
            d.proxy_container
        ));
    }
    if let Some(state) = &d.installed_state {
        let served = golden.iter().any(|o| {
            o["kind"] == "CustomResourceDefinition"
                && o["spec"]["group"] == group(&state.api_version)
                && o["spec"]["names"]["kind"] == state.kind.as_str()
        });
        if !served {
            errs.push(format!(
                "discovery: no CRD serves {} {}",
                state.api_version, state.kind
            ));
        }
        // `manifest generate` leaves the component label out before 1.8 (istioctl adds it
        // when it applies): what must hold is that the bundle labels components with it.
        for c in &bundle.manifest.components {
            if !c.labels.contains_key(&state.component_label) {
                errs.push(format!(
                    "discovery: component {} is not labelled {}",
                    c.name, state.component_label
                ));
            }
        }
    }
    errs
}

/// The reference for a profile that switches autoscaling off: Istio's charts then render no
/// HorizontalPodAutoscaler and set `spec.replicas` (`if .Values.pilot.autoscaleEnabled` in
/// the istiod and gateway charts). The references are rendered with autoscaling on, so for
/// each workload the profile switches it off, the HPA is dropped and the replicas taken
/// from the bundle; everything else is compared as it is.
fn without_autoscaling(
    mut want: BTreeMap<&'static str, BTreeMap<Key, Value>>,
    bundle: &Bundle,
    profile: &str,
    got: &BTreeMap<String, BTreeMap<Key, Value>>,
) -> BTreeMap<&'static str, BTreeMap<Key, Value>> {
    let values = &bundle.profile(profile).unwrap()["values"];
    let off = |workload: &str| {
        let flag = if workload == "istiod" {
            &values["pilot"]["autoscaleEnabled"]
        } else {
            &values["gateways"][workload]["autoscaleEnabled"]
        };
        flag == &Value::Bool(false)
    };
    for (component, objects) in want.iter_mut() {
        let workloads: Vec<String> = objects
            .keys()
            .filter(|(kind, _, name)| kind == "HorizontalPodAutoscaler" && off(name))
            .map(|(_, _, name)| name.clone())
            .collect();
        for name in workloads {
            objects.remove(&(
                "HorizontalPodAutoscaler".into(),
                "istio-system".into(),
                name.clone(),
            ));
            let dep: Key = ("Deployment".into(), "istio-system".into(), name);
            let replicas = got
                .get(*component)
                .and_then(|g| g.get(&dep))
                .map(|d| d["spec"]["replicas"].clone())
                .unwrap_or(Value::Null);
            if let Some(d) = objects.get_mut(&dep) {
                d["spec"]["replicas"] = replicas;
            }
        }
    }
    want
}

/// The golden renders the default profile. A profile that lists a gateway's Service ports
/// (demo adds `tcp` 31400) has them laid over the chart's as istioctl lays `k8s.service`
/// over the rendered Service: a strategic merge keyed by `port`.
fn with_profile_ports(
    mut want: BTreeMap<&'static str, BTreeMap<Key, Value>>,
    bundle: &Bundle,
    profile: &str,
) -> BTreeMap<&'static str, BTreeMap<Key, Value>> {
    let spec = bundle.profile(profile).unwrap();
    for (list, component) in [
        ("ingressGateways", "IngressGateways"),
        ("egressGateways", "EgressGateways"),
    ] {
        for gw in spec["components"][list].as_array().into_iter().flatten() {
            let Some(extra) = gw["k8s"]["service"]["ports"].as_array() else {
                continue;
            };
            let name = gw["name"].as_str().unwrap_or_default().to_string();
            let key: Key = ("Service".into(), "istio-system".into(), name);
            let Some(svc) = want.get_mut(component).and_then(|c| c.get_mut(&key)) else {
                continue;
            };
            let ports = svc["spec"]["ports"].as_array_mut().unwrap();
            for p in extra {
                if !ports.iter().any(|q| q["port"] == p["port"]) {
                    ports.push(p.clone());
                }
            }
        }
    }
    want
}

/// Every profile of the bundle against the reference.
fn assert_matches(version: &str, minor: &str) {
    let Some(_) = reference_dir() else { return };
    let bundle_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bundles")
        .join(format!("istio-{version}"));
    let profiles: Vec<String> = Bundle::load(&bundle_dir)
        .unwrap()
        .profiles
        .keys()
        .cloned()
        .collect();
    assert!(profiles.iter().any(|p| p == "default"), "{profiles:?}");
    let mut errs = Vec::new();
    for p in &profiles {
        errs.extend(
            check(version, minor, p)
                .into_iter()
                .map(|e| format!("profile {p}: {e}")),
        );
    }
    assert!(
        errs.is_empty(),
        "istio-{version} differs from Istio {minor}'s own rendering:\n  {}",
        errs.join("\n  ")
    );
}

#[test]
fn bundle_1_7_8_matches_istio_1_7() {
    assert_matches("1.7.8", "1.7");
}

#[test]
fn bundle_1_8_6_matches_istio_1_8() {
    assert_matches("1.8.6", "1.8");
}

#[test]
fn bundle_1_9_5_matches_istio_1_9() {
    assert_matches("1.9.5", "1.9");
}

/// The comparison can fail: a bundle with istiod's pre-fix selector is caught.
#[test]
fn a_wrong_selector_is_reported() {
    let Some(dir) = reference_dir() else { return };
    let want = expected(&dir.join("istio-1.8"));
    let key = (
        "Deployment".to_string(),
        "istio-system".to_string(),
        "istiod".to_string(),
    );
    let reference = &want["Pilot"][&key];
    let mut wrong = reference.clone();
    wrong["spec"]["selector"] = serde_json::json!({"matchLabels": {"app": "istiod"}});
    let errs = compare(reference, &wrong);
    assert!(
        errs.iter().any(|e| e.starts_with("spec.selector")),
        "{errs:?}"
    );
}
