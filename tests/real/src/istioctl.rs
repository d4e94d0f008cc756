//! A real, version-stamped istioctl of a pinned Istio release (`tests/real/istioctl`, built
//! through the Go module proxy and cached per pin), run inside a cluster's network namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, tier_dir};
use crate::run::Run;

fn script() -> Command {
    let mut cmd = Command::new(tier_dir().join("istioctl"));
    cmd.stdin(Stdio::null());
    cmd
}

/// `tests/real/istioctl --list`: the releases the tests use, oldest first.
pub fn releases() -> Vec<String> {
    let out = script()
        .arg("--list")
        .output()
        .expect("run tests/real/istioctl");
    assert!(out.status.success(), "tests/real/istioctl --list: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `tests/real/istioctl NAME`: the path of that release's istioctl. The first build of a pin
/// takes minutes (printed); a failed build is a test failure with the script's reason.
#[track_caller]
pub fn build(name: &str) -> PathBuf {
    let t = Instant::now();
    let out = script()
        .arg(name)
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/real/istioctl");
    assert!(
        out.status.success(),
        "tests/real/istioctl {name} failed ({}); its reason is printed above",
        out.status
    );
    if t.elapsed() > Duration::from_secs(5) {
        eprintln!("real tier: istioctl {name} built in {:.0?}", t.elapsed());
    }
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

impl Cluster {
    /// That istioctl as the admin user, inside the cluster's namespace.
    pub fn istioctl(&self, bin: &Path, args: &[&str]) -> Run {
        let out = self
            .in_ns(bin)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .output()
            .expect("run istioctl");
        Run::from_output(out)
    }
}

/// A real release's manifests (`../shared/istio-releases/istio-VERSION/manifests`).
#[track_caller]
pub fn manifests(version: &str) -> PathBuf {
    let dir = crate::cluster::repo_root().join(format!(
        "../shared/istio-releases/istio-{version}/manifests"
    ));
    assert!(dir.is_dir(), "{} does not exist", dir.display());
    dir
}

/// The stand-in for istioctl 1.30.3 (README "The stand-in"): istioctl 1.31-dev with the
/// 1.30.3 release's manifests and its tag. The hub is 1.31-dev's own build hub
/// (`docker.io/istio`, release-builder's default), so that only the tag says the release.
pub fn stand_in_1_30_3() -> Vec<String> {
    vec![
        "--manifests".into(),
        manifests("1.30.3").display().to_string(),
        "--set".into(),
        "hub=docker.io/istio".into(),
        "--set".into(),
        "tag=1.30.3".into(),
    ]
}
