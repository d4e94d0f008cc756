//! How a release's installed control plane is found in a cluster, as its bundle declares
//! it (`bundle.yaml`'s `discovery:`): which workloads are the control plane, the
//! container whose image tag is its version, the label naming its revision, the
//! sidecar container of the data plane, and where the release's own installer records
//! what it installed. Generic code asks these facts; only bundles state them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The revision of an in-place control plane (objects without a revision label).
pub const DEFAULT_REVISION: &str = "default";

/// `bundle.yaml`'s `discovery:` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Discovery {
    /// The control plane's Deployments and pods.
    pub control_plane: ControlPlane,
    /// The label naming the control-plane revision an object belongs to.
    pub revision_label: String,
    /// The sidecar container whose image tag is a workload's proxy version.
    pub proxy_container: String,
    /// Where the release's own installer records what it installed, if it does.
    #[serde(default)]
    pub installed_state: Option<InstalledState>,
}

/// Which workloads are the control plane, and where their version is.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ControlPlane {
    /// Label selector of its Deployments and pods, e.g. `app=NAME`.
    pub selector: String,
    /// The container whose image tag is the version it runs.
    pub container: String,
}

/// The installer's record of an in-place install (one object, `name` or `name-REVISION`),
/// and the label it puts on each component's objects.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InstalledState {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub component_label: String,
}

impl Discovery {
    /// The control-plane revision an object with these labels belongs to (no revision
    /// label: the in-place one).
    pub fn revision_of(&self, labels: &Value) -> String {
        labels[&self.revision_label]
            .as_str()
            .unwrap_or(DEFAULT_REVISION)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_without_a_revision_label_are_the_in_place_revision() {
        let d = &crate::release::shipped::newest().discovery;
        let labelled = serde_json::json!({ d.revision_label.clone(): "canary" });
        assert_eq!(d.revision_of(&labelled), "canary");
        assert_eq!(d.revision_of(&serde_json::json!({})), DEFAULT_REVISION);
    }
}
