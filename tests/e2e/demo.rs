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
