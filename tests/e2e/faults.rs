//! Faults during an upgrade, for a control plane installed by meshup and for one installed
//! by istioctl: every scenario ends verified on the target version or fully back on the
//! previous one, never half-way, and what meshup says agrees with what an independent
//! client (kubectl) reads back: every control-plane workload's template and pods, their
//! readiness, the objects themselves, and the history. Each scenario prints its end state
//! and time for the closing report (`SCENARIO | ...` lines on stderr).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// How the control plane got there before the run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    /// `meshup install` of 1.7.8: history records the release.
    Meshup,
    /// What `istioctl install -f` of 1.7.8 leaves (`common::istioctl_seed`): its objects
    /// and labels, an expanded installed-state, no meshup history.
    Istioctl,
}

/// Each scenario, once per install method.
macro_rules! for_both_installs {
    ($name:ident, $scenario:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn meshup_install() {
                $scenario(Setup::Meshup)
            }
            #[test]
            fn istioctl_install() {
                $scenario(Setup::Istioctl)
            }
        }
    };
}

/// A simulator with 1.7.8 installed the given way, every workload ready (`None`: SKIPPED,
/// an istioctl install without Istio's profile files).
fn installed(setup: Setup, extra: &[&str]) -> Option<Sim> {
    match setup {
        Setup::Meshup => {
            let sim = Sim::start_with(None, extra);
            install(&sim, "istio-1.7.8", &[]);
            Some(sim)
        }
        Setup::Istioctl => {
            let seed = istioctl_seed("1.7.8", USER_IOP)?;
            let sim = Sim::start_with(Some(&seed), extra);
            for (name, replicas) in seeded_deployments(&seed) {
                wait_ready(&sim, "istio-system", &name, replicas);
            }
            assert_eq!(
                sim.meshup(&["status", "-o", "json"]).expect(0).json()["install_method"],
                "istioctl"
            );
            Some(sim)
        }
    }
}

/// The newest history record's status, as meshup reports it.
fn last_status(sim: &Sim) -> String {
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    hist["releases"].as_array().unwrap().last().unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Upgraded: every control-plane workload on 1.8.6 and ready (read independently), and
/// the history's newest record deployed.
#[track_caller]
fn assert_upgraded(sim: &Sim) {
    assert_eq!(sim.control_plane_problems("1.8.6"), Vec::<String>::new());
    assert_eq!(last_status(sim), "deployed");
}

/// Restored: every control-plane workload back on 1.7.8 and ready, every object as it was
/// before the run (read independently), and the run recorded as rolled back.
#[track_caller]
fn assert_restored(sim: &Sim, before: &std::collections::BTreeMap<String, Value>) {
    assert_eq!(sim.control_plane_problems("1.7.8"), Vec::<String>::new());
    let after = inventory(sim);
    let differ: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  before {}\n  after  {}",
                before.get(k).map(|v| v.to_string()).unwrap_or("-".into()),
                after.get(k).map(|v| v.to_string()).unwrap_or("-".into())
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "not restored exactly:\n{}",
        differ.join("\n")
    );
    assert_eq!(last_status(sim), "rolled-back");
}

fn report(scenario: &str, setup: Setup, sim: &Sim, started: Instant) {
    eprintln!(
        "SCENARIO | {scenario} | {setup:?} install | istiod {:?}, history {} | {:.1} s",
        sim.istiod_versions(),
        last_status(sim),
        started.elapsed().as_secs_f64()
    );
}

/// `meshup upgrade --bundle istio-1.8.6 -y EXTRA...`
fn upgrade(sim: &Sim, extra: &[&str]) -> Run {
    let bundle = b("istio-1.8.6");
    let mut args = vec!["upgrade", "--bundle", &bundle, "-y"];
    args.extend_from_slice(extra);
    sim.meshup(&args)
}

fn never_ready_istiod(setup: Setup) {
    let Some(sim) = installed(setup, &[]) else {
        return;
    };
    let before = inventory(&sim);
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    let run = upgrade(&sim, &["--readiness-timeout", "3s", "-o", "json"]);
    run.expect(5);
    let doc = run.json();
    assert_eq!(doc["result"]["status"], "rolled-back");
    let message = doc["result"]["message"].as_str().unwrap();
    assert!(message.contains("not ready after"), "{doc}");
    assert!(
        message.contains("rolled back to the previous release (1.7.8)"),
        "{doc}"
    );
    assert_restored(&sim, &before);
    report("never-ready istiod (readiness timeout 3 s)", setup, &sim, t);
}
for_both_installs!(
    never_ready_istiod_rolls_back_automatically,
    never_ready_istiod
);

fn progress_deadline(setup: Setup) {
    let Some(sim) = installed(setup, &[]) else {
        return;
    };
    let before = inventory(&sim);
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    // A 2 s progress deadline: the controller gives up long before the 300 s readiness timeout.
    let run = upgrade(
        &sim,
        &[
            "-o",
            "json",
            "--set",
            "values.pilot.progressDeadlineSeconds=2",
        ],
    );
    run.expect(5);
    let doc = run.json();
    assert!(
        doc["result"]["message"]
            .as_str()
            .unwrap()
            .contains("progress deadline exceeded"),
        "{doc}"
    );
    assert!(
        t.elapsed() < Duration::from_secs(120),
        "did not wait for the readiness timeout"
    );
    assert_restored(&sim, &before);
    report("ProgressDeadlineExceeded (deadline 2 s)", setup, &sim, t);
}
for_both_installs!(
    progress_deadline_exceeded_rolls_back_without_waiting_for_the_timeout,
    progress_deadline
);

fn failing_post_upgrade_policy(setup: Setup) {
    let Some(sim) = installed(setup, &[]) else {
        return;
    };
    let before = inventory(&sim);
    let postfail = meshup::policy::builtin::TEST_GUESTS
        .iter()
        .find(|(n, _)| *n == "postfail")
        .unwrap()
        .1;
    let digest = meshup::policy::cache::sha256_hex(&std::fs::read(postfail).unwrap());
    let config = sim.dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!("policies:\n  - source: {postfail}\n    sha256: {digest}\n"),
    )
    .unwrap();
    let t = Instant::now();
    let run = upgrade(&sim, &["--policy-config", config.to_str().unwrap()]);
    run.expect(5);
    assert!(run.all().contains("postfail.smoke-test"), "{}", run.all());
    assert_restored(&sim, &before);
    report("failing post-upgrade policy", setup, &sim, t);
}
for_both_installs!(
    failing_post_upgrade_policy_rolls_back,
    failing_post_upgrade_policy
);

fn sigint_mid_upgrade(setup: Setup) {
    let Some(sim) = installed(setup, &["--ready-delay-ms", "1500"]) else {
        return;
    };
    let before = inventory(&sim);
    let t = Instant::now();
    sim.clear_requests();
    let child = spawn_upgrade(&sim);
    wait_for_request(
        &sim,
        "PATCH",
        "/deployments/istiod",
        Duration::from_secs(60),
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("interrupt"), "{stderr}");
    assert_restored(&sim, &before);
    report("SIGINT mid-upgrade", setup, &sim, t);
}
for_both_installs!(
    sigint_finishes_the_component_and_rolls_back,
    sigint_mid_upgrade
);

fn no_rollback_then_rollback(setup: Setup) {
    let Some(sim) = installed(setup, &[]) else {
        return;
    };
    let before = inventory(&sim);
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    let run = upgrade(&sim, &["--readiness-timeout", "2s", "--no-rollback"]);
    run.expect(6);
    assert!(
        run.all().contains("meshup rollback"),
        "names the next command: {}",
        run.all()
    );
    assert_eq!(last_status(&sim), "failed");
    assert!(
        !sim.control_plane_problems("1.7.8").is_empty(),
        "left half-way, as asked"
    );
    sim.set_faults(&json!({}));
    let back = sim.meshup(&["rollback", "-y", "-o", "json"]);
    back.expect(0);
    assert_eq!(back.json()["status"], "rolled-back", "{}", back.stdout);
    assert_restored(&sim, &before);
    report("--no-rollback, then meshup rollback", setup, &sim, t);
}
for_both_installs!(
    no_rollback_leaves_a_failed_record_and_rollback_restores_it,
    no_rollback_then_rollback
);

/// The step of the upgrade at which it is killed: the first request of that step.
#[derive(Clone, Copy)]
enum Step {
    AfterPendingRecord,
    MidBase,
    MidIstiodRollout,
    MidGateways,
}

impl Step {
    fn request(self) -> (&'static str, &'static str) {
        match self {
            Step::AfterPendingRecord => ("POST", "/secrets"),
            Step::MidBase => ("PATCH", "/customresourcedefinitions/"),
            Step::MidIstiodRollout => ("PATCH", "/deployments/istiod"),
            Step::MidGateways => ("PATCH", "/deployments/istio-ingressgateway"),
        }
    }
}

/// Kill -9 the upgrade at a step; the next run finds the pending record and either goes on
/// (upgrade again, ending upgraded) or undoes it (rollback, ending exactly as before). The
/// crashed run's lock is taken over, loudly.
fn kill_at(setup: Setup, step: Step, then_rollback: bool) {
    let Some(sim) = installed(setup, &["--ready-delay-ms", "300"]) else {
        return;
    };
    let before = inventory(&sim);
    let t = Instant::now();
    sim.clear_requests();
    let mut child = spawn_upgrade(&sim);
    let (method, path) = step.request();
    wait_for_request(&sim, method, path, Duration::from_secs(60));
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(last_status(&sim), "pending");
    std::thread::sleep(Duration::from_secs(4)); // the lock (MESHUP_LOCK_SECONDS=3) expires
    let next = if then_rollback {
        sim.meshup(&["rollback", "-y"])
    } else {
        upgrade(&sim, &[])
    };
    next.expect(0);
    assert!(next.all().contains("took over"), "{}", next.all());
    if then_rollback {
        assert_restored(&sim, &before);
    } else {
        assert_upgraded(&sim);
    }
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    assert!(
        hist["releases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] != "pending"),
        "{hist}"
    );
    report(
        &format!(
            "kill -9 at {method} {path}, then {}",
            if then_rollback {
                "rollback"
            } else {
                "upgrade again"
            }
        ),
        setup,
        &sim,
        t,
    );
}

macro_rules! kill_scenarios {
    ($($name:ident: $step:expr, $rollback:expr;)*) => {
        $(
            fn $name(setup: Setup) {
                kill_at(setup, $step, $rollback)
            }
        )*
        mod killed {
            use super::*;
            $( for_both_installs!($name, super::$name); )*
        }
    };
}

kill_scenarios! {
    after_pending_record_then_upgrade: Step::AfterPendingRecord, false;
    after_pending_record_then_rollback: Step::AfterPendingRecord, true;
    mid_base_then_upgrade: Step::MidBase, false;
    mid_base_then_rollback: Step::MidBase, true;
    mid_istiod_rollout_then_upgrade: Step::MidIstiodRollout, false;
    mid_istiod_rollout_then_rollback: Step::MidIstiodRollout, true;
    mid_gateways_then_upgrade: Step::MidGateways, false;
    mid_gateways_then_rollback: Step::MidGateways, true;
}

#[test]
fn error_bursts_and_429_storms_during_apply_and_wait_are_ridden_out() {
    let Some(sim) = installed(Setup::Meshup, &[]) else {
        return;
    };
    sim.set_faults(&json!({
        "errors": [{"path": "/apis/apps/v1/namespaces/istio-system/deployments", "count": 6, "status": 500},
                   {"method": "PATCH", "path": "/configmaps", "count": 3, "status": 503}],
        "throttle": [{"path": "istio-system", "count": 8, "retry_after_seconds": 1}]
    }));
    let t = Instant::now();
    upgrade(&sim, &[]).expect(0);
    let (_, log) = sim.http("GET", "/sim/v1/requests", None);
    let log: Value = serde_json::from_str(&log).unwrap();
    let failed = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429 || r["status"] == 500 || r["status"] == 503)
        .count();
    assert!(
        failed >= 10,
        "the faults were hit ({failed} failed requests)"
    );
    assert_upgraded(&sim);
    report(
        "error bursts (500/503) and 429 storm",
        Setup::Meshup,
        &sim,
        t,
    );
}

#[test]
fn dropped_watches_mid_rollout_are_resumed() {
    let Some(sim) = installed(Setup::Meshup, &[]) else {
        return;
    };
    sim.set_faults(&json!({"drop_watches_after_events": 1}));
    let t = Instant::now();
    upgrade(&sim, &["--readiness-timeout", "60s"]).expect(0);
    assert_upgraded(&sim);
    report("watches dropped after every event", Setup::Meshup, &sim, t);
}

#[test]
fn api_outage_of_20_seconds_mid_upgrade() {
    let Some(sim) = installed(Setup::Meshup, &[]) else {
        return;
    };
    let before = inventory(&sim);
    let t = Instant::now();
    sim.clear_requests();
    let child = spawn_upgrade(&sim);
    // Start the outage once the upgrade is applying (its first Deployment patch).
    wait_for_request(
        &sim,
        "PATCH",
        "/deployments/istiod",
        Duration::from_secs(60),
    );
    sim.set_faults(
        &json!({"outage": {"start_after_seconds": 0.0, "duration_seconds": 20.0, "status": 503}}),
    );
    let out = child.wait_with_output().unwrap();
    let code = out.status.code().unwrap();
    assert!(
        t.elapsed() > Duration::from_secs(20),
        "meshup gave up during the outage (exit {code}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Either it rode the outage out, or it rolled back; never in between.
    match code {
        0 => assert_upgraded(&sim),
        5 => assert_restored(&sim, &before),
        c => panic!("exit {c}: {}", String::from_utf8_lossy(&out.stderr)),
    }
    report("API outage 20 s mid-upgrade", Setup::Meshup, &sim, t);
}

#[test]
fn concurrent_upgrades_one_is_refused() {
    let Some(sim) = installed(Setup::Meshup, &["--ready-delay-ms", "2500"]) else {
        return;
    };
    sim.clear_requests();
    let first = spawn_upgrade(&sim);
    wait_for_request(&sim, "POST", "/leases", Duration::from_secs(60));
    let second = upgrade(&sim, &[]);
    second.expect(3);
    assert!(
        second.stderr.contains("holds the upgrade lock") && second.stderr.contains("since"),
        "{}",
        second.stderr
    );
    let out = first.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_upgraded(&sim);
}

fn spawn_upgrade(sim: &Sim) -> std::process::Child {
    Command::new(meshup_bin())
        .arg("--kubeconfig")
        .arg(&sim.kubeconfig)
        .args(["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .env("NO_COLOR", "1")
        .env("MESHUP_CACHE_DIR", cache_dir())
        .env("MESHUP_LOCK_SECONDS", "3")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until the simulator has logged a request (a step of the upgrade has begun).
fn wait_for_request(sim: &Sim, method: &str, path: &str, timeout: Duration) {
    eventually(&format!("{method} {path}"), timeout, || {
        let (_, body) = sim.http("GET", "/sim/v1/requests?mutating=true", None);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["requests"].as_array().is_some_and(|rs| {
            rs.iter().any(|r| {
                r["method"] == method && r["path"].as_str().is_some_and(|p| p.contains(path))
            })
        })
    });
}
