//! How a release's installed control plane is found in a cluster, as its bundle declares
//! it (`bundle.yaml`'s `discovery:`): which workloads are the control plane, the
//! container whose image tag is its version, the label naming its revision, the
//! sidecar container of the data plane, and where the release's own installer records
//! what it installed. Generic code asks these facts; only bundles state them.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::DEFAULT_REVISION;

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

    /// The discovery facts of the newest bundle this binary ships, for the actions that
    /// read the cluster before any bundle is named (`status`, `dataplane`): they take no
    /// `--bundle`, and the newest release is the one whose facts its predecessors share
    /// (each bundle's own facts are used whenever a bundle is known). A test keeps this
    /// the newest of `bundles/`.
    pub fn newest_shipped() -> &'static Discovery {
        static SHIPPED: LazyLock<Discovery> = LazyLock::new(|| {
            parse_section(NEWEST_SHIPPED_MANIFEST)
                .expect("the shipped bundle's discovery section parses (tested)")
        });
        &SHIPPED
    }
}

/// The manifest of the newest shipped bundle, compiled in.
const NEWEST_SHIPPED_MANIFEST: &str = include_str!("../../bundles/istio-1.9.5/bundle.yaml");

/// The `discovery:` section of a bundle manifest's text.
fn parse_section(manifest: &str) -> Result<Discovery, serde_yaml::Error> {
    #[derive(Deserialize)]
    struct Section {
        discovery: Discovery,
    }
    serde_yaml::from_str::<Section>(manifest).map(|s| s.discovery)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped bundle declares its discovery facts; the compiled-in ones are the
    /// newest bundle's (add a release: point `NEWEST_SHIPPED_MANIFEST` at it).
    #[test]
    fn the_compiled_in_facts_are_the_newest_shipped_bundles() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles");
        let mut newest: Option<(semver::Version, Discovery)> = None;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let bundle = crate::bundle::Bundle::load(&entry.unwrap().path()).unwrap();
            let version = bundle.version().clone();
            if newest.as_ref().is_none_or(|(v, _)| *v < version) {
                newest = Some((version, bundle.manifest.discovery));
            }
        }
        let (version, discovery) = newest.expect("bundles are shipped");
        assert!(
            NEWEST_SHIPPED_MANIFEST.contains(&format!("\nversion: {version}\n")),
            "the compiled-in manifest is not the newest bundle's ({version})"
        );
        assert_eq!(Discovery::newest_shipped(), &discovery);
    }

    #[test]
    fn objects_without_a_revision_label_are_the_in_place_revision() {
        let d = Discovery::newest_shipped();
        let labelled = serde_json::json!({ d.revision_label.clone(): "canary" });
        assert_eq!(d.revision_of(&labelled), "canary");
        assert_eq!(d.revision_of(&serde_json::json!({})), DEFAULT_REVISION);
    }
}
