//! Benchmarks on the real cluster (issue item 5), printed as ratios to their targets.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use meshup_real_tests::cluster::{Cluster, bundle, policy_cache};
use meshup_real_tests::end_state;
use meshup_real_tests::helm_istio::{HelmIstio, RELEASES};
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

/// The release a side-by-side run starts from, and the one it upgrades to.
const FROM: &str = "1.29.6";
const TO: &str = "1.30.3";

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Helm,
    Meshup,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Helm => "helm",
            Tool::Meshup => "meshup",
        }
    }
}

/// A control-plane pod (istiod's, the gateway's) as kubectl reads it.
struct Pod {
    name: String,
    /// The tag of istiod's container, or of the gateway's `istio-proxy`.
    tag: String,
    ready: bool,
    /// The Ready condition's lastTransitionTime (1 s resolution).
    ready_since: Option<SystemTime>,
}

/// One run of one tool on a fresh cluster.
struct Upgrade {
    /// The tool's exit code (helm: of the first step that failed, else 0).
    code: i32,
    wall: Duration,
    /// Per step (helm's three commands; meshup's one): what, exit code, time.
    steps: Vec<(String, i32, Duration)>,
    /// The last Ready control-plane pod to the tool's exit: from the API server's audit log
    /// (KWOK's status write), and from kubectl's lastTransitionTime (whole seconds).
    ready_to_done: Option<(Duration, Duration, SystemTime)>,
    /// The tool's API requests after that last Ready, counted by verb and resource.
    after_ready: BTreeMap<String, usize>,
    /// istiod's pods at exit (not terminating).
    istiod: Vec<Pod>,
    state: end_state::State,
    values: Vec<(&'static str, Value)>,
    /// `helm history` of each release: (release, [revision status app_version description]).
    history: Vec<(&'static str, Vec<String>)>,
}

fn fresh_install() -> HelmIstio {
    let s = HelmIstio::new(4, Path::new(env!("CARGO_BIN_EXE_webhook-server")));
    s.install(FROM);
    s
}

fn control_plane_pods(c: &Cluster) -> Vec<Pod> {
    let mut pods = Vec::new();
    for (ns, app, container) in [
        ("istio-system", "istiod", "discovery"),
        ("istio-ingress", "istio-ingress", "istio-proxy"),
    ] {
        let list = c.get_json(&["pods", "-n", ns, "-l", &format!("app={app}")]);
        pods.extend(
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .map(|p| pod(p, container)),
        );
    }
    pods
}

fn pod(p: &Value, container: &str) -> Pod {
    let image = p["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .and_then(|c| c["image"].as_str())
        .unwrap_or("");
    let ready = p["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready");
    Pod {
        name: p["metadata"]["name"].as_str().unwrap_or("").to_string(),
        tag: image.rsplit(':').next().unwrap_or("").to_string(),
        ready: ready.is_some_and(|c| c["status"] == "True"),
        ready_since: ready
            .filter(|c| c["status"] == "True")
            .and_then(|c| c["lastTransitionTime"].as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(SystemTime::from),
    }
}

/// The newest Ready transition among the control-plane pods since `began`, and the tool's
/// exit `done`: (from the audit log's KWOK write that made that pod Ready, from kubectl's
/// lastTransitionTime). lastTransitionTime has whole seconds, so the pod whose transition
/// it names is looked up in the audit log, within that second.
fn ready_to_done(
    c: &Cluster,
    pods: &[Pod],
    mark: usize,
    began: SystemTime,
    done: SystemTime,
) -> Option<(Duration, Duration, SystemTime)> {
    let began_s = jiff::Timestamp::try_from(began).ok()?.as_second();
    let newest = pods
        .iter()
        .filter_map(|p| p.ready_since.map(|t| (t, p)))
        .filter(|(t, _)| {
            jiff::Timestamp::try_from(*t)
                .map(|t| t.as_second() >= began_s)
                .unwrap_or(false)
        })
        .map(|(t, _)| t)
        .max()?;
    let names: Vec<&str> = pods
        .iter()
        .filter(|p| p.ready_since == Some(newest))
        .map(|p| p.name.as_str())
        .collect();
    let window = newest + Duration::from_secs(1);
    let precise = c
        .audit
        .since(mark)
        .iter()
        .filter(|e| e["user"]["username"] == "meshup-real-components" && e["verb"] == "patch")
        .filter(|e| {
            e["objectRef"]["resource"] == "pods" && e["objectRef"]["subresource"] == "status"
        })
        .filter(|e| names.iter().any(|n| e["objectRef"]["name"] == *n))
        .map(audit_time)
        .filter(|t| *t >= newest && *t < window)
        .max()
        .unwrap_or(newest);
    Some((
        done.duration_since(precise).unwrap_or_default(),
        done.duration_since(newest).unwrap_or_default(),
        precise,
    ))
}

/// Istio's documented upgrade with helm 4 (`--wait --rollback-on-failure`, the user's values
/// again), step by step as the doc gives it, stopping at the first step that fails; or
/// `meshup upgrade`. `never_ready`: istiod's pods at the target never become ready (helm:
/// `-f never-ready.yaml --timeout 60s` on istiod's step; meshup: `--readiness-timeout 60s
/// -f istiod=never-ready.yaml`).
fn upgrade_with(s: &HelmIstio, tool: Tool, never_ready: bool) -> Upgrade {
    let c = &s.c;
    let mark = c.audit.mark();
    let began = SystemTime::now();
    let t = Instant::now();
    let mut steps = Vec::new();
    match tool {
        Tool::Helm => {
            for (release, mut args) in s.upgrade_commands(TO) {
                args.extend(["--wait", "--rollback-on-failure"].map(String::from));
                if never_ready && release == "istiod" {
                    args.push("-f".into());
                    args.push(s.never_ready.to_str().unwrap().into());
                    args.extend(["--timeout", "60s"].map(String::from));
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let step = Instant::now();
                let run = s.helm_run(&args);
                steps.push((format!("helm upgrade {release}"), run.code, step.elapsed()));
                if run.code != 0 {
                    println!(
                        "  bench: helm upgrade {release} exited {}: {}",
                        run.code,
                        run.stderr.trim()
                    );
                    break;
                }
            }
        }
        Tool::Meshup => {
            let values = format!("istiod={}", s.never_ready.display());
            let mut extra = vec!["-y"];
            if never_ready {
                extra.extend(["--readiness-timeout", "60s", "-f", &values]);
            }
            let run = s.meshup("upgrade", TO, &extra);
            steps.push(("meshup upgrade".into(), run.code, t.elapsed()));
            if run.code != 0 {
                println!(
                    "  bench: meshup upgrade exited {}:\n{}",
                    run.code,
                    run.all().trim()
                );
            }
        }
    }
    let wall = t.elapsed();
    let done = SystemTime::now();
    let code = steps.last().map(|s| s.1).unwrap_or(-1);
    let pods = control_plane_pods(c);
    let ready_to_done = ready_to_done(c, &pods, mark, began, done);
    let mut after_ready = BTreeMap::new();
    if let Some((_, _, ready)) = ready_to_done {
        for e in c.audit.requests_by("meshup-admin", mark) {
            if audit_time(&e) > ready {
                let r = &e["objectRef"];
                let what = format!(
                    "{} {}{}",
                    e["verb"].as_str().unwrap_or("?"),
                    r["resource"].as_str().unwrap_or("?"),
                    r["subresource"]
                        .as_str()
                        .map(|s| format!("/{s}"))
                        .unwrap_or_default()
                );
                *after_ready.entry(what).or_insert(0) += 1;
            }
        }
    }
    let istiod = pods
        .into_iter()
        .filter(|p| p.name.starts_with("istiod-"))
        .collect();
    let history = RELEASES
        .iter()
        .map(|&(release, _)| {
            let revisions = s
                .newest(release, usize::MAX)
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} \"{}\"",
                        r["revision"],
                        r["status"].as_str().unwrap_or("?"),
                        r["app_version"].as_str().unwrap_or("?"),
                        r["description"].as_str().unwrap_or("").replace('\n', " ")
                    )
                })
                .collect();
            (release, revisions)
        })
        .collect();
    Upgrade {
        code,
        wall,
        steps,
        ready_to_done,
        after_ready,
        istiod,
        state: end_state::snapshot(c, &["istio-system", "istio-ingress"]),
        values: s.user_values(),
        history,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn median_of(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn istiod_summary(pods: &[Pod]) -> String {
    let mut seen: BTreeMap<(String, bool), usize> = BTreeMap::new();
    for p in pods {
        *seen.entry((p.tag.clone(), p.ready)).or_default() += 1;
    }
    seen.iter()
        .map(|((tag, ready), n)| {
            format!("{n}× {tag} {}", if *ready { "Ready" } else { "not Ready" })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn history_summary(u: &Upgrade) -> String {
    u.history
        .iter()
        .map(|(release, revs)| format!("{release}: {}", revs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Istio's documented Helm upgrade (helm 4.3.2: `helm upgrade` of istio-base, istiod and the
/// gateway, each `--wait --rollback-on-failure` with the user's values again) beside `meshup
/// upgrade --charts`, from the same start (1.29.6 installed by helm 4 with istio.io's
/// commands and the user's values, on a fresh cluster each run) to 1.30.3: wall clock
/// (median of 3), last Ready control-plane pod to the tool's exit, the end states object by
/// object, the values and history Helm reports; then istiod never ready at the target.
/// Prints the figures with ratios measured in this run; asserts only what must hold.
pub fn helm_side_by_side(_shared: &Cluster) {
    const RUNS: usize = 3;
    let t = Instant::now();
    let mut runs: Vec<(Tool, Upgrade)> = Vec::new();
    for i in 0..RUNS {
        for tool in [Tool::Helm, Tool::Meshup] {
            let s = fresh_install();
            if i == 0 && tool == Tool::Meshup {
                // Warm meshup's compiled-policy cache as a user's machine has it (untimed).
                s.meshup("precheck", TO, &[]).expect(0);
            }
            let u = upgrade_with(&s, tool, false);
            assert_eq!(u.code, 0, "{} upgrade: {:?}", tool.name(), u.steps);
            // Both end at the target with the user's values kept, and Helm says so.
            s.assert_at(TO);
            println!(
                "  bench: run {} {}: {} (steps {:?}), last Ready → exit {:?}",
                i + 1,
                tool.name(),
                secs(u.wall),
                u.steps,
                u.ready_to_done
            );
            runs.push((tool, u));
        }
    }
    let of = |tool: Tool| -> Vec<&Upgrade> {
        runs.iter()
            .filter(|(t, _)| *t == tool)
            .map(|(_, u)| u)
            .collect()
    };
    let (helm, meshup) = (of(Tool::Helm), of(Tool::Meshup));

    for (tool, u) in [(Tool::Helm, helm[0]), (Tool::Meshup, meshup[0])] {
        println!(
            "  bench: run 1 {}: {} API requests after the last control-plane pod Ready: {:?}",
            tool.name(),
            u.after_ready.values().sum::<usize>(),
            u.after_ready
        );
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for k in helm[0].state.keys() {
        *kinds.entry(k.split(' ').next().unwrap()).or_insert(0) += 1;
    }
    println!("  bench: the objects compared (run 1, after helm): {kinds:?}");

    // The end states, object by object, per pair of runs.
    let diffs: Vec<Vec<String>> = helm
        .iter()
        .zip(&meshup)
        .map(|(h, m)| end_state::differences(&h.state, &m.state, "helm", "meshup"))
        .collect();
    println!(
        "\n  bench: end states compared: {} objects after helm, {} after meshup (run 1); {} differences:",
        helm[0].state.len(),
        meshup[0].state.len(),
        diffs[0].len()
    );
    for d in &diffs[0] {
        println!("    {d}");
    }
    for (i, d) in diffs.iter().enumerate().skip(1) {
        if d == &diffs[0] {
            println!("  bench: run {} pair: the same differences", i + 1);
        } else {
            println!("  bench: run {} pair differs from run 1's:", i + 1);
            for line in d.iter().filter(|l| !diffs[0].contains(l)) {
                println!("    + {line}");
            }
            for line in diffs[0].iter().filter(|l| !d.contains(l)) {
                println!("    - {line}");
            }
        }
    }
    for (h, m) in helm.iter().zip(&meshup) {
        assert_eq!(h.values, m.values, "helm get values after each tool");
    }

    // istiod never Ready at the target.
    let failing: Vec<(Tool, Upgrade)> = [Tool::Helm, Tool::Meshup]
        .into_iter()
        .map(|tool| {
            let s = fresh_install();
            let u = upgrade_with(&s, tool, true);
            if tool == Tool::Meshup {
                assert_eq!(u.code, 5, "meshup: {:?}", u.steps);
                // Restored and verified on the release it started from.
                s.assert_at(FROM);
            } else {
                assert_ne!(
                    u.code, 0,
                    "helm upgrade with a never-ready istiod succeeded"
                );
            }
            (tool, u)
        })
        .collect();
    let (fh, fm) = (&failing[0].1, &failing[1].1);

    let walls = |us: &[&Upgrade]| median_of(us.iter().map(|u| u.wall).collect());
    let gaps = |us: &[&Upgrade], audit: bool| {
        median_of(
            us.iter()
                .map(|u| {
                    let g = u
                        .ready_to_done
                        .expect("a Ready transition after the upgrade began");
                    if audit { g.0 } else { g.1 }
                })
                .collect(),
        )
    };
    let list = |us: &[&Upgrade]| {
        us.iter()
            .map(|u| format!("{:.1}", u.wall.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ms_list = |us: &[&Upgrade]| {
        us.iter()
            .map(|u| format!("{:.0}", ms(u.ready_to_done.unwrap().0)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (hw, mw) = (walls(&helm), walls(&meshup));
    let (hg, mg) = (gaps(&helm, true), gaps(&meshup, true));
    let (hk, mk) = (gaps(&helm, false), gaps(&meshup, false));
    let values_line = |u: &Upgrade| {
        u.values
            .iter()
            .map(|(r, v)| format!("{r} `{v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "\n  bench: helm_side_by_side ({FROM} → {TO}, helm v4.3.2, a fresh cluster per run)\n"
    );
    println!(
        "| {FROM} → {TO} | Istio's documented `helm upgrade` ×3 | `meshup upgrade --charts` | meshup / helm |"
    );
    println!("|---|---|---|---|");
    println!(
        "| wall clock, median of {RUNS} (each run) | {} ({} s) | {} ({} s) | {:.2}x |",
        secs(hw),
        list(&helm),
        secs(mw),
        list(&meshup),
        mw.as_secs_f64() / hw.as_secs_f64()
    );
    println!(
        "| last control-plane pod Ready → exit, median (each run, ms; audit log) | {:.0} ms ({}) | {:.0} ms ({}) | {:.2}x |",
        ms(hg),
        ms_list(&helm),
        ms(mg),
        ms_list(&meshup),
        ms(mg) / ms(hg)
    );
    println!(
        "| the same from kubectl's lastTransitionTime (whole seconds) | {:.0} ms | {:.0} ms | |",
        ms(hk),
        ms(mk)
    );
    println!(
        "| end states (run 1, {} objects) | {} differences (listed above) | | |",
        helm[0].state.len(),
        diffs[0].len()
    );
    println!(
        "| `helm get values` after | {} | {} | |",
        values_line(helm[0]),
        values_line(meshup[0])
    );
    println!(
        "| `helm history` after | {} | {} | |",
        history_summary(helm[0]),
        history_summary(meshup[0])
    );
    println!();
    println!(
        "| istiod never Ready at {TO} | `helm upgrade` ×3, istiod `--timeout 60s` | `meshup upgrade --readiness-timeout 60s` | meshup / helm |"
    );
    println!("|---|---|---|---|");
    let steps = |u: &Upgrade| {
        u.steps
            .iter()
            .map(|(what, code, d)| format!("{what}: exit {code}, {}", secs(*d)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    println!("| exit code | {} | {} | |", fh.code, fm.code);
    println!(
        "| time | {} ({}) | {} | {:.2}x |",
        secs(fh.wall),
        steps(fh),
        secs(fm.wall),
        fm.wall.as_secs_f64() / fh.wall.as_secs_f64()
    );
    println!(
        "| istiod pods at exit | {} | {} | |",
        istiod_summary(&fh.istiod),
        istiod_summary(&fm.istiod)
    );
    println!(
        "| `helm history` after | {} | {} | |",
        history_summary(fh),
        history_summary(fm)
    );
    println!(
        "| `helm get values` after | {} | {} | |",
        values_line(fh),
        values_line(fm)
    );
    let fd = end_state::differences(&fh.state, &fm.state, "helm", "meshup");
    println!(
        "\n  bench: failure case, end states compared: {} differences:",
        fd.len()
    );
    for d in &fd {
        println!("    {d}");
    }
    println!(
        "\n  bench: helm_side_by_side took {:.0} s ({} fresh clusters)",
        t.elapsed().as_secs_f64(),
        2 * RUNS + 2
    );
}
