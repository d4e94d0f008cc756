//! Faults during an upgrade: every scenario ends verified on the target version or fully
//! back on the previous one (versions read back with kubectl, history checked), never
//! half-way. Each prints its end state and time to recover for the closing report.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

/// The end state as both meshup and kubectl see it: (istiod versions, last history status).
fn end_state(sim: &Sim) -> (Vec<String>, String) {
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    let last = hist["releases"].as_array().unwrap().last().unwrap()["status"]
        .as_str()
        .unwrap()
        .to_string();
    let versions = sim.istiod_versions_kubectl().unwrap_or_else(|| {
        let st = sim.meshup(&["status", "-o", "json"]).expect(0).json();
        let pods = st["control_planes"][0]["pods"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut v: Vec<String> = pods
            .iter()
            .map(|p| p["version"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    });
    (versions, last)
}

/// Every workload of the control plane ready again, every istiod pod at `version`.
fn assert_whole(sim: &Sim, version: &str) {
    let st = sim.meshup(&["status", "-o", "json"]).expect(0).json();
    for w in st["workloads"].as_array().unwrap() {
        assert_eq!(w["state"], "ready", "{w}");
        assert_eq!(w["version"], version, "{w}");
    }
}

/// The scenario ended whole: kubectl sees every istiod pod at `version`, history says
/// `status`, and every control-plane workload is ready at `version`.
fn assert_end(sim: &Sim, version: &str, status: &str) {
    assert_eq!(
        end_state(sim),
        (vec![version.to_string()], status.to_string())
    );
    assert_whole(sim, version);
}

fn report(scenario: &str, sim: &Sim, started: Instant) {
    let (versions, status) = end_state(sim);
    eprintln!(
        "SCENARIO | {scenario} | istiod {versions:?}, history {status} | {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

fn installed() -> Sim {
    let sim = Sim::start();
    install(&sim, "istio-1.7.8", &[]);
    sim
}

#[test]
fn never_ready_istiod_rolls_back_automatically() {
    let sim = installed();
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--readiness-timeout",
        "3s",
        "-o",
        "json",
    ]);
    run.expect(5);
    let doc = run.json();
    assert_eq!(doc["result"]["status"], "rolled-back");
    assert!(
        doc["result"]["message"]
            .as_str()
            .unwrap()
            .contains("not ready after"),
        "{doc}"
    );
    sim.set_faults(&json!({}));
    assert_end(&sim, "1.7.8", "rolled-back");
    report("never-ready istiod (readiness timeout 3 s)", &sim, t);
}

#[test]
fn progress_deadline_exceeded_rolls_back_without_waiting_for_the_timeout() {
    let sim = installed();
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    // A 2 s progress deadline: the controller gives up long before the 300 s readiness timeout.
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "-o",
        "json",
        "--set",
        "values.pilot.progressDeadlineSeconds=2",
    ]);
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
    sim.set_faults(&json!({}));
    assert_end(&sim, "1.7.8", "rolled-back");
    report("ProgressDeadlineExceeded (deadline 2 s)", &sim, t);
}

#[test]
fn failing_post_upgrade_policy_rolls_back() {
    let sim = installed();
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
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--policy-config",
        config.to_str().unwrap(),
    ]);
    run.expect(5);
    assert!(run.all().contains("postfail.smoke-test"), "{}", run.all());
    assert_end(&sim, "1.7.8", "rolled-back");
    report("failing post-upgrade policy", &sim, t);
}

#[test]
fn error_bursts_and_429_storms_during_apply_and_wait_are_ridden_out() {
    let sim = installed();
    sim.set_faults(&json!({
        "errors": [{"path": "/apis/apps/v1/namespaces/istio-system/deployments", "count": 6, "status": 500},
                   {"method": "PATCH", "path": "/configmaps", "count": 3, "status": 503}],
        "throttle": [{"path": "istio-system", "count": 8, "retry_after_seconds": 1}]
    }));
    let t = Instant::now();
    sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
        .expect(0);
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
    assert_end(&sim, "1.8.6", "deployed");
    report("error bursts (500/503) and 429 storm", &sim, t);
}

#[test]
fn dropped_watches_mid_rollout_are_resumed() {
    let sim = installed();
    sim.set_faults(&json!({"drop_watches_after_events": 1}));
    let t = Instant::now();
    sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--readiness-timeout",
        "60s",
    ])
    .expect(0);
    assert_end(&sim, "1.8.6", "deployed");
    report("watches dropped after every event", &sim, t);
}

#[test]
fn api_outage_of_20_seconds_mid_upgrade() {
    let sim = installed();
    let t = Instant::now();
    sim.clear_requests();
    let child = spawn_upgrade(&sim, "istio-1.8.6");
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
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        t.elapsed() > Duration::from_secs(20),
        "meshup gave up during the outage (exit {code}): {stderr}"
    );
    let (versions, status) = end_state(&sim);
    // Either it rode the outage out, or it rolled back; never in between.
    match code {
        0 => assert_eq!(
            (versions, status.as_str()),
            (vec!["1.8.6".to_string()], "deployed")
        ),
        5 => assert_eq!(
            (versions, status.as_str()),
            (vec!["1.7.8".to_string()], "rolled-back")
        ),
        c => panic!("exit {c}: {}", String::from_utf8_lossy(&out.stderr)),
    }
    report("API outage 20 s mid-upgrade", &sim, t);
}

#[test]
fn concurrent_upgrades_one_is_refused() {
    let sim = Sim::start_with(None, &["--ready-delay-ms", "2500"]);
    install(&sim, "istio-1.7.8", &[]);
    sim.clear_requests();
    let first = spawn_upgrade(&sim, "istio-1.8.6");
    wait_for_request(&sim, "POST", "/leases", Duration::from_secs(60));
    let second = sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"]);
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
    assert_end(&sim, "1.8.6", "deployed");
}

/// Kill -9 the upgrade at a step, then the next run detects the pending record and either
/// resumes (upgrade again) or restores (rollback). The stale lock is taken over, loudly.
fn kill_at(step_method: &str, step_path: &str, then_rollback: bool) {
    let sim = installed();
    let t = Instant::now();
    sim.clear_requests();
    let mut child = spawn_upgrade(&sim, "istio-1.8.6");
    wait_for_request(&sim, step_method, step_path, Duration::from_secs(60));
    child.kill().unwrap();
    let _ = child.wait();
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    assert_eq!(
        hist["releases"].as_array().unwrap().last().unwrap()["status"],
        "pending",
        "{hist}"
    );
    std::thread::sleep(Duration::from_secs(4)); // the lock (MESHUP_LOCK_SECONDS=3) expires
    let next = if then_rollback {
        sim.meshup(&["rollback", "-y"])
    } else {
        sim.meshup(&["upgrade", "--bundle", &b("istio-1.8.6"), "-y"])
    };
    next.expect(0);
    assert!(
        next.stderr.contains("took over the expired upgrade lock")
            || next.all().contains("took over"),
        "{}",
        next.all()
    );
    let want = if then_rollback { "1.7.8" } else { "1.8.6" };
    let (versions, status) = end_state(&sim);
    assert_eq!(
        (versions, status.as_str()),
        (vec![want.to_string()], "deployed")
    );
    assert_whole(&sim, want);
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
            "kill -9 at {step_method} {step_path}, then {}",
            if then_rollback {
                "rollback"
            } else {
                "upgrade again"
            }
        ),
        &sim,
        t,
    );
}

#[test]
fn killed_after_recording_pending_then_resumed() {
    kill_at("POST", "/secrets", false);
}

#[test]
fn killed_while_applying_base_then_resumed() {
    kill_at("PATCH", "/customresourcedefinitions/", false);
}

#[test]
fn killed_mid_istiod_rollout_then_rolled_back() {
    kill_at("PATCH", "/deployments/istiod", true);
}

#[test]
fn killed_while_applying_gateways_then_resumed() {
    kill_at("PATCH", "/deployments/istio-ingressgateway", false);
}

#[test]
fn sigint_finishes_the_component_and_rolls_back() {
    let sim = Sim::start_with(None, &["--ready-delay-ms", "1500"]);
    install(&sim, "istio-1.7.8", &[]);
    let t = Instant::now();
    sim.clear_requests();
    let child = spawn_upgrade(&sim, "istio-1.8.6");
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
    assert_end(&sim, "1.7.8", "rolled-back");
    report("SIGINT mid-upgrade", &sim, t);
}

fn spawn_upgrade(sim: &Sim, bundle_name: &str) -> std::process::Child {
    Command::new(meshup_bin())
        .args([
            "--kubeconfig",
            sim.kubeconfig.to_str().unwrap(),
            "upgrade",
            "--bundle",
            &b(bundle_name),
            "-y",
        ])
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

#[test]
fn no_rollback_leaves_a_failed_record_and_says_the_next_command() {
    let sim = installed();
    sim.set_faults(&json!({"never_ready": ["istiod"]}));
    let t = Instant::now();
    let run = sim.meshup(&[
        "upgrade",
        "--bundle",
        &b("istio-1.8.6"),
        "-y",
        "--readiness-timeout",
        "2s",
        "--no-rollback",
    ]);
    run.expect(6);
    assert!(
        run.all().contains("meshup rollback"),
        "names the next command: {}",
        run.all()
    );
    let hist = sim.meshup(&["history", "-o", "json"]).expect(0).json();
    assert_eq!(
        hist["releases"].as_array().unwrap().last().unwrap()["status"],
        "failed"
    );
    sim.set_faults(&json!({}));
    sim.meshup(&["rollback", "-y"]).expect(0);
    assert_end(&sim, "1.7.8", "deployed");
    report("--no-rollback, then meshup rollback", &sim, t);
}
