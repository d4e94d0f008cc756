//! One file per user action (like Helm's `pkg/action`): each is a struct whose fields
//! are the options and a `run` that reads like the user story. The CLI only fills
//! the structs; tests and the demo build them directly.
//!
//! How one upgrade goes from the command line to the cluster:
//! - `cli` fills an [`upgrade::Upgrade`] from the flags and an [`Env`] (the one
//!   configuration every action receives: where the cluster and the history are, the
//!   policy configuration), then calls `Upgrade::run(&env, &narrator)`.
//! - `run` loads the target release (a [`crate::release::Source`]: the bundle today) and
//!   the policies, connects ([`Env::connect`]: a
//!   [`crate::cluster::kube::Kube`] and the release [`crate::installed::history::History`]) and goes step
//!   by step: plan and check, confirm, lock ([`crate::cluster::lock`]), pre-upgrade checks,
//!   capture and record as pending, apply ([`crate::engine::apply`]), post-upgrade checks, then
//!   record `deployed`, or restore the capture ([`rollback::restore_run`]).
//! - Everything it and the code it calls want to say goes out as a
//!   [`crate::engine::progress::Event`] to the `Progress` it was given; it returns a typed
//!   report ([`upgrade::Report`]). The changing actions (upgrade, rollback) never print;
//!   `cli::present` is the CLI's side: `present::Narrator` turns events into lines and
//!   bars, and `present::upgrade`/`present::rollback` print a report as text or as the one
//!   JSON document and choose the exit code. The read-only actions (status, history,
//!   dataplane, template) return reports too, which `present` prints the same way, and
//!   the question before a change is `Progress::confirm`: no action touches the
//!   terminal.
//! - Cluster access is only the `Kube` trait: `cluster::client::Cluster` against a real API
//!   server, an in-memory fake in this module's tests (Helm's `action_test.go` pattern).
//! - What the user set last time comes from the installer that owns what runs
//!   ([`crate::installed::installers::owner`]), and after a verified run every installer
//!   keeps its own record true ([`crate::installed::installer::Installer::record`]).

pub mod dataplane;
pub mod history;
pub mod rollback;
pub mod status;
pub mod template;
pub mod upgrade;
pub mod version;

use std::sync::{Arc, OnceLock};

use crate::cluster::client::{Cluster, Target};
use crate::cluster::kube::Kube;
use crate::engine::checks::Checker;
use crate::installed::history::{Driver, History, Secrets};

/// What every action needs from outside (Helm's `action.Configuration`): where the
/// cluster and the release history are, and the policy configuration. Nothing here
/// connects until an action asks.
pub struct Env {
    pub backend: Backend,
    /// Revisions kept in history.
    pub history_max: usize,
    pub policy_config: Option<std::path::PathBuf>,
    pub audit_log: Option<std::path::PathBuf>,
    /// The policy checker, loaded by the first action that needs it and kept.
    checker: OnceLock<Arc<Checker>>,
}

/// Where the cluster and the release history are.
pub enum Backend {
    /// A real API server, reached through a kubeconfig; history in its Secrets.
    Kubeconfig(Target),
    /// Cluster access and one namespace's release storage given directly (the action
    /// tests: an in-memory cluster and `history::Memory`).
    Given {
        kube: Arc<dyn Kube>,
        releases: Arc<dyn Driver>,
    },
}

/// A reachable cluster, and how to open its release history.
pub struct Connection {
    pub kube: Arc<dyn Kube>,
    releases: Releases,
}

enum Releases {
    Secrets(kube::Client),
    Given(Arc<dyn Driver>),
}

impl Env {
    pub fn new(target: Target) -> Env {
        Env::with_backend(Backend::Kubeconfig(target))
    }

    pub fn with_backend(backend: Backend) -> Env {
        Env {
            backend,
            history_max: 10,
            policy_config: None,
            audit_log: None,
            checker: OnceLock::new(),
        }
    }

    /// This configuration with `checker` as its (already loaded) policy checker.
    pub fn with_checker(self, checker: Arc<Checker>) -> Env {
        let _ = self.checker.set(checker);
        self
    }

    /// Connect and check the API server answers (one clear error if not).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        match &self.backend {
            Backend::Kubeconfig(_) => {
                let cluster = self.cluster().await?;
                let client = cluster.client().clone();
                Ok(Connection {
                    kube: Arc::new(cluster),
                    releases: Releases::Secrets(client),
                })
            }
            Backend::Given { kube, releases } => Ok(Connection {
                kube: kube.clone(),
                releases: Releases::Given(releases.clone()),
            }),
        }
    }

    /// The real cluster, for the actions that need more than `Kube` (data-plane restarts
    /// and the demo).
    pub async fn cluster(&self) -> anyhow::Result<Cluster> {
        let Backend::Kubeconfig(target) = &self.backend else {
            anyhow::bail!("this action needs a real cluster (a kubeconfig)");
        };
        let cluster = Cluster::connect(target).await?;
        cluster.check_reachable().await?;
        Ok(cluster)
    }

    /// The release history of `bundle` in `namespace`.
    pub fn history(&self, conn: &Connection, namespace: &str, bundle: &str) -> History {
        let driver: Arc<dyn Driver> = match &conn.releases {
            Releases::Secrets(client) => Arc::new(Secrets::new(client.clone(), namespace, bundle)),
            Releases::Given(d) => d.clone(),
        };
        History::new(driver, self.history_max)
    }

    /// The policy checker: builtin policies plus the policy configuration's.
    pub fn checker(&self) -> anyhow::Result<Arc<Checker>> {
        if let Some(c) = self.checker.get() {
            return Ok(c.clone());
        }
        let loaded = Checker::load(self.policy_config.as_deref(), self.audit_log.as_deref())?;
        Ok(self.checker.get_or_init(|| Arc::new(loaded)).clone())
    }
}

/// The product name releases are recorded under (one mesh per cluster): the newest
/// shipped bundle's, so that every action finds the same history with or without a bundle.
pub fn product() -> &'static str {
    &crate::release::shipped::newest().name
}

/// Where the control plane lives when no bundle says otherwise (the newest shipped
/// bundle's namespace).
pub fn default_namespace() -> &'static str {
    &crate::release::shipped::newest().namespace
}

#[cfg(test)]
pub(crate) mod tests;

/// Release the lock; a failure to do so never changes a run's outcome (the lock expires by
/// itself), so it is said as a warning.
async fn release_lock(
    lock: crate::cluster::lock::Lock,
    progress: &dyn crate::engine::progress::Progress,
) {
    if let Err(e) = lock.release().await {
        progress.event(crate::engine::progress::Event::Warning(&format!(
            "{e:#}; it expires by itself {} s after its last renewal",
            crate::cluster::lock::duration().as_secs()
        )));
    }
}
