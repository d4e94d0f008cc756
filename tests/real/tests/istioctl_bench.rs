//! Side by side with `istioctl upgrade` (issue 20, item 5; on demand): fresh clusters with
//! the same stand-in 1.30.3 install, upgraded to 1.31-dev by `istioctl upgrade -y` on one
//! and `meshup upgrade --istioctl` on the other, with the same inputs. Printed: the end
//! states compared object by object, wall-clock time (median of 3), the time from the last
//! control-plane pod Ready to the tool's exit, and, with a never-ready istiod and
//! `--readiness-timeout 60s` on both, each tool's exit code and end state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use meshup_real_tests::cluster::Cluster;
use meshup_real_tests::{Run, end_state, istioctl};
use serde_json::Value;

use crate::bench::audit_time;
use crate::istioctl_installs::{LOG_LEVEL, NEVER_READY, USER_IOP};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tool {
    Istioctl,
    Meshup,
}

/// One upgrade on a fresh cluster: its run, wall time, last Ready → exit, and end state.
struct Upgraded {
    run: Run,
    wall: Duration,
    after_ready: Option<Duration>,
    state: BTreeMap<String, Value>,
    istiod: String,
}

fn upgrade_fresh(tool: Tool, extra_files: &[&str], timeout: &str) -> Upgraded {
    let bin = istioctl::build("1.31-dev");
    let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster: {e:?}"));
    let iop = c.dir.path().join("user-iop.yaml");
    std::fs::write(&iop, USER_IOP).unwrap();
    let never = c.dir.path().join("never-ready.yaml");
    std::fs::write(&never, NEVER_READY).unwrap();
    let iop = iop.display().to_string();
    let stand_in = istioctl::stand_in_1_30_3();
    let mut args = vec!["install", "-y", "--readiness-timeout", "120s", "-f", &iop];
    args.extend(stand_in.iter().map(String::as_str));
    args.extend(LOG_LEVEL);
    c.istioctl(&bin, &args).expect(0);
    c.rollout("istio-system", "istiod");
    let never = never.display().to_string();
    let mut files = vec!["-f", iop.as_str()];
    for f in extra_files {
        files.extend(["-f", if *f == "never-ready" { &never } else { f }]);
    }
    let mark = c.audit.mark();
    let t = Instant::now();
    let run = match tool {
        Tool::Istioctl => {
            let mut a = vec!["upgrade", "-y", "--readiness-timeout", timeout];
            a.extend(&files);
            a.extend(LOG_LEVEL);
            c.istioctl(&bin, &a)
        }
        Tool::Meshup => {
            let b = bin.display().to_string();
            let mut a = vec![
                "upgrade",
                "--istioctl",
                &b,
                "-y",
                "--readiness-timeout",
                timeout,
            ];
            a.extend(&files);
            a.extend(LOG_LEVEL);
            c.meshup(&a)
        }
    };
    let wall = t.elapsed();
    let exited = SystemTime::now();
    let last_ready = c
        .audit
        .since(mark)
        .iter()
        .filter(|e| e["user"]["username"] == "meshup-real-components" && e["verb"] == "patch")
        .filter(|e| {
            e["objectRef"]["resource"] == "pods"
                && e["objectRef"]["subresource"] == "status"
                && e["objectRef"]["namespace"] == "istio-system"
        })
        .map(audit_time)
        .max();
    let after_ready = last_ready.and_then(|r| exited.duration_since(r).ok());
    let state = end_state::snapshot(&c, &["istio-system"]);
    let (template, pods) = c.istiod_tags();
    let istiod = format!("template {template}, pods {pods:?}");
    Upgraded {
        run,
        wall,
        after_ready,
        state,
        istiod,
    }
}

pub fn istioctl_upgrade_side_by_side(_shared: &Cluster) {
    let started = Instant::now();
    let mut walls: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut after: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut ends: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    for round in 0..3 {
        for (name, tool) in [("istioctl", Tool::Istioctl), ("meshup", Tool::Meshup)] {
            let u = upgrade_fresh(tool, &[], "300s");
            u.run.expect(0);
            eprintln!(
                "  bench: round {round} {name}: {:.2?} wall, last Ready → exit {:?}",
                u.wall, u.after_ready
            );
            walls.entry(name).or_default().push(u.wall);
            after.entry(name).or_default().extend(u.after_ready);
            ends.entry(name).or_insert(u.state);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    for name in ["istioctl", "meshup"] {
        println!(
            "  bench: {name} upgrade 1.30.3 → 1.31-dev: median wall {:.2?} of {:?}; last control-plane pod Ready → exit, median {:.2?} of {:?}",
            median(walls.get_mut(name).unwrap()),
            walls[name],
            median(after.get_mut(name).unwrap()),
            after[name]
        );
    }
    let diff = end_state::differences(&ends["istioctl"], &ends["meshup"], "istioctl", "meshup");
    println!(
        "  bench: end states, istioctl upgrade (before) vs meshup upgrade (after): {} difference(s)",
        diff.len()
    );
    for d in &diff {
        println!("    {d}");
    }
    // What each cluster allocates of its own (Service addresses, node ports, its CA) is a
    // placeholder in a snapshot: anything that still differs is the tools' doing.
    assert!(diff.is_empty(), "{diff:#?}");
    for (name, tool) in [("istioctl", Tool::Istioctl), ("meshup", Tool::Meshup)] {
        let u = upgrade_fresh(tool, &["never-ready"], "60s");
        let gateway = u
            .state
            .get("Deployment istio-system/istio-ingressgateway")
            .and_then(|d| d["spec"]["template"]["spec"]["containers"][0]["image"].as_str())
            .unwrap_or("?")
            .to_string();
        println!(
            "  bench: never-ready istiod, --readiness-timeout 60s: {name} exit {} after {:.1?}; istiod {}; ingress gateway template {gateway}",
            u.run.code, u.wall, u.istiod
        );
    }
    println!("  bench: side by side took {:.0?}", started.elapsed());
}
