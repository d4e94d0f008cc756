//! Harness: the real `meshup` binary, the real simulator (`meshup sim` as its own
//! process, reached over HTTP through a kubeconfig) and real `kubectl` as an
//! independent client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn meshup_bin() -> &'static str {
    env!("CARGO_BIN_EXE_meshup")
}

pub fn bundle(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bundles")
        .join(name)
}

/// A simulator process with its own kubeconfig, killed on drop.
pub struct Sim {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub addr: String,
}

/// A Kubernetes version inside every built-in bundle's supported range (Istio's published
/// ones: 1.6 and 1.7 end at 1.18, 1.9 starts at 1.17).
pub const KUBERNETES_VERSION: &str = "v1.18.20";

impl Sim {
    pub fn start() -> Sim {
        Sim::start_with(None, &[])
    }

    /// Start with seed YAML (written to a file and passed as `--seed`) and extra flags.
    pub fn start_with(seed: Option<&str>, extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        let mut cmd = Command::new(meshup_bin());
        cmd.args(["sim", "--port", "0", "--kubeconfig-out"])
            .arg(&kubeconfig);
        if !extra.contains(&"--ready-delay-ms") {
            cmd.args(["--ready-delay-ms", "50"]);
        }
        if !extra.contains(&"--kubernetes-version") {
            cmd.args(["--kubernetes-version", KUBERNETES_VERSION]);
        }
        if let Some(yaml) = seed {
            let path = dir.path().join("seed.yaml");
            std::fs::write(&path, yaml).expect("write seed");
            cmd.arg("--seed").arg(path);
        }
        cmd.args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start meshup sim");
        let stdout = child.stdout.take().expect("sim stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(url) = l.strip_prefix("listening on http://") {
                        break url.trim().to_string();
                    }
                }
                _ => panic!("meshup sim exited before listening"),
            }
        };
        // Keep draining stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Sim {
            child,
            dir,
            kubeconfig,
            addr,
        }
    }

    /// Run meshup with this simulator's kubeconfig.
    pub fn meshup(&self, args: &[&str]) -> Run {
        let mut full = vec!["--kubeconfig", self.kubeconfig.to_str().unwrap()];
        full.extend_from_slice(args);
        run(&full, None)
    }

    /// One HTTP request to the simulator (control endpoints, raw API reads).
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        http(&self.addr, method, path, body)
    }

    /// Requests that changed something (not dry-run), from the simulator's request log.
    pub fn mutations(&self) -> Vec<Value> {
        let (_, body) = self.http("GET", "/sim/v1/requests?mutating=true", None);
        let v: Value = serde_json::from_str(&body).expect("request log json");
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    pub fn clear_requests(&self) {
        self.http("DELETE", "/sim/v1/requests", None);
    }

    pub fn set_faults(&self, faults: &Value) {
        let (code, body) = self.http("PUT", "/sim/v1/faults", Some(&faults.to_string()));
        assert_eq!(code, 200, "{body}");
    }

    /// GET a resource as JSON through the API.
    pub fn get(&self, path: &str) -> Value {
        let (code, body) = self.http("GET", path, None);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// kubectl against this simulator; None (with a printed reason) when kubectl is missing.
    pub fn kubectl(&self, args: &[&str]) -> Option<Output> {
        if !has_kubectl() {
            eprintln!("SKIPPED kubectl check: kubectl is not installed on this machine");
            return None;
        }
        Some(
            Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .output()
                .expect("run kubectl"),
        )
    }

    /// The image tags of istiod's pods, read with kubectl (independent of meshup).
    pub fn istiod_versions_kubectl(&self) -> Option<Vec<String>> {
        let out = self.kubectl(&[
            "get",
            "pods",
            "-n",
            "istio-system",
            "-l",
            "app=istiod",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
        ])?;
        assert!(
            out.status.success(),
            "kubectl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.rsplit(':').next().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v.dedup();
        Some(v)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn has_kubectl() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The result of one meshup run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn run(args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(meshup_bin());
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env("MESHUP_CACHE_DIR", cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("run meshup");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().expect("wait meshup");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// One compiled-policy cache shared by the test runs (what a user's machine would have).
pub fn cache_dir() -> PathBuf {
    let d = std::env::temp_dir().join("meshup-e2e-cache");
    let _ = std::fs::create_dir_all(&d);
    d
}

pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to sim");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (code, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n.min(rest.len())]);
        s = rest.get(n + 2..).unwrap_or("");
    }
    out
}

/// Poll a condition (for test setup only, e.g. workloads becoming ready).
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Install a bundle with -y and check it succeeded.
pub fn install(sim: &Sim, bundle_name: &str, extra: &[&str]) {
    let b = bundle(bundle_name);
    let mut args = vec!["install", "--bundle", b.to_str().unwrap(), "-y"];
    args.extend_from_slice(extra);
    sim.meshup(&args).expect(0);
}

/// A shipped bundle's path as a CLI argument.
pub fn b(name: &str) -> String {
    bundle(name).to_str().unwrap().to_string()
}

/// The finding codes of a `-o json` document.
pub fn codes(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Wait until a Deployment reports `replicas` ready (test setup).
pub fn wait_ready(sim: &Sim, namespace: &str, name: &str, replicas: u64) {
    let path = format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}");
    eventually(&format!("{name} ready"), Duration::from_secs(20), || {
        sim.get(&path)["status"]["readyReplicas"] == replicas
    });
}

/// An injected namespace `shop` with a Deployment `cart` of `replicas` pods, ready.
pub fn deploy_cart(sim: &Sim, replicas: u64) {
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"shop","labels":{"istio-injection":"enabled"}}}"#;
    sim.http("POST", "/api/v1/namespaces", Some(ns));
    let dep = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "cart"}},
            "template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [{"name": "cart", "image": "cart:1"}]}}}});
    let (code, body) = sim.http(
        "POST",
        "/apis/apps/v1/namespaces/shop/deployments",
        Some(&dep.to_string()),
    );
    assert_eq!(code, 201, "{body}");
    wait_ready(sim, "shop", "cart", replicas);
}
