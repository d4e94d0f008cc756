//! `cargo bench -p meshup --bench upgrade`: end-to-end figures of the real `meshup`
//! binary against the real simulator (`meshup sim`), compared with `kubectl` in the same
//! run. Prints figures and a table; asserts nothing.
//!
//! 1. completion noticed after the last control-plane pod is Ready   (< 250 ms)
//! 2. apply of a whole bundle vs `kubectl apply --server-side`        (< 1/3 of kubectl)
//! 3. precheck with 10,000 pods                                       (< 2 s)
//! 4. `dataplane status` over 50,000 pods: peak RSS and time          (< 150 MiB, < 2x kubectl)
//! 5. rollback begins after ProgressDeadlineExceeded is observable    (< 1 s)

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const MESHUP: &str = env!("CARGO_BIN_EXE_meshup");

fn bundle(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../bundles")
        .join(name);
    p.to_string_lossy().into_owned()
}

/// Wall-clock milliseconds since the Unix epoch: the simulator's request log uses the same clock.
fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e3
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// A `meshup sim` process with its own kubeconfig, killed on drop.
struct Sim {
    child: Child,
    _dir: tempfile::TempDir, // holds the kubeconfig and seed
    kubeconfig: PathBuf,
    addr: String,
}

impl Sim {
    fn start(seed: Option<&str>, ready_delay_ms: u64) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        let mut cmd = Command::new(MESHUP);
        cmd.args([
            "sim",
            "--port",
            "0",
            "--ready-delay-ms",
            &ready_delay_ms.to_string(),
            // Inside every built-in bundle's supported Kubernetes range (Istio's published ones).
            "--kubernetes-version",
            "v1.18.20",
        ])
        .arg("--kubeconfig-out")
        .arg(&kubeconfig);
        if let Some(text) = seed {
            let path = dir.path().join("seed.yaml");
            std::fs::write(&path, text).unwrap();
            cmd.arg("--seed").arg(path);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start meshup sim");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = loop {
            let l = lines.next().expect("sim exited before listening").unwrap();
            if let Some(a) = l.strip_prefix("listening on http://") {
                break a.trim().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Sim {
            child,
            _dir: dir,
            kubeconfig,
            addr,
        }
    }

    fn kc(&self) -> &str {
        self.kubeconfig.to_str().unwrap()
    }

    fn http(&self, method: &str, path: &str, body: Option<&str>) -> String {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    }

    fn requests(&self) -> Vec<Value> {
        let v: Value = serde_json::from_str(&self.http("GET", "/sim/v1/requests", None)).unwrap();
        v["requests"].as_array().cloned().unwrap_or_default()
    }

    /// Watch `path` from a background thread; every event is stamped when it arrives.
    fn watch(&self, path: &str) -> Arc<Mutex<Vec<(f64, Value)>>> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut s = TcpStream::connect(&self.addr).unwrap();
        // HTTP/1.0: the stream comes back unchunked, one JSON event per line.
        write!(
            s,
            "GET {path}?watch=true&timeoutSeconds=3600 HTTP/1.0\r\nHost: {}\r\n\r\n",
            self.addr
        )
        .unwrap();
        let out = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(s).lines().map_while(Result::ok) {
                if let Ok(ev) = serde_json::from_str::<Value>(line.trim()) {
                    out.lock().unwrap().push((now_ms(), ev));
                }
            }
        });
        std::thread::sleep(Duration::from_millis(200)); // let the initial ADDED events arrive
        events
    }

    fn meshup(&self, args: &[&str]) -> (i32, String, f64) {
        let t = Instant::now();
        let out = Command::new(MESHUP)
            .arg("--kubeconfig")
            .arg(self.kc())
            .args(args)
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            secs,
        )
    }

    fn install(&self, version: &str) {
        let (code, out, _) = self.meshup(&["install", "--bundle", &bundle(version), "-y"]);
        assert_eq!(code, 0, "install {version}: {out}");
    }

    /// Seconds a kubectl command takes against this simulator (output discarded).
    fn kubectl(&self, args: &[&str]) -> f64 {
        let t = Instant::now();
        let st = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kc())
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "kubectl {args:?}");
        t.elapsed().as_secs_f64()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seed YAML: `pods` pods spread over `namespaces` injected namespaces, ReplicaSet-owned,
/// each with an istio-proxy 1.7.8 sidecar.
fn seed(namespaces: usize, pods: usize) -> String {
    let mut items = Vec::new();
    for n in 0..namespaces {
        items.push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("app-{n}"), "labels": {"istio-injection": "enabled"}}}));
    }
    for i in 0..pods {
        let (ns, app) = (
            format!("app-{}", i % namespaces),
            format!("svc-{}", (i / namespaces) % 10),
        );
        items.push(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{app}-5d8f9c7b6-{i}"), "namespace": ns, "labels": {"app": app, "pod-template-hash": "5d8f9c7b6"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-5d8f9c7b6"),
                    "uid": format!("rs-{ns}-{app}"), "controller": true}]},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.7.8"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}));
    }
    serde_json::to_string(&json!({"apiVersion": "v1", "kind": "List", "items": items})).unwrap()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// 1. Gap between the last control-plane pod becoming Ready and meshup printing completion.
fn completion_gap() -> f64 {
    let sim = Sim::start(None, 500);
    sim.install("istio-1.7.8");
    let pods = sim.watch("/api/v1/namespaces/istio-system/pods");
    let already: HashSet<String> = pods
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, e)| is_ready(&e["object"]))
        .map(|(_, e)| e["object"]["metadata"]["uid"].to_string())
        .collect();
    let mut child = Command::new(MESHUP)
        .args([
            "--kubeconfig",
            sim.kc(),
            "upgrade",
            "--bundle",
            &bundle("istio-1.8.6"),
            "-y",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut done = None;
    for line in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        if done.is_none() && line.contains("control plane now at") {
            done = Some(now_ms());
        }
    }
    assert!(child.wait().unwrap().success(), "upgrade failed");
    std::thread::sleep(Duration::from_millis(100));
    // First moment each new pod was seen Ready; the last of those is the one meshup waits for.
    let mut first_ready: HashMap<String, f64> = HashMap::new();
    for (t, e) in pods.lock().unwrap().iter() {
        let uid = e["object"]["metadata"]["uid"].to_string();
        if is_ready(&e["object"]) && !already.contains(&uid) {
            first_ready.entry(uid).or_insert(*t);
        }
    }
    let last = first_ready.values().cloned().fold(f64::MIN, f64::max);
    done.expect("no completion line") - last
}

/// 2. Whole-bundle apply: kubectl server-side apply (process wall time) vs meshup's apply span
///    (all objects applied, components waited on with ready-delay 0) and its whole install.
fn apply_vs_kubectl() -> (f64, f64, f64) {
    let out = Command::new(MESHUP)
        .args(["template", "--bundle", &bundle("istio-1.8.6")])
        .output()
        .unwrap();
    let manifest = String::from_utf8(out.stdout).unwrap();
    // kubectl applies in file order: Namespace, then CRDs, then the rest.
    let rank = |d: &str| {
        if d.contains("\nkind: Namespace") || d.starts_with("kind: Namespace") {
            0
        } else if d.contains("kind: CustomResourceDefinition") {
            1
        } else {
            2
        }
    };
    let mut docs: Vec<&str> = manifest
        .split("\n---")
        .filter(|d| d.contains("kind:"))
        .collect();
    docs.sort_by_key(|d| rank(d));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, docs.join("\n---\n")).unwrap();
    let (mut kubectl, mut kubectl_span, mut apply, mut install) = (vec![], vec![], vec![], vec![]);
    for _ in 0..3 {
        let sim = Sim::start(None, 0);
        kubectl.push(sim.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            file.to_str().unwrap(),
        ]));
        kubectl_span.push(apply_span(&sim.requests(), docs.len()));
        let sim = Sim::start(None, 0);
        let (code, _, secs) = sim.meshup(&["install", "--bundle", &bundle("istio-1.8.6"), "-y"]);
        assert_eq!(code, 0);
        install.push(secs);
        apply.push(apply_span(&sim.requests(), docs.len()));
    }
    println!(
        "  kubectl's own apply span (first PATCH to last, from the sim log): {:.0} ms",
        median(kubectl_span.clone()) * 1e3
    );
    (median(kubectl), median(apply), median(install))
}

/// Seconds from the start of the first to the end of the last of the final `n` server-side
/// applies (meshup's release-history Secret and its early Namespace check excluded).
fn apply_span(requests: &[Value], n: usize) -> f64 {
    let applies: Vec<(f64, f64)> = requests
        .iter()
        .filter(|r| {
            r["verb"] == "apply"
                && r["mutating"] == true
                && !r["path"].as_str().unwrap().contains("/secrets/")
        })
        .map(|r| {
            (
                r["time_ms"].as_f64().unwrap(),
                r["duration_ms"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    let last_n = &applies[applies.len().saturating_sub(n)..];
    let first = last_n.iter().map(|a| a.0 - a.1).fold(f64::MAX, f64::min);
    let last = last_n.iter().map(|a| a.0).fold(f64::MIN, f64::max);
    (last - first) / 1e3
}

/// 3. Precheck over 10,000 pods in 100 namespaces.
fn precheck_10k() -> (f64, i32) {
    let sim = Sim::start(Some(&seed(100, 10_000)), 0);
    sim.install("istio-1.7.8");
    let mut code = 0;
    let secs = median(
        (0..3)
            .map(|_| {
                let (c, out, secs) = sim.meshup(&["precheck", "--bundle", &bundle("istio-1.8.6")]);
                assert!(c == 0 || c == 3, "precheck exit {c}: {out}");
                code = c;
                secs
            })
            .collect(),
    );
    (secs, code)
}

/// 4. `dataplane status -o json` over 50,000 pods: (seconds, peak RSS MiB, kubectl seconds).
fn dataplane_50k() -> (f64, f64, f64) {
    let sim = Sim::start(Some(&seed(1_000, 50_000)), 0);
    sim.install("istio-1.7.8");
    let mut runs = vec![];
    let mut rss = vec![];
    for _ in 0..3 {
        let t = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args([
                "-v",
                MESHUP,
                "--kubeconfig",
                sim.kc(),
                "dataplane",
                "status",
                "-o",
                "json",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        runs.push(t.elapsed().as_secs_f64());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dataplane status: {err}");
        let kib: f64 = err
            .lines()
            .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
            .expect("no maxrss")
            .trim()
            .parse()
            .unwrap();
        rss.push(kib / 1024.0);
    }
    let kubectl = median(
        (0..3)
            .map(|_| sim.kubectl(&["get", "pods", "-A", "-o", "json"]))
            .collect(),
    );
    (median(runs), median(rss), kubectl)
}

/// 5. From ProgressDeadlineExceeded being observable to meshup's first rollback apply.
fn rollback_gap() -> f64 {
    let sim = Sim::start(None, 50);
    sim.install("istio-1.7.8");
    sim.http(
        "PUT",
        "/sim/v1/faults",
        Some(r#"{"never_ready": ["istiod"]}"#),
    );
    let deps = sim.watch("/apis/apps/v1/namespaces/istio-system/deployments");
    sim.http("DELETE", "/sim/v1/requests", None);
    let (code, _, _) = sim.meshup(&[
        "upgrade",
        "--bundle",
        &bundle("istio-1.8.6"),
        "-y",
        "--set",
        "values.pilot.progressDeadlineSeconds=2",
    ]);
    assert_eq!(code, 5, "expected a rolled-back upgrade");
    let failed = deps
        .lock()
        .unwrap()
        .iter()
        .find(|(_, e)| {
            e["object"]["metadata"]["name"] == "istiod"
                && e["object"]["status"]["conditions"]
                    .as_array()
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded"
                        })
                    })
        })
        .map(|(t, _)| *t)
        .expect("never saw ProgressDeadlineExceeded");
    let rollback = sim
        .requests()
        .iter()
        .filter(|r| r["verb"] == "apply" && r["mutating"] == true)
        .map(|r| r["time_ms"].as_f64().unwrap() - r["duration_ms"].as_f64().unwrap_or(0.0))
        // The upgrade's own applies end >= 2 s before the deadline; meshup may see the event
        // a hair before this bench's watch does.
        .find(|&t| t >= failed - 500.0)
        .expect("no apply after the failure");
    rollback - failed
}

fn main() {
    let mut rows: Vec<(String, String, String, Option<bool>)> = vec![];
    let mut row = |what: &str, target: &str, measured: String, ok: Option<bool>| {
        println!("{what}: {measured}   (target {target})");
        rows.push((what.into(), target.into(), measured, ok));
    };

    let gaps: Vec<f64> = (0..5).map(|_| completion_gap()).collect();
    let gap = median(gaps.clone());
    println!("  completion gaps (ms): {gaps:.0?}");
    row(
        "1 completion noticed after last Ready",
        "< 250 ms",
        format!("{gap:.0} ms (median of 5)"),
        Some(gap < 250.0),
    );

    let (kubectl, apply, install) = apply_vs_kubectl();
    row(
        "2 apply 1.8.6: meshup apply / kubectl SSA",
        "< 0.33x",
        format!(
            "{:.0} ms / {:.0} ms = {:.2}x",
            apply * 1e3,
            kubectl * 1e3,
            apply / kubectl
        ),
        Some(apply < kubectl / 3.0),
    );
    row(
        "2 whole meshup install (ready-delay 0)",
        "(info)",
        format!(
            "{:.0} ms = {:.2}x kubectl",
            install * 1e3,
            install / kubectl
        ),
        None,
    );

    let (pre, code) = precheck_10k();
    row(
        "3 precheck, 10k pods / 100 ns",
        "< 2 s",
        format!("{:.0} ms (median of 3, exit {code})", pre * 1e3),
        Some(pre < 2.0),
    );

    let (dp, rss, kubectl) = dataplane_50k();
    row(
        "4 dataplane status, 50k pods: peak RSS",
        "< 150 MiB",
        format!("{rss:.1} MiB"),
        Some(rss < 150.0),
    );
    row(
        "4 dataplane status, 50k pods: time",
        "< 2x kubectl",
        format!(
            "{:.0} ms vs kubectl {:.0} ms = {:.2}x",
            dp * 1e3,
            kubectl * 1e3,
            dp / kubectl
        ),
        Some(dp < 2.0 * kubectl),
    );

    let rb = rollback_gap();
    row(
        "5 rollback begins after deadline exceeded",
        "< 1000 ms",
        format!("{rb:.0} ms"),
        Some(rb < 1000.0),
    );

    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let m = rows.iter().map(|r| r.2.len()).max().unwrap_or(0);
    println!(
        "\n{:w$}  {:12}  {:m$}  verdict",
        "measure", "target", "measured"
    );
    for (what, target, measured, ok) in &rows {
        println!(
            "{what:w$}  {target:12}  {measured:m$}  {}",
            match ok {
                Some(true) => "ok",
                Some(false) => "MISSED",
                None => "-",
            }
        );
    }
}
