//! meshup-sim: a Kubernetes API server on loopback with simulated controllers.
//!
//! It speaks only the Kubernetes API and knows nothing of meshup.
//!
//! Simulator-specific knobs:
//! - annotation `sim.meshup.dev/ready-delay-ms: "N"` on a Deployment,
//!   ReplicaSet, DaemonSet, pod template or Pod: time from pod creation to Ready;
//! - annotation `sim.meshup.dev/never-ready: "true"` (same places): pods run
//!   but never become Ready;
//! - `GET|PUT|DELETE /sim/v1/faults` (JSON [`FaultConfig`]; `--faults FILE` takes
//!   the same as YAML): error bursts, 429s, latency, dropped watches, update
//!   conflicts, outages, never-ready workloads, denied access reviews, the
//!   reported Kubernetes version;
//! - simulated webhook backends ([`WebhookBackends`], `--webhook-backends
//!   FILE`): what the server behind a MutatingWebhookConfiguration's webhook
//!   does, since none runs;
//! - `GET /sim/v1/requests[?mutating=true]` → `{"requests": [RequestRecord]}`,
//!   `DELETE /sim/v1/requests` resets it. `/sim/` paths are never faulted or logged.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = meshup_sim::Sim::start(meshup_sim::SimConfig::default()).await?;
//! sim.write_kubeconfig("/tmp/kubeconfig")?;
//! println!("{}", sim.url());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admission;
pub mod api;
pub mod cli;
pub mod cluster;
pub mod controllers;
pub mod discovery;
pub mod error;
pub mod faults;
pub mod patch;
pub mod registry;
pub mod seed;
pub mod selector;
pub mod ssa;
pub mod store;
pub mod table;
pub mod util;

pub use admission::{BackendConfigError, WebhookBackends};
pub use controllers::{ANN_NEVER_READY, ANN_READY_DELAY};
pub use faults::{FaultConfig, RequestRecord};

use anyhow::Context;
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Default Kubernetes version reported by `/version`.
pub const DEFAULT_K8S_VERSION: &str = "v1.30.4";

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// Multi-document YAML loaded at start.
    pub seed: Option<PathBuf>,
    /// Seed objects given directly (loaded after `seed`).
    pub seed_objects: Vec<serde_json::Value>,
    /// Time from pod creation to Ready (per-workload override: annotation
    /// `sim.meshup.dev/ready-delay-ms`).
    pub ready_delay: Duration,
    /// Fault configuration file (YAML or JSON).
    pub faults: Option<PathBuf>,
    /// Fault configuration given directly (overrides `faults`).
    pub fault_config: Option<FaultConfig>,
    /// Reported by `/version`, e.g. "v1.30.4".
    pub kubernetes_version: String,
    /// Watch events kept for resuming watches; older versions get 410.
    pub watch_history: usize,
    /// What the servers behind mutating webhooks do (none run); empty: a
    /// webhook configuration changes nothing.
    pub webhook_backends: WebhookBackends,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            seed: None,
            seed_objects: Vec::new(),
            ready_delay: Duration::from_millis(300),
            faults: None,
            fault_config: None,
            kubernetes_version: DEFAULT_K8S_VERSION.to_string(),
            watch_history: 50_000,
            webhook_backends: WebhookBackends::default(),
        }
    }
}

pub struct Sim {
    addr: SocketAddr,
    cluster: Arc<cluster::Cluster>,
    shutdown: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<()>,
    controllers: JoinHandle<()>,
}

fn builtin_objects() -> Vec<serde_json::Value> {
    let mut v: Vec<serde_json::Value> =
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}))
            .collect();
    v.push(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": admission::NODE_NAME, "labels": {"kubernetes.io/hostname": admission::NODE_NAME, "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": ""}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": admission::NODE_IP}, {"type": "Hostname", "address": admission::NODE_NAME}],
            "nodeInfo": {"kubeletVersion": DEFAULT_K8S_VERSION, "osImage": "meshup-sim", "containerRuntimeVersion": "containerd://1.7.0", "architecture": "amd64", "operatingSystem": "linux"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "100000"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "100000"}
        }
    }));
    v.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                  "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 6443}], "clusterIP": "10.96.0.1"}}));
    v
}

impl Sim {
    pub async fn start(cfg: SimConfig) -> anyhow::Result<Sim> {
        let faults = match (&cfg.fault_config, &cfg.faults) {
            (Some(f), _) => f.clone(),
            (None, Some(p)) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading faults file {}", p.display()))?;
                serde_yaml::from_str(&text)
                    .with_context(|| format!("parsing faults file {}", p.display()))?
            }
            (None, None) => FaultConfig::default(),
        };
        let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut cluster = cluster::Cluster::new(
            registry::Registry::new(),
            faults,
            cfg.kubernetes_version.clone(),
            cfg.ready_delay,
            wake_tx,
            cfg.watch_history,
        );
        cluster.webhook_backends = cfg.webhook_backends.clone();
        let cluster = Arc::new(cluster);
        seed::load(&cluster, builtin_objects())?;
        if let Some(p) = &cfg.seed {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading seed file {}", p.display()))?;
            seed::load_yaml(&cluster, &text)
                .with_context(|| format!("loading seed file {}", p.display()))?;
        }
        if !cfg.seed_objects.is_empty() {
            seed::load(&cluster, cfg.seed_objects.clone())?;
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", cfg.port))?;
        let addr = listener.local_addr()?;
        let (sd_tx, sd_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(api::AppState {
            cluster: cluster.clone(),
            addr: addr.to_string(),
            shutdown: sd_rx.clone(),
        });
        let app = api::router(state);
        let mut sd_server = sd_rx.clone();
        let cluster_for_listener = cluster.clone();
        let server = tokio::spawn(async move {
            let listener = api::SimListener {
                inner: listener,
                cluster: cluster_for_listener,
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = sd_server.changed().await;
                })
                .await;
        });
        let controllers = tokio::spawn(controllers::run(cluster.clone(), wake_rx, sd_rx));
        Ok(Sim {
            addr,
            cluster,
            shutdown: sd_tx,
            server,
            controllers,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The cluster state, for in-process use (tests, benchmarks, the demo).
    pub fn cluster(&self) -> &Arc<cluster::Cluster> {
        &self.cluster
    }

    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: meshup-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: meshup-sim\n  context:\n    cluster: meshup-sim\n    user: meshup-sim\n    namespace: default\ncurrent-context: meshup-sim\npreferences: {{}}\nusers:\n- name: meshup-sim\n  user: {{}}\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> anyhow::Result<()> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.kubeconfig_yaml())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Replaces the fault configuration (same as `PUT /sim/v1/faults`).
    pub fn set_faults(&self, cfg: FaultConfig) {
        *self
            .cluster
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = faults::Faults::new(cfg);
        self.cluster.wake_ns("");
    }

    /// The request log (same as `GET /sim/v1/requests`).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.cluster
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .iter()
            .cloned()
            .collect()
    }

    pub fn clear_requests(&self) {
        self.cluster
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .clear();
    }

    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut server = self.server;
        if tokio::time::timeout(Duration::from_secs(2), &mut server)
            .await
            .is_err()
        {
            server.abort();
        }
        self.controllers.abort();
    }
}
