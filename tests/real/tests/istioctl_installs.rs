//! An install by today's istioctl (no installed-state), taken over by `meshup --istioctl`:
//! the stand-in 1.30.3 install (README "The stand-in") with a user IstioOperator and
//! `--set values.global.proxy.logLevel=debug`; the precheck names what this run's inputs
//! would revert (`--from-istioctl`); upgrade to 1.31-dev, downgrade to 1.30.3, an automatic
//! rollback; and `istioctl install` of 1.31-dev over meshup's work changes nothing.

use std::path::{Path, PathBuf};
use std::time::Instant;

use meshup_real_tests::cluster::Cluster;
use meshup_real_tests::{Run, end_state, istioctl};
use serde_json::Value;

use crate::codes;

/// The user's IstioOperator: a mesh setting, istiod's resources, a Helm value.
pub(crate) const USER_IOP: &str = "\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    accessLogFile: /dev/stdout
  components:
    pilot:
      k8s:
        resources:
          requests: {cpu: 100m, memory: 256Mi}
  values:
    pilot:
      traceSampling: 5
";
pub(crate) const LOG_LEVEL: [&str; 2] = ["--set", "values.global.proxy.logLevel=debug"];
/// KWOK's never-ready stage matches this pod annotation (see real.rs NEVER_READY). A file,
/// not --set: istioctl reads `--set ...=true` as a boolean, and an annotation is a string.
pub(crate) const NEVER_READY: &str = "\
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  components:
    pilot:
      k8s:
        podAnnotations:
          meshup.test/never-ready: \"true\"
";

struct Fixture {
    c: Cluster,
    istioctl: PathBuf,
    iop: String,
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

impl Fixture {
    /// A fresh cluster with the stand-in 1.30.3 install of the user's inputs.
    fn installed() -> Fixture {
        let istioctl = istioctl::build("1.31-dev");
        let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster of its own: {e:?}"));
        let iop = c.dir.path().join("user-iop.yaml");
        std::fs::write(&iop, USER_IOP).unwrap();
        let f = Fixture {
            c,
            istioctl,
            iop: s(&iop),
        };
        let t = Instant::now();
        let mut args = vec!["install", "-y", "--readiness-timeout", "120s", "-f", &f.iop];
        let stand_in = istioctl::stand_in_1_30_3();
        args.extend(stand_in.iter().map(String::as_str));
        args.extend(LOG_LEVEL);
        f.c.istioctl(&f.istioctl, &args).expect(0);
        eprintln!("stand-in 1.30.3 install took {:.1?}", t.elapsed());
        f.assert_on("1.30.3");
        f
    }

    /// `meshup CMD --istioctl <1.31-dev> -f <user IOP> EXTRA...`
    fn meshup(&self, cmd: &str, extra: &[&str]) -> Run {
        let bin = s(&self.istioctl);
        let mut args = vec![cmd, "--istioctl", &bin, "-f", &self.iop];
        args.extend_from_slice(extra);
        self.c.meshup(&args)
    }

    /// Every control-plane workload at `tag` and ready, read with kubectl: the Deployments'
    /// templates and every pod of istio-system.
    #[track_caller]
    fn assert_on(&self, tag: &str) {
        for d in ["istiod", "istio-ingressgateway"] {
            self.c.rollout("istio-system", d);
        }
        let deployments = self.c.get_json(&["deployments", "-n", "istio-system"]);
        for d in deployments["items"].as_array().unwrap() {
            let image = d["spec"]["template"]["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap();
            assert!(image.ends_with(&format!(":{tag}")), "{image} is not {tag}");
            assert_eq!(
                d["status"]["readyReplicas"], d["spec"]["replicas"],
                "{}",
                d["metadata"]["name"]
            );
        }
        let pods = self.c.get_json(&["pods", "-n", "istio-system"]);
        for p in pods["items"].as_array().unwrap() {
            if !p["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let image = p["spec"]["containers"][0]["image"].as_str().unwrap();
            assert!(
                image.ends_with(&format!(":{tag}")),
                "pod {image} is not {tag}"
            );
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            assert!(ready, "pod {} not ready", p["metadata"]["name"]);
        }
    }

    /// The injector's values as istiod reads them.
    fn proxy_log_level(&self) -> Value {
        let cm = self
            .c
            .get_json(&["configmap", "istio-sidecar-injector", "-n", "istio-system"]);
        let values: Value = serde_json::from_str(cm["data"]["values"].as_str().unwrap()).unwrap();
        values["global"]["proxy"]["logLevel"].clone()
    }
}

fn install_reverts(doc: &Value) -> Vec<&Value> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "plan.install-reverts")
        .collect()
}

/// An object `istioctl install` of 1.30.3 leaves that 1.31 renders no more: labelled as
/// istioctl 1.30.3 labels what it applies (its own version), so `istioctl upgrade` of 1.31
/// (which prunes only its own version's) would leave it. 1.30.3's and 1.31-dev's default
/// renders hold the same objects by kind and name, so the test adds this one.
const LEFT_BY_1_30: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: istio-legacy-1-30
  namespace: istio-system
  labels:
    operator.istio.io/component: Pilot
    operator.istio.io/managed: Reconcile
    operator.istio.io/version: 1.30.3
    install.operator.istio.io/owning-resource-namespace: istio-system
    istio.io/rev: default
";

/// The scenario of issue 20, item 4, from the precheck to the automatic rollback.
pub fn istioctl_install_reverts_upgrade_downgrade_rollback(_shared: &Cluster) {
    let f = Fixture::installed();
    let c = &f.c;
    let leftover = c.dir.path().join("left-by-1.30.yaml");
    std::fs::write(&leftover, LEFT_BY_1_30).unwrap();
    c.kubectl_ok(&["apply", "-f", &s(&leftover)]);
    let bin = s(&f.istioctl);
    let m130 = s(&istioctl::manifests("1.30.3"));

    // Without --from-istioctl: reverts cannot be checked, and the finding says how.
    let pre = f.meshup("precheck", &["-o", "json"]);
    let doc = pre.json();
    let unknown = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["code"] == "plan.reverts-unknown")
        .unwrap_or_else(|| panic!("no plan.reverts-unknown: {}", pre.all()));
    assert!(
        unknown["remediation"]
            .as_str()
            .unwrap()
            .contains("--from-istioctl"),
        "{unknown}"
    );

    // With it, and without the logLevel: exactly the logLevel reverts, each field with the
    // --set that keeps it, and no noise.
    let t = Instant::now();
    let pre = f.meshup(
        "precheck",
        &[
            "--from-istioctl",
            &bin,
            "--from-manifests",
            &m130,
            "-o",
            "json",
        ],
    );
    eprintln!("precheck --from-istioctl took {:.1?}", t.elapsed());
    pre.expect(0);
    let doc = pre.json();
    let reverts = install_reverts(&doc);
    let fields: Vec<&str> = reverts
        .iter()
        .map(|r| r["subject"].as_str().unwrap())
        .collect();
    eprintln!("reverts: {fields:#?}");
    assert!(
        !codes(&doc).iter().any(|c| c == "plan.reverts-unknown"),
        "{}",
        pre.all()
    );
    assert!(
        fields.contains(
            &"ConfigMap istio-system/istio-sidecar-injector:data.values.global.proxy.logLevel"
        ),
        "{fields:?}"
    );
    for r in &reverts {
        assert_eq!(
            r["remediation"], "to keep it: --set values.global.proxy.logLevel=debug",
            "only the logLevel reverts: {r}"
        );
    }
    let warnings = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["severity"] == "warning")
        .count();
    assert!(warnings < 15, "{warnings} warnings: {}", pre.all());

    // Upgrade with the same inputs, the logLevel kept.
    let t = Instant::now();
    let up = f.meshup("upgrade", &[LOG_LEVEL[0], LOG_LEVEL[1], "-y", "-o", "json"]);
    eprintln!("meshup upgrade to 1.31-dev took {:.1?}", t.elapsed());
    up.expect(0);
    f.assert_on("1.31-dev");
    assert_eq!(f.proxy_log_level(), "debug");
    let gone = c.kubectl(&[
        "get",
        "serviceaccount",
        "istio-legacy-1-30",
        "-n",
        "istio-system",
    ]);
    assert_ne!(gone.code, 0, "1.30's leftover was not pruned");
    let up = up.json();
    let pruned: Vec<&str> = up["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["action"] == "prune")
        .map(|x| x["object"].as_str().unwrap())
        .collect();
    assert_eq!(pruned, ["ServiceAccount istio-system/istio-legacy-1-30"]);

    // Downgrade to 1.30.3 with the stand-in's inputs.
    let mut args: Vec<&str> = vec!["-y"];
    let stand_in = istioctl::stand_in_1_30_3();
    args.extend(stand_in.iter().map(String::as_str));
    args.extend(LOG_LEVEL);
    f.meshup("upgrade", &args).expect(0);
    f.assert_on("1.30.3");
    assert_eq!(f.proxy_log_level(), "debug");

    // To 1.31-dev again, with an istiod that never becomes ready: rolled back, verified.
    let t = Instant::now();
    let never_ready = s(&c.dir.path().join("never-ready.yaml"));
    std::fs::write(&never_ready, NEVER_READY).unwrap();
    let mut args = vec![
        "-y",
        "--readiness-timeout",
        "20s",
        "-o",
        "json",
        "-f",
        &never_ready,
    ];
    args.extend(LOG_LEVEL);
    f.meshup("upgrade", &args).expect(5);
    eprintln!("never-ready upgrade and rollback took {:.1?}", t.elapsed());
    f.assert_on("1.30.3");
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "rolled-back", "{hist}");
}

/// After meshup's upgrade, `istioctl install -y` of the same release and inputs succeeds
/// and changes nothing: object by object the same, no rollout.
pub fn istioctl_install_over_meshups_work_changes_nothing(_shared: &Cluster) {
    let f = Fixture::installed();
    let c = &f.c;
    f.meshup("upgrade", &[LOG_LEVEL[0], LOG_LEVEL[1], "-y"])
        .expect(0);
    f.assert_on("1.31-dev");
    let before = end_state::snapshot(c, &["istio-system"]);
    let iop = f.iop.clone();
    let mut args = vec!["install", "-y", "--readiness-timeout", "120s", "-f", &iop];
    args.extend(LOG_LEVEL);
    let run = c.istioctl(&f.istioctl, &args);
    run.expect(0);
    f.assert_on("1.31-dev");
    let after = end_state::snapshot(c, &["istio-system"]);
    let diff = end_state::differences(&before, &after, "before", "after");
    // Nothing differs: meshup applied what istioctl renders, labelled as istioctl labels
    // it, with the revision tag and the deactivated injector webhooks istioctl adds.
    assert!(
        diff.is_empty(),
        "istioctl install changed:\n{}",
        diff.join("\n")
    );
}
