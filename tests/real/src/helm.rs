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

impl crate::Cluster {
    /// That helm as the admin user, inside the cluster's namespace, with its own state
    /// (repositories, cache) in the cluster's directory.
    pub fn helm(&self, bin: &std::path::Path, args: &[&str]) -> crate::Run {
        let home = self.dir.path().join("helm-home");
        let out = self
            .in_ns(bin)
            .args(args)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .expect("run helm");
        crate::Run::from_output(out)
    }

    /// That helm, which must succeed; its stdout.
    #[track_caller]
    pub fn helm_ok(&self, bin: &std::path::Path, args: &[&str]) -> String {
        let run = self.helm(bin, args);
        assert_eq!(
            run.code, 0,
            "helm {args:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }
}

/// A chart of a real Istio release, as its archive ships it: `base`, `istiod`
/// (`istio-control/istio-discovery`) or `gateway`.
#[track_caller]
pub fn chart(version: &str, chart: &str) -> String {
    let dir = match chart {
        "istiod" => "istio-control/istio-discovery",
        other => other,
    };
    format!("{}/manifests/charts/{dir}", release(version))
}
