//! The upgrade flow and each rule, end to end.

use serde_json::Value;

use crate::common::*;

#[test]
fn install_upgrade_downgrade_with_versions_read_back_by_kubectl() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    assert_eq!(sim.istiod_versions(), vec!["1.7.8"]);

    let up = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"]);
    up.expect(0);
    assert!(
        up.stdout.contains("control plane now at 1.8.6"),
        "{}",
        up.stdout
    );
    assert_eq!(sim.istiod_versions(), vec!["1.8.6"]);
    // 1.8 renamed istiod's ClusterRoleBinding: the new one is created, the old one pruned;
    // CRDs are never pruned.
    let crb = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/";
    let (code, _) = sim.http("GET", &format!("{crb}istiod-pilot-istio-system"), None);
    assert_eq!(
        code, 404,
        "1.7's istiod-pilot-istio-system should be pruned"
    );
    let (code, _) = sim.http("GET", &format!("{crb}istiod-istio-system"), None);
    assert_eq!(code, 200);
    let (code, _) = sim.http("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/workloadgroups.networking.istio.io", None);
    assert_eq!(code, 200);

    let down = sim.meshup(&["upgrade", "--bundle", &b("istio-1.7.8"), "-y", "-o", "json"]);
    down.expect(0);
    let doc = down.json();
    assert_eq!(doc["direction"], "downgrade");
    assert_eq!(doc["result"]["status"], "deployed");
    assert_eq!(sim.istiod_versions(), vec!["1.7.8"]);
    // And back: 1.7's name returns, 1.8's is pruned.
    let (code, _) = sim.http("GET", &format!("{crb}istiod-pilot-istio-system"), None);
    assert_eq!(code, 200);
    let (code, _) = sim.http("GET", &format!("{crb}istiod-istio-system"), None);
    assert_eq!(
        code, 404,
        "1.8's istiod-istio-system should be pruned on the way down"
    );
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    let statuses: Vec<&str> = hist["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["superseded", "superseded", "deployed"]);
}

#[test]
fn two_minor_skew_is_blocked_both_ways_and_force_is_audited() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.clear_requests();
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.9.5"), "-o", "json"]);
    pre.expect(3);
    let doc = pre.json();
    assert_eq!(doc["blocked"], true);
    assert_eq!(doc["current_version"], "1.7.8");
    assert_eq!(doc["target_version"], "1.9.5");
    assert!(codes(&doc).contains(&"skew.too-far".to_string()), "{doc}");
    let up = sim.meshup(&["upgrade", "--bundle", &b("istio-1.9.5"), "-y"]);
    up.expect(3);
    assert!(up.stderr.contains("skew.too-far"), "{}", up.stderr);
    assert!(
        sim.mutations().is_empty(),
        "a blocked run changed something: {:?}",
        sim.mutations()
    );

    let audit = sim.dir.path().join("audit.jsonl");
    let forced = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.9.5"),
        "-y",
        "--force",
        "--audit-log",
        audit.to_str().unwrap(),
    ]);
    forced.expect(0);
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["version"], "1.9.5");
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert!(
        lines.lines().any(|l| l.contains("skew.too-far")),
        "audit log records the finding that was forced"
    );

    // And down two minors.
    let down = sim.meshup(&["precheck", "--bundle", &b("istio-1.7.8"), "-o", "json"]);
    down.expect(3);
    assert!(codes(&down.json()).contains(&"skew.too-far".to_string()));
    let ignored = sim.meshup(&[
        "precheck",
        "--bundle",
        &b("istio-1.7.8"),
        "--ignore",
        "skew.too-far",
        "-o",
        "json",
    ]);
    ignored.expect(0);
    assert_eq!(ignored.json()["overridden"][0], "skew.too-far");
}

const CANARY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: istio-system}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-canary
  namespace: istio-system
  labels: {app: istiod, istio.io/rev: canary}
spec:
  replicas: 1
  selector: {matchLabels: {app: istiod, istio.io/rev: canary}}
  template:
    metadata: {labels: {app: istiod, istio.io/rev: canary}}
    spec:
      containers: [{name: discovery, image: "docker.io/istio/pilot:1.7.8"}]
"#;

#[test]
fn revision_based_install_is_refused() {
    let sim = Sim::start_with(Some(CANARY), &[]);
    let run = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y", "-o", "json"]);
    run.expect(3);
    assert!(
        codes(&run.json()).contains(&"revision.unsupported".to_string()),
        "{}",
        run.stdout
    );
    assert!(sim.mutations().is_empty());
}

/// A built-in bundle is not Helm's charts: over a Helm install it is refused, and the
/// message says to upgrade from the release's own charts.
#[test]
fn helm_install_with_a_bundle_is_refused_naming_the_charts() {
    let sim = Sim::start_with(Some(&istiod_seed("1.7.8", HELM_MARKS)), &[]);
    let run = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"]);
    run.expect(3);
    assert!(run.all().contains("install-method.helm"), "{}", run.all());
    assert!(
        run.all().contains("--charts"),
        "tells the user to use the release's charts: {}",
        run.all()
    );
    assert!(sim.mutations().is_empty());
}

#[test]
fn istioctl_install_upgrades_and_reports_values_it_would_revert() {
    let Some(seed) = istioctl_seed("1.7.8", USER_IOP) else {
        return;
    };
    let sim = Sim::start_with(Some(&seed), &[]);
    wait_ready(&sim, "istio-system", "istiod", 2);
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert_eq!(doc["plan"]["install_method"], "istioctl");
    assert_eq!(doc["current_version"], "1.7.8");
    assert!(
        codes(&doc).contains(&"values-revert.reverted".to_string()),
        "{doc}"
    );
    let reverted: Vec<&str> = doc["plan"]["reverted_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["path"].as_str().unwrap())
        .collect();
    assert!(
        reverted.contains(&"values.pilot.traceSampling")
            && reverted.contains(&"meshConfig.accessLogFile"),
        "{reverted:?}"
    );

    // Passing the same -f as at install time keeps them and the warning goes away.
    let iop = sim.dir.path().join("iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    let again = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "-o",
        "json",
        "-f",
        iop.to_str().unwrap(),
    ]);
    again.expect(0);
    assert!(!codes(&again.json()).contains(&"values-revert.reverted".to_string()));
    assert_eq!(sim.istiod_versions(), vec!["1.8.6"]);
}

#[test]
fn single_replica_istiod_without_pdb_warns() {
    let sim = Sim::start();
    install(
        &sim,
        "istio-1.7.8",
        &[
            "--set",
            "values.global.defaultPodDisruptionBudget.enabled=false",
        ],
    );
    let pre = sim.meshup(&[
        "precheck",
        "--bundle",
        &b("istio-1.8.6"),
        "--set",
        "values.global.defaultPodDisruptionBudget.enabled=false",
        "-o",
        "json",
    ]);
    pre.expect(0);
    let doc = pre.json();
    let pdb: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["policy"] == "pdb")
        .collect();
    assert!(!pdb.is_empty(), "{doc}");
    assert!(pdb.iter().all(|f| f["severity"] == "warning"));
}

#[test]
fn changed_profile_default_is_shown() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    let pre = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6"), "-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    assert!(
        codes(&doc).contains(&"profile-defaults.changed".to_string()),
        "{doc}"
    );
    let changed = &doc["plan"]["profile_default_changes"];
    assert!(
        changed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "values.global.trustDomain"),
        "{changed}"
    );
    // The text form reads as what changes (an emptied string stays visible as "").
    let text = sim.meshup(&["precheck", "--bundle", &b("istio-1.8.6")]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("values.global.trustDomain: cluster.local → \"\""),
        "{}",
        text.stdout
    );
}

#[test]
fn dry_run_sends_no_mutating_request() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.clear_requests();
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "--dry-run",
        "-o",
        "json",
    ]);
    run.expect(0);
    assert_eq!(run.json()["result"]["status"], "dry-run");
    assert!(
        sim.mutations().is_empty(),
        "dry run mutated: {:?}",
        sim.mutations()
    );
    let (_, body) = sim.http("GET", "/sim/v1/requests", None);
    assert!(
        body.contains("dryRun=All"),
        "the dry run asked the server to validate"
    );
}

#[test]
fn prompt_without_tty_refuses_and_yes_proceeds() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim.clear_requests();
    let run = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6")]);
    run.expect(2);
    assert!(
        run.stderr.contains("refusing to prompt without a terminal"),
        "{}",
        run.stderr
    );
    assert!(sim.mutations().is_empty());
    // With a terminal, answering "n" aborts with exit 4 (script(1) gives the child a pty).
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok()
    {
        let cmd = format!(
            "NO_COLOR=1 MESHUP_CACHE_DIR={} {} --kubeconfig {} upgrade --bundle {}",
            cache_dir().display(),
            meshup_bin(),
            sim.kubeconfig.display(),
            b("istio-1.8.6")
        );
        // script(1) runs meshup on a pty and forwards our "n" to it as typed input.
        let mut child = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"n\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("[y/N]"), "{text}");
        assert_eq!(out.status.code(), Some(4), "{text}");
        assert!(sim.mutations().is_empty());
    } else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "script(1) is not installed and CI=true: the prompt check must run in CI"
        );
        eprintln!("SKIPPED tty prompt check: script(1) is not installed");
    }
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
}

#[test]
fn status_reports_control_and_data_plane() {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    deploy_cart(&sim, 2);
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
    let st = sim.meshup(&["status", "-o", "json"]).expect(0).json();
    assert_eq!(st["control_planes"][0]["version"], "1.8.6");
    let dp = sim
        .meshup(&["dataplane", "status", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(dp["outdated"][0]["workload"], "deployment/cart");
    assert_eq!(dp["outdated"][0]["versions"]["1.7.8"], 2);
    let text = sim
        .meshup(&["dataplane", "status"])
        .expect(0)
        .stdout
        .clone();
    assert!(
        text.contains("kubectl rollout restart deployment/cart -n shop"),
        "{text}"
    );
    sim.meshup(&["dataplane", "restart", "--namespace", "shop"])
        .expect(0);
    let dp = sim
        .meshup(&["dataplane", "status", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(dp["outdated"].as_array().unwrap().len(), 0, "{dp}");
}

#[test]
fn install_dry_run_on_an_empty_cluster_changes_nothing() {
    let sim = Sim::start();
    let run = sim.meshup(&[
        "install",
        "--bundle",
        &b("istio-1.7.8"),
        "--dry-run",
        "-o",
        "json",
    ]);
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["direction"], "install");
    assert_eq!(doc["result"]["status"], "dry-run");
    assert!(sim.mutations().is_empty(), "{:?}", sim.mutations());
    let (code, _) = sim.http("GET", "/api/v1/namespaces/istio-system", None);
    assert_eq!(code, 404);
}
