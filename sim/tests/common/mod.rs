#![allow(dead_code)]
//! Shared helpers for the simulator's integration tests.

use meshup_sim::{Sim, SimConfig};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub async fn start() -> Sim {
    start_with(SimConfig {
        ready_delay: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
}

pub async fn start_with(cfg: SimConfig) -> Sim {
    Sim::start(cfg).await.expect("simulator starts")
}

/// A minimal blocking HTTP/1.1 client (`Connection: close`).
pub fn http(
    sim: &Sim,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, String, Vec<(String, String)>) {
    http_addr(
        &FakeSim {
            addr: sim.addr(),
            url: sim.url(),
        },
        method,
        path,
        body,
    )
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub async fn ahttp(
    sim: &Sim,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, Value) {
    let addr = sim.addr();
    let method = method.to_string();
    let path = path.to_string();
    let body = body.map(|(a, b)| (a.to_string(), b.to_string()));
    let url = sim.url();
    let (code, text) = tokio::task::spawn_blocking(move || {
        let fake = FakeSim { addr, url };
        let b = body.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let (c, t, _) = http_addr(&fake, &method, &path, b);
        (c, t)
    })
    .await
    .expect("join");
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub struct FakeSim {
    pub addr: std::net::SocketAddr,
    pub url: String,
}

pub fn http_addr(
    sim: &FakeSim,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> (u16, String, Vec<(String, String)>) {
    let mut s = std::net::TcpStream::connect(sim.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let (ct, b) = body.unwrap_or(("application/json", ""));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{b}",
        sim.addr,
        b.len()
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body, headers)
}

pub async fn client(sim: &Sim) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&sim.kubeconfig_yaml()).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

/// `None` (with a message on stderr) when kubectl is not on PATH.
pub fn kubectl_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let found = std::env::split_paths(&path)
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    if found.is_none() {
        // CI must meet real kubectl: a skip there would hide a missing install step.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubectl is not on PATH and CI=true: the kubectl tests must run in CI"
        );
        eprintln!("SKIPPED: kubectl is not on PATH; this kubectl test did not run");
    }
    found
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Kubectl {
    pub fn new(sim: &Sim) -> Option<Kubectl> {
        let bin = kubectl_path()?;
        let dir = tempfile::tempdir().expect("tempdir");
        sim.write_kubeconfig(dir.path().join("kubeconfig"))
            .expect("kubeconfig");
        Some(Kubectl { bin, dir })
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write");
        p
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        let bin = self.bin.clone();
        let dir: PathBuf = self.dir.path().to_path_buf();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(&bin)
                .arg("--kubeconfig")
                .arg(dir.join("kubeconfig"))
                .arg("--cache-dir")
                .arg(dir.join("cache"))
                .args(&args)
                .env("HOME", &dir)
                .output()
                .expect("run kubectl")
        })
        .await
        .expect("join")
    }

    /// Runs and asserts success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }

    pub fn path(&self, p: &Path) -> String {
        p.to_string_lossy().to_string()
    }
}

pub const WEB: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports: [{containerPort: 80, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, name: http, targetPort: http}]
"#;
