//! A real `helm` of a pinned release (`tests/real/helm`, built through the Go module proxy
//! and cached per pin) and the real Istio releases in `../shared/istio-releases`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{repo_root, tier_dir};

/// `tests/real/helm MAJOR`: the path of that helm. A failed build is a test failure with the
/// script's reason.
#[track_caller]
pub fn build(major: u32) -> PathBuf {
    let t = Instant::now();
    let out = Command::new(tier_dir().join("helm"))
        .arg(major.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/real/helm");
    assert!(
        out.status.success(),
        "tests/real/helm {major} failed ({}); its reason is printed above",
        out.status
    );
    if t.elapsed() > Duration::from_secs(5) {
        eprintln!("real tier: helm {major} built in {:.0?}", t.elapsed());
    }
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A real Istio release as its archive unpacks (`../shared/istio-releases/istio-VERSION`).
/// The tier needs them: missing is a failure, with where they are expected.
#[track_caller]
pub fn release(version: &str) -> String {
    let dir = repo_root().join(format!("../shared/istio-releases/istio-{version}"));
    assert!(
        dir.is_dir(),
        "{} is missing: the real tier's charts tests need the real Istio releases there",
        dir.display()
    );
    dir.to_str().unwrap().to_string()
}
