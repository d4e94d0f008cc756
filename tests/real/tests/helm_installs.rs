//! Istio installed by real Helm (v4.3.2, and v3.21.4) with Istio's documented commands and
//! a user's values (a values file for istiod, `--set` for the gateway), then upgraded by
//! meshup from the releases' own charts: 1.29.6 → 1.30.3 → 1.31.0-rc.0 → down to 1.30.3,
//! a plain `helm upgrade` of the same charts and values over meshup's work, an automatic
//! restore when istiod never becomes ready, a `kill -9` mid-upgrade recovered by `meshup
//! rollback`, up to 1.31.0-rc.0 again, `meshup rollback` to its 1.30.3 revision, and `helm
//! rollback` of istiod. After each step Helm
//! itself is asked what it knows (`helm history`, `get values`, `get manifest`), and kubectl
//! what runs.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use meshup_real_tests::helm_istio::HelmIstio;
use meshup_real_tests::{Cluster, helm};

use crate::eventually;

pub(crate) fn helm4_install_upgraded_by_meshup(_shared: &Cluster) {
    scenario(4);
}

pub(crate) fn helm3_install_upgraded_by_meshup(_shared: &Cluster) {
    scenario(3);
}

fn scenario(major: u32) {
    let s = HelmIstio::new(major, Path::new(env!("CARGO_BIN_EXE_webhook-server")));
    s.install("1.29.6");
    let status = s.c.meshup(&["status", "-o", "json"]).expect(0).json();
    assert_eq!(status["install_method"], "helm", "{status}");

    // What the user set is kept, and the plan says so.
    let pre = s.meshup("precheck", "1.30.3", &["-o", "json"]);
    pre.expect(0);
    let doc = pre.json();
    let kept: Vec<&str> = doc["plan"]["kept_values"]
        .as_array()
        .unwrap_or_else(|| panic!("no kept values: {doc}"))
        .iter()
        .filter_map(|v| v["path"].as_str())
        .collect();
    for path in [
        "istiod.pilot.env.MESHUP_TEST_KEPT",
        "istiod.meshConfig.accessLogFile",
        "istio-ingress.service.type",
    ] {
        assert!(kept.contains(&path), "{path} not kept: {kept:?}");
    }
    assert!(
        !codes(&doc).iter().any(|c| c.starts_with("values-revert")),
        "{doc}"
    );
    // `--reset-values` drops them, and each one that reverts is named.
    let reset = s.meshup("precheck", "1.30.3", &["-o", "json", "--reset-values"]);
    let doc = reset.json();
    let reverted: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "values-revert.reverted")
        .filter_map(|f| f["subject"].as_str())
        .collect();
    for path in [
        "istiod.pilot.env.MESHUP_TEST_KEPT",
        "istiod.meshConfig.accessLogFile",
        "istio-ingress.service.type",
    ] {
        assert!(reverted.contains(&path), "{path} not named: {reverted:?}");
    }

    s.meshup("upgrade", "1.30.3", &["-y"]).expect(0);
    s.assert_at("1.30.3");
    s.assert_newest(
        "istiod",
        &[("superseded", "1.29.6"), ("deployed", "1.30.3")],
    );

    s.meshup("upgrade", "1.31.0-rc.0", &["-y"]).expect(0);
    s.assert_at("1.31.0-rc.0");
    s.assert_newest(
        "istiod",
        &[("superseded", "1.30.3"), ("deployed", "1.31.0-rc.0")],
    );

    s.meshup("upgrade", "1.30.3", &["-y"]).expect(0);
    s.assert_at("1.30.3");
    s.assert_newest(
        "istiod",
        &[("superseded", "1.31.0-rc.0"), ("deployed", "1.30.3")],
    );
    s.assert_newest(
        "istio-ingress",
        &[("superseded", "1.31.0-rc.0"), ("deployed", "1.30.3")],
    );

    // The user goes back to plain helm: the same charts and values apply over meshup's work
    // with no conflict, and no workload rolls.
    helm_upgrade_changes_nothing(&s, "1.30.3");
    s.assert_at("1.30.3");

    // istiod never becomes ready on 1.31.0-rc.0: the restore ends verified on 1.30.3, and
    // Helm's history says it as `helm upgrade --rollback-on-failure` would.
    let values = format!("istiod={}", s.never_ready.display());
    let up = s.meshup(
        "upgrade",
        "1.31.0-rc.0",
        &["-y", "--readiness-timeout", "20s", "-f", &values],
    );
    up.expect(5);
    s.assert_at("1.30.3");
    let before = s.newest("istiod", 3)[0]["revision"].clone();
    s.assert_newest(
        "istiod",
        &[("failed", "1.31.0-rc.0"), ("deployed", "1.30.3")],
    );
    let restored = s.newest("istiod", 1)[0]["description"].clone();
    assert_eq!(restored, json!(format!("Rollback to {before}")), "istiod");

    // kill -9 mid-upgrade: Helm's records hold the pending revision (Helm's own lock), the
    // next `meshup rollback` puts the state back and finishes the records honestly.
    kill_mid_upgrade(&s, "1.31.0-rc.0");
    let stuck = s.newest("istiod", 1);
    assert_eq!(stuck[0]["status"], "pending-upgrade", "{stuck:?}");
    let refused = s.helm_run(&[
        "upgrade",
        "istiod",
        &helm::chart("1.30.3", "istiod"),
        "-n",
        "istio-system",
        "-f",
        s.values.to_str().unwrap(),
    ]);
    assert_ne!(refused.code, 0, "helm upgrade over a pending revision");
    assert!(
        refused.all().contains("another operation"),
        "{}",
        refused.all()
    );
    std::thread::sleep(Duration::from_secs(4)); // MESHUP_LOCK_SECONDS=3 expires
    s.c.meshup(&["rollback", "-y"]).expect(0);
    s.assert_at("1.30.3");
    s.assert_newest(
        "istiod",
        &[("failed", "1.31.0-rc.0"), ("deployed", "1.30.3")],
    );

    s.meshup("upgrade", "1.31.0-rc.0", &["-y"]).expect(0);
    s.assert_at("1.31.0-rc.0");

    // meshup's own rollback re-applies its last 1.30.3 revision, and each release's Helm
    // history records it as `helm rollback` would.
    s.c.meshup(&["rollback", "-y"]).expect(0);
    s.assert_at("1.30.3");
    for release in ["istio-base", "istiod", "istio-ingress"] {
        let newest = &s.newest(release, 1)[0];
        let said = newest["description"].as_str().unwrap_or_default();
        assert!(said.starts_with("Rollback to "), "{release}: {newest}");
    }

    // `helm rollback` of istiod returns it to the previous release, and meshup reads it.
    s.helm_ok(&["rollback", "istiod", "-n", "istio-system", "--wait"]);
    s.c.rollout("istio-system", "istiod");
    let status = s.c.meshup(&["status", "-o", "json"]).expect(0).json();
    assert_eq!(
        status["control_planes"][0]["version"], "1.31.0-rc.0",
        "meshup status after helm rollback: {status}"
    );
    s.assert_newest(
        "istiod",
        &[("superseded", "1.30.3"), ("deployed", "1.31.0-rc.0")],
    );
}

fn codes(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["code"].as_str().map(String::from))
        .collect()
}

/// `helm upgrade` of each release with the same chart and values the user installed
/// with (Istio's documented commands; `--wait` on istiod and the gateway): it succeeds (no
/// field-manager conflict) and rolls no workload.
fn helm_upgrade_changes_nothing(s: &HelmIstio, version: &str) {
    let generation = |ns: &str, name: &str| {
        s.c.get_json(&["deployment", name, "-n", ns])["metadata"]["generation"].clone()
    };
    let before = (
        generation("istio-system", "istiod"),
        generation("istio-ingress", "istio-ingress"),
    );
    for (release, mut args) in s.upgrade_commands(version) {
        if release != "istio-base" {
            args.push("--wait".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.helm_ok(&args);
    }
    let after = (
        generation("istio-system", "istiod"),
        generation("istio-ingress", "istio-ingress"),
    );
    assert_eq!(before, after, "helm upgrade rolled a workload");
}

/// An upgrade killed with `kill -9` while istiod (never ready) rolls out.
fn kill_mid_upgrade(s: &HelmIstio, version: &str) {
    let mut run = spawn_upgrade(s, version);
    eventually(
        &format!("istiod's template at {version}"),
        Duration::from_secs(60),
        || s.c.istiod_tags().0 == version,
    );
    let killed = std::process::Command::new("kill")
        .args(["-9", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = run.wait();
}

fn spawn_upgrade(s: &HelmIstio, version: &str) -> Child {
    let values = format!("istiod={}", s.never_ready.display());
    s.c.in_ns(&s.c.meshup)
        .arg("--kubeconfig")
        .arg(&s.c.kubeconfig)
        .args(["upgrade", "--charts", &helm::release(version), "--helm"])
        .arg(&s.helm)
        .args(["-y", "--readiness-timeout", "60s", "-f", &values])
        .env("NO_COLOR", "1")
        .env("MESHUP_LOCK_SECONDS", "3")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn meshup")
}
