//! Istio installed by real Helm (v4.3.2, and v3.21.4) with Istio's documented commands and
//! a user's values (a values file for istiod, `--set` for the gateway), then upgraded by
//! meshup from the releases' own charts: 1.29.6 → 1.30.3 → 1.31.0-rc.0 → down to 1.30.3,
//! a plain `helm upgrade` of the same charts and values over meshup's work, an automatic
//! restore when istiod never becomes ready, a `kill -9` mid-upgrade recovered by `meshup
//! rollback`, up to 1.31.0-rc.0 again, and `helm rollback` of istiod. After each step Helm
//! itself is asked what it knows (`helm history`, `get values`, `get manifest`), and kubectl
//! what runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use meshup_real_tests::charts::{self, assert_gateway_pods_injected};
use meshup_real_tests::{Cluster, Run, helm};

use crate::eventually;

/// The istiod values file of the install (`helm install istiod -f`).
const ISTIOD_VALUES: &str =
    "pilot:\n  env:\n    MESHUP_TEST_KEPT: \"yes\"\nmeshConfig:\n  accessLogFile: /dev/stdout\n";
/// The gateway's `--set` at install.
const GATEWAY_SET: &str = "service.type=ClusterIP";
/// The base chart's `--set`, as istio.io gives it.
const BASE_SET: &str = "defaultRevision=default";

const CRDS: usize = 14;

/// One Helm major's scenario on a cluster of its own.
struct Scenario {
    c: Cluster,
    helm: PathBuf,
    values: PathBuf,
    never_ready: PathBuf,
    _injector: meshup_real_tests::webhook::WebhookServer,
}

pub(crate) fn helm4_install_upgraded_by_meshup(_shared: &Cluster) {
    scenario(4);
}

pub(crate) fn helm3_install_upgraded_by_meshup(_shared: &Cluster) {
    scenario(3);
}

fn scenario(major: u32) {
    let s = Scenario::new(major);
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
    s.helm_upgrade_changes_nothing("1.30.3");
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
    s.kill_mid_upgrade("1.31.0-rc.0");
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

    // `helm rollback` of istiod returns it to the previous release, and meshup reads it.
    s.helm_ok(&["rollback", "istiod", "-n", "istio-system", "--wait"]);
    s.c.rollout("istio-system", "istiod");
    let status = s.c.meshup(&["status", "-o", "json"]).expect(0).json();
    assert_eq!(
        status["control_planes"][0]["version"], "1.30.3",
        "meshup status after helm rollback: {status}"
    );
    s.assert_newest(
        "istiod",
        &[("superseded", "1.31.0-rc.0"), ("deployed", "1.30.3")],
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

impl Scenario {
    fn new(major: u32) -> Scenario {
        let helm = helm::build(major);
        let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster of its own: {e:?}"));
        let server = Path::new(env!("CARGO_BIN_EXE_webhook-server"));
        let injector = c.webhook_server(server, &["istio-system"]);
        let values = c.dir.path().join("istiod-values.yaml");
        std::fs::write(&values, ISTIOD_VALUES).unwrap();
        // An annotation's value is a string: a values file says so.
        let never_ready = c.dir.path().join("never-ready.yaml");
        std::fs::write(
            &never_ready,
            "podAnnotations:\n  meshup.test/never-ready: \"true\"\n",
        )
        .unwrap();
        Scenario {
            c,
            helm,
            values,
            never_ready,
            _injector: injector,
        }
    }

    fn helm_run(&self, args: &[&str]) -> Run {
        self.c.helm(&self.helm, args)
    }

    #[track_caller]
    fn helm_ok(&self, args: &[&str]) -> String {
        self.c.helm_ok(&self.helm, args)
    }

    /// Istio's documented Helm install (istio.io, "Install with Helm"), with the user's
    /// values.
    fn install(&self, version: &str) {
        let values = self.values.to_str().unwrap();
        self.helm_ok(&[
            "install",
            "istio-base",
            &helm::chart(version, "base"),
            "-n",
            "istio-system",
            "--create-namespace",
            "--set",
            BASE_SET,
        ]);
        self.helm_ok(&[
            "install",
            "istiod",
            &helm::chart(version, "istiod"),
            "-n",
            "istio-system",
            "-f",
            values,
            "--wait",
        ]);
        self.helm_ok(&[
            "install",
            "istio-ingress",
            &helm::chart(version, "gateway"),
            "-n",
            "istio-ingress",
            "--create-namespace",
            "--set",
            GATEWAY_SET,
            "--wait",
        ]);
        self.assert_at(version);
    }

    fn meshup(&self, cmd: &str, version: &str, extra: &[&str]) -> Run {
        let dir = helm::release(version);
        let helm = self.helm.to_str().unwrap();
        let mut args = vec![cmd, "--charts", &dir, "--helm", helm];
        args.extend_from_slice(extra);
        self.c.meshup(&args)
    }

    /// `helm history NAME -o json`, the newest `n` revisions, oldest first.
    fn newest(&self, release: &str, n: usize) -> Vec<Value> {
        let ns = namespace_of(release);
        let out = self.helm_ok(&["history", release, "-n", ns, "-o", "json"]);
        let all: Vec<Value> = serde_json::from_str(&out).expect("helm history json");
        all[all.len().saturating_sub(n)..].to_vec()
    }

    /// The newest revisions of `release` have these (status, app version), oldest first.
    #[track_caller]
    fn assert_newest(&self, release: &str, expected: &[(&str, &str)]) {
        let got: Vec<(String, String)> = self
            .newest(release, expected.len())
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap_or_default().to_string(),
                    r["app_version"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = expected
            .iter()
            .map(|(s, v)| (s.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want, "helm history {release}");
    }

    /// What runs is `version` everywhere, read with kubectl; and Helm says the same: each
    /// release's deployed revision is of `version`, its values are the user's, its manifest
    /// is what runs, and every object is Helm's (annotated, applied under Helm's manager).
    #[track_caller]
    fn assert_at(&self, version: &str) {
        let c = &self.c;
        c.rollout("istio-system", "istiod");
        c.rollout("istio-ingress", "istio-ingress");
        let (template, pods) = c.istiod_tags();
        assert_eq!(
            (template.as_str(), pods),
            (version, vec![version.to_string()])
        );
        let istiod = c.get_json(&["deployment", "istiod", "-n", "istio-system"]);
        let image = istiod["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string();
        let hub = image.strip_suffix(&format!("/pilot:{version}")).unwrap();
        let env = &istiod["spec"]["template"]["spec"]["containers"][0]["env"];
        assert!(
            env.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "MESHUP_TEST_KEPT" && e["value"] == "yes"),
            "the user's istiod value is gone: {env}"
        );
        let pods = c.get_json(&["pods", "-n", "istio-ingress", "-l", "app=istio-ingress"]);
        assert_gateway_pods_injected(&pods, &format!("{hub}/proxyv2:{version}"));
        let svc = c.get_json(&["service", "istio-ingress", "-n", "istio-ingress"]);
        assert_eq!(svc["spec"]["type"], "ClusterIP", "the user's gateway value");
        let all = c.get_json(&[charts::KINDS, "-A", "-l", "app.kubernetes.io/part-of=istio"]);
        charts::assert_all_at(&all, version);
        charts::assert_crds_kept(&c.get_json(&["crds"]), CRDS);
        for o in all["items"].as_array().unwrap() {
            let a = &o["metadata"]["annotations"];
            assert!(
                a["meta.helm.sh/release-name"].is_string(),
                "not Helm's: {} {}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
        let managed = c.get_json(&[
            "deployment",
            "istiod",
            "-n",
            "istio-system",
            "--show-managed-fields",
        ]);
        let managers: Vec<&str> = managed["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(!managers.contains(&"meshup"), "managers: {managers:?}");
        self.assert_helm_says(version);
    }

    #[track_caller]
    fn assert_helm_says(&self, version: &str) {
        for (release, user) in [
            (
                "istiod",
                json!({"pilot": {"env": {"MESHUP_TEST_KEPT": "yes"}}, "meshConfig": {"accessLogFile": "/dev/stdout"}}),
            ),
            ("istio-ingress", json!({"service": {"type": "ClusterIP"}})),
            ("istio-base", json!({"defaultRevision": "default"})),
        ] {
            let ns = namespace_of(release);
            let newest = &self.newest(release, 1)[0];
            assert_eq!(
                (&newest["status"], &newest["app_version"]),
                (&json!("deployed"), &json!(version)),
                "helm history {release}"
            );
            let values: Value = serde_json::from_str(
                &self.helm_ok(&["get", "values", release, "-n", ns, "-o", "json"]),
            )
            .unwrap();
            assert_eq!(values, user, "helm get values {release}");
        }
        let manifest = self.helm_ok(&["get", "manifest", "istiod", "-n", "istio-system"]);
        assert!(
            manifest.contains(&format!("/pilot:{version}")),
            "helm get manifest istiod is not {version}'s"
        );
    }

    /// `helm upgrade` of each release with the same chart and values the user installed
    /// with: it succeeds (no field-manager conflict) and rolls no workload.
    fn helm_upgrade_changes_nothing(&self, version: &str) {
        let generation = |ns: &str, name: &str| {
            self.c.get_json(&["deployment", name, "-n", ns])["metadata"]["generation"].clone()
        };
        let before = (
            generation("istio-system", "istiod"),
            generation("istio-ingress", "istio-ingress"),
        );
        let values = self.values.to_str().unwrap();
        for args in [
            vec![
                "upgrade",
                "istio-base",
                "base",
                "-n",
                "istio-system",
                "--set",
                BASE_SET,
            ],
            vec![
                "upgrade",
                "istiod",
                "istiod",
                "-n",
                "istio-system",
                "-f",
                values,
                "--wait",
            ],
            vec![
                "upgrade",
                "istio-ingress",
                "gateway",
                "-n",
                "istio-ingress",
                "--set",
                GATEWAY_SET,
                "--wait",
            ],
        ] {
            let chart = helm::chart(version, args[2]);
            let mut full = args.clone();
            full[2] = &chart;
            self.helm_ok(&full);
        }
        let after = (
            generation("istio-system", "istiod"),
            generation("istio-ingress", "istio-ingress"),
        );
        assert_eq!(before, after, "helm upgrade rolled a workload");
    }

    /// An upgrade killed with `kill -9` while istiod (never ready) rolls out.
    fn kill_mid_upgrade(&self, version: &str) {
        let mut run = self.spawn_upgrade(version);
        eventually(
            &format!("istiod's template at {version}"),
            Duration::from_secs(60),
            || self.c.istiod_tags().0 == version,
        );
        let killed = std::process::Command::new("kill")
            .args(["-9", &run.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let _ = run.wait();
    }

    fn spawn_upgrade(&self, version: &str) -> Child {
        let values = format!("istiod={}", self.never_ready.display());
        self.c
            .in_ns(&self.c.meshup)
            .arg("--kubeconfig")
            .arg(&self.c.kubeconfig)
            .args(["upgrade", "--charts", &helm::release(version), "--helm"])
            .arg(&self.helm)
            .args(["-y", "--readiness-timeout", "60s", "-f", &values])
            .env("NO_COLOR", "1")
            .env("MESHUP_LOCK_SECONDS", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn meshup")
    }
}

fn namespace_of(release: &str) -> &'static str {
    match release {
        "istio-ingress" => "istio-ingress",
        _ => "istio-system",
    }
}
