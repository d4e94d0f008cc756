//! Harness: the real `meshup` binary, the real simulator (`meshup sim` as its own
//! process, reached over HTTP through a kubeconfig) and real `kubectl` as an
//! independent client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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

    /// kubectl against this simulator; None (with a printed reason) when kubectl is missing,
    /// which CI does not allow.
    pub fn kubectl(&self, args: &[&str]) -> Option<Output> {
        if !has_kubectl() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "kubectl is not installed and CI=true: the independent client must be there in CI"
            );
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

    /// Objects of the control-plane namespace, read by a client that is not meshup: kubectl,
    /// or where it is missing (never in CI) the simulator's API over plain HTTP.
    pub fn read_independently(&self, kinds: &str) -> Vec<Value> {
        if let Some(out) = self.kubectl(&["get", kinds, "-n", "istio-system", "-o", "json"]) {
            assert!(
                out.status.success(),
                "kubectl: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let list: Value = serde_json::from_slice(&out.stdout).expect("kubectl json");
            return list["items"].as_array().cloned().unwrap_or_default();
        }
        let mut items = Vec::new();
        for kind in kinds.split(',') {
            let (path, kind_name) = match kind {
                "deployments" => (
                    "/apis/apps/v1/namespaces/istio-system/deployments",
                    "Deployment",
                ),
                "pods" => ("/api/v1/namespaces/istio-system/pods", "Pod"),
                "services" => ("/api/v1/namespaces/istio-system/services", "Service"),
                "configmaps" => ("/api/v1/namespaces/istio-system/configmaps", "ConfigMap"),
                "serviceaccounts" => (
                    "/api/v1/namespaces/istio-system/serviceaccounts",
                    "ServiceAccount",
                ),
                "clusterrolebindings" => (
                    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                    "ClusterRoleBinding",
                ),
                "mutatingwebhookconfigurations" => (
                    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                    "MutatingWebhookConfiguration",
                ),
                "validatingwebhookconfigurations" => (
                    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
                    "ValidatingWebhookConfiguration",
                ),
                other => panic!("read_independently: add the API path of {other}"),
            };
            let list = self.get(path);
            for mut item in list["items"].as_array().cloned().unwrap_or_default() {
                // Lists leave kind out of their items; kubectl puts it in.
                item["kind"] = Value::from(kind_name);
                items.push(item);
            }
        }
        items
    }

    /// The image tags istiod's pods run (terminating pods left out), read independently.
    pub fn istiod_versions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .read_independently("pods")
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == "istiod")
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .flat_map(|p| pod_tags(&p["spec"]))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Every control-plane Deployment runs `version` in its template and in every pod, all
    /// ready and fully rolled out; the problems found otherwise (empty: whole).
    pub fn control_plane_problems(&self, version: &str) -> Vec<String> {
        let objects = self.read_independently("deployments,pods");
        let pods: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Pod" && o["metadata"]["deletionTimestamp"].is_null())
            .collect();
        let mut problems = Vec::new();
        let deployments: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "Deployment")
            .collect();
        if !deployments
            .iter()
            .any(|d| d["metadata"]["name"] == "istiod")
        {
            problems.push("no istiod Deployment".to_string());
        }
        for d in deployments {
            let name = d["metadata"]["name"].as_str().unwrap_or("?");
            let tags = pod_tags(&d["spec"]["template"]["spec"]);
            if tags.iter().any(|t| t != version) {
                problems.push(format!("{name}: template runs {tags:?}"));
            }
            let want = d["spec"]["replicas"].as_u64().unwrap_or(1);
            let st = &d["status"];
            for field in ["readyReplicas", "updatedReplicas", "replicas"] {
                if st[field].as_u64().unwrap_or(0) != want {
                    problems.push(format!("{name}: {field} {} of {want}", st[field]));
                }
            }
            let selector = d["spec"]["selector"]["matchLabels"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for p in pods.iter().filter(|p| {
                selector
                    .iter()
                    .all(|(k, v)| &p["metadata"]["labels"][k] == v)
            }) {
                let pod = p["metadata"]["name"].as_str().unwrap_or("?");
                let tags = pod_tags(&p["spec"]);
                let ready = p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
                if tags.iter().any(|t| t != version) || !ready {
                    problems.push(format!("{name}: pod {pod} runs {tags:?}, ready {ready}"));
                }
            }
        }
        problems
    }
}

/// Kinds an upgrade changes, compared before and after a restore.
pub const INVENTORY: &str = "deployments,services,configmaps,serviceaccounts,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations";

/// What the control plane's objects are (kind/name → content), read independently: what
/// a restore must bring back exactly. Fields the controllers own are left out.
pub fn inventory(sim: &Sim) -> std::collections::BTreeMap<String, Value> {
    sim.read_independently(INVENTORY)
        .into_iter()
        .map(|o| {
            let key = format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            );
            let mut annotations = o["metadata"]["annotations"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            annotations.retain(|k, _| !k.starts_with("deployment.kubernetes.io/"));
            let mut content = serde_json::json!({
                "labels": o["metadata"]["labels"],
                "annotations": annotations,
            });
            for field in ["spec", "data", "webhooks", "subjects", "roleRef"] {
                if !o[field].is_null() {
                    content[field] = o[field].clone();
                }
            }
            (key, content)
        })
        .collect()
}

/// The user's IstioOperator at `istioctl install` time.
pub const USER_IOP: &str = "apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    accessLogFile: /dev/stdout
  components:
    pilot:
      k8s:
        replicaCount: 2
  values:
    pilot:
      traceSampling: 5.0
";

/// What `istioctl install` of `version` with the user's `user_iop` leaves in a cluster (a
/// YAML seed), with the default profile: see `IstioctlInstall`.
/// `None` (SKIPPED) without Istio's profile files.
pub fn istioctl_seed(version: &str, user_iop: &str) -> Option<String> {
    IstioctlInstall::new(version, user_iop).seed()
}

/// An install by a real istioctl of the 1.6-1.9 era, as it leaves a cluster: the objects the
/// release renders for the profile and the user's IstioOperator (the faithful bundle through
/// `meshup template`; `host/tests/reference.rs` holds it to Istio's own output), with the
/// labels istioctl adds when it applies them and not meshup's, and the `installed-state`
/// IstioOperator built from *Istio's* profile files (`../shared/reference/istio-1.X/
/// profiles`, merged as that istioctl merges), its hub and tag, the values it chose from the
/// cluster, and the user's file. No meshup history.
pub struct IstioctlInstall {
    /// The release whose bundle renders the objects (`1.8.6`).
    pub version: String,
    /// The patch that runs (`1.8.4`): its tag on every image, label and the installed-state.
    pub running: String,
    pub profile: String,
    pub user_iop: String,
    /// What istioctl chose for `values.global.jwtPolicy` from the cluster it installed to.
    pub jwt_policy: String,
}

impl IstioctlInstall {
    pub fn new(version: &str, user_iop: &str) -> IstioctlInstall {
        IstioctlInstall {
            version: version.into(),
            running: version.into(),
            profile: "default".into(),
            user_iop: user_iop.into(),
            jwt_policy: "third-party-jwt".into(),
        }
    }

    /// The seed; `None` (SKIPPED) without Istio's profile files.
    pub fn seed(&self) -> Option<String> {
        let minor = self.version.rsplit_once('.').unwrap().0.to_string();
        let profiles = istio_profiles(&minor)?;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("iop.yaml");
        std::fs::write(&file, &self.user_iop).unwrap();
        let tag = format!("tag={}", self.running);
        let jwt = format!("values.global.jwtPolicy={}", self.jwt_policy);
        let bundle = b(&format!("istio-{}", self.version));
        let args = [
            "template",
            "--bundle",
            &bundle,
            "--profile",
            &self.profile,
            "-f",
            file.to_str().unwrap(),
            "--set",
            &tag,
            "--set",
            &jwt,
        ];
        let out = run(&args, None);
        out.expect(0);
        let text = out.stdout.replace(
            &format!("operator.istio.io/version: {}", self.version),
            &format!("operator.istio.io/version: {}", self.running),
        );
        let mut docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .filter(|v: &Value| !v.is_null())
            .collect();
        for d in &mut docs {
            // The bundle renders istioctl's apply-time labels; only meshup's own go.
            let labels = d["metadata"]["labels"].as_object_mut().unwrap();
            labels.remove("app.kubernetes.io/managed-by");
            labels.remove("meshup.dev/component");
            assert_eq!(labels["operator.istio.io/version"], self.running.as_str());
        }
        docs.push(self.installed_state(&minor, &profiles));
        let seed = docs
            .iter()
            .map(|d| serde_yaml::to_string(d).unwrap())
            .collect::<Vec<_>>()
            .join("---\n");
        Some(seed)
    }

    /// istioctl's `installed-state` (`GenIOPFromProfile`): Istio's named profile over its
    /// default, the binary's hub and tag, the cluster's values, then the user's file.
    fn installed_state(&self, minor: &str, profiles: &Path) -> Value {
        let spec_of = |name: &str| -> Value {
            let text = std::fs::read_to_string(profiles.join(format!("{name}.yaml"))).unwrap();
            serde_yaml::from_str::<Value>(&text).unwrap()["spec"].clone()
        };
        // 1.6 merged with a JSON merge patch (lists replaced), 1.7+ merged the gateway lists
        // by name (host/tests/reference/profiles.rs checks the bundles against the same).
        let rule = meshup::base::values::MergeRule {
            by_name: if minor == "1.6" {
                vec![]
            } else {
                vec![
                    "components.ingressGateways".into(),
                    "components.egressGateways".into(),
                ]
            },
        };
        let mut spec = spec_of("default");
        if self.profile != "default" {
            rule.merge(&mut spec, &spec_of(&self.profile));
        }
        rule.merge(
            &mut spec,
            &json!({"hub": "docker.io/istio", "tag": self.running}),
        );
        rule.merge(
            &mut spec,
            &json!({"values": {"global": {"jwtPolicy": self.jwt_policy}}}),
        );
        let user: Value = serde_yaml::from_str(&self.user_iop).unwrap();
        rule.merge(&mut spec, &user["spec"]);
        spec["profile"] = json!(self.profile);
        spec["installPackagePath"] = json!("");
        json!({
            "apiVersion": "install.istio.io/v1alpha1",
            "kind": "IstioOperator",
            "metadata": {
                "name": "installed-state",
                "namespace": "istio-system",
                "annotations": {"install.istio.io/ignoreReconcile": "true"}
            },
            "spec": spec
        })
    }
}

/// Istio's own profile files of a minor release (`../shared/reference`). Tests that build an
/// istioctl install need them: without them they say SKIPPED, and under CI=true (where CI
/// has a copy of shared/ beside the clone) they fail.
pub fn istio_profiles(minor: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../shared/reference/istio-{minor}/profiles"));
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!("{} does not exist (Istio's own profiles)", dir.display());
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("an istioctl install cannot be built under CI=true: {why}");
    }
    println!("SKIPPED: istioctl install from Istio's profiles: {why}");
    None
}

/// The Deployments of a seed with their replicas (to wait for them before a test starts).
pub fn seeded_deployments(seed: &str) -> Vec<(String, u64)> {
    serde_yaml::Deserializer::from_str(seed)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .filter(|v| v["kind"] == "Deployment")
        .map(|v| {
            (
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["spec"]["replicas"].as_u64().unwrap_or(1),
            )
        })
        .collect()
}

/// The tags of a pod spec's containers (`docker.io/istio/pilot:1.7.8` → `1.7.8`).
pub fn pod_tags(spec: &Value) -> Vec<String> {
    spec["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c["image"].as_str())
                .map(|i| i.rsplit(':').next().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
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

/// The result of one meshup run (shared with the real tier).
pub use meshup_real_tests::Run;

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
    Run::from_output(child.wait_with_output().expect("wait meshup"))
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

/// A test that needs what this machine may lack (a real helm or istioctl, the real Istio
/// releases): SKIPPED with why, and a failure under `CI=true`, where nothing may skip.
pub fn skip(tests: &str, why: &str) -> Option<PathBuf> {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the {tests} tests cannot run under CI=true: {why}");
    }
    println!("SKIPPED: {tests} tests: {why}");
    None
}

/// A pinned real tool: `$env` when set, else the path `tests/real/<script> <pin>` prints
/// (it builds the pin once through the Go module proxy and caches it). Asked once per test
/// binary (`cell`); missing, the tests that need it skip (`skip`).
pub fn pinned_tool(
    cell: &'static std::sync::OnceLock<Result<PathBuf, String>>,
    env: &str,
    script: &str,
    pin: &str,
    tests: &str,
) -> Option<PathBuf> {
    let found = cell.get_or_init(|| {
        if let Some(p) = std::env::var_os(env) {
            return Ok(PathBuf::from(p));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/real")
            .join(script);
        let out = Command::new(&script)
            .arg(pin)
            .output()
            .map_err(|e| format!("{}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(why) => skip(tests, &format!("no {script} ({why})")),
    }
}

/// istiod's Deployment as Helm leaves it: its label and annotations (`istiod_seed`).
pub const HELM_MARKS: &str = "  labels: {app: istiod, app.kubernetes.io/managed-by: Helm}
  annotations: {meta.helm.sh/release-name: istiod, meta.helm.sh/release-namespace: istio-system}
";

/// A seed of namespace istio-system and one istiod replica on `pilot:TAG`, its metadata
/// carrying `marks` (the `labels:`/`annotations:` lines an installer leaves): the install
/// method tests differ only in those.
pub fn istiod_seed(tag: &str, marks: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Namespace
metadata: {{name: istio-system}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod
  namespace: istio-system
{marks}spec:
  replicas: 1
  selector: {{matchLabels: {{app: istiod}}}}
  template:
    metadata: {{labels: {{app: istiod}}}}
    spec:
      containers: [{{name: discovery, image: "docker.io/istio/pilot:{tag}"}}]
"#
    )
}
