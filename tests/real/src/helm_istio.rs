//! Istio installed by a real Helm with istio.io's documented commands and a user's values (a
//! values file for istiod, `--set` for the gateway), on a fresh cluster with the injector
//! stand-in: the start state of the Helm-install tests and of the side-by-side benchmark,
//! Istio's documented `helm upgrade` sequence, and what Helm and kubectl say afterwards.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::charts::{self, assert_gateway_pods_injected};
use crate::webhook::WebhookServer;
use crate::{Cluster, Run, helm};

/// The istiod values file of the install (`helm install istiod -f`).
pub const ISTIOD_VALUES: &str =
    "pilot:\n  env:\n    MESHUP_TEST_KEPT: \"yes\"\nmeshConfig:\n  accessLogFile: /dev/stdout\n";
/// The gateway's `--set` at install.
pub const GATEWAY_SET: &str = "service.type=ClusterIP";
/// The base chart's `--set`, as istio.io gives it.
pub const BASE_SET: &str = "defaultRevision=default";
/// A values file that annotates istiod's pods for KWOK's never-ready stage (an annotation's
/// value is a string: a values file says so).
pub const NEVER_READY_VALUES: &str = "podAnnotations:\n  meshup.test/never-ready: \"true\"\n";

/// Istio's CRDs in the releases the tests use.
pub const CRDS: usize = 14;

/// The releases of the install, in Istio's documented order, with their namespaces.
pub const RELEASES: [(&str, &str); 3] = [
    ("istio-base", "istio-system"),
    ("istiod", "istio-system"),
    ("istio-ingress", "istio-ingress"),
];

/// A fresh cluster with the injector stand-in, a real helm of one major, and the user's
/// values files.
pub struct HelmIstio {
    pub c: Cluster,
    pub helm: PathBuf,
    /// The istiod values file (`ISTIOD_VALUES`).
    pub values: PathBuf,
    /// `NEVER_READY_VALUES` as a file.
    pub never_ready: PathBuf,
    _injector: WebhookServer,
}

impl HelmIstio {
    /// A cluster of its own with `webhook_server` (the test binary's
    /// `CARGO_BIN_EXE_webhook-server`) standing in for istiod's injector.
    #[track_caller]
    pub fn new(major: u32, webhook_server: &Path) -> HelmIstio {
        let helm = helm::build(major);
        let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster of its own: {e:?}"));
        let injector = c.webhook_server(webhook_server, &["istio-system"]);
        let values = c.dir.path().join("istiod-values.yaml");
        std::fs::write(&values, ISTIOD_VALUES).unwrap();
        let never_ready = c.dir.path().join("never-ready.yaml");
        std::fs::write(&never_ready, NEVER_READY_VALUES).unwrap();
        HelmIstio {
            c,
            helm,
            values,
            never_ready,
            _injector: injector,
        }
    }

    pub fn helm_run(&self, args: &[&str]) -> Run {
        self.c.helm(&self.helm, args)
    }

    #[track_caller]
    pub fn helm_ok(&self, args: &[&str]) -> String {
        self.c.helm_ok(&self.helm, args)
    }

    /// Istio's documented Helm install (istio.io, "Install with Helm"), with the user's
    /// values; then everything is checked to be at `version` (`assert_at`).
    #[track_caller]
    pub fn install(&self, version: &str) {
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

    /// Istio's documented in-place upgrade (istio.io, "Upgrade with Helm": `helm upgrade` of
    /// istio-base, istiod, then the gateway), each release given again the values it was
    /// installed with, as the doc tells users to: `(release, helm arguments)`, in that order.
    /// The caller adds the flags (`--wait`, ...).
    pub fn upgrade_commands(&self, version: &str) -> Vec<(&'static str, Vec<String>)> {
        let values = self.values.to_str().unwrap().to_string();
        RELEASES
            .iter()
            .map(|&(release, ns)| {
                let (chart, user) = match release {
                    "istio-base" => ("base", ["--set".to_string(), BASE_SET.to_string()]),
                    "istiod" => ("istiod", ["-f".to_string(), values.clone()]),
                    _ => ("gateway", ["--set".to_string(), GATEWAY_SET.to_string()]),
                };
                let mut args: Vec<String> =
                    ["upgrade", release, &helm::chart(version, chart), "-n", ns]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                args.extend(user);
                (release, args)
            })
            .collect()
    }

    /// `meshup CMD --charts <version's release> --helm <this helm> EXTRA...`.
    pub fn meshup(&self, cmd: &str, version: &str, extra: &[&str]) -> Run {
        let dir = helm::release(version);
        let helm = self.helm.to_str().unwrap();
        let mut args = vec![cmd, "--charts", &dir, "--helm", helm];
        args.extend_from_slice(extra);
        self.c.meshup(&args)
    }

    /// `helm history NAME -o json`, the newest `n` revisions, oldest first.
    #[track_caller]
    pub fn newest(&self, release: &str, n: usize) -> Vec<Value> {
        let ns = namespace_of(release);
        let out = self.helm_ok(&["history", release, "-n", ns, "-o", "json"]);
        let all: Vec<Value> = serde_json::from_str(&out).expect("helm history json");
        all[all.len().saturating_sub(n)..].to_vec()
    }

    /// The newest revisions of `release` have these (status, app version), oldest first.
    #[track_caller]
    pub fn assert_newest(&self, release: &str, expected: &[(&str, &str)]) {
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
    pub fn assert_at(&self, version: &str) {
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

    /// `helm get values RELEASE -o json` of each release.
    #[track_caller]
    pub fn user_values(&self) -> Vec<(&'static str, Value)> {
        RELEASES
            .iter()
            .map(|&(release, ns)| {
                let out = self.helm_ok(&["get", "values", release, "-n", ns, "-o", "json"]);
                (
                    release,
                    serde_json::from_str(&out).expect("helm values json"),
                )
            })
            .collect()
    }

    #[track_caller]
    fn assert_helm_says(&self, version: &str) {
        let user = [
            json!({"defaultRevision": "default"}),
            json!({"pilot": {"env": {"MESHUP_TEST_KEPT": "yes"}}, "meshConfig": {"accessLogFile": "/dev/stdout"}}),
            json!({"service": {"type": "ClusterIP"}}),
        ];
        for ((release, values), user) in self.user_values().into_iter().zip(user) {
            let newest = &self.newest(release, 1)[0];
            assert_eq!(
                (&newest["status"], &newest["app_version"]),
                (&json!("deployed"), &json!(version)),
                "helm history {release}"
            );
            assert_eq!(values, user, "helm get values {release}");
        }
        let manifest = self.helm_ok(&["get", "manifest", "istiod", "-n", "istio-system"]);
        assert!(
            manifest.contains(&format!("/pilot:{version}")),
            "helm get manifest istiod is not {version}'s"
        );
    }
}

/// The namespace of one of the install's releases.
pub fn namespace_of(release: &str) -> &'static str {
    RELEASES
        .iter()
        .find(|(r, _)| *r == release)
        .map(|(_, ns)| *ns)
        .unwrap_or("istio-system")
}
