//! Putting the cluster back after a failed run: the previous release's manifest
//! re-applied with the same waiting and verification as an upgrade, and whatever the
//! failed run created removed. For a failed first install, "back" means removed.

use crate::apply::{self, Failure};
use crate::bundle::Bundle;
use crate::cluster::Cluster;
use crate::plan::{self, Plan};
use crate::render::{ObjectKey, Rendered};
use crate::state::Installed;
use crate::ui::Ui;

/// How to put the cluster back after a failed run.
pub struct RestorePlan {
    /// Objects to re-apply: the previous release's manifest, or the live objects captured
    /// before the run for installs meshup did not record.
    pub objects: Rendered,
    /// Objects the failed run created that the previous state did not have.
    pub remove: Vec<ObjectKey>,
    pub version: Option<String>,
}

impl RestorePlan {
    pub fn for_failed_run(installed: &Installed, plan: &Plan) -> RestorePlan {
        let previous = plan.previous.as_ref().and_then(|p| p.manifest.clone());
        let objects = previous.unwrap_or_else(|| Rendered { objects: vec![] });
        let keep: std::collections::BTreeSet<ObjectKey> =
            objects.objects.iter().map(|o| o.key()).collect();
        let remove = plan
            .changes
            .iter()
            .filter(|c| c.action == plan::Action::Create && !keep.contains(&c.key))
            .filter(|c| {
                !matches!(
                    c.key.kind.as_str(),
                    "CustomResourceDefinition" | "Namespace"
                )
            })
            .map(|c| c.key.clone())
            .collect();
        RestorePlan {
            objects,
            remove,
            version: installed.version().map(str::to_string),
        }
    }

    pub fn describe(&self) -> String {
        match &self.version {
            Some(v) => format!("the previous release ({v})"),
            None => "the state before the install (created objects removed)".into(),
        }
    }

    pub async fn run(
        &self,
        cluster: &Cluster,
        bundle: &Bundle,
        opts: &apply::Options,
        ui: &Ui,
    ) -> Result<apply::Report, Failure> {
        match &self.version {
            Some(v) if !self.objects.objects.is_empty() => {
                apply::run(
                    cluster,
                    &bundle.manifest.components,
                    bundle.namespace(),
                    &self.objects,
                    &self.remove,
                    v,
                    opts,
                    ui,
                )
                .await
            }
            _ => {
                for key in self.remove.iter().rev() {
                    cluster
                        .delete(key)
                        .await
                        .map_err(|e| Failure::Prune(format!("{e:#}")))?;
                }
                Ok(apply::Report {
                    components: vec![],
                    pruned: self.remove.iter().map(|k| k.to_string()).collect(),
                    seconds: 0.0,
                })
            }
        }
    }
}
