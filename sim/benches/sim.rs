//! `cargo bench -p meshup-sim`: prints the simulator's performance figures.
//!
//! - seeding 50,000 pods across 1,000 namespaces from a YAML seed file (target < 10 s)
//!   and the process's peak RSS afterwards (target < 1 GiB)
//! - a complete paginated HTTP list of those pods (limit=500) vs serde_json alone
//!   serializing the same pods (target < 2x)
//! - watch-event latency, write to client receipt (target < 10 ms; median and p99)

use meshup_sim::cluster::WriteOpts;
use meshup_sim::{Sim, SimConfig};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 1_000;

/// A list borrowing its items: serde_json's cost without copying the values.
#[derive(serde::Serialize)]
struct PodList<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Value,
    items: &'a [Value],
}
const PODS: usize = 50_000;

fn pod(ns: &str, i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("app-{}-7d9f8c6b5d-{:05}", i % 50, i),
            "namespace": ns,
            "labels": {"app": format!("app-{}", i % 50), "pod-template-hash": "7d9f8c6b5d", "security.istio.io/tlsMode": "istio"},
            "annotations": {"sidecar.istio.io/status": "{\"containers\":[\"istio-proxy\"]}"},
        },
        "spec": {
            "containers": [
                {"name": "app", "image": "registry.example.com/shop/app:1.2.3", "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                 "env": [{"name": "MODE", "value": "production"}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.7.8", "args": ["proxy", "sidecar"],
                 "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}]}
            ],
            "restartPolicy": "Always", "serviceAccountName": "default"
        }
    })
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Keep-alive HTTP/1.1 GET returning the body (Content-Length responses).
fn get(stream: &mut BufReader<TcpStream>, host: &str, path: &str) -> Vec<u8> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
    stream.get_mut().write_all(req.as_bytes()).expect("write");
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("read header");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().expect("length");
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).expect("body");
    body
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("meshup-sim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let seed = dir.join("seed.yaml");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&seed).expect("seed file"));
        for n in 0..NAMESPACES {
            writeln!(
                f,
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns-{n:04}\n---"
            )
            .unwrap();
        }
        for i in 0..PODS {
            let ns = format!("ns-{:04}", i % NAMESPACES);
            // block-style YAML, as people write it
            writeln!(f, "{}---", serde_yaml::to_string(&pod(&ns, i)).unwrap()).unwrap();
        }
    }
    let t = Instant::now();
    let sim = rt
        .block_on(Sim::start(SimConfig {
            seed: Some(seed.clone()),
            ..SimConfig::default()
        }))
        .expect("start");
    let seed_time = t.elapsed();
    let seed_text = std::fs::read_to_string(&seed).expect("seed text");
    let _ = std::fs::remove_dir_all(&dir);
    // let the controllers settle over the seeded namespaces
    std::thread::sleep(Duration::from_millis(500));
    let hwm = vm_hwm_kib();
    println!(
        "seed: {PODS} pods across {NAMESPACES} namespaces from YAML in {:.2} s (target < 10 s)",
        seed_time.as_secs_f64()
    );
    println!(
        "peak RSS after seeding: {:.0} MiB (target < 1024 MiB)",
        hwm as f64 / 1024.0
    );

    // paginated list over HTTP vs serde_json alone
    let host = sim.addr().to_string();
    let mut stream = BufReader::new(TcpStream::connect(sim.addr()).expect("connect"));
    let mut best_http = Duration::MAX;
    let mut count = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let mut cont = String::new();
        count = 0;
        loop {
            let path = if cont.is_empty() {
                "/api/v1/pods?limit=500".to_string()
            } else {
                format!("/api/v1/pods?limit=500&continue={cont}")
            };
            let body = get(&mut stream, &host, &path);
            let v: Value =
                serde_json::from_slice(&body[..body.len().min(256)]).unwrap_or(Value::Null);
            let _ = v;
            // find the continue token without a full parse (the client's cost is not the server's)
            let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_string();
            count += body.windows(12).filter(|w| w == b"{\"apiVersion").count();
            match head
                .split("\"continue\":\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
            {
                Some(c) => cont = c.to_string(),
                None => break,
            }
        }
        best_http = best_http.min(t.elapsed());
    }
    let pods: Vec<Value> = sim
        .cluster()
        .store
        .list("/pods", None, None, 0, &|_| true)
        .0
        .iter()
        .map(|o| o.full())
        .collect();
    let mut best_serde = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut total = 0;
        for chunk in pods.chunks(500) {
            let list = PodList {
                kind: "PodList",
                api_version: "v1",
                metadata: json!({}),
                items: chunk,
            };
            total += serde_json::to_vec(&list).expect("serialize").len();
        }
        std::hint::black_box(total);
        best_serde = best_serde.min(t.elapsed());
    }
    println!(
        "paginated list of {count} pods over HTTP (limit=500): {:.1} ms; serde_json alone: {:.1} ms; ratio {:.2}x (target < 2x)",
        best_http.as_secs_f64() * 1000.0,
        best_serde.as_secs_f64() * 1000.0,
        best_http.as_secs_f64() / best_serde.as_secs_f64()
    );

    // watch latency: write in-process, receive over HTTP
    let c = sim.cluster().clone();
    let cm_rt = c
        .registry
        .lookup("", "v1", "configmaps")
        .expect("configmaps");
    let mut w = BufReader::new(TcpStream::connect(sim.addr()).expect("connect"));
    let req = format!(
        "GET /api/v1/namespaces/ns-0000/configmaps?watch=true&resourceVersion={} HTTP/1.1\r\nHost: {host}\r\n\r\n",
        c.store.current_rv()
    );
    w.get_mut().write_all(req.as_bytes()).expect("write");
    loop {
        let mut line = String::new();
        w.read_line(&mut line).expect("header");
        if line.trim_end().is_empty() {
            break;
        }
    }
    let mut lat = Vec::new();
    let wo = WriteOpts {
        manager: "bench".into(),
        ..Default::default()
    };
    for i in 0..500 {
        let t = Instant::now();
        c.create(
            &cm_rt,
            "ns-0000",
            json!({"metadata": {"name": format!("cm-{i}")}, "data": {"k": "v"}}),
            &wo,
        )
        .expect("create");
        // chunk size line, then the event line
        loop {
            let mut line = String::new();
            w.read_line(&mut line).expect("event");
            if line.contains("\"ADDED\"") {
                break;
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "watch event latency (write → client receipt, {} events): median {:.3} ms, p99 {:.3} ms (target < 10 ms)",
        lat.len(),
        p(0.5),
        p(0.99)
    );
    rt.block_on(sim.shutdown());
    let t = Instant::now();
    let docs = meshup_sim::seed::parse_documents(&seed_text).expect("parse");
    println!(
        "  (of the seeding time, parsing the {} MiB of YAML into {} documents alone takes {:.2} s)",
        seed_text.len() / (1024 * 1024),
        docs.len(),
        t.elapsed().as_secs_f64()
    );
}
