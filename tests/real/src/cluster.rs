//! One real cluster (`tests/real/cluster up`), and every client run inside its namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::audit::AuditLog;
use crate::run::Run;

/// Why the tier cannot run here.
#[derive(Debug)]
pub enum Unavailable {
    /// A tool or right this machine lacks: SKIPPED outside CI.
    Missing(String),
    /// Something that should have worked failed (build, start): always a failure.
    Broken(String),
}

/// A running cluster; `tests/real/cluster down` runs on drop.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub netns: String,
    pub kubeconfig: PathBuf,
    pub limited_kubeconfig: PathBuf,
    /// A user bound to the built-in `view` ClusterRole (no Secrets, no writes).
    pub viewer_kubeconfig: PathBuf,
    pub audit: AuditLog,
    /// The directory with the pinned kube-apiserver, kubectl, ... (kubectl matches the server).
    pub bin: PathBuf,
    pub meshup: PathBuf,
}

/// The repository's `tests/real` directory.
pub fn tier_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn repo_root() -> PathBuf {
    tier_dir().join("../..")
}

pub fn bundle(name: &str) -> String {
    repo_root()
        .join("bundles")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn cluster_script() -> PathBuf {
    tier_dir().join("cluster")
}

fn succeeds(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The meshup binary: `MESHUP_BIN`, else the one cargo built next to this test binary
/// (`cargo test --workspace` builds it before any test runs).
fn meshup_bin() -> Result<PathBuf, Unavailable> {
    if let Some(p) = std::env::var_os("MESHUP_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| Unavailable::Broken(e.to_string()))?;
    // target/<profile>/deps/real-<hash> -> target/<profile>/meshup
    let p = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("meshup"))
        .ok_or_else(|| Unavailable::Broken("cannot locate the target directory".into()))?;
    if p.is_file() {
        Ok(p)
    } else {
        Err(Unavailable::Broken(format!(
            "{} is missing: build it first (`cargo build -p meshup`) or set MESHUP_BIN",
            p.display()
        )))
    }
}

impl Cluster {
    /// Check the prerequisites, build what is missing (cached), start the cluster.
    pub fn up() -> Result<Cluster, Unavailable> {
        if !succeeds("go", &["version"]) {
            return Err(Unavailable::Missing(
                "Go is not installed (the tier builds kube-apiserver, etcd and KWOK from Go modules; needs Go >= 1.26)".into(),
            ));
        }
        if !succeeds("ip", &["netns", "list"]) || !is_root() {
            return Err(Unavailable::Missing(
                "the tier runs in its own network namespace: needs iproute2 and root (CAP_SYS_ADMIN)".into(),
            ));
        }
        if !succeeds("openssl", &["version"]) {
            return Err(Unavailable::Missing("openssl is not installed".into()));
        }
        let meshup = meshup_bin()?;
        let bin = build()?;
        let dir = tempfile::Builder::new()
            .prefix("meshup-real-")
            .tempdir()
            .map_err(|e| Unavailable::Broken(format!("temp dir: {e}")))?;
        let out = Command::new(cluster_script())
            .args(["up", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| Unavailable::Broken(format!("run tests/real/cluster up: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(Unavailable::Broken(format!(
                "tests/real/cluster up failed ({}); logs in its dir\n{stdout}",
                out.status
            )));
        }
        let field = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .map(str::to_string)
                .ok_or_else(|| {
                    Unavailable::Broken(format!("`up` printed no `{name}:` line:\n{stdout}"))
                })
        };
        let netns = field("netns")?;
        let cluster = Cluster {
            kubeconfig: field("kubeconfig")?.into(),
            limited_kubeconfig: field("limited-kubeconfig")?.into(),
            viewer_kubeconfig: field("viewer-kubeconfig")?.into(),
            audit: AuditLog::new(field("audit-log")?.into()),
            netns,
            dir,
            bin,
            meshup,
        };
        Ok(cluster)
    }

    /// A command run inside the cluster's network namespace.
    pub fn in_ns(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.netns])
            .arg(program)
            .stdin(Stdio::null());
        cmd
    }

    /// meshup as the admin user.
    pub fn meshup(&self, args: &[&str]) -> Run {
        self.meshup_with(&self.kubeconfig, args)
    }

    /// meshup as the user who may read but not write in istio-system.
    pub fn meshup_limited(&self, args: &[&str]) -> Run {
        self.meshup_with(&self.limited_kubeconfig, args)
    }

    /// meshup as the user bound to the built-in `view` ClusterRole.
    pub fn meshup_viewer(&self, args: &[&str]) -> Run {
        self.meshup_with(&self.viewer_kubeconfig, args)
    }

    fn meshup_with(&self, kubeconfig: &Path, args: &[&str]) -> Run {
        let out = self
            .in_ns(&self.meshup)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args)
            .env("NO_COLOR", "1")
            .env("MESHUP_CACHE_DIR", policy_cache())
            .output()
            .expect("run meshup");
        Run::from_output(out)
    }

    /// kubectl (the tier's own, same version as the server) as the admin user.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let out = self
            .in_ns(&self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl");
        Run::from_output(out)
    }

    /// kubectl that must succeed; its stdout.
    #[track_caller]
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args);
        assert_eq!(run.code, 0, "kubectl {args:?}: {}", run.stderr);
        run.stdout
    }

    /// `kubectl get ... -o json`, parsed.
    #[track_caller]
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&full)).expect("kubectl json")
    }

    /// The image tags istiod's Deployment template and its running pods carry, read with
    /// kubectl (independent of meshup).
    pub fn istiod_tags(&self) -> (String, Vec<String>) {
        let dep = self.get_json(&["deployment", "istiod", "-n", "istio-system"]);
        let tag = |img: &Value| {
            img.as_str()
                .unwrap_or("")
                .rsplit(':')
                .next()
                .unwrap()
                .to_string()
        };
        let template = tag(&dep["spec"]["template"]["spec"]["containers"][0]["image"]);
        let pods = self.get_json(&["pods", "-n", "istio-system", "-l", "app=istiod"]);
        let mut tags: Vec<String> = pods["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| tag(&p["spec"]["containers"][0]["image"]))
            .collect();
        tags.sort();
        tags.dedup();
        (template, tags)
    }

    /// Wait until a Deployment is rolled out and every replica Ready (kubectl's own check).
    #[track_caller]
    pub fn rollout(&self, namespace: &str, name: &str) {
        self.kubectl_ok(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "-n",
            namespace,
            "--timeout=120s",
        ]);
    }

    /// `kubectl version` of the server, e.g. "v1.36.3".
    pub fn server_version(&self) -> String {
        let v: Value = serde_json::from_str(&self.kubectl_ok(&["version", "-o", "json"])).unwrap();
        v["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let status = Command::new(cluster_script())
            .args(["down", "--dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("real tier: `cluster down` failed: {status:?}");
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `tests/real/cluster build`: builds once per pin (cached), prints the bin directory.
fn build() -> Result<PathBuf, Unavailable> {
    let t = Instant::now();
    let out = Command::new(cluster_script())
        .arg("build")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Unavailable::Broken(format!("run tests/real/cluster build: {e}")))?;
    if !out.status.success() {
        return Err(Unavailable::Broken(format!(
            "building the real tier failed ({})",
            out.status
        )));
    }
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if t.elapsed() > Duration::from_secs(5) {
        eprintln!("real tier: binaries built in {:.0?}", t.elapsed());
    }
    Ok(bin)
}

/// One compiled-policy cache shared by the runs (what a user's machine would have).
pub fn policy_cache() -> PathBuf {
    let d = std::env::temp_dir().join("meshup-real-cache");
    let _ = std::fs::create_dir_all(&d);
    d
}
