//! Today's Istio from its own Helm charts (`--charts`), rendered by a real `helm`, on the
//! simulator: install 1.29.6, up to 1.30.3 and 1.31.0-rc.0, down again, `rollback`, an
//! automatic restore; every end state read back with kubectl, the gateway's pods injected
//! with the control plane's proxy (bundles/sim-webhooks.yaml, Istio's gateway template),
//! and new pods of the mesh's namespaces with a sidecar at its version. Bad inputs exit 2
//! and change nothing.
//!
//! Needs `../shared/istio-releases` and a helm binary (`MESHUP_HELM`, else the pinned one
//! `tests/real/helm 4` builds with Go): without either the tests say SKIPPED, and under
//! CI=true they fail.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::*;
use meshup_real_tests::charts::{self, assert_gateway_pods_injected};
use meshup_real_tests::fs::copy_dir;

/// A Kubernetes version every release here supports (1.29: 1.31–1.35 … 1.31: 1.32–1.36).
const KUBE: &str = "v1.34.2";

fn skip(why: &str) -> Option<PathBuf> {
    crate::common::skip("charts", why)
}

/// The real `helm`: `MESHUP_HELM`, else the pinned Helm 4 (built once, cached).
fn helm() -> Option<PathBuf> {
    static HELM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    pinned_tool(&HELM, "MESHUP_HELM", "helm", "4", "charts")
}

/// A real release's directory (`../shared/istio-releases/istio-VERSION`).
fn release(version: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../shared/istio-releases/istio-{version}"));
    if dir.is_dir() {
        return Some(dir);
    }
    skip(&format!("{} does not exist", dir.display()))
}

/// `--charts DIR --helm HELM` and the rest, as strings.
fn charts_args(cmd: &str, version: &str, helm: &Path, extra: &[&str]) -> Option<Vec<String>> {
    let dir = release(version)?;
    let mut args: Vec<String> = vec![
        cmd.into(),
        "--charts".into(),
        dir.display().to_string(),
        "--helm".into(),
        helm.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Some(args)
}

fn run_charts(sim: &Sim, cmd: &str, version: &str, helm: &Path, extra: &[&str]) -> Run {
    let args = charts_args(cmd, version, helm, extra).expect("release checked before");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    sim.meshup(&refs)
}

fn kubectl_json(sim: &Sim, args: &[&str]) -> Value {
    let out = sim
        .kubectl(args)
        .unwrap_or_else(|| panic!("kubectl is needed to read the end state back"));
    assert!(out.status.success(), "kubectl {args:?}: {:?}", out);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The end state, read with kubectl: istiod and the gateway ready, istiod on `version`'s
/// image, the gateway's pods ready and running the control plane's proxy (`<hub>/proxyv2:
/// <version>`, the hub of istiod's image) as the injector filled it in, every object of
/// Istio's charts labelled with `version` (nothing of another release left), and the CRDs
/// all there. Returns that proxy image.
fn assert_at(sim: &Sim, version: &str, crds: usize) -> String {
    let istiod = kubectl_json(
        sim,
        &[
            "-n",
            "istio-system",
            "get",
            "deployment",
            "istiod",
            "-o",
            "json",
        ],
    );
    let image = istiod["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(
        image.ends_with(&format!("/pilot:{version}")),
        "istiod image {image}"
    );
    let ready = |d: &Value| d["status"]["readyReplicas"] == d["spec"]["replicas"];
    assert!(ready(&istiod), "istiod not ready: {}", istiod["status"]);
    let gw = kubectl_json(
        sim,
        &[
            "-n",
            "istio-ingress",
            "get",
            "deployment",
            "istio-ingress",
            "-o",
            "json",
        ],
    );
    assert!(ready(&gw), "gateway not ready: {}", gw["status"]);
    assert_eq!(
        gw["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"],
        version
    );
    let hub = image
        .strip_suffix(&format!("/pilot:{version}"))
        .expect("checked above");
    let proxy = format!("{hub}/proxyv2:{version}");
    assert_gateway_injected(sim, &proxy);
    let all = kubectl_json(
        sim,
        &[
            "get",
            charts::KINDS,
            "-A",
            "-l",
            "app.kubernetes.io/part-of=istio",
            "-o",
            "json",
        ],
    );
    charts::assert_all_at(&all, version);
    charts::assert_crds_kept(&kubectl_json(sim, &["get", "crds", "-o", "json"]), crds);
    proxy
}

/// The gateway's pods (not terminating), read with kubectl: at least one, every one ready,
/// its `istio-proxy` container (`image: auto` in the chart) running `proxy`, and marked
/// as Istio's injector marks what it injected.
fn assert_gateway_injected(sim: &Sim, proxy: &str) {
    assert_injected(sim, "istio-ingress", "istio-ingress", proxy);
}

/// The pods of gateway release `name` in `ns`, as `assert_gateway_injected` checks them.
fn assert_injected(sim: &Sim, ns: &str, name: &str, proxy: &str) {
    let pods = kubectl_json(
        sim,
        &[
            "-n",
            ns,
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "-o",
            "json",
        ],
    );
    assert_gateway_pods_injected(&pods, proxy);
}

/// A new pod `name` in `ns` as the API server stored it: its containers' images.
fn new_pod_images(sim: &Sim, ns: &str, name: &str) -> Vec<String> {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    let (code, body) = sim.http(
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods"),
        Some(&pod.to_string()),
    );
    assert_eq!(code, 201, "{body}");
    let pod: Value = serde_json::from_str(&body).unwrap();
    pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["image"].as_str().unwrap().to_string())
        .collect()
}

/// Namespaces selected by each of the default revision's ways (`istio-injection=enabled`,
/// `istio.io/rev=default`) and one that is not.
fn mesh_namespaces(sim: &Sim) {
    for (name, labels) in [
        ("shop", json!({"istio-injection": "enabled"})),
        ("pay", json!({"istio.io/rev": "default"})),
        ("plain", json!({})),
    ] {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
        let (code, body) = sim.http("POST", "/api/v1/namespaces", Some(&ns.to_string()));
        assert_eq!(code, 201, "{body}");
    }
}

/// New pods of the mesh's namespaces get a sidecar at the control plane's `version`
/// (`proxy`), the others none.
fn assert_new_pods_injected(sim: &Sim, n: usize, proxy: &str) {
    for ns in ["shop", "pay"] {
        assert_eq!(
            new_pod_images(sim, ns, &format!("p{n}")),
            ["app:1", proxy],
            "a new pod in {ns}"
        );
    }
    assert_eq!(new_pod_images(sim, "plain", &format!("p{n}")), ["app:1"]);
}

#[test]
fn charts_install_upgrade_downgrade_and_rollback() {
    let Some(helm) = helm() else { return };
    if release("1.29.6").is_none() {
        return;
    }
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    mesh_namespaces(&sim);
    run_charts(&sim, "install", "1.29.6", &helm, &["-y"]).expect(0);
    let crds = 14;
    let proxy = assert_at(&sim, "1.29.6", crds);
    assert_eq!(proxy, "docker.io/istio/proxyv2:1.29.6");
    assert_new_pods_injected(&sim, 1, &proxy);

    let pre = run_charts(&sim, "precheck", "1.30.3", &helm, &["-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["current_version"], "1.29.6");
    assert_eq!(doc["target_version"], "1.30.3");
    assert_eq!(doc["blocked"], false, "{doc}");
    // The release's own image is the upgrade, not a changed default; what 1.30 changes in
    // behaviour is what its compatibility profile for 1.29 names and reaches istiod.
    assert!(
        !codes(&doc).iter().any(|c| c == "profile-defaults.changed"),
        "{doc}"
    );
    let behaviour: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "plan.behaviour-change")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        behaviour,
        ["istiod:pilot.env.PILOT_SIDECAR_PICK_BEST_SERVICE_NAMESPACE"]
    );
    let audit = sim.dir.path().join("charts-audit.jsonl");
    let pinned = run_charts(
        &sim,
        "precheck",
        "1.30.3",
        &helm,
        &[
            "-o",
            "json",
            "--set",
            "istiod:compatibilityVersion=1.29",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    pinned.expect(0);
    assert!(
        !codes(&pinned.json())
            .iter()
            .any(|c| c == "plan.behaviour-change"),
        "compatibilityVersion keeps 1.29's behaviour"
    );
    // Policies see what they check (meshup:policy@0.3.0): the charts as the source, each
    // chart release with its chart, namespace and the Helm values the user gave it.
    let log = meshup::policy::audit::verify(&audit).unwrap();
    let ctx = serde_json::to_value(&log.records[0].1.context).unwrap();
    assert_eq!(ctx["source"], "charts");
    let seen: Vec<(&str, &str, &str, &str, &Value)> = ctx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("-");
            (
                s("release"),
                s("chart"),
                s("namespace"),
                s("role"),
                &c["values"],
            )
        })
        .collect();
    let (none, pin) = (
        serde_json::json!({}),
        serde_json::json!({"compatibilityVersion": "1.29"}),
    );
    assert_eq!(
        seen,
        [
            ("istio-base", "base", "istio-system", "base", &none),
            ("istiod", "istiod", "istio-system", "control-plane", &pin),
            (
                "istio-ingress",
                "gateway",
                "istio-ingress",
                "gateway",
                &none
            ),
        ],
        "{ctx}"
    );

    run_charts(
        &sim,
        "upgrade",
        "1.30.3",
        &helm,
        &["-y", "--set", "istiod:autoscaleMin=2"],
    )
    .expect(0);
    // 1.30.3's charts name another hub for its images: the proxy follows istiod's.
    let proxy = assert_at(&sim, "1.30.3", crds);
    assert_eq!(proxy, "registry.istio.io/release/proxyv2:1.30.3");
    assert_new_pods_injected(&sim, 2, &proxy);
    let hpa = kubectl_json(
        &sim,
        &["-n", "istio-system", "get", "hpa", "istiod", "-o", "json"],
    );
    assert_eq!(hpa["spec"]["minReplicas"], 2, "the user's value applied");

    // Up to 1.31.0-rc.0, then down again to 1.30.3.
    for version in ["1.31.0-rc.0", "1.30.3"] {
        let args = ["-y", "--set", "istiod:autoscaleMin=2"];
        run_charts(&sim, "upgrade", version, &helm, &args).expect(0);
        assert_at(&sim, version, crds);
    }

    sim.meshup(&["rollback", "-y"]).expect(0);
    assert_at(&sim, "1.31.0-rc.0", crds);
}

/// Gateways by name (`--gateway [NAMESPACE/]RELEASE`): a `gateway` chart release each, in
/// its own namespace, with its own values, waited for and injected; a bad or taken name is
/// refused before anything changes.
#[test]
fn charts_gateways_are_named_releases_each_in_its_namespace() {
    let Some(helm) = helm() else { return };
    if release("1.30.3").is_none() {
        return;
    }
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    let gateways = [
        "--gateway",
        "istio-ingress",
        "--gateway",
        "edge/edge-gateway",
    ];
    let template = run_charts(&sim, "template", "1.30.3", &helm, &gateways);
    template.expect(0);
    assert!(
        template.stdout.contains("name: edge-gateway")
            && template.stdout.contains("namespace: edge"),
        "{}",
        template.stdout
    );
    for (bad, says) in [
        ("Edge_GW", "lowercase letters"),
        ("istio-system/istiod", "the release name is taken"),
    ] {
        let run = run_charts(&sim, "precheck", "1.30.3", &helm, &["--gateway", bad]);
        run.expect(2);
        assert!(run.all().contains(says), "{bad}: {}", run.all());
    }
    let mut args = vec![
        "-y",
        "--set",
        "edge-gateway:autoscaling.enabled=false",
        "--set",
        "edge-gateway:replicaCount=2",
    ];
    args.extend(gateways);
    run_charts(&sim, "install", "1.30.3", &helm, &args).expect(0);
    let proxy = "registry.istio.io/release/proxyv2:1.30.3";
    for (ns, name, replicas) in [
        ("istio-ingress", "istio-ingress", 1),
        ("edge", "edge-gateway", 2),
    ] {
        let d = kubectl_json(&sim, &["-n", ns, "get", "deployment", name, "-o", "json"]);
        assert_eq!(
            d["status"]["readyReplicas"], replicas,
            "{name}: {}",
            d["status"]
        );
        assert_eq!(d["metadata"]["labels"]["app.kubernetes.io/instance"], name);
        assert_injected(&sim, ns, name, proxy);
    }
    // A later run names the same gateways; an upgrade keeps both.
    let mut args = vec!["-y"];
    args.extend(gateways);
    run_charts(&sim, "upgrade", "1.31.0-rc.0", &helm, &args).expect(0);
    assert_injected(
        &sim,
        "edge",
        "edge-gateway",
        "docker.io/istio/proxyv2:1.31.0-rc.0",
    );
}

#[test]
fn charts_upgrade_whose_istiod_never_becomes_ready_is_restored() {
    let Some(helm) = helm() else { return };
    if release("1.29.6").is_none() {
        return;
    }
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    run_charts(&sim, "install", "1.29.6", &helm, &["-y"]).expect(0);
    sim.set_faults(&serde_json::json!({"never_ready": ["istiod"]}));
    let up = run_charts(
        &sim,
        "upgrade",
        "1.30.3",
        &helm,
        &["-y", "--readiness-timeout", "3s"],
    );
    up.expect(5);
    sim.set_faults(&serde_json::json!({}));
    assert_at(&sim, "1.29.6", 14);
}

/// The gateway's new pods (injected with 1.30.3's proxy) never become ready: the restore
/// puts the gateway back, and its verification expects the pods the injector fills in at
/// the restored control plane's version.
#[test]
fn charts_upgrade_whose_gateway_never_becomes_ready_is_restored() {
    let Some(helm) = helm() else { return };
    if release("1.30.3").is_none() {
        return;
    }
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    run_charts(&sim, "install", "1.29.6", &helm, &["-y"]).expect(0);
    sim.set_faults(&json!({"never_ready": ["istio-ingress"]}));
    let up = run_charts(
        &sim,
        "upgrade",
        "1.30.3",
        &helm,
        &["-y", "--readiness-timeout", "3s"],
    );
    up.expect(5);
    assert!(up.all().contains("verified"), "{}", up.all());
    sim.set_faults(&json!({}));
    assert_at(&sim, "1.29.6", 14);
}

#[test]
fn bad_charts_input_exits_2_and_changes_nothing() {
    let Some(helm) = helm() else { return };
    let (Some(r129), Some(r130)) = (release("1.29.6"), release("1.30.3")) else {
        return;
    };
    let sim = Sim::start_with(None, &["--kubernetes-version", KUBE]);
    let tmp = tempfile::tempdir().unwrap();
    // An unstamped chart (a source checkout says 1.0.0).
    let unstamped = tmp.path().join("unstamped");
    copy_dir(&r130.join("manifests/charts"), &unstamped);
    let chart_yaml = unstamped.join("istio-control/istio-discovery/Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(
        &chart_yaml,
        text.replace("appVersion: 1.30.3", "appVersion: 1.0.0"),
    )
    .unwrap();
    // Charts of two releases mixed.
    let mixed = tmp.path().join("mixed");
    copy_dir(&r130.join("manifests/charts"), &mixed);
    std::fs::remove_dir_all(mixed.join("base")).unwrap();
    copy_dir(&r129.join("manifests/charts/base"), &mixed.join("base"));
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let h = helm.display().to_string();
    let dir = r130.display().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--charts".into(),
                unstamped.display().to_string(),
                "--helm".into(),
                h.clone(),
            ],
            "appVersion 1.0.0",
        ),
        (
            vec![
                "--charts".into(),
                mixed.display().to_string(),
                "--helm".into(),
                h.clone(),
            ],
            "different releases",
        ),
        (
            vec![
                "--charts".into(),
                dir.clone(),
                "--helm".into(),
                h.clone(),
                "--set".into(),
                "istiod:autoscaleMn=2".into(),
            ],
            "did you mean `autoscaleMin`",
        ),
        (
            vec![
                "--charts".into(),
                dir.clone(),
                "--helm".into(),
                h.clone(),
                "--set".into(),
                "istiod:autoscaleMin=two".into(),
            ],
            "takes a number",
        ),
        (
            vec![
                "--charts".into(),
                dir.clone(),
                "--helm".into(),
                h.clone(),
                "--set".into(),
                "istio:autoscaleMin=2".into(),
            ],
            "the releases are istio-base, istiod, istio-ingress",
        ),
        (
            vec![
                "--charts".into(),
                dir.clone(),
                "--helm".into(),
                "/nonexistent/helm".into(),
            ],
            "install Helm 3.14+ or 4",
        ),
        (
            vec![
                "--charts".into(),
                empty.display().to_string(),
                "--helm".into(),
                h.clone(),
            ],
            "no Istio charts found",
        ),
    ];
    sim.clear_requests();
    for (args, says) in cases {
        let mut full = vec!["install".to_string(), "-y".to_string()];
        full.extend(args);
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let out = sim.meshup(&refs);
        out.expect(2);
        assert!(out.stderr.contains(says), "{full:?}: {}", out.stderr);
    }
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
}
