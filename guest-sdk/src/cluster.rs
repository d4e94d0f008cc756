//! Reading the cluster: the [`Cluster`] trait policy logic takes, and the host-backed implementation.

use serde_json::Value;

/// Read-only cluster access. Answers come from the host's snapshot, within the grants.
pub trait Cluster {
    /// One object, `None` if it does not exist. `namespace` is `None` for cluster-scoped kinds.
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String>;
    /// All objects of a kind in `namespace` (`None` = all) matching `label_selector`.
    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String>;
}

/// The cluster as the host exposes it to a component (the WIT `cluster` import).
/// Only usable inside a component; natively it answers with an error.
pub struct HostCluster;

impl Cluster for HostCluster {
    fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String> {
        #[cfg(target_arch = "wasm32")]
        {
            let raw =
                crate::bindings::meshup::policy::cluster::get(api_version, kind, namespace, name)?;
            raw.map(|s| {
                serde_json::from_str(&s).map_err(|e| format!("host returned invalid JSON: {e}"))
            })
            .transpose()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (api_version, kind, namespace, name);
            Err("HostCluster is only available inside a component; use testing::FakeCluster".into())
        }
    }

    fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        #[cfg(target_arch = "wasm32")]
        {
            let raw = crate::bindings::meshup::policy::cluster::list(
                api_version,
                kind,
                namespace,
                label_selector,
            )?;
            raw.iter()
                .map(|s| {
                    serde_json::from_str(s).map_err(|e| format!("host returned invalid JSON: {e}"))
                })
                .collect()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (api_version, kind, namespace, label_selector);
            Err("HostCluster is only available inside a component; use testing::FakeCluster".into())
        }
    }
}
