//! Benchmarks on the real cluster (issue item 5), printed as ratios to their targets.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use meshup_real_tests::cluster::{Cluster, bundle, policy_cache};
use serde_json::Value;

use crate::{K8S_TOO_NEW, at_1_7_8, eventually, upgrade};

const WORKLOADS: usize = 20;
const REPLICAS: usize = 500;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn audit_time(e: &Value) -> SystemTime {
    let ts: jiff::Timestamp = e["stageTimestamp"].as_str().unwrap().parse().unwrap();
    SystemTime::from(ts)
}

/// Run a program inside the namespace under /usr/bin/time: (wall time, peak RSS in MiB, stdout).
fn timed(c: &Cluster, program: &std::path::Path, args: &[&str]) -> (Duration, Option<f64>, String) {
    timed_ok(c, program, args, &[0])
}

/// `timed`, where each exit code of `ok` counts as success (a precheck that blocks exits 3).
fn timed_ok(
    c: &Cluster,
    program: &std::path::Path,
    args: &[&str],
    ok: &[i32],
) -> (Duration, Option<f64>, String) {
    let t = Instant::now();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &c.netns,
            "/usr/bin/time",
            "-f",
            "maxrss_kb=%M",
        ])
        .arg(program)
        .args(args)
        .env("NO_COLOR", "1")
        .env("MESHUP_CACHE_DIR", policy_cache()) // the compiled policies of the earlier runs
        .output()
        .expect("run under /usr/bin/time");
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok.contains(&code),
        "{program:?} {args:?} exited {code}: {stderr}"
    );
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|k| k.trim().parse::<f64>().ok())
        .map(|k| k / 1024.0);
    (wall, rss, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Completion noticed after the last control-plane pod became Ready (target <= 250 ms): the
/// moment KWOK's status write made the last istio-system pod Ready, from the API server's
/// audit log, against meshup's last request and its exit.
fn completion_latency(c: &Cluster) {
    at_1_7_8(c);
    let mark = c.audit.mark();
    let run = upgrade(c, "1.8.6", &[]);
    let exited = SystemTime::now();
    run.expect(0);
    let events = c.audit.since(mark);
    let last_ready = events
        .iter()
        .filter(|e| e["user"]["username"] == "meshup-real-components" && e["verb"] == "patch")
        .filter(|e| {
            e["objectRef"]["resource"] == "pods" && e["objectRef"]["subresource"] == "status"
        })
        .filter(|e| e["objectRef"]["namespace"] == "istio-system")
        .map(audit_time)
        .max()
        .expect("no pod status write in istio-system during the upgrade");
    let last_request = events
        .iter()
        .filter(|e| e["user"]["username"] == "meshup-admin")
        .map(audit_time)
        .max()
        .unwrap();
    let to_last = last_request.duration_since(last_ready).unwrap_or_default();
    let to_exit = exited.duration_since(last_ready).unwrap_or_default();
    println!(
        "  bench: completion after the last control-plane pod Ready: last request +{:.0} ms, exit +{:.0} ms (target 250 ms: {:.2}x)",
        ms(to_last),
        ms(to_exit),
        ms(to_exit) / 250.0
    );
    assert!(to_exit < Duration::from_secs(10), "{to_exit:?}");
}

/// 10,000 KWOK pods whose templates carry a 1.7.8 istio-proxy, Running.
fn ten_thousand_pods(c: &Cluster) {
    c.kubectl_ok(&["create", "namespace", "load"]);
    let t = Instant::now();
    for i in 0..WORKLOADS {
        let dep = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("w{i}"), "namespace": "load"},
            "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": format!("w{i}")}},
                "template": {"metadata": {"labels": {"app": format!("w{i}")}}, "spec": {"containers": [
                    {"name": "app", "image": "registry.invalid/app:1"},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.7.8"}]}}}});
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), dep.to_string()).unwrap();
        c.kubectl_ok(&["apply", "-f", file.path().to_str().unwrap()]);
    }
    eventually("10,000 pods Running", Duration::from_secs(900), || {
        let run = c.kubectl(&[
            "get",
            "pods",
            "-n",
            "load",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
        ]);
        run.stdout.lines().count() >= WORKLOADS * REPLICAS
    });
    println!(
        "  bench: {} KWOK pods Running after {:.0} s",
        WORKLOADS * REPLICAS,
        t.elapsed().as_secs_f64()
    );
}

pub fn benchmarks(c: &Cluster) {
    completion_latency(c);
    ten_thousand_pods(c);
    let kubeconfig = c.kubeconfig.to_str().unwrap().to_string();
    // The precheck of a downgrade back to 1.7.8: the whole plan, every policy, 10,000 pods.
    let (pre, pre_rss, _) = timed(
        c,
        &c.meshup,
        &[
            "--kubeconfig",
            &kubeconfig,
            "precheck",
            "--bundle",
            &bundle("istio-1.7.8"),
            "--ignore",
            K8S_TOO_NEW,
            "-o",
            "json",
        ],
    );
    println!(
        "  bench: precheck with 10,000 pods: {:.0} ms (target < 2000 ms: {:.2}x), peak {:.0} MiB",
        ms(pre),
        ms(pre) / 2000.0,
        pre_rss.unwrap_or(f64::NAN)
    );
    let (dp, dp_rss, out) = timed(
        c,
        &c.meshup,
        &[
            "--kubeconfig",
            &kubeconfig,
            "dataplane",
            "status",
            "-o",
            "json",
        ],
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    let outdated = doc["outdated"].as_array().unwrap();
    assert_eq!(outdated.len(), WORKLOADS, "{doc}");
    assert!(
        outdated.iter().all(|w| w["versions"]["1.7.8"] == REPLICAS),
        "{doc}"
    );
    let (kc, kc_rss, _) = timed(
        c,
        &c.bin.join("kubectl"),
        &[
            "--kubeconfig",
            &kubeconfig,
            "get",
            "pods",
            "-A",
            "-o",
            "json",
        ],
    );
    println!(
        "  bench: dataplane status over 10,000+ pods: {:.0} ms, peak {:.0} MiB; kubectl get pods -A -o json: {:.0} ms, peak {:.0} MiB (time ratio {:.2}x, memory ratio {:.2}x)",
        ms(dp),
        dp_rss.unwrap_or(f64::NAN),
        ms(kc),
        kc_rss.unwrap_or(f64::NAN),
        ms(dp) / ms(kc),
        dp_rss.unwrap_or(f64::NAN) / kc_rss.unwrap_or(f64::NAN)
    );
}

/// The median wall time of `n` runs of `run`.
pub(crate) fn median(n: usize, mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..n).map(|_| run()).collect();
    times.sort();
    times[n / 2]
}

/// `helm template` of the three chart releases meshup renders (base, istiod, gateway), as
/// meshup runs it for an upgrade: what rendering alone costs.
fn helm_template_alone(helm: &str, release: &str, kube: &str) -> Duration {
    let charts = std::path::Path::new(release).join("manifests/charts");
    let t = Instant::now();
    for (name, chart, ns) in [
        ("istio-base", "base", "istio-system"),
        ("istiod", "istio-control/istio-discovery", "istio-system"),
        ("istio-ingress", "gateway", "istio-ingress"),
    ] {
        let out = Command::new(helm)
            .args(["template", name])
            .arg(charts.join(chart))
            .args(["--namespace", ns, "--is-upgrade", "--kube-version", kube])
            .output()
            .expect("run helm template");
        assert!(out.status.success(), "helm template {name}: {out:?}");
    }
    t.elapsed()
}

/// Precheck of a charts upgrade on the real tier (render by helm, server-side dry-run diff,
/// every policy) for each of the three releases, from a charts install of 1.29.6, against
/// the bundle precheck (1.7.8 → 1.8.6 on the shared cluster) and against `helm template`
/// alone; medians of 5 runs, printed as ratios (target: under 2 s).
pub fn charts_precheck_timing(shared: &Cluster) {
    const RUNS: usize = 5;
    at_1_7_8(shared);
    let kubeconfig = shared.kubeconfig.to_str().unwrap().to_string();
    let bundle_precheck = median(RUNS, || {
        let args = [
            "--kubeconfig",
            &kubeconfig,
            "precheck",
            "--bundle",
            &bundle("istio-1.8.6"),
            "--ignore",
            K8S_TOO_NEW,
        ];
        timed(shared, &shared.meshup, &args).0
    });
    let helm = meshup_real_tests::helm::build(4);
    let helm = helm.to_str().unwrap();
    let c = Cluster::up().unwrap_or_else(|e| panic!("a cluster of its own: {e:?}"));
    let server = std::path::Path::new(env!("CARGO_BIN_EXE_webhook-server"));
    let _injector = c.webhook_server(server, &["istio-system"]);
    let from = meshup_real_tests::helm::release("1.29.6");
    c.meshup(&[
        "install",
        "--charts",
        &from,
        "--helm",
        helm,
        "-y",
        "--ignore",
        K8S_TOO_NEW,
    ])
    .expect(0);
    let kube = c.server_version();
    let kubeconfig = c.kubeconfig.to_str().unwrap().to_string();
    println!(
        "  bench: bundle precheck 1.7.8 → 1.8.6: {:.0} ms (median of {RUNS})",
        ms(bundle_precheck)
    );
    for target in ["1.29.6", "1.30.3", "1.31.0-rc.0"] {
        let release = meshup_real_tests::helm::release(target);
        let precheck = median(RUNS, || {
            let args = [
                "--kubeconfig",
                &kubeconfig,
                "precheck",
                "--charts",
                &release,
                "--helm",
                helm,
                "--ignore",
                K8S_TOO_NEW,
            ];
            // 1.29 → 1.31 skips a minor: the skew policy blocks it (exit 3), after every check.
            timed_ok(&c, &c.meshup, &args, &[0, 3]).0
        });
        let render = median(RUNS, || helm_template_alone(helm, &release, &kube));
        println!(
            "  bench: charts precheck 1.29.6 → {target}: {:.0} ms (target < 2000 ms: {:.2}x); bundle precheck {:.2}x; helm template alone {:.0} ms ({:.2}x of the precheck)",
            ms(precheck),
            ms(precheck) / 2000.0,
            ms(precheck) / ms(bundle_precheck),
            ms(render),
            ms(render) / ms(precheck),
        );
    }
}
