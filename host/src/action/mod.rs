//! One file per user action (like Helm's `pkg/action`): each is a struct whose fields
//! are the options and a `run` that reads like the user story. The CLI only fills
//! the structs; tests and the demo build them directly.

pub mod dataplane;
pub mod demo;
pub mod history;
pub mod present;
pub mod prompt;
pub mod rollback;
pub mod status;
pub mod template;
pub mod upgrade;

use crate::cluster::{Cluster, Target};
use crate::history::{History, Secrets};
use crate::ui::Ui;

/// What every action needs from outside (Helm's `action.Configuration`).
pub struct Env {
    pub target: Target,
    pub ui: Ui,
    /// Revisions kept in history.
    pub history_max: usize,
    pub policy_config: Option<std::path::PathBuf>,
    pub audit_log: Option<std::path::PathBuf>,
}

impl Env {
    pub fn new(target: Target, ui: Ui) -> Env {
        Env {
            target,
            ui,
            history_max: 10,
            policy_config: None,
            audit_log: None,
        }
    }

    /// Connect and check the API server answers (one clear error if not).
    pub async fn connect(&self) -> anyhow::Result<Cluster> {
        let cluster = Cluster::connect(&self.target).await?;
        cluster.check_reachable().await?;
        Ok(cluster)
    }

    pub fn history(&self, cluster: &Cluster, namespace: &str, bundle: &str) -> History<Secrets> {
        History::new(
            Secrets::new(cluster.client().clone(), namespace, bundle),
            self.history_max,
        )
    }
}

/// The product name releases are recorded under (one mesh per cluster).
pub const PRODUCT: &str = "istio";
/// Where the control plane lives when no bundle says otherwise.
pub const DEFAULT_NAMESPACE: &str = "istio-system";

pub use crate::ui::print_json;
