//! The README's first command, `meshup demo`, as a newcomer runs it.

use crate::common::*;

#[test]
fn the_demo_runs_every_step_and_ends_where_it_says() {
    let demo = run(&["demo"], None);
    demo.expect(0);
    let out = demo.all();
    for line in [
        "control plane now at 1.7.8",
        "control plane now at 1.8.6",
        "kubectl rollout restart",
        // The failing upgrade is put back and verified, not just re-applied.
        "rolled back to the previous release (1.7.8) (verified",
        "blocked by 1 check(s): skew.too-far",
        "Demo complete",
    ] {
        assert!(out.contains(line), "the demo did not say {line:?}:\n{out}");
    }
    // The demo's history: install and upgrade superseded, the downgrade deployed, the
    // failed run rolled back; nothing left pending.
    let history = out
        .split("History: every run is recorded")
        .nth(1)
        .unwrap_or("");
    let statuses: Vec<&str> = history
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        statuses,
        ["superseded", "superseded", "deployed", "rolled-back"],
        "{history}"
    );
}

/// Step [4], the precheck a reviewer reads before saying yes, fits in a screen or two and
/// still shows every substantive change: the images, the port added, the object pruned,
/// the changed defaults as what differs (not two whole documents), and a values-file
/// snippet (not JSON) as the fix for a structured default.
#[test]
fn the_demo_precheck_reads_in_about_120_lines_with_every_real_change() {
    let demo = run(&["demo"], None);
    demo.expect(0);
    let out = demo.stdout.clone();
    let step = out
        .split("\n[4] ")
        .nth(1)
        .and_then(|s| s.split("\n[5] ").next())
        .unwrap_or_else(|| panic!("no step [4]:\n{out}"));
    let lines = step.lines().count();
    println!("demo step [4]: {lines} lines");
    assert!(lines <= 120, "step [4] is {lines} lines:\n{step}");
    for seen in [
        "containers[discovery].image: pilot:1.7.8 → 1.8.6",
        "containers[istio-proxy].image: proxyv2:1.7.8 → 1.8.6",
        "spec.ports[tcp-istiod] added",
        "- prune  ClusterRoleBinding istiod-pilot-istio-system",
        "+ create EnvoyFilter istio-system/metadata-exchange-1.8",
        "only move version labels (1.7.8 → 1.8.6)",
        "ports: [name:tcp-istiod] added",
        "kind: IstioOperator",
    ] {
        assert!(
            step.contains(seen),
            "step [4] does not show {seen:?}:\n{step}"
        );
    }
    // Version-label-only updates are counted, not diffed.
    assert!(!step.contains("operator.istio.io/version"), "{step}");
    assert!(!step.contains("\"ports\":[{"), "a whole document: {step}");
}
