//! Today's Istio from its own Helm charts (`--charts`, rendered by the real helm v4.3.2) on
//! the real API server, on a cluster of its own: install 1.29.6, up to 1.30.3 and
//! 1.31.0-rc.0, down to 1.30.3, `rollback`, then an automatic restore when 1.30.3's istiod
//! never becomes ready. The gateway chart's pods (`image: auto`) are injected by the real
//! API server calling the webhook server that stands in for istiod's injector
//! (`meshup_real_tests::webhook`); every end state is read back with kubectl.

use serde_json::Value;

use meshup_real_tests::charts::{self, assert_gateway_pods_injected};
use meshup_real_tests::{Cluster, Run, helm};

/// Istio 1.29 supports Kubernetes up to 1.35; the tier runs 1.36.
const K8S_TOO_NEW: &str = crate::K8S_TOO_NEW;

fn charts(c: &Cluster, helm: &str, cmd: &str, version: &str, extra: &[&str]) -> Run {
    let dir = helm::release(version);
    let mut args = vec![cmd, "--charts", &dir, "--helm", helm];
    args.extend_from_slice(extra);
    c.meshup(&args)
}

fn ready(d: &Value) -> bool {
    d["status"]["readyReplicas"] == d["spec"]["replicas"]
        && d["status"]["updatedReplicas"] == d["spec"]["replicas"]
}

/// The end state, read with kubectl: istiod on `version`'s pilot image and ready; the
/// gateway ready, each of its pods injected by the API server's call to the injector with
/// the control plane's proxy; every object of Istio's charts at `version` (none of another
/// release left); the CRDs all there. Returns the proxy image.
#[track_caller]
fn assert_at(c: &Cluster, version: &str, crds: usize) -> String {
    c.rollout("istio-system", "istiod");
    c.rollout("istio-ingress", "istio-ingress");
    let istiod = c.get_json(&["deployment", "istiod", "-n", "istio-system"]);
    let image = istiod["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_string();
    let hub = image
        .strip_suffix(&format!("/pilot:{version}"))
        .unwrap_or_else(|| panic!("istiod image {image} is not {version}'s"));
    assert!(ready(&istiod), "istiod: {}", istiod["status"]);
    let (_, pods) = c.istiod_tags();
    assert_eq!(pods, vec![version.to_string()], "istiod pods");
    let gw = c.get_json(&["deployment", "istio-ingress", "-n", "istio-ingress"]);
    assert!(ready(&gw), "gateway: {}", gw["status"]);
    let proxy = format!("{hub}/proxyv2:{version}");
    assert_gateway_injected(c, &proxy);
    let all = c.get_json(&[charts::KINDS, "-A", "-l", "app.kubernetes.io/part-of=istio"]);
    assert!(
        all["items"].as_array().unwrap().len() > 20,
        "Istio's objects: {all}"
    );
    charts::assert_all_at(&all, version);
    charts::assert_crds_kept(&c.get_json(&["crds"]), crds);
    proxy
}

/// The gateway's pods, read with kubectl, as Istio's injector leaves them.
#[track_caller]
fn assert_gateway_injected(c: &Cluster, proxy: &str) {
    let pods = c.get_json(&["pods", "-n", "istio-ingress", "-l", "app=istio-ingress"]);
    assert_gateway_pods_injected(&pods, proxy);
}

pub(crate) fn charts_install_upgrade_downgrade_rollback(_shared: &Cluster) {
    let helm = helm::build(4);
    let helm = helm.to_str().unwrap();
    let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster of its own: {e:?}"));
    let server = std::path::Path::new(env!("CARGO_BIN_EXE_webhook-server"));
    let _injector = c.webhook_server(server, &["istio-system"]);
    let crds = 14;

    let install = charts(
        &c,
        helm,
        "install",
        "1.29.6",
        &["-y", "--ignore", K8S_TOO_NEW],
    );
    install.expect(0);
    let proxy = assert_at(&c, "1.29.6", crds);
    assert_eq!(proxy, "docker.io/istio/proxyv2:1.29.6");

    // A value of the wrong type for its field (`--set` reads `true` as a bool; annotations
    // are strings): the API server refuses the object in the dry-run, a blocking finding
    // names it and the fix, nothing changes.
    let wrong = charts(
        &c,
        helm,
        "precheck",
        "1.30.3",
        &[
            "-o",
            "json",
            "--set",
            r"istiod:podAnnotations.meshup\.test/x=true",
        ],
    );
    wrong.expect(3);
    let doc = wrong.json();
    let rejected = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "plan.rejected")
        .unwrap_or_else(|| panic!("no plan.rejected: {doc}"));
    assert_eq!(
        rejected["subject"], "Deployment istio-system/istiod",
        "{rejected}"
    );
    assert!(
        rejected["remediation"]
            .as_str()
            .unwrap()
            .contains("values file"),
        "{rejected}"
    );

    let pre = charts(&c, helm, "precheck", "1.30.3", &["-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(
        (
            &doc["current_version"],
            &doc["target_version"],
            &doc["blocked"]
        ),
        (&"1.29.6".into(), &"1.30.3".into(), &false.into()),
        "{doc}"
    );

    charts(&c, helm, "upgrade", "1.30.3", &["-y"]).expect(0);
    let proxy = assert_at(&c, "1.30.3", crds);
    assert_eq!(proxy, "registry.istio.io/release/proxyv2:1.30.3");

    charts(&c, helm, "upgrade", "1.31.0-rc.0", &["-y"]).expect(0);
    assert_at(&c, "1.31.0-rc.0", crds);

    charts(&c, helm, "upgrade", "1.30.3", &["-y"]).expect(0);
    assert_at(&c, "1.30.3", crds);

    c.meshup(&["rollback", "-y"]).expect(0);
    assert_at(&c, "1.31.0-rc.0", crds);

    // 1.30.3's istiod never becomes ready (KWOK's never-ready stage takes pods so annotated):
    // the upgrade fails, the restore ends verified on 1.31.0-rc.0.
    // An annotation's value is a string: a values file says so (`--set` would give a bool,
    // which the API server refuses, as with `helm --set`).
    let never = c.dir.path().join("never-ready.yaml");
    std::fs::write(
        &never,
        "podAnnotations:\n  meshup.test/never-ready: \"true\"\n",
    )
    .unwrap();
    let values = format!("istiod={}", never.display());
    let up = charts(
        &c,
        helm,
        "upgrade",
        "1.30.3",
        &["-y", "--readiness-timeout", "20s", "-f", &values],
    );
    up.expect(5);
    assert!(up.all().contains("verified"), "{}", up.all());
    assert_at(&c, "1.31.0-rc.0", crds);
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (&last["version"], &last["status"]),
        (&"1.30.3".into(), &"rolled-back".into()),
        "{hist}"
    );
}
