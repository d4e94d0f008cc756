//! meshup against a real Kubernetes control plane (kube-apiserver, etcd, KCM, scheduler and
//! KWOK fake nodes), every client inside the cluster's loopback-only network namespace.
//!
//! One cluster serves the whole binary, so the tests run in this order and each states the
//! installed version it starts from. The bundles' supported Kubernetes ranges end before the
//! tier's 1.36, so runs that check pass `--ignore k8s-version.too-new` and assert it fired.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod api_cases;
mod bench;
mod charts;
mod helm_installs;
mod istioctl_bench;
mod istioctl_installs;

use meshup_real_tests::Run;
use meshup_real_tests::audit::describe;
use meshup_real_tests::cluster::{Cluster, bundle};
use meshup_real_tests::compare::{Endpoint, SimProcess, divergences};
use meshup_real_tests::istioctl;
use meshup_real_tests::runner::{self, Test};
use serde_json::Value;

pub(crate) const K8S_TOO_NEW: &str = "k8s-version.too-new";
const ADMIN: &str = "meshup-admin";

fn main() {
    runner::main(
        &[
            Test {
                name: "network_reaches_nothing_but_loopback",
                run: network_reaches_nothing_but_loopback,
            },
            Test {
                name: "deployment_rolls_out_through_kwok",
                run: deployment_rolls_out_through_kwok,
            },
            Test {
                name: "install_upgrade_downgrade_rollback",
                run: install_upgrade_downgrade_rollback,
            },
            Test {
                name: "dry_run_changes_nothing_by_the_audit_log",
                run: dry_run_changes_nothing_by_the_audit_log,
            },
            Test {
                name: "limited_user_precheck_lists_missing_permissions",
                run: limited_user_precheck_lists_missing_permissions,
            },
            Test {
                name: "viewer_precheck_reads_what_it_may_and_names_what_it_may_not",
                run: viewer_precheck_reads_what_it_may_and_names_what_it_may_not,
            },
            Test {
                name: "never_ready_istiod_rolls_back_automatically",
                run: never_ready_istiod_rolls_back_automatically,
            },
            Test {
                name: "second_concurrent_run_is_refused_by_the_lock",
                run: second_concurrent_run_is_refused_by_the_lock,
            },
            Test {
                name: "kill_9_mid_upgrade_then_rollback_recovers",
                run: kill_9_mid_upgrade_then_rollback_recovers,
            },
            Test {
                name: "dataplane_status_and_restart_on_prebuilt_sidecars",
                run: dataplane_status_and_restart_on_prebuilt_sidecars,
            },
            Test {
                name: "compare_sim_with_the_real_api_server",
                run: compare_sim_with_the_real_api_server,
            },
            Test {
                name: "real_istioctl_installs_its_release",
                run: real_istioctl_installs_its_release,
            },
            Test {
                name: "charts_install_upgrade_downgrade_rollback",
                run: charts::charts_install_upgrade_downgrade_rollback,
            },
            Test {
                name: "helm4_install_upgraded_by_meshup",
                run: helm_installs::helm4_install_upgraded_by_meshup,
            },
            Test {
                name: "helm3_install_upgraded_by_meshup",
                run: helm_installs::helm3_install_upgraded_by_meshup,
            },
            Test {
                name: "istioctl_install_reverts_upgrade_downgrade_rollback",
                run: istioctl_installs::istioctl_install_reverts_upgrade_downgrade_rollback,
            },
            Test {
                name: "istioctl_install_over_meshups_work_changes_nothing",
                run: istioctl_installs::istioctl_install_over_meshups_work_changes_nothing,
            },
        ],
        // On demand (printed ratios, minutes for 10,000 pods), last: it leaves those pods behind.
        &[
            Test {
                name: "benchmarks",
                run: bench::benchmarks,
            },
            Test {
                name: "charts_precheck_timing",
                run: bench::charts_precheck_timing,
            },
            Test {
                name: "istioctl_upgrade_side_by_side",
                run: istioctl_bench::istioctl_upgrade_side_by_side,
            },
            Test {
                name: "helm_side_by_side",
                run: bench::helm_side_by_side,
            },
        ],
    );
}

/// Error codes overridden by `--ignore` in a `-o json` document.
fn overridden(doc: &Value) -> Vec<String> {
    doc["overridden"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn codes(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["code"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_istiod_at(c: &Cluster, version: &str) {
    c.rollout("istio-system", "istiod");
    let (template, pods) = c.istiod_tags();
    assert_eq!(template, version, "istiod Deployment template");
    assert_eq!(pods, vec![version.to_string()], "istiod pods");
}

/// `meshup upgrade` (or downgrade) to a shipped bundle, past the bundles' Kubernetes range.
pub(crate) fn upgrade(c: &Cluster, version: &str, extra: &[&str]) -> Run {
    let b = bundle(&format!("istio-{version}"));
    let mut args = vec!["upgrade", "--bundle", &b, "-y", "--ignore", K8S_TOO_NEW];
    args.extend_from_slice(extra);
    c.meshup(&args)
}

/// Bring the cluster to 1.7.8 installed by meshup (each test can then run alone, or after
/// the others on the shared cluster).
pub(crate) fn at_1_7_8(c: &Cluster) {
    let installed = c
        .kubectl(&["get", "deployment", "istiod", "-n", "istio-system"])
        .code
        == 0;
    if !installed {
        c.meshup(&[
            "install",
            "--bundle",
            &bundle("istio-1.7.8"),
            "-y",
            "--ignore",
            K8S_TOO_NEW,
        ])
        .expect(0);
    } else if c.istiod_tags().0 != "1.7.8" {
        upgrade(c, "1.7.8", &[]).expect(0);
    }
    assert_istiod_at(c, "1.7.8");
}

/// Inside the namespace a dial to a non-loopback address fails at once: nothing can leave.
fn network_reaches_nothing_but_loopback(c: &Cluster) {
    let out = Command::new("ip")
        .args(["netns", "exec", &c.netns, "bash", "-c"])
        .arg("exec 3<>/dev/tcp/10.0.0.5/443")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "connect to 10.0.0.5:443 succeeded");
    assert!(err.contains("Network is unreachable"), "{err}");
    let links = Command::new("ip")
        .args(["netns", "exec", &c.netns, "ip", "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "only lo expected:\n{links}");
    // The API server itself is reachable there, and it is the pinned release.
    assert!(
        c.server_version().starts_with("v1.36."),
        "{}",
        c.server_version()
    );
}

/// The smoke test: a Deployment really rolls out to Ready through the scheduler and KWOK.
fn deployment_rolls_out_through_kwok(c: &Cluster) {
    c.kubectl_ok(&[
        "create",
        "deployment",
        "smoke",
        "--image=registry.invalid/smoke:1",
        "--replicas=2",
    ]);
    c.rollout("default", "smoke");
    let dep = c.get_json(&["deployment", "smoke"]);
    assert_eq!(dep["status"]["readyReplicas"], 2, "{}", dep["status"]);
    let pods = c.get_json(&["pods", "-l", "app=smoke"]);
    for p in pods["items"].as_array().unwrap() {
        assert_eq!(p["spec"]["nodeName"], "kwok-node-0");
        assert_eq!(p["status"]["hostIP"], "127.0.0.1");
    }
    c.kubectl_ok(&["delete", "deployment", "smoke", "--wait=true"]);
}

fn install_upgrade_downgrade_rollback(c: &Cluster) {
    let install = c.meshup(&[
        "install",
        "--bundle",
        &bundle("istio-1.7.8"),
        "-y",
        "--ignore",
        K8S_TOO_NEW,
        "-o",
        "json",
    ]);
    install.expect(0);
    assert_istiod_at(c, "1.7.8");

    // The precheck names the version problem; without --ignore it blocks.
    let pre = c.meshup(&["precheck", "--bundle", &bundle("istio-1.8.6"), "-o", "json"]);
    let doc = pre.json();
    assert_eq!(doc["current_version"], "1.7.8", "{doc}");
    assert_eq!(doc["target_version"], "1.8.6", "{doc}");
    assert_eq!(doc["direction"], "upgrade");
    assert!(codes(&doc).contains(&K8S_TOO_NEW.to_string()), "{doc}");
    assert_eq!(doc["blocked"], true, "{doc}");
    pre.expect(3);

    let up = upgrade(c, "1.8.6", &["-o", "json"]);
    up.expect(0);
    let doc = up.json();
    assert_eq!(overridden(&doc), vec![K8S_TOO_NEW], "{doc}");
    assert_eq!(doc["result"]["status"], "deployed", "{doc}");
    assert_istiod_at(c, "1.8.6");

    let down = upgrade(c, "1.7.8", &["-o", "json"]);
    down.expect(0);
    assert_eq!(down.json()["direction"], "downgrade");
    assert_istiod_at(c, "1.7.8");

    // Rollback re-applies the previous successful release: 1.8.6.
    c.meshup(&["rollback", "-y"]).expect(0);
    assert_istiod_at(c, "1.8.6");
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "deployed", "{hist}");
    assert_eq!(last["version"], "1.8.6", "{hist}");

    // Back to 1.7.8 for the tests that follow.
    upgrade(c, "1.7.8", &[]).expect(0);
    assert_istiod_at(c, "1.7.8");
}

/// `--dry-run` sends only dry-run writes: counted from the API server's own audit log.
fn dry_run_changes_nothing_by_the_audit_log(c: &Cluster) {
    at_1_7_8(c);
    let mark = c.audit.mark();
    let run = upgrade(c, "1.8.6", &["--dry-run"]);
    run.expect(0);
    let all = c.audit.requests_by(ADMIN, mark);
    assert!(!all.is_empty(), "the audit log saw no request of meshup's");
    let writes = c.audit.mutations_by(ADMIN, mark);
    assert!(
        writes.is_empty(),
        "dry run changed the cluster:\n{}",
        writes.iter().map(describe).collect::<Vec<_>>().join("\n")
    );
    // It did exercise the server's dry-run path (otherwise the test proves nothing).
    let dry = all
        .iter()
        .filter(|e| {
            e["requestURI"]
                .as_str()
                .unwrap_or("")
                .contains("dryRun=All")
        })
        .count();
    assert!(dry > 0, "no dry-run request reached the server");
    assert_istiod_at(c, "1.7.8");
}

/// A user who may read but not write in istio-system: the precheck lists what is missing,
/// and the audit log shows that user changed nothing.
fn limited_user_precheck_lists_missing_permissions(c: &Cluster) {
    at_1_7_8(c);
    let mark = c.audit.mark();
    let pre = c.meshup_limited(&["precheck", "--bundle", &bundle("istio-1.8.6"), "-o", "json"]);
    let doc = pre.json();
    pre.expect(3);
    let missing: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "permissions.missing")
        .collect();
    assert!(!missing.is_empty(), "{doc}");
    let msg = missing[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("patch deployments.apps in istio-system"),
        "{msg}"
    );
    let writes = c.audit.mutations_by("meshup-limited", mark);
    assert!(
        writes.is_empty(),
        "{}",
        writes.iter().map(describe).collect::<Vec<_>>().join("\n")
    );
    assert!(
        !c.audit.requests_by("meshup-limited", mark).is_empty(),
        "no request seen from the limited user"
    );
    assert_istiod_at(c, "1.7.8");
}

/// A user bound to the built-in `view` ClusterRole (no Secrets, so no history; no
/// cluster-scoped kinds; no writes): the precheck reads what it may, names the reads it was
/// refused and the writes an upgrade needs (exit 3), and the audit log shows that user
/// changed nothing.
fn viewer_precheck_reads_what_it_may_and_names_what_it_may_not(c: &Cluster) {
    at_1_7_8(c);
    let mark = c.audit.mark();
    let b = bundle("istio-1.8.6");
    let pre = c.meshup_viewer(&[
        "precheck",
        "--bundle",
        &b,
        "--ignore",
        K8S_TOO_NEW,
        "-o",
        "json",
    ]);
    let doc = pre.json();
    pre.expect(3);
    assert_eq!(doc["blocked"], true, "{doc}");
    let missing = |subject: &str| -> String {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == "permissions.missing" && f["subject"] == subject)
            .unwrap_or_else(|| panic!("no permissions.missing [{subject}]: {doc}"))["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let read = missing("read");
    assert!(
        read.contains("list secrets in istio-system (meshup's release history"),
        "{read}"
    );
    let write = missing("upgrade");
    assert!(
        write.contains("patch deployments.apps in istio-system"),
        "{write}"
    );
    // What it may read it did: the control plane that runs.
    assert_eq!(doc["current_version"], "1.7.8", "{doc}");
    let text = c.meshup_viewer(&["precheck", "--bundle", &b, "--ignore", K8S_TOO_NEW]);
    text.expect(3);
    assert!(
        text.all()
            .contains("meshup's release history in istio-system could not be read"),
        "{}",
        text.all()
    );
    let seen = c.audit.requests_by("meshup-viewer", mark);
    assert!(
        seen.iter()
            .any(|e| e["objectRef"]["resource"] == "secrets" && e["responseStatus"]["code"] == 403),
        "the history read was not refused:\n{}",
        seen.iter().map(describe).collect::<Vec<_>>().join("\n")
    );
    let writes = c.audit.mutations_by("meshup-viewer", mark);
    assert!(
        writes.is_empty(),
        "{}",
        writes.iter().map(describe).collect::<Vec<_>>().join("\n")
    );
    assert_istiod_at(c, "1.7.8");
}

/// The target release's istiod never becomes ready (KWOK's never-ready stage keeps its pods
/// Running but not Ready): meshup rolls back by itself and ends on 1.7.8, read back by kubectl.
///
/// istiod's pods get `meshup.test/never-ready: "true"` through istioctl's own input,
/// `--set components.pilot.k8s.podAnnotations...`.
fn never_ready_istiod_rolls_back_automatically(c: &Cluster) {
    at_1_7_8(c);
    let b = never_ready_bundle();
    let run = c.meshup(&[
        "upgrade",
        "--bundle",
        &b,
        "-y",
        "--ignore",
        K8S_TOO_NEW,
        "--readiness-timeout",
        "20s",
        "-o",
        "json",
        NEVER_READY[0],
        NEVER_READY[1],
    ]);
    run.expect(5);
    assert_istiod_at(c, "1.7.8");
    // History: the failed attempt is recorded as rolled back, with istiod as the reason, and
    // the release in force is still the 1.7.8 one.
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    let releases = hist["releases"].as_array().unwrap();
    let last = releases.last().unwrap();
    assert_eq!(last["version"], "1.8.6", "{hist}");
    assert_eq!(last["status"], "rolled-back", "{hist}");
    assert!(
        last["description"].as_str().unwrap().contains("istiod"),
        "{hist}"
    );
    let deployed: Vec<&Value> = releases
        .iter()
        .filter(|r| r["status"] == "deployed")
        .collect();
    assert_eq!(deployed.len(), 1, "{hist}");
    assert_eq!(deployed[0]["version"], "1.7.8", "{hist}");
}

/// The istioctl input that makes the target's istiod pods carry the annotation KWOK's
/// never-ready stage matches (`components.pilot.k8s.podAnnotations`).
const NEVER_READY: [&str; 2] = [
    "--set",
    "components.pilot.k8s.podAnnotations.meshup\\.test/never-ready=true",
];

fn never_ready_bundle() -> String {
    bundle("istio-1.8.6")
}

/// An upgrade to the never-ready bundle, running in the background (it holds the lock while
/// it waits for istiod), with a short lock lease so a killed run's lock expires quickly.
fn spawn_stuck_upgrade(c: &Cluster, bundle_dir: &str) -> Child {
    c.in_ns(&c.meshup)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "upgrade",
            "--bundle",
            bundle_dir,
            "-y",
            "--ignore",
            K8S_TOO_NEW,
        ])
        .args(["--readiness-timeout", "20s"])
        .args(NEVER_READY)
        .env("NO_COLOR", "1")
        .env("MESHUP_LOCK_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn meshup")
}

/// Poll (test setup only) until `f` holds.
#[track_caller]
pub(crate) fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

fn istiod_template_at(c: &Cluster, version: &str) -> bool {
    c.kubectl(&[
        "get",
        "deployment",
        "istiod",
        "-n",
        "istio-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
    .stdout
    .ends_with(&format!(":{version}"))
}

fn second_concurrent_run_is_refused_by_the_lock(c: &Cluster) {
    at_1_7_8(c);
    let b = never_ready_bundle();
    let first = spawn_stuck_upgrade(c, &b);
    eventually(
        "the first run's lock Lease",
        Duration::from_secs(60),
        || {
            c.kubectl(&["get", "lease", "meshup-upgrade-lock", "-n", "istio-system"])
                .code
                == 0
        },
    );
    let second = upgrade(c, "1.8.6", &[]);
    second.expect(3);
    assert!(
        second.stderr.contains("holds the upgrade lock"),
        "{}",
        second.stderr
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_istiod_at(c, "1.7.8");
}

/// kill -9 while istiod rolls out: the record stays `pending` and the lock stale; the next
/// run takes the expired lock over (saying so) and `rollback` ends verified on 1.7.8.
fn kill_9_mid_upgrade_then_rollback_recovers(c: &Cluster) {
    at_1_7_8(c);
    let b = never_ready_bundle();
    let mut run = spawn_stuck_upgrade(c, &b);
    eventually(
        "istiod's template at 1.8.6",
        Duration::from_secs(60),
        || istiod_template_at(c, "1.8.6"),
    );
    // `ip netns exec` execs meshup, so this pid is meshup's own.
    let killed = Command::new("kill")
        .args(["-9", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = run.wait();
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], "pending", "{hist}");
    std::thread::sleep(Duration::from_secs(4)); // MESHUP_LOCK_SECONDS=3 expires
    let next = c.meshup(&["rollback", "-y"]);
    next.expect(0);
    assert!(next.all().contains("took over"), "{}", next.all());
    assert_istiod_at(c, "1.7.8");
    let hist = c.meshup(&["history", "-o", "json"]).expect(0).json();
    assert!(
        hist["releases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "pending"),
        "{hist}"
    );
}

/// Workloads whose pod templates already carry an `istio-proxy` container. No sidecar injector
/// can run here (its webhook would need a kubelet to run istiod), so the test writes the proxy
/// into the template itself, and after a restart the pods keep the template's proxy: the
/// restart is verified as a real rollout (new pods, kubectl's restartedAt annotation), not as
/// a proxy upgrade.
fn dataplane_status_and_restart_on_prebuilt_sidecars(c: &Cluster) {
    at_1_7_8(c);
    c.kubectl_ok(&["create", "namespace", "shop"]);
    // Not labelled istio-injection=enabled: the injector webhook's Service has no running
    // istiod behind it (no kubelet), so the API server would reject the pods.
    let dep = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "cart"}},
            "template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [
                {"name": "cart", "image": "registry.invalid/cart:1"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.7.8"}]}}}});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), dep.to_string()).unwrap();
    c.kubectl_ok(&["apply", "-f", file.path().to_str().unwrap()]);
    c.rollout("shop", "cart");
    upgrade(c, "1.8.6", &[]).expect(0);
    assert_istiod_at(c, "1.8.6");

    let dp = c
        .meshup(&["dataplane", "status", "-o", "json"])
        .expect(0)
        .json();
    assert_eq!(dp["outdated"][0]["workload"], "deployment/cart", "{dp}");
    assert_eq!(dp["outdated"][0]["versions"]["1.7.8"], 2, "{dp}");
    let text = c.meshup(&["dataplane", "status"]).expect(0).stdout.clone();
    assert!(
        text.contains("kubectl rollout restart deployment/cart -n shop"),
        "{text}"
    );

    let before = pod_names(c);
    c.meshup(&["dataplane", "restart", "--namespace", "shop"])
        .expect(0);
    let d = c.get_json(&["deployment", "cart", "-n", "shop"]);
    assert!(
        !d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_null(),
        "{d}"
    );
    c.rollout("shop", "cart");
    eventually("the old cart pods gone", Duration::from_secs(60), || {
        let now = pod_names(c);
        now.len() == 2 && now.iter().all(|p| !before.contains(p))
    });
    c.kubectl_ok(&[
        "delete",
        "namespace",
        "shop",
        "--wait=true",
        "--timeout=60s",
    ]);
}

fn pod_names(c: &Cluster) -> Vec<String> {
    c.get_json(&["pods", "-n", "shop", "-l", "app=cart"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The same API interactions against the real API server and `meshup sim`: every divergence
/// must be listed in sim/README.md ("Measured against a real API server"), and every listed
/// one must still diverge, so the list stays true.
fn compare_sim_with_the_real_api_server(c: &Cluster) {
    let real = Endpoint::real(c).run(api_cases::STEPS);
    let sim = SimProcess::start(c);
    let simulated = sim.endpoint.run(api_cases::STEPS);
    let found = divergences(&real, &simulated);
    println!(
        "\n  {} cases; divergences (case | field | real | sim):",
        api_cases::STEPS.len()
    );
    for (case, field, r, s) in &found {
        println!("  {case} | {field} | {r} | {s}");
    }
    let readme =
        std::fs::read_to_string(meshup_real_tests::cluster::repo_root().join("sim/README.md"))
            .unwrap();
    let listed: Vec<String> = readme
        .split("## Measured against a real API server")
        .nth(1)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("- `"))
        .filter_map(|l| l.split_once('`').map(|(case, _)| case.to_string()))
        .collect();
    let unlisted: Vec<&String> = found
        .iter()
        .map(|d| &d.0)
        .filter(|c| !listed.contains(c))
        .collect();
    assert!(
        unlisted.is_empty(),
        "divergences not listed in sim/README.md: {unlisted:?}"
    );
    let stale: Vec<&String> = listed
        .iter()
        .filter(|c| !found.iter().any(|d| &d.0 == *c))
        .collect();
    assert!(
        stale.is_empty(),
        "listed in sim/README.md but no longer diverging: {stale:?}"
    );
}

/// The releases of `tests/real/istioctl --list` that this test installs: 1.30-dev is left out
/// because this machine's module proxy refuses module versions its go.mod requires
/// (tests/real/README.md, "Real istioctl").
const INSTALLED_BY_ISTIOCTL: &[&str] = &["1.31-dev"];

/// A real `istioctl install -y` (default profile) of each buildable pinned release, on a fresh
/// cluster of its own (the shared one holds meshup's installs): istiod Ready on the image the
/// build stamped, what istioctl applied labelled with that version, and the revision-tag
/// webhook that `install` adds beside the manifest, all read back with kubectl.
fn real_istioctl_installs_its_release(_shared: &Cluster) {
    let listed = istioctl::releases();
    for &name in INSTALLED_BY_ISTIOCTL {
        assert!(listed.iter().any(|l| l == name), "{name} not in {listed:?}");
        let bin = istioctl::build(name);
        let c = Cluster::up().unwrap_or_else(|e| panic!("a second cluster: {e:?}"));
        let t = Instant::now();
        c.istioctl(&bin, &["install", "-y", "--readiness-timeout", "120s"])
            .expect(0);
        eprintln!("istioctl {name} install took {:.1?}", t.elapsed());
        let (template, pods) = c.istiod_tags();
        assert_eq!((template.as_str(), pods), (name, vec![name.to_string()]));
        let istiod = c.get_json(&["deployment", "istiod", "-n", "istio-system"]);
        assert_eq!(
            istiod["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("docker.io/istio/pilot:{name}")
        );
        assert_eq!(
            istiod["metadata"]["labels"]["operator.istio.io/version"],
            name
        );
        assert_eq!(istiod["status"]["readyReplicas"], 1);
        let tag = c.get_json(&["mutatingwebhookconfiguration", "istio-revision-tag-default"]);
        assert_eq!(tag["metadata"]["labels"]["istio.io/tag"], "default");
        // No installed-state, and the charts' `managed-by: Helm` label beside istioctl's own:
        // meshup reads it as istioctl's install.
        let status = c.meshup(&["status", "-o", "json"]);
        status.expect(0);
        assert_eq!(
            status.json()["install_method"],
            "istioctl",
            "{}",
            status.stdout
        );
        // To today's release from its charts: the precheck says that what was set at install
        // cannot be read back.
        let helm = meshup_real_tests::helm::build(4);
        let charts = meshup_real_tests::helm::release("1.31.0-rc.0");
        let pre = c.meshup(&[
            "precheck",
            "--charts",
            &charts,
            "--helm",
            helm.to_str().unwrap(),
            "-o",
            "json",
        ]);
        assert!(
            codes(&pre.json())
                .iter()
                .any(|c| c == "plan.reverts-unknown"),
            "{}",
            pre.all()
        );
    }
}
